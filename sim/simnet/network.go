// Package simnet is the simulated network: it implements the sim.Network
// seam for every node of a simulated world over the event loop in
// sim/sched.
//
// It models TCP rather than a lossy mailbox. Inside a live connection frames
// arrive in order or not at all: each direction is a FIFO whose head stalls
// while its path is blocked and resumes, in order, when the path heals. A
// frame stalled for Config.StallTimeout resets the connection, and a crash
// resets (or, on power loss, silently orphans) every connection of the
// crashed node. Loss and duplication therefore appear only where
// applications retry; datagrams (ListenPacket) alone are lost, duplicated
// and reordered by the network itself.
//
// Every random draw (latency, datagram loss) comes from the network's own
// stream, so an actor drawing more random numbers never changes what the
// network does.
package simnet

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// Defaults for a zero Config.
const (
	// ConnectTimeoutDefault is how long a dial waits for its SYN to get
	// through before failing with sim.ErrTimeout.
	ConnectTimeoutDefault = 3 * time.Second
	// StallTimeoutDefault is how long a frame may stall before its
	// connection is reset.
	StallTimeoutDefault = 15 * time.Second
)

// Bounds. Past them an operation fails with an error; they exist so that a
// runaway actor exhausts a clear limit instead of the simulator's memory.
const (
	hostsMax = 1 << 10
	// connsPerHostMax bounds the connection ends one incarnation of a host
	// holds, dialled and accepted together.
	connsPerHostMax = 1 << 16
	// framesQueuedMax bounds the frames queued on one connection end, next
	// to sim.MaxSendBufferBytes which bounds their bytes.
	framesQueuedMax = 1 << 20
	// Ephemeral ports are Linux's default range, handed out in order.
	ephemeralPortFirst = 32768
	ephemeralPortLast  = 60999
	portMax            = 65535
	// datagramBytesMax is the largest UDP payload over IPv4.
	datagramBytesMax = 65507
	// datagramsInFlightMax bounds the datagrams travelling towards one host;
	// past it they drop, as a full socket receive buffer drops them.
	datagramsInFlightMax = 1 << 14
)

// Retransmission. A SYN that gets no answer is sent again after
// synRetransmitFirst, then after twice that, as Linux does; a frame whose
// receiving host is down is retried every hostDownRetry until the host is
// back or the stall times out.
const (
	synRetransmitFirst = time.Second
	hostDownRetry      = 500 * time.Millisecond
)

// loopbackDefault is the link a host uses to reach itself when
// Config.Loopback is zero.
var loopbackDefault = LinkConfig{Latency: sched.Latency{Base: 20 * time.Microsecond}}

// LinkConfig describes one direction of the path between two hosts.
type LinkConfig struct {
	// Latency is the one-way delay of each frame or datagram.
	Latency sched.Latency
	// BandwidthBytesPerSec serialises frames on the directed link: all
	// connections from one host to another share it. Zero is unlimited.
	BandwidthBytesPerSec int64
	// DropRate and DupRate are the probabilities that a datagram is lost
	// or delivered twice. Connections never lose or duplicate frames.
	DropRate, DupRate float64
}

func (lc LinkConfig) validate() {
	sim.Assert(lc.Latency.Base >= 0 && lc.Latency.Jitter >= 0,
		"link latency %+v is negative", lc.Latency)
	sim.Assert(lc.BandwidthBytesPerSec >= 0, "link bandwidth %d is negative", lc.BandwidthBytesPerSec)
	sim.Assert(lc.DropRate >= 0 && lc.DropRate <= 1, "drop rate %v outside [0, 1]", lc.DropRate)
	sim.Assert(lc.DupRate >= 0 && lc.DupRate <= 1, "dup rate %v outside [0, 1]", lc.DupRate)
}

// Config is the network's shape.
type Config struct {
	// Link is the default for every directed pair of distinct hosts.
	Link LinkConfig
	// Loopback is the link from a host to itself; zero means 20µs and
	// unlimited bandwidth.
	Loopback LinkConfig
	// ConnectTimeout fails a dial whose SYN cannot get through
	// (host down, path blocked) with sim.ErrTimeout. Zero means
	// ConnectTimeoutDefault.
	ConnectTimeout time.Duration
	// StallTimeout resets a connection whose head frame has been stalled
	// this long (partition, peer powered off): the sending end gets
	// OnClose(sim.ErrTimeout) and the peer an RST. Zero means
	// StallTimeoutDefault.
	StallTimeout time.Duration
	// ResegmentStreams makes the network split and merge the chunks of
	// FrameStream connections at random, as TCP segments a byte stream,
	// so that a reader assuming one chunk per write fails.
	ResegmentStreams bool
}

