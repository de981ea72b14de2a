package simnet

import (
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// segKind is what a segment in a pipe carries.
type segKind uint8

const (
	segData segKind = iota
	segSynAck
	segFin
	segRst
)

// segment is one frame or control segment in flight.
type segment struct {
	data     []byte
	arriveAt time.Duration
	kind     segKind
}

// stallReason says what a stalled pipe waits for.
type stallReason uint8

const (
	stallNone stallReason = iota
	// stallLink: the link is blocked; Unblock resumes the pipe.
	stallLink
	// stallHostDown: the receiving host is down; the pipe retries.
	stallHostDown
)

// streamMergeMax bounds the chunks resegmentation merges into one.
const streamMergeMax = 8

// pipe is one direction of a connection: the FIFO of segments from src to
// dst. Segments are timed when queued, each arriving no earlier than the
// one ahead of it; one delivery event at a time is scheduled, for the head.
type pipe struct {
	nw  *Network
	src *end
	// dst is nil until the dialled server accepted (the pipe is held
	// until then).
	dst     *end
	dstHost *Host
	link    *link
	q       []segment
	head    int
	// bytesQueued counts the wire bytes of queued data frames, against
	// sim.MaxSendBufferBytes.
	bytesQueued int
	// lastArriveAt is the arrival of the last segment timed, which no
	// later segment may precede.
	lastArriveAt time.Duration
	// held: queued segments wait untimed for the handshake.
	held        bool
	stall       stallReason
	stallStart  time.Duration
	onStallList bool
	stallTimer  bool
	// armed: a delivery event is scheduled at armedAt, on armedNode's
	// incarnation armedInc (or as a world event when armedNode is nil).
	armed     bool
	armedAt   time.Duration
	armedNode *sched.Node
	armedInc  uint32
	sentSeq   uint64
	// The event callbacks, bound once so that a delivery allocates no
	// closure.
	nodeFn, worldFn, stallFn func()
}

func newPipe(src *end, dstHost *Host) *pipe {
	nw := src.nw()
	p := &pipe{nw: nw, src: src, dstHost: dstHost, link: nw.link(src.stack.host, dstHost)}
	p.nodeFn = p.onNodeEvent
	p.worldFn = p.onWorldEvent
	p.stallFn = p.onStallTimer
	return p
}

func (p *pipe) len() int       { return len(p.q) - p.head }
func (p *pipe) empty() bool    { return p.head == len(p.q) }
func (p *pipe) detail() uint64 { return p.src.conn.id<<1 | p.src.dirBit() }

func (p *pipe) wireBytes(s *segment) int {
	if s.kind != segData {
		return 0
	}
	return p.src.wireBytes(len(s.data))
}

// push queues a segment behind the others.
func (p *pipe) push(kind segKind, data []byte) {
	s := segment{data: data, kind: kind}
	if !p.held && p.stall == stallNone {
		s.arriveAt = p.time(p.wireBytes(&s))
	}
	if p.head > 0 && p.head == len(p.q) {
		p.q = p.q[:0]
		p.head = 0
	}
	p.q = append(p.q, s)
	p.bytesQueued += p.wireBytes(&s)
	p.arm()
}

// time draws a segment's arrival, keeping the pipe in order.
func (p *pipe) time(sizeBytes int) time.Duration {
	at := max(p.link.arrival(p.nw, sizeBytes), p.lastArriveAt)
	p.lastArriveAt = at
	return at
}

// retime gives every queued segment a fresh arrival from now, as after a
// handshake or a healed partition the segments are sent anew.
func (p *pipe) retime() {
	p.lastArriveAt = p.nw.loop.Now()
	for i := p.head; i < len(p.q); i++ {
		p.q[i].arriveAt = p.time(p.wireBytes(&p.q[i]))
	}
}

func (p *pipe) pop() segment {
	s := p.q[p.head]
	p.q[p.head] = segment{}
	p.head++
	p.bytesQueued -= p.wireBytes(&s)
	if p.head == len(p.q) {
		p.q = p.q[:0]
		p.head = 0
	} else if p.head >= 1024 && p.head*2 >= len(p.q) {
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q = p.q[:n]
		p.head = 0
	}
	return s
}

// clear drops every queued segment: the connection died.
func (p *pipe) clear() {
	for i := p.head; i < len(p.q); i++ {
		if p.q[i].kind == segData {
			p.nw.stats.FramesDiscarded++
		}
		p.q[i] = segment{}
	}
	p.q = p.q[:0]
	p.head = 0
	p.bytesQueued = 0
	p.stall = stallNone
}

// arm schedules the delivery of the head unless one is already due for it.
// The event runs on the receiving node when the receiving end lives there,
// so that the loop defers it while the node is paused; otherwise it is a
// world event that sorts out what a dead receiver means.
func (p *pipe) arm() {
	if p.held || p.stall != stallNone || p.empty() {
		return
	}
	at := p.q[p.head].arriveAt
	var node *sched.Node
	if p.dst.reachable() {
		node = p.dstHost.node
	}
	if p.armed && p.armedNode == node && p.armedAt <= at &&
		(node == nil || p.armedInc == node.Incarnation()) {
		return
	}
	p.schedule(at, node)
}

func (p *pipe) schedule(at time.Duration, node *sched.Node) {
	p.armed = true
	p.armedAt = at
	p.armedNode = node
	fn := p.worldFn
	if node != nil {
		p.armedInc = node.Incarnation()
		fn = p.nodeFn
	}
	p.nw.loop.At(at, node, sched.KindFrame, p.detail(), fn)
}

// superseded reports whether the running event is an old one that a later
// arm replaced.
func (p *pipe) superseded() bool {
	return p.armed && p.nw.loop.Now() < p.armedAt
}

func (p *pipe) onNodeEvent() {
	if p.superseded() {
		return
	}
	p.armed = false
	p.pump(true)
}

func (p *pipe) onWorldEvent() {
	if p.superseded() {
		return
	}
	p.armed = false
	p.pump(false)
}

// pump delivers every segment that has arrived, stopping at the first one
// that cannot be: a blocked link or a dead receiver stalls it and all
// behind it.
func (p *pipe) pump(onNode bool) {
	nw := p.nw
	now := nw.loop.Now()
	for !p.empty() && !p.held {
		s := &p.q[p.head]
		if s.arriveAt > now {
			break
		}
		if p.link.blocked {
			p.stallOn(stallLink)
			return
		}
		dst := p.dst
		if !dst.reachable() {
			p.undeliverable()
			return
		}
		if !onNode {
			// The receiver lives: hand over to its node's loop.
			p.stall = stallNone
			p.arm()
			return
		}
		p.stall = stallNone
		seg := p.pop()
		if seg.kind == segData && nw.cfg.ResegmentStreams && dst.opts.Framing == sim.FrameStream &&
			!dst.done && !dst.userClosed {
			dst.deliverStream(p.mergeStream(seg.data, now))
			continue
		}
		dst.arrive(p.src, seg)
	}
	p.arm()
}

// undeliverable handles a head whose receiving end is gone. A host back up
// in a new incarnation answers with an RST; a host that is down answers
// nothing, and the sender waits for its stall timeout.
func (p *pipe) undeliverable() {
	dst := p.dst
	if p.src.done {
		p.clear() // nobody is left to care
		return
	}
	if !dst.stack.torn && !dst.stack.live() {
		// The node moved to a new incarnation without Crash: treat the
		// old stack as lost to a power cut.
		dst.stack.tear(false)
	}
	if dst.stack.torn && p.dstHost.node.Up() {
		dst.sendReset()
		p.clear()
		return
	}
	p.stallOn(stallHostDown)
}

// stallOn stalls the head. A link stall waits for Unblock; a host-down
// stall polls. Either way the sender's stall timer runs.
func (p *pipe) stallOn(reason stallReason) {
	nw := p.nw
	now := nw.loop.Now()
	if p.stall == stallNone {
		p.stallStart = now
		nw.stats.Stalls++
		if !p.src.done && !p.stallTimer {
			p.armStallTimer(now + nw.cfg.StallTimeout)
		}
	}
	p.stall = reason
	switch reason {
	case stallLink:
		if !p.onStallList {
			p.onStallList = true
			p.link.stalled = append(p.link.stalled, p)
		}
	case stallHostDown:
		p.schedule(now+hostDownRetry, nil)
	}
}

// resume restarts a pipe stalled on its link, which was just unblocked.
func (p *pipe) resume() {
	p.onStallList = false
	if p.stall != stallLink {
		return
	}
	p.stall = stallNone
	p.retime()
	p.arm()
}

func (p *pipe) armStallTimer(at time.Duration) {
	p.stallTimer = true
	p.nw.loop.At(at, p.src.stack.node(), sched.KindClose, p.detail(), p.stallFn)
}

// onStallTimer resets the connection if the head has been stalled for the
// stall timeout, on the sending node.
func (p *pipe) onStallTimer() {
	p.stallTimer = false
	if p.stall == stallNone || p.src.done {
		return
	}
	deadline := p.stallStart + p.nw.cfg.StallTimeout
	if now := p.nw.loop.Now(); now < deadline {
		p.armStallTimer(deadline)
		return
	}
	p.nw.stats.StallTimeouts++
	p.src.abort(fmt.Errorf("send on %s to %s: stalled for %v: %w",
		p.src.local, p.src.remote, p.nw.cfg.StallTimeout, sim.ErrTimeout))
}

// mergeStream turns a data frame, and at random the frames right behind it
// that have arrived too, into one stream chunk, as TCP coalesces segments.
func (p *pipe) mergeStream(first []byte, now time.Duration) []byte {
	stats := &p.nw.stats
	stats.FramesDelivered++
	stats.BytesDelivered += uint64(len(first))
	chunk := streamBytes(p.src.opts.Framing, first)
	for i := 0; i < streamMergeMax && !p.empty(); i++ {
		next := &p.q[p.head]
		if next.kind != segData || next.arriveAt > now || p.nw.rng.IntN(2) == 0 {
			break
		}
		data := p.pop().data
		stats.FramesDelivered++
		stats.BytesDelivered += uint64(len(data))
		chunk = append(chunk[:len(chunk):len(chunk)], streamBytes(p.src.opts.Framing, data)...)
	}
	return chunk
}
