package simnet

import (
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// packetConn is a bound datagram port.
type packetConn struct {
	stack    *stack
	port     int
	onPacket func(from string, p []byte)
	local    string
	closed   bool
}

var _ sim.PacketConn = (*packetConn)(nil)

// LocalAddr is "host:port" of the bound port.
func (pc *packetConn) LocalAddr() string { return pc.local }

// Close unbinds the port; datagrams still travelling to it are dropped.
func (pc *packetConn) Close() {
	if pc.closed {
		return
	}
	pc.closed = true
	if pc.stack.packetPorts != nil && pc.stack.packetPorts[pc.port] == pc {
		delete(pc.stack.packetPorts, pc.port)
	}
}

// SendTo sends a copy of p. It fails only for a closed port, an oversized
// datagram or an address that names no host; loss is silent, as in UDP.
func (pc *packetConn) SendTo(addr string, p []byte) error {
	if pc.closed || !pc.stack.live() {
		return fmt.Errorf("send from %s to %s: %w", pc.local, addr, sim.ErrClosed)
	}
	if len(p) > datagramBytesMax {
		return fmt.Errorf("send from %s to %s: datagram of %d bytes, limit %d", pc.local, addr, len(p), datagramBytesMax)
	}
	hostName, port, err := splitAddr(addr)
	if err != nil {
		return fmt.Errorf("send from %s: %w", pc.local, err)
	}
	src := pc.stack.host
	dst := pc.stack.resolve(hostName)
	if dst == nil {
		return fmt.Errorf("send from %s to %s: no such host", pc.local, addr)
	}
	nw := src.nw
	nw.stats.DatagramsSent++
	trace := nw.loop.Trace()
	label := ""
	if trace.Recording() {
		label = fmt.Sprintf("%s->%s:%d datagram %dB", pc.local, dst.name, port, len(p))
	}
	detail := xxhash.Sum64(p) ^ uint64(pc.port)<<32 ^ uint64(port)
	trace.Note(nw.loop.Now(), src.node, sched.KindSend, detail, label)

	l := nw.link(src, dst)
	if l.blocked || !dst.node.Up() {
		nw.stats.DatagramsDropped++
		return nil
	}
	if l.cfg.DropRate > 0 && nw.rng.Float64() < l.cfg.DropRate {
		nw.stats.DatagramsDropped++
		return nil
	}
	copies := 1
	if l.cfg.DupRate > 0 && nw.rng.Float64() < l.cfg.DupRate {
		copies = 2
		nw.stats.DatagramsDuplicated++
	}
	for i := 0; i < copies; i++ {
		if dst.inbox.inFlight >= datagramsInFlightMax {
			nw.stats.DatagramsDropped++
			continue
		}
		// As with a real socket the caller keeps p; each delivery owns
		// its own copy.
		d := datagram{from: src, fromAddr: pc.local, port: port, data: append([]byte(nil), p...)}
		// Each copy draws its own latency, so datagrams reorder.
		dst.inbox.schedule(l.arrival(nw, len(p)), d)
	}
	return nil
}

// datagram is one datagram travelling to a host.
type datagram struct {
	from     *Host
	fromAddr string
	port     int
	data     []byte
}

// datagramInbox counts the datagrams travelling to one host, to bound
// them; each travels as its own event of the receiving node, so a crash
// drops those of the crashed incarnation.
type datagramInbox struct {
	host     *Host
	inFlight int
	sent     uint64
}

func (in *datagramInbox) schedule(at time.Duration, d datagram) {
	in.inFlight++
	in.sent++
	in.host.nw.loop.At(at, in.host.node, sched.KindPacket, in.sent, func() {
		in.inFlight--
		in.deliver(d)
	})
}

// clear forgets the datagrams in flight: their events belong to an
// incarnation that crashed and will never run.
func (in *datagramInbox) clear() { in.inFlight = 0 }

// deliver hands a datagram that arrived to its port, on the host's node.
func (in *datagramInbox) deliver(d datagram) {
	nw := in.host.nw
	s := in.host.stack
	var pc *packetConn
	if s != nil && s.live() && !nw.link(d.from, in.host).blocked {
		pc = s.packetPorts[d.port]
	}
	if pc == nil {
		nw.stats.DatagramsDropped++
		return
	}
	nw.stats.DatagramsDelivered++
	pc.onPacket(d.fromAddr, d.data)
}