// Stats counts what the network carried. Frames are the data frames of
// connections; control segments (SYN, FIN, RST) are not frames.
type Stats struct {
	ConnsDialed, ConnsAccepted, ConnsRefused, ConnsTimedOut uint64
	FramesSent, BytesSent                                   uint64
	FramesDelivered, BytesDelivered                         uint64
	// FramesDiscarded arrived at a closed end or died with their
	// connection.
	FramesDiscarded uint64
	// Stalls counts heads of connection directions that stalled;
	// StallTimeouts those that stalled long enough to reset.
	Stalls, StallTimeouts uint64
	// Resets counts RST segments sent.
	Resets                                uint64
	DatagramsSent, DatagramsDelivered     uint64
	DatagramsDropped, DatagramsDuplicated uint64
}

// Network is the simulated network of one world.
type Network struct {
	loop        *sched.Loop
	rng         *rand.Rand
	cfg         Config
	hosts       []*Host
	hostsByName map[string]*Host
	// links[from][to] is the directed link between two hosts, by host id.
	links      [][]*link
	connIDLast uint64
	stats      Stats
}

// New returns a network without hosts. rng must be the network's own
// stream (sched.NewRand(seed, "net", 0)), shared with nothing else.
func New(loop *sched.Loop, rng *rand.Rand, cfg Config) *Network {
	sim.Assert(loop != nil && rng != nil, "simnet.New needs a loop and a rand")
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeoutDefault
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = StallTimeoutDefault
	}
	if cfg.Loopback == (LinkConfig{}) {
		cfg.Loopback = loopbackDefault
	}
	sim.Assert(cfg.ConnectTimeout > 0 && cfg.StallTimeout > 0,
		"timeouts must be positive: connect %v stall %v", cfg.ConnectTimeout, cfg.StallTimeout)
	cfg.Link.validate()
	cfg.Loopback.validate()
	return &Network{
		loop:        loop,
		rng:         rng,
		cfg:         cfg,
		hostsByName: make(map[string]*Host),
	}
}

// Config is the configuration the network runs with, defaults filled in.
func (nw *Network) Config() Config { return nw.cfg }

// Stats returns the counters so far.
func (nw *Network) Stats() Stats { return nw.stats }

// AddHost attaches a node to the network under the node's name.
func (nw *Network) AddHost(node *sched.Node) *Host {
	sim.Assert(node != nil, "AddHost of nil node")
	sim.Assert(nw.hostsByName[node.Name] == nil, "host %q added twice", node.Name)
	sim.Assert(len(nw.hosts) < hostsMax, "more than %d hosts", hostsMax)
	sim.Assert(validHostName(node.Name), "host name %q must be non-empty without ':'", node.Name)
	h := &Host{
		nw:            nw,
		id:            len(nw.hosts),
		name:          node.Name,
		node:          node,
		ephemeralNext: ephemeralPortFirst,
	}
	h.inbox.host = h
	nw.hosts = append(nw.hosts, h)
	nw.hostsByName[h.name] = h
	for from := range nw.links {
		nw.links[from] = append(nw.links[from], &link{cfg: nw.cfg.Link})
	}
	row := make([]*link, len(nw.hosts))
	for to := range row {
		row[to] = &link{cfg: nw.cfg.Link}
	}
	row[h.id].cfg = nw.cfg.Loopback
	nw.links = append(nw.links, row)
	return h
}

func validHostName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == ':' {
			return false
		}
	}
	return true
}

// Host returns the host of that name, or nil.
func (nw *Network) Host(name string) *Host { return nw.hostsByName[name] }

func (nw *Network) mustHost(name string) *Host {
	h := nw.hostsByName[name]
	sim.Assert(h != nil, "unknown host %q", name)
	return h
}

func (nw *Network) link(from, to *Host) *link { return nw.links[from.id][to.id] }

// SetLink configures the directed link from one host to another.
func (nw *Network) SetLink(from, to string, lc LinkConfig) {
	lc.validate()
	nw.link(nw.mustHost(from), nw.mustHost(to)).cfg = lc
}

// Block cuts the direction from one host to another: frames stall,
// datagrams drop, SYNs go unanswered.
func (nw *Network) Block(from, to string) {
	nw.link(nw.mustHost(from), nw.mustHost(to)).blocked = true
}

