package collector

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// SyslogUDPSource takes one syslog message (RFC 3164 or 5424) per
// datagram, as Flume's syslogudp source does, parsed into headers
// (syslog_parse.go); a trailing newline is dropped. What the channels
// refuse is dropped and counted (event_pump.go).
type SyslogUDPSource struct {
	name       string
	env        sim.Env
	addr       string
	keepFields bool
	pump       *eventPump
	conn       sim.PacketConn
	counters   SourceCounters
}

func newSyslogUDPSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *SyslogUDPSource {
	s := &SyslogUDPSource{name: name, env: env, addr: joinHostPort(c.String("host"), int(c.Int("port"))), keepFields: c.Bool("keepFields")}
	s.pump = &eventPump{env: env, what: "syslogudp source " + name, proc: proc, counters: &s.counters}
	return s
}

// Name is the source's name.
func (s *SyslogUDPSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *SyslogUDPSource) Counters() *SourceCounters { return &s.counters }

// Start binds host:port.
func (s *SyslogUDPSource) Start() error {
	pc, err := s.env.Net.ListenPacket(s.addr, func(_ string, p []byte) {
		line := bytes.TrimSuffix(bytes.TrimSuffix(p, []byte("\n")), []byte("\r"))
		s.pump.push(parseSyslog(slices.Clone(line), s.env.Clock.Now(), s.keepFields))
	})
	if err != nil {
		return fmt.Errorf("syslogudp source %s: bind %s: %w", s.name, s.addr, err)
	}
	s.conn = pc
	s.env.Log.Logf("syslogudp source %s listening on %s", s.name, pc.LocalAddr())
	return nil
}

// Addr is the address the source listens on.
func (s *SyslogUDPSource) Addr() string { return s.conn.LocalAddr() }

// Stop closes the port; queued messages still go to the channels.
func (s *SyslogUDPSource) Stop() {
	if s.conn != nil {
		s.conn.Close()
	}
}
