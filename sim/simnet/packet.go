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
		if len(dst.inbox.items) >= datagramsInFlightMax {
			nw.stats.DatagramsDropped++
			continue
		}
		// As with a real socket the caller keeps p; each delivery owns
		// its own copy.
		data := append([]byte(nil), p...)
		// Each copy draws its own latency, so datagrams reorder.
		dst.inbox.push(datagram{at: l.arrival(nw, len(p)), from: src, fromAddr: pc.local, port: port, data: data})
	}
	dst.inbox.arm()
	return nil
}

// datagram is one datagram travelling to a host.
type datagram struct {
	at       time.Duration
	seq      uint64
	from     *Host
	fromAddr string
	port     int
	data     []byte
}

func (a *datagram) before(b *datagram) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// datagramInbox holds the datagrams travelling to one host in a min-heap
// on arrival, with one delivery event scheduled for the earliest, so that
// a datagram costs no closure.
type datagramInbox struct {
	host     *Host
	items    []datagram
	seq      uint64
	armed    bool
	armedAt  time.Duration
	armedInc uint32
	fn       func()
}

func (in *datagramInbox) push(d datagram) {
	in.seq++
	d.seq = in.seq
	in.items = append(in.items, d)
	items := in.items
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !items[i].before(&items[parent]) {
			break
		}
		items[i], items[parent] = items[parent], items[i]
		i = parent
	}
}

func (in *datagramInbox) pop() datagram {
	items := in.items
	top := items[0]
	last := len(items) - 1
	items[0] = items[last]
	items[last] = datagram{}
	items = items[:last]
	in.items = items
	i := 0
	for {
		least := 2*i + 1
		if least >= last {
			break
		}
		if right := least + 1; right < last && items[right].before(&items[least]) {
			least = right
		}
		if !items[least].before(&items[i]) {
			break
		}
		items[i], items[least] = items[least], items[i]
		i = least
	}
	return top
}

func (in *datagramInbox) clear() {
	clear(in.items)
	in.items = in.items[:0]
	in.armed = false
}

func (in *datagramInbox) arm() {
	if len(in.items) == 0 {
		return
	}
	node := in.host.node
	at := in.items[0].at
	if in.armed && in.armedAt <= at && in.armedInc == node.Incarnation() {
		return
	}
	in.armed = true
	in.armedAt = at
	in.armedInc = node.Incarnation()
	in.host.nw.loop.At(at, node, sched.KindPacket, in.items[0].seq, in.fn)
}

// onEvent delivers every datagram that has arrived, on the host's node.
func (in *datagramInbox) onEvent() {
	nw := in.host.nw
	now := nw.loop.Now()
	if in.armed && now < in.armedAt {
		return // superseded by an earlier arm
	}
	in.armed = false
	for len(in.items) > 0 && in.items[0].at <= now {
		d := in.pop()
		s := in.host.stack
		var pc *packetConn
		if s != nil && s.live() && !nw.link(d.from, in.host).blocked {
			pc = s.packetPorts[d.port]
		}
		if pc == nil {
			nw.stats.DatagramsDropped++
			continue
		}
		nw.stats.DatagramsDelivered++
		pc.onPacket(d.fromAddr, d.data)
	}
	in.arm()
}