// Unblock restores the direction; frames stalled on it resume in order.
func (nw *Network) Unblock(from, to string) {
	nw.link(nw.mustHost(from), nw.mustHost(to)).unblock(nw)
}

// Blocked reports whether the direction from one host to another is cut.
func (nw *Network) Blocked(from, to string) bool {
	return nw.link(nw.mustHost(from), nw.mustHost(to)).blocked
}

// Partition blocks both directions between every two hosts in different
// groups. Hosts named in no group keep their links as they are, and links
// already blocked stay blocked: partitions add up until healed.
func (nw *Network) Partition(groups ...[]string) {
	group := make([]int, len(nw.hosts))
	for i := range group {
		group[i] = -1
	}
	for g, names := range groups {
		for _, name := range names {
			h := nw.mustHost(name)
			sim.Assert(group[h.id] == -1, "host %q in two partition groups", name)
			group[h.id] = g
		}
	}
	for from := range nw.hosts {
		for to := range nw.hosts {
			if group[from] >= 0 && group[to] >= 0 && group[from] != group[to] {
				nw.links[from][to].blocked = true
			}
		}
	}
}

// HealAll unblocks every link, in host order.
func (nw *Network) HealAll() {
	for from := range nw.links {
		for _, l := range nw.links[from] {
			l.unblock(nw)
		}
	}
}

// Crash makes a host's process vanish: its connections, listeners and
// packet ports are gone, frames it sent that have not yet arrived are lost
// with it, and its handlers get no more callbacks. With
// resetPeers (a killed process: the kernel sends RST) every peer end gets
// OnClose(sim.ErrReset) once the RST, travelling like a frame, reaches it.
// Without (power loss) peers learn only when they send: by their stall
// timeout while the host is down, or by an RST from its next incarnation.
//
// Call it together with the node's sched Crash; it does not crash the node.
func (nw *Network) Crash(name string, resetPeers bool) {
	h := nw.mustHost(name)
	h.inbox.clear()
	if h.stack != nil && !h.stack.torn {
		h.stack.tear(resetPeers)
	}
}

// link is one direction between two hosts.
type link struct {
	cfg LinkConfig
	// txFreeAt is when the link's serialiser finishes what it has.
	txFreeAt time.Duration
	blocked  bool
	// stalled are the connection directions waiting for this link to be
	// unblocked, in the order they stalled.
	stalled []*pipe
}

// transmit serialises sizeBytes onto the link from now and returns when the
// last byte has left.
func (l *link) transmit(now time.Duration, sizeBytes int) time.Duration {
	bw := l.cfg.BandwidthBytesPerSec
	if bw == 0 || sizeBytes == 0 {
		return now
	}
	start := max(now, l.txFreeAt)
	l.txFreeAt = start + time.Duration(int64(sizeBytes)*int64(time.Second)/bw)
	return l.txFreeAt
}

// arrival is when a segment of sizeBytes sent now reaches the far end.
func (l *link) arrival(nw *Network, sizeBytes int) time.Duration {
	now := nw.loop.Now()
	return l.transmit(now, sizeBytes) + l.cfg.Latency.Sample(nw.rng)
}

func (l *link) unblock(nw *Network) {
	if !l.blocked {
		return
	}
	l.blocked = false
	stalled := l.stalled
	l.stalled = nil
	for _, p := range stalled {
		p.resume()
	}
}

// Host is one node's attachment to the network.
type Host struct {
	nw   *Network
	id   int
	name string
	node *sched.Node
	// stack is the network stack of the node's current (or last)
	// incarnation.
	stack *stack
	// ephemeralNext is where the search for a free ephemeral port starts;
	// it survives restarts so that a new incarnation does not reuse the
	// ports its predecessor's peers may still know.
	ephemeralNext int
	inbox         datagramInbox
}

// Name is the host name other hosts dial.
func (h *Host) Name() string { return h.name }

// Net is the network stack of the node's current incarnation. The first
// call after a restart returns a fresh stack; if the previous incarnation's
// stack was not torn down by Crash, it is torn down now as by a power loss.
func (h *Host) Net() sim.Network {
	inc := h.node.Incarnation()
	if h.stack != nil && !h.stack.torn && h.stack.inc == inc {
		return h.stack
	}
	if h.stack != nil && !h.stack.torn {
		h.stack.tear(false)
	}
	h.stack = newStack(h, inc)
	return h.stack
}

// String names the host in messages.
func (h *Host) String() string { return fmt.Sprintf("host %s", h.name) }
