package collector

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// NetcatUDPSource turns each datagram into an event, as Flume's netcatudp
// source does: the body is the datagram without a trailing newline, and
// remoteAddressHeader, when set, names a header that gets the sender's
// address. What the channels refuse is dropped and counted
// (event_pump.go): UDP has no way to ask the sender to wait.
type NetcatUDPSource struct {
	name       string
	env        sim.Env
	addr       string
	addrHeader string
	pump       *eventPump
	conn       sim.PacketConn
	counters   SourceCounters
}

func newNetcatUDPSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *NetcatUDPSource {
	s := &NetcatUDPSource{name: name, env: env, addr: joinHostPort(c.String("bind"), int(c.Int("port"))), addrHeader: c.String("remoteAddressHeader")}
	s.pump = &eventPump{env: env, what: "netcatudp source " + name, proc: proc, counters: &s.counters}
	return s
}

// Name is the source's name.
func (s *NetcatUDPSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *NetcatUDPSource) Counters() *SourceCounters { return &s.counters }

// Start binds bind:port.
func (s *NetcatUDPSource) Start() error {
	pc, err := s.env.Net.ListenPacket(s.addr, func(from string, p []byte) {
		e := Event{Body: slices.Clone(bytes.TrimSuffix(p, []byte("\n")))}
		if s.addrHeader != "" {
			e.Headers = map[string]string{s.addrHeader: from}
		}
		s.pump.push(e)
	})
	if err != nil {
		return fmt.Errorf("netcatudp source %s: bind %s: %w", s.name, s.addr, err)
	}
	s.conn = pc
	s.env.Log.Logf("netcatudp source %s listening on %s", s.name, pc.LocalAddr())
	return nil
}

// Addr is the address the source listens on.
func (s *NetcatUDPSource) Addr() string { return s.conn.LocalAddr() }

// Stop closes the port; queued datagrams still go to the channels.
func (s *NetcatUDPSource) Stop() {
	if s.conn != nil {
		s.conn.Close()
	}
}
