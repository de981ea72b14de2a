package simnet

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// conn is one connection: its two ends and the handshake that joins them.
type conn struct {
	nw     *Network
	id     uint64
	client *end
	// server is nil until a listener accepted the SYN.
	server     *end
	serverHost *Host
	serverPort int
	// deadline is when an unanswered dial gives up; synRTO the wait before
	// the next SYN.
	deadline time.Duration
	synRTO   time.Duration
	synFn    func()
}

// start sends the first SYN and arms the connect timeout.
func (c *conn) start(server *Host, port int) {
	nw := c.nw
	c.serverHost = server
	c.serverPort = port
	c.deadline = nw.loop.Now() + nw.cfg.ConnectTimeout
	c.synRTO = synRetransmitFirst
	c.synFn = c.onSyn
	c.sendSyn()
	nw.loop.At(c.deadline, c.client.stack.node(), sched.KindDial, c.id, c.onConnectTimeout)
}

// awaitingSyn reports whether the dial still waits for a listener.
func (c *conn) awaitingSyn() bool {
	return c.client.dialing && !c.client.done && c.server == nil
}

func (c *conn) sendSyn() {
	nw := c.nw
	now := nw.loop.Now()
	l := nw.link(c.client.stack.host, c.serverHost)
	nw.loop.At(l.arrival(nw, 0), c.serverHost.node, sched.KindAccept, c.id, c.synFn)
	retryAt := now + c.synRTO
	c.synRTO *= 2
	if retryAt < c.deadline {
		nw.loop.At(retryAt, c.client.stack.node(), sched.KindDial, c.id, c.onSynRetry)
	}
}

func (c *conn) onSynRetry() {
	if c.awaitingSyn() {
		c.sendSyn()
	}
}

func (c *conn) onConnectTimeout() {
	e := c.client
	if !e.dialing || e.done {
		return
	}
	c.nw.stats.ConnsTimedOut++
	e.abort(fmt.Errorf("dial %s: no answer in %v: %w", e.remote, c.nw.cfg.ConnectTimeout, sim.ErrTimeout))
}

// onSyn runs on the server node when a SYN arrives.
func (c *conn) onSyn() {
	nw := c.nw
	client := c.client
	if !c.awaitingSyn() {
		return // answered already, or the dial gave up
	}
	if nw.link(client.stack.host, c.serverHost).blocked {
		return // lost; the client retransmits
	}
	s := c.serverHost.stack
	if s == nil || !s.live() {
		c.refuse("no process")
		return
	}
	l := s.listeners[c.serverPort]
	if l == nil {
		c.refuse("nothing listening")
		return
	}
	if len(s.ends) >= connsPerHostMax {
		c.refuse(fmt.Sprintf("%s holds %d connections", s.host.name, connsPerHostMax))
		return
	}
	se := &end{conn: c, stack: s, isServer: true, opts: l.opts, slot: -1,
		local: l.addr, remote: client.local}
	se.out = newPipe(se, client.stack.host)
	se.out.dst = client
	se.peer = client
	client.peer = se
	client.out.dst = se
	c.server = se
	s.register(se)
	nw.stats.ConnsAccepted++
	// The SYN-ACK leads the server's direction, so that whatever the
	// server sends from accept or OnOpen reaches the client after it.
	se.out.push(segSynAck, nil)
	h := l.accept(se)
	sim.Assert(h != nil, "accept on %s returned a nil handler", l.addr)
	se.handler = h
	if !se.done && !se.userClosed {
		h.OnOpen(se)
	}
}

// refuse answers a SYN with an RST, which the client sees as ErrRefused
// one trip later unless the way back is blocked.
func (c *conn) refuse(why string) {
	nw := c.nw
	back := nw.link(c.serverHost, c.client.stack.host)
	err := fmt.Errorf("dial %s: %s: %w", c.client.remote, why, sim.ErrRefused)
	nw.loop.At(back.arrival(nw, 0), c.client.stack.node(), sched.KindDial, c.id, func() {
		if !c.awaitingSyn() || back.blocked {
			return
		}
		nw.stats.ConnsRefused++
		c.client.abort(err)
	})
}

