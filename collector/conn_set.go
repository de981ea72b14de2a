package collector

import (
	"slices"
	"strings"

	"github.com/sluice-sim/sluice/sim"
)

// connSet is a listening source's open connections: it keeps the
// source's OpenConnectionCount and, when the source stops, closes them in
// the order of their remote addresses, so that a seed's trace does not
// depend on map order.
type connSet struct {
	closers  map[sim.Conn]func()
	counters *SourceCounters
}

func newConnSet(counters *SourceCounters) connSet {
	return connSet{closers: map[sim.Conn]func(){}, counters: counters}
}

// add counts a new connection; closeConn is how the source closes it.
func (s *connSet) add(c sim.Conn, closeConn func()) {
	s.closers[c] = closeConn
	s.counters.OpenConnectionCount++
}

// forget uncounts a connection that closed; a second call does nothing.
func (s *connSet) forget(c sim.Conn) {
	if _, ok := s.closers[c]; ok {
		delete(s.closers, c)
		s.counters.OpenConnectionCount--
	}
}

// closeAll closes every open connection through its source's closer.
func (s *connSet) closeAll() {
	conns := make([]sim.Conn, 0, len(s.closers))
	for c := range s.closers {
		conns = append(conns, c)
	}
	slices.SortFunc(conns, func(a, b sim.Conn) int { return strings.Compare(a.RemoteAddr(), b.RemoteAddr()) })
	for _, c := range conns {
		if closeConn := s.closers[c]; closeConn != nil {
			closeConn()
		}
	}
}
