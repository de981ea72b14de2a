package collector

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/sim"
)

// tcpSource is what every source listening on a TCP port holds the same
// way: its name, the port, its open connections and counters, and a Stop
// that closes the port and then the connections in a fixed order. The
// avro, http and syslogtcp sources embed it; the netcat source keeps its
// own, since a connection of it outlives its socket until its batches are
// answered.
type tcpSource struct {
	// kind names the source in messages ("http source").
	kind     string
	name     string
	env      sim.Env
	addr     string
	listener sim.Listener
	conns    connSet
	stopped  bool
	counters SourceCounters
}

func (s *tcpSource) init(kind, name string, env sim.Env, addr string) {
	s.kind, s.name, s.env, s.addr = kind, name, env, addr
	s.conns = newConnSet(&s.counters)
}

// Name is the source's name.
func (s *tcpSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *tcpSource) Counters() *SourceCounters { return &s.counters }

// Addr is the address the source listens on.
func (s *tcpSource) Addr() string { return s.listener.Addr() }

// listen opens the port; accept makes each connection's handler.
func (s *tcpSource) listen(opts sim.ConnOptions, accept func(sim.Conn) sim.ConnHandler) error {
	l, err := s.env.Net.Listen(s.addr, opts, accept)
	if err != nil {
		return fmt.Errorf("%s %s: listen on %s: %w", s.kind, s.name, s.addr, err)
	}
	s.listener = l
	s.env.Log.Logf("%s %s listening on %s", s.kind, s.name, l.Addr())
	return nil
}

// Stop closes the port and the connections.
func (s *tcpSource) Stop() {
	s.stopped = true
	if s.listener != nil {
		s.listener.Close()
	}
	s.conns.closeAll()
}

// sourceConn is one connection of a tcpSource, counted in its source's
// connSet until it closes, from either end.
type sourceConn struct {
	c      sim.Conn
	set    *connSet
	closed bool
}

// track makes sc the connection c and counts it among the source's.
func (s *tcpSource) track(sc *sourceConn, c sim.Conn) {
	*sc = sourceConn{c: c, set: &s.conns}
	s.conns.add(c, sc.close)
}

// close closes the connection from this end.
func (sc *sourceConn) close() {
	if !sc.closed {
		sc.c.Close()
	}
	sc.forget()
}

// forget uncounts the connection; the peer may have closed it.
func (sc *sourceConn) forget() {
	sc.closed = true
	sc.set.forget(sc.c)
}

// joinHostPort joins a host and port, bracketing an IPv6 host.
func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}
