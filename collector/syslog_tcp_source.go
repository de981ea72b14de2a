package collector

import (
	"bytes"
	"slices"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// SyslogTCPSource takes newline-delimited syslog messages (RFC 3164 or
// 5424) on a TCP port, as Flume's syslogtcp source does, each parsed into
// headers (syslog_parse.go). A message longer than eventSize is cut there
// and marked flume.syslog.status "Incomplete". Syslog has no answers, so
// what the channels refuse is dropped and counted (event_pump.go).
type SyslogTCPSource struct {
	tcpSource
	eventSize  int
	keepFields bool
	pump       *eventPump
}

type syslogConn struct {
	sourceConn
	src *SyslogTCPSource
	buf []byte
	// skipping drops the rest of a line already cut at eventSize.
	skipping bool
}

func newSyslogTCPSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *SyslogTCPSource {
	s := &SyslogTCPSource{eventSize: int(c.Int("eventSize")), keepFields: c.Bool("keepFields")}
	s.init("syslogtcp source", name, env, joinHostPort(c.String("host"), int(c.Int("port"))))
	s.pump = &eventPump{env: env, what: "syslogtcp source " + name, proc: proc, counters: &s.counters}
	return s
}

// Start listens on host:port.
func (s *SyslogTCPSource) Start() error {
	return s.listen(sim.ConnOptions{Framing: sim.FrameStream}, func(c sim.Conn) sim.ConnHandler {
		sc := &syslogConn{src: s}
		s.track(&sc.sourceConn, c)
		return sc
	})
}

// Stop closes the port and the connections; queued messages still go to
// the channels.
func (s *SyslogTCPSource) Stop() { s.tcpSource.Stop() }

func (sc *syslogConn) OnOpen(sim.Conn)         {}
func (sc *syslogConn) OnClose(sim.Conn, error) { sc.forget() }

func (sc *syslogConn) OnFrame(_ sim.Conn, chunk []byte) {
	s := sc.src
	sc.buf = append(sc.buf, chunk...)
	var events []Event
	for {
		i := bytes.IndexByte(sc.buf, '\n')
		if i < 0 {
			if len(sc.buf) > s.eventSize && !sc.skipping {
				events = append(events, sc.incomplete(sc.buf[:s.eventSize]))
				sc.skipping = true
			}
			if sc.skipping {
				sc.buf = sc.buf[:0]
			}
			break
		}
		line := bytes.TrimSuffix(sc.buf[:i], []byte("\r"))
		sc.buf = sc.buf[i+1:]
		if sc.skipping {
			sc.skipping = false
			continue
		}
		if len(line) > s.eventSize {
			events = append(events, sc.incomplete(line[:s.eventSize]))
			continue
		}
		events = append(events, parseSyslog(slices.Clone(line), s.env.Clock.Now(), s.keepFields))
	}
	if len(sc.buf) == 0 {
		sc.buf = nil
	}
	if len(events) > 0 {
		s.pump.push(events...)
	}
}

func (sc *syslogConn) incomplete(head []byte) Event {
	e := parseSyslog(slices.Clone(head), sc.src.env.Clock.Now(), sc.src.keepFields)
	e.Headers[syslogStatusHeader] = "Incomplete"
	return e
}
