package simnet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// stack is one incarnation of a host's network stack: what sim.Network
// offers a process. A crash tears it down; the next incarnation gets a new
// one.
type stack struct {
	host *Host
	inc  uint32
	torn bool
	// The maps are only looked up, never iterated, so their order cannot
	// reach behaviour.
	listeners   map[int]*listener
	packetPorts map[int]*packetConn
	clientPorts map[int]bool
	// ends are the connection ends this incarnation holds, in no
	// particular but deterministic order.
	ends []*end
}

var _ sim.Network = (*stack)(nil)

func newStack(h *Host, inc uint32) *stack {
	return &stack{
		host:        h,
		inc:         inc,
		listeners:   make(map[int]*listener),
		packetPorts: make(map[int]*packetConn),
		clientPorts: make(map[int]bool),
	}
}

// live reports whether the stack belongs to the node's current incarnation
// and has not been torn down.
func (s *stack) live() bool {
	return !s.torn && s.inc == s.host.node.Incarnation()
}

func (s *stack) nw() *Network { return s.host.nw }

// tear drops everything the incarnation held. Its handlers get no
// callbacks; peers get an RST when resetPeers.
func (s *stack) tear(resetPeers bool) {
	s.torn = true
	ends := s.ends
	s.ends = nil
	// Mark every end dead first, so that a connection between two ends of
	// this host sees both dead when its resets are sent.
	for _, e := range ends {
		e.slot = -1
		e.crashed = true
		e.done = true
		e.dialing = false
		if e.out != nil {
			e.out.clear()
			e.out.held = false
		}
	}
	for _, e := range ends {
		if e.peer == nil {
			continue
		}
		if resetPeers {
			e.sendReset()
		}
		// A delivery towards e scheduled on the crashed incarnation will
		// be dropped by the loop; schedule it afresh, as a world event.
		in := e.peer.out
		in.armed = false
		in.arm()
	}
	for _, pc := range s.packetPorts {
		pc.closed = true
	}
	s.listeners = nil
	s.packetPorts = nil
	s.clientPorts = nil
}

func (s *stack) register(e *end) {
	sim.Assert(e.slot == -1, "end %s registered twice", e.local)
	e.slot = len(s.ends)
	s.ends = append(s.ends, e)
}

func (s *stack) unregister(e *end) {
	if e.slot < 0 {
		return
	}
	last := len(s.ends) - 1
	s.ends[e.slot] = s.ends[last]
	s.ends[e.slot].slot = e.slot
	s.ends[last] = nil
	s.ends = s.ends[:last]
	e.slot = -1
	if e.ephemeral && s.clientPorts != nil {
		delete(s.clientPorts, e.localPort)
	}
}

// isLocalName reports whether a host part of an address names this host.
func (s *stack) isLocalName(host string) bool {
	switch host {
	case "", "0.0.0.0", "localhost", "127.0.0.1", "::", "[::]":
		return true
	}
	return host == s.host.name
}

// resolve finds the host an address names, or nil.
func (s *stack) resolve(host string) *Host {
	switch host {
	case "", "localhost", "127.0.0.1":
		return s.host
	}
	return s.nw().hostsByName[host]
}

// allocPort finds a free ephemeral port, in order from where the last
// search ended.
func (s *stack) allocPort(inUse func(port int) bool) (int, bool) {
	h := s.host
	const span = ephemeralPortLast - ephemeralPortFirst + 1
	for i := 0; i < span; i++ {
		port := h.ephemeralNext
		h.ephemeralNext++
		if h.ephemeralNext > ephemeralPortLast {
			h.ephemeralNext = ephemeralPortFirst
		}
		if !inUse(port) {
			return port, true
		}
	}
	return 0, false
}

func (s *stack) tcpPortInUse(port int) bool {
	return s.listeners[port] != nil || s.clientPorts[port]
}

func (s *stack) udpPortInUse(port int) bool { return s.packetPorts[port] != nil }

var errNoEphemeralPort = errors.New("no free ephemeral port")