// end is one end of a connection; it is the sim.Conn handed to the
// process.
type end struct {
	conn     *conn
	stack    *stack
	isServer bool
	opts     sim.ConnOptions
	handler  sim.ConnHandler
	local    string
	remote   string
	// out carries this end's frames to the peer; nil only for a dial that
	// failed before it started.
	out *pipe
	// peer is the other end, known once a listener accepted.
	peer      *end
	localPort int
	ephemeral bool
	// slot is the index in stack.ends, -1 once released.
	slot int
	// dialing: a dialled end before the SYN-ACK arrived.
	dialing bool
	// userClosed: Close was called; no more callbacks.
	userClosed bool
	// done: the end has finished: it sends nothing more and calls nothing
	// back.
	done bool
	// crashed: the end died with its incarnation.
	crashed bool
	// rstSent: this end has sent its one RST.
	rstSent bool
	// rbuf gathers stream bytes a FrameLength32 end cuts into frames.
	rbuf []byte
}

var _ sim.Conn = (*end)(nil)

// LocalAddr is "host:port" of this end.
func (e *end) LocalAddr() string { return e.local }

// RemoteAddr is "host:port" of the peer.
func (e *end) RemoteAddr() string { return e.remote }

func (e *end) nw() *Network { return e.conn.nw }

// dirBit tells a connection's two directions apart in trace details.
func (e *end) dirBit() uint64 {
	if e.isServer {
		return 1
	}
	return 0
}

// wireBytes is what a frame of n bytes occupies on the wire.
func (e *end) wireBytes(n int) int {
	if e.opts.Framing == sim.FrameLength32 {
		return n + 4
	}
	return n
}

// Send queues a frame; see sim.Conn.
func (e *end) Send(frame []byte) error {
	if e.done || e.userClosed {
		return fmt.Errorf("send on %s to %s: %w", e.local, e.remote, sim.ErrClosed)
	}
	if e.opts.Framing == sim.FrameStream && len(frame) == 0 {
		return nil // an empty write sends nothing on a stream
	}
	nw := e.nw()
	p := e.out
	size := e.wireBytes(len(frame))
	if p.bytesQueued+size > e.opts.SendQueueMax() || p.len() >= framesQueuedMax {
		err := fmt.Errorf("send on %s to %s: %d bytes in %d frames queued: %w",
			e.local, e.remote, p.bytesQueued, p.len(), sim.ErrSendBufferFull)
		e.abortLater(err)
		return err
	}
	p.sentSeq++
	nw.stats.FramesSent++
	nw.stats.BytesSent += uint64(len(frame))
	trace := nw.loop.Trace()
	detail := xxhash.Sum64(frame) ^ (e.conn.id<<1|e.dirBit())*0x9e3779b97f4a7c15
	label := ""
	if trace.Recording() {
		label = fmt.Sprintf("%s->%s #%d %dB", e.local, e.remote, p.sentSeq, len(frame))
	}
	trace.Note(nw.loop.Now(), e.stack.node(), sched.KindSend, detail, label)
	p.push(segData, frame)
	return nil
}

// Close ends the connection after the queued frames; see sim.Conn.
func (e *end) Close() {
	if e.userClosed {
		return
	}
	e.userClosed = true
	if e.done {
		return
	}
	e.out.push(segFin, nil)
}

// release forgets the end once it has finished, freeing its slot and port.
func (e *end) release() {
	e.done = true
	e.dialing = false
	if !e.stack.torn {
		e.stack.unregister(e)
	}
}

// sendReset queues the end's one RST. Callers drop what the end still had
// queued first, as a reset connection discards its buffers.
func (e *end) sendReset() {
	if e.rstSent || e.peer == nil {
		return
	}
	e.rstSent = true
	e.nw().stats.Resets++
	e.out.held = false
	e.out.push(segRst, nil)
}

// abort ends the connection from this side on an error: queued frames are
// dropped, the peer gets an RST, the handler OnClose(err).
func (e *end) abort(err error) {
	if !e.tearDown() {
		return
	}
	if !e.userClosed && e.handler != nil {
		e.handler.OnClose(e, err)
	}
}

// abortLater aborts now but reports it on the node's loop after the
// current callback, because the caller is inside Send.
func (e *end) abortLater(err error) {
	if e.tearDown() {
		e.notifyLater(err)
	}
}

// tearDown drops the queued frames, resets the peer and releases this
// end; it reports false if the end was already done.
func (e *end) tearDown() bool {
	if e.done {
		return false
	}
	e.out.clear()
	e.out.held = false
	e.sendReset()
	e.release()
	return true
}