// splitAddr splits "host:port"; the host may be empty.
func splitAddr(addr string) (string, int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("address %q has no port", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port < 0 || port > portMax {
		return "", 0, fmt.Errorf("address %q has a bad port", addr)
	}
	return addr[:i], port, nil
}

func hostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// Listen binds a port of this host and accepts connections on it.
func (s *stack) Listen(addr string, opts sim.ConnOptions, accept func(c sim.Conn) sim.ConnHandler) (sim.Listener, error) {
	sim.Assert(accept != nil, "listen %s with a nil accept", addr)
	if !s.live() {
		return nil, fmt.Errorf("listen %s: stack of a crashed incarnation: %w", addr, sim.ErrClosed)
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if !s.isLocalName(host) {
		return nil, fmt.Errorf("listen %s: %q is not an address of %s", addr, host, s.host.name)
	}
	if port == 0 {
		var ok bool
		if port, ok = s.allocPort(s.tcpPortInUse); !ok {
			return nil, fmt.Errorf("listen %s: %w", addr, errNoEphemeralPort)
		}
	}
	if s.tcpPortInUse(port) {
		return nil, fmt.Errorf("listen %s: %w", addr, sim.ErrAddrInUse)
	}
	l := &listener{stack: s, port: port, opts: opts, accept: accept, addr: hostPort(s.host.name, port)}
	s.listeners[port] = l
	return l, nil
}

// Dial starts a connection; see sim.Network.
func (s *stack) Dial(addr string, opts sim.ConnOptions, h sim.ConnHandler) sim.Conn {
	sim.Assert(h != nil, "dial %s with a nil handler", addr)
	nw := s.nw()
	nw.connIDLast++
	c := &conn{nw: nw, id: nw.connIDLast}
	e := &end{conn: c, stack: s, opts: opts, handler: h, slot: -1, dialing: true,
		local: hostPort(s.host.name, 0), remote: addr}
	c.client = e
	if !s.live() {
		// A crashed incarnation's code cannot run; if it does, its
		// connection goes nowhere and calls nothing back.
		e.done = true
		return e
	}
	nw.stats.ConnsDialed++
	hostName, port, err := splitAddr(addr)
	if err != nil {
		e.failLater(fmt.Errorf("dial: %w: %w", err, sim.ErrRefused))
		return e
	}
	server := s.resolve(hostName)
	if server == nil {
		e.failLater(fmt.Errorf("dial %s: no such host: %w", addr, sim.ErrRefused))
		return e
	}
	if len(s.ends) >= connsPerHostMax {
		e.failLater(fmt.Errorf("dial %s: %s holds %d connections: %w",
			addr, s.host.name, connsPerHostMax, sim.ErrRefused))
		return e
	}
	lport, ok := s.allocPort(s.tcpPortInUse)
	if !ok {
		e.failLater(fmt.Errorf("dial %s: %w: %w", addr, errNoEphemeralPort, sim.ErrRefused))
		return e
	}
	s.clientPorts[lport] = true
	e.localPort = lport
	e.ephemeral = true
	e.local = hostPort(s.host.name, lport)
	e.remote = hostPort(server.name, port)
	e.out = newPipe(e, server)
	e.out.held = true
	s.register(e)
	c.start(server, port)
	return e
}

// ListenPacket binds a datagram port of this host.
func (s *stack) ListenPacket(addr string, onPacket func(from string, p []byte)) (sim.PacketConn, error) {
	sim.Assert(onPacket != nil, "listen packet %s with a nil callback", addr)
	if !s.live() {
		return nil, fmt.Errorf("listen packet %s: stack of a crashed incarnation: %w", addr, sim.ErrClosed)
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("listen packet: %w", err)
	}
	if !s.isLocalName(host) {
		return nil, fmt.Errorf("listen packet %s: %q is not an address of %s", addr, host, s.host.name)
	}
	if port == 0 {
		var ok bool
		if port, ok = s.allocPort(s.udpPortInUse); !ok {
			return nil, fmt.Errorf("listen packet %s: %w", addr, errNoEphemeralPort)
		}
	}
	if s.udpPortInUse(port) {
		return nil, fmt.Errorf("listen packet %s: %w", addr, sim.ErrAddrInUse)
	}
	pc := &packetConn{stack: s, port: port, onPacket: onPacket, local: hostPort(s.host.name, port)}
	s.packetPorts[port] = pc
	return pc, nil
}

// listener is a bound TCP port.
type listener struct {
	stack  *stack
	port   int
	opts   sim.ConnOptions
	accept func(c sim.Conn) sim.ConnHandler
	addr   string
}

// Close unbinds the port; connections it accepted live on.
func (l *listener) Close() {
	if l.stack.listeners != nil && l.stack.listeners[l.port] == l {
		delete(l.stack.listeners, l.port)
	}
}

// Addr is "host:port" with the port actually bound.
func (l *listener) Addr() string { return l.addr }

// node is the sched node a stack's events run on.
func (s *stack) node() *sched.Node { return s.host.node }

// SendQueuedBytes sums the frames this incarnation's connection ends have
// queued and the network has not yet delivered; see sim.Network.
func (s *stack) SendQueuedBytes() int {
	total := 0
	for _, e := range s.ends {
		if e.out != nil {
			total += e.out.bytesQueued
		}
	}
	return total
}