// failLater ends a dial that never started, reporting it on the node's loop.
func (e *end) failLater(err error) {
	e.done = true
	e.dialing = false
	e.notifyLater(err)
}

func (e *end) notifyLater(err error) {
	e.nw().loop.After(0, e.stack.node(), sched.KindClose, e.conn.id, func() {
		// A Close in the meantime means the handler wants no callback.
		if !e.userClosed && e.handler != nil {
			e.handler.OnClose(e, err)
		}
	})
}

// finish ends the connection because the peer did (FIN or RST).
func (e *end) finish(err error) {
	if e.done {
		return
	}
	e.out.clear()
	e.release()
	if !e.userClosed && e.handler != nil {
		e.handler.OnClose(e, err)
	}
}

// reachable reports whether segments for the end can be handed to its
// node: its incarnation lives and the node is up.
func (e *end) reachable() bool {
	return !e.crashed && e.stack.live() && e.stack.host.node.Up()
}

// arrive handles one segment reaching this end, on its node.
func (e *end) arrive(from *end, seg segment) {
	nw := e.nw()
	switch seg.kind {
	case segData:
		if e.done || e.userClosed {
			nw.stats.FramesDiscarded++
			return
		}
		nw.stats.FramesDelivered++
		nw.stats.BytesDelivered += uint64(len(seg.data))
		e.receive(from.opts.Framing, seg.data)
	case segFin:
		if !from.done {
			from.release() // its close has completed
		}
		e.finish(nil)
	case segRst:
		e.finish(fmt.Errorf("%s from %s: %w", e.local, e.remote, sim.ErrReset))
	case segSynAck:
		if !e.dialing || e.done {
			return // the dial gave up and has sent an RST
		}
		e.dialing = false
		e.out.held = false
		e.out.retime()
		e.out.arm()
		if !e.userClosed {
			e.handler.OnOpen(e)
		}
	default:
		sim.Assert(false, "segment kind %d", seg.kind)
	}
}

// receive hands data to the handler, cut as this end's framing says.
func (e *end) receive(senderFraming sim.Framing, data []byte) {
	mine := e.opts.Framing
	switch {
	case mine == sim.FrameLength32 && senderFraming == sim.FrameLength32:
		if len(data) > e.opts.MaxFrame() {
			e.tooLarge(len(data))
			return
		}
		e.handler.OnFrame(e, data)
	case mine == sim.FrameStream:
		e.deliverStream(streamBytes(senderFraming, data))
	default: // a FrameLength32 end reading a peer's raw stream
		e.rbuf = append(e.rbuf, data...)
		e.cutFrames()
	}
}

// streamBytes is what a segment's data looks like on the wire.
func streamBytes(senderFraming sim.Framing, data []byte) []byte {
	if senderFraming == sim.FrameStream {
		return data
	}
	wire := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(wire, uint32(len(data)))
	copy(wire[4:], data)
	return wire
}

// cutFrames delivers every complete length-prefixed frame in rbuf.
func (e *end) cutFrames() {
	for len(e.rbuf) >= 4 && !e.done && !e.userClosed {
		n := int(int32(binary.BigEndian.Uint32(e.rbuf)))
		if n < 0 || n > e.opts.MaxFrame() {
			e.tooLarge(n)
			return
		}
		if len(e.rbuf) < 4+n {
			return
		}
		// The frame keeps its bytes; later appends to rbuf land after
		// them, so handing out a sub-slice is safe.
		frame := e.rbuf[4 : 4+n : 4+n]
		e.rbuf = e.rbuf[4+n:]
		e.handler.OnFrame(e, frame)
	}
}

func (e *end) tooLarge(n int) {
	e.abort(fmt.Errorf("receive on %s from %s: frame of %d bytes, limit %d: %w",
		e.local, e.remote, n, e.opts.MaxFrame(), sim.ErrFrameTooLarge))
}

// deliverStream hands a stream chunk over, split in two at random when
// the network resegments streams.
func (e *end) deliverStream(chunk []byte) {
	nw := e.nw()
	if nw.cfg.ResegmentStreams && len(chunk) > 1 && nw.rng.IntN(4) == 0 {
		cut := 1 + nw.rng.IntN(len(chunk)-1)
		e.handler.OnFrame(e, chunk[:cut:cut])
		if e.done || e.userClosed {
			return
		}
		chunk = chunk[cut:]
	}
	e.handler.OnFrame(e, chunk)
}
