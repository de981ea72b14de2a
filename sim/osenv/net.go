package osenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/sluice-sim/sluice/sim"
)

// Network is a node's TCP and UDP sockets.
type Network struct {
	node *Node
	mu   sync.Mutex
	// open holds every listener, connection and packet port, so that
	// stopping the node closes them all; once stopped, nothing new is
	// tracked and a socket that arrives late is closed at once.
	open    map[shutter]struct{}
	stopped bool
	// sendQueued counts the bytes queued for sending on every connection
	// of the node, against sendQueuedMax.
	sendQueued    atomic.Int64
	sendQueuedMax int64
}

// shutter is anything the node closes when it stops.
type shutter interface{ shut() }

// dialTimeout bounds a connection attempt, as the simulator's
// ConnectTimeout does.
const dialTimeout = 10 * time.Second

// track registers s to be closed when the node stops; it reports false
// when the node already stopped, and the caller must close s itself.
func (nw *Network) track(s shutter) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.stopped {
		return false
	}
	if nw.open == nil {
		nw.open = make(map[shutter]struct{})
	}
	nw.open[s] = struct{}{}
	return true
}

func (nw *Network) untrack(s shutter) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.open, s)
}

func (nw *Network) closeAll() {
	nw.mu.Lock()
	open := nw.open
	nw.open = nil
	nw.stopped = true
	nw.mu.Unlock()
	for s := range open {
		s.shut()
	}
}

// SendQueuedBytes implements sim.Network.
func (nw *Network) SendQueuedBytes() int { return int(nw.sendQueued.Load()) }

// reserveSend counts n more queued bytes unless that passes the node's
// bound.
func (nw *Network) reserveSend(n int) bool {
	if nw.sendQueued.Add(int64(n)) > nw.sendQueuedMax {
		nw.sendQueued.Add(-int64(n))
		return false
	}
	return true
}

func (nw *Network) releaseSend(n int) {
	if n > 0 {
		nw.sendQueued.Add(-int64(n))
	}
}

// Listen implements sim.Network.
func (nw *Network) Listen(addr string, opts sim.ConnOptions, accept func(sim.Conn) sim.ConnHandler) (sim.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen %s: %w: %w", addr, sim.ErrAddrInUse, err)
		}
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	l := &listener{ln: ln, nw: nw, frames: newFrameBudget(opts.QueuedFramesMax())}
	if !nw.track(l) {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, sim.ErrClosed)
	}
	go l.acceptLoop(opts, accept)
	return l, nil
}

type listener struct {
	ln net.Listener
	nw *Network
	// frames is the budget of received frames shared by the listener's
	// connections.
	frames *frameBudget
}

func (l *listener) Addr() string { return l.ln.Addr().String() }

func (l *listener) Close() {
	l.nw.untrack(l)
	l.ln.Close()
}

func (l *listener) shut() { l.ln.Close() }

// acceptErrorPause is how long the accepter rests after an error such as
// EMFILE, so that it does not spin while descriptors are short.
const acceptErrorPause = 10 * time.Millisecond

func (l *listener) acceptLoop(opts sim.ConnOptions, accept func(sim.Conn) sim.ConnHandler) {
	errLog := logLimiter{every: time.Second}
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if line, ok := errLog.note(time.Now()); ok {
				l.nw.node.logger.Logf("accept on %s: %v%s", l.Addr(), err, line)
			}
			time.Sleep(acceptErrorPause)
			continue
		}
		c := newConn(l.nw, nc, opts, l.frames)
		if !l.nw.track(c) {
			nc.Close() // the node stopped while this one was accepted
			return
		}
		go c.writeLoop()
		l.nw.node.Post(func() {
			c.handler = accept(c)
			c.established()
		})
	}
}

// logLimiter lets one line through per period and counts the others, so
// that an error repeating thousands of times a second (EMFILE on accept)
// neither floods the log nor goes unreported.
type logLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// note records one occurrence at now; when a line may be written it
// returns the suffix that reports the occurrences suppressed since the
// last one.
func (ll *logLimiter) note(now time.Time) (string, bool) {
	if !ll.last.IsZero() && now.Sub(ll.last) < ll.every {
		ll.suppressed++
		return "", false
	}
	suffix := ""
	if ll.suppressed > 0 {
		suffix = fmt.Sprintf(" (%d more since the last report)", ll.suppressed)
	}
	ll.last, ll.suppressed = now, 0
	return suffix, true
}

// Dial implements sim.Network.
func (nw *Network) Dial(addr string, opts sim.ConnOptions, h sim.ConnHandler) sim.Conn {
	c := &conn{nw: nw, opts: opts, handler: h, remote: addr, frames: newFrameBudget(opts.QueuedFramesMax())}
	c.init()
	go func() {
		nc, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			nw.node.Post(func() { c.fail(mapNetError(err)) })
			return
		}
		if !nw.track(c) {
			nc.Close()
			return
		}
		c.mu.Lock()
		c.nc = nc
		dead := c.dead
		c.mu.Unlock()
		if dead {
			c.untrackAndClose()
			return
		}
		go c.writeLoop()
		local, remote := nc.LocalAddr().String(), nc.RemoteAddr().String()
		nw.node.Post(func() {
			c.local, c.remote = local, remote
			c.established()
		})
	}()
	return c
}

// conn is a TCP connection carrying frames. Its handler fields are touched
// only on the loop; its send queue is shared with a writer goroutine.
type conn struct {
	nw      *Network
	opts    sim.ConnOptions
	handler sim.ConnHandler
	remote  string
	local   string
	frames  *frameBudget

	// loop-only state
	open  bool // OnOpen delivered
	ended bool // OnClose delivered or Close called: no more callbacks

	// delivered carries one token per frame the loop took, so that the
	// reader has at most one frame waiting for the loop.
	delivered chan struct{}

	mu sync.Mutex
	// sendReady wakes the writer; drained wakes a reader waiting for the
	// send queue to empty.
	sendReady *sync.Cond
	drained   *sync.Cond
	nc        net.Conn
	queue     [][]byte
	// queuePooled says which frames of queue came from NewFrame: the
	// writer gives those back to the pool once the socket took them.
	queuePooled []bool
	// pendingBytes are in queue; writingBytes in the batch being
	// written. Both count against the connection's and the node's bounds
	// until the socket took them.
	pendingBytes int
	writingBytes int
	closing      bool  // Close called: flush, then close
	dead         bool  // reset: nothing more is written
	deadErr      error // why, when the connection reset itself
	gone         atomic.Bool
}

func newConn(nw *Network, nc net.Conn, opts sim.ConnOptions, frames *frameBudget) *conn {
	c := &conn{nw: nw, opts: opts, nc: nc, frames: frames,
		local: nc.LocalAddr().String(), remote: nc.RemoteAddr().String()}
	c.init()
	return c
}

func (c *conn) init() {
	c.sendReady = sync.NewCond(&c.mu)
	c.drained = sync.NewCond(&c.mu)
	c.delivered = make(chan struct{}, 1)
}

// established runs on the loop once the socket exists.
func (c *conn) established() {
	if c.ended {
		return // Close or a failure came first; the writer finishes it
	}
	c.open = true
	c.handler.OnOpen(c)
	go c.readLoop()
}

func (c *conn) LocalAddr() string  { return c.local }
func (c *conn) RemoteAddr() string { return c.remote }

func (c *conn) Send(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.closing {
		return fmt.Errorf("send to %s: %w", c.remote, sim.ErrClosed)
	}
	queued := c.pendingBytes + c.writingBytes
	if queued+len(frame) > c.opts.SendQueueMax() {
		err := fmt.Errorf("send to %s: %d bytes queued on the connection, at most %d: %w",
			c.remote, queued, c.opts.SendQueueMax(), sim.ErrSendBufferFull)
		c.killLocked(err)
		return err
	}
	if !c.nw.reserveSend(len(frame)) {
		err := fmt.Errorf("send to %s: %d bytes queued on the node, at most %d: %w",
			c.remote, c.nw.SendQueuedBytes(), c.nw.sendQueuedMax, sim.ErrSendBufferFull)
		c.killLocked(err)
		return err
	}
	c.queue = append(c.queue, frame)
	c.queuePooled = append(c.queuePooled, frames.lend(frame))
	c.pendingBytes += len(frame)
	c.sendReady.Signal()
	return nil
}

func (c *conn) Close() {
	c.ended = true
	c.mu.Lock()
	c.closing = true
	c.sendReady.Broadcast()
	c.drained.Broadcast()
	c.mu.Unlock()
}

// killLocked resets the connection: the queue is dropped, both goroutines
// wake and the socket closes. c.mu is held.
func (c *conn) killLocked(err error) {
	if c.dead {
		return
	}
	c.dead = true
	c.gone.Store(true)
	if c.deadErr == nil {
		c.deadErr = err
	}
	c.queue, c.queuePooled = nil, nil
	c.nw.releaseSend(c.pendingBytes)
	c.pendingBytes = 0
	c.sendReady.Broadcast()
	c.drained.Broadcast()
	if c.nc != nil {
		c.nc.Close()
	}
	c.frames.wake()
}

// shut resets the connection as the node stops.
func (c *conn) shut() {
	c.mu.Lock()
	c.killLocked(nil)
	c.mu.Unlock()
}

func (c *conn) untrackAndClose() {
	c.nw.untrack(c)
	c.mu.Lock()
	c.killLocked(nil)
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		nc.Close() // a second close of a killed socket is harmless
	}
}

// fail ends the connection with err, on the loop.
func (c *conn) fail(err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.mu.Lock()
	c.killLocked(err)
	c.mu.Unlock()
	c.handler.OnClose(c, err)
}

// writeLoop writes queued frames with one system call per batch.
func (c *conn) writeLoop() {
	defer c.untrackAndClose()
	var prefixes []byte
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing && !c.dead {
			c.sendReady.Wait()
		}
		if c.dead || (len(c.queue) == 0 && c.closing) {
			c.mu.Unlock()
			return
		}
		batch, pooled := c.queue, c.queuePooled
		c.queue, c.queuePooled = nil, nil
		c.writingBytes, c.pendingBytes = c.pendingBytes, 0
		c.mu.Unlock()

		bufs := make(net.Buffers, 0, 2*len(batch))
		prefixes = prefixes[:0]
		if c.opts.Framing == sim.FrameLength32 {
			for _, f := range batch {
				prefixes = binary.BigEndian.AppendUint32(prefixes, uint32(len(f)))
			}
		}
		for i, f := range batch {
			if c.opts.Framing == sim.FrameLength32 {
				bufs = append(bufs, prefixes[4*i:4*i+4])
			}
			bufs = append(bufs, f)
		}
		err := c.write(bufs)
		for i, f := range batch {
			if pooled[i] {
				frames.put(f)
			}
		}
		c.mu.Lock()
		c.nw.releaseSend(c.writingBytes)
		c.writingBytes = 0
		c.drained.Broadcast()
		c.mu.Unlock()
		if err != nil {
			err = mapNetError(err)
			c.nw.node.Post(func() { c.fail(err) })
			return
		}
	}
}

// write writes bufs, failing with a timeout only when the socket took
// nothing for the connection's write timeout: a large batch to a slow
// reader that keeps reading is not a stalled one.
func (c *conn) write(bufs net.Buffers) error {
	timeout := c.opts.WriteTimeout
	for len(bufs) > 0 {
		if timeout > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		n, err := bufs.WriteTo(c.nc) // consumes what it wrote
		var netErr net.Error
		if err != nil && n > 0 && errors.As(err, &netErr) && netErr.Timeout() {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// NewFrame returns an empty buffer of at least capBytes for a frame to
// Send on this connection. Once the socket has taken the frame, its buffer
// goes back to a bounded pool for later answers, so that answers of a
// megabyte (fetches) are neither allocated nor zeroed each time. The
// caller must not touch the frame after Send.
func (c *conn) NewFrame(capBytes int) []byte { return frames.get(capBytes) }

// framePool holds the buffers of frames sent, for NewFrame. It holds at
// most framePoolBuffersMax buffers of at most framePoolBufferBytesMax
// each: its idle memory is bounded, and a larger frame is allocated.
type framePool struct {
	mu   sync.Mutex
	free [][]byte
	// lent are the buffers NewFrame handed out and Send has not queued
	// yet, by their first byte, so that only those go back to the pool: a
	// frame the caller allocated itself may still be referenced.
	lent map[*byte]struct{}
}

const (
	framePoolBuffersMax     = 8
	framePoolBufferBytesMax = 2 << 20
	// framePoolLentMax bounds lent: a buffer that the caller outgrew
	// (append reallocated it) is never queued, and its entry would stay.
	framePoolLentMax = 4096
)

// frames is the process's frame pool, shared by its nodes' connections.
var frames framePool

func (p *framePool) get(capBytes int) []byte {
	if capBytes > framePoolBufferBytesMax {
		return make([]byte, 0, capBytes)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var buf []byte
	for i := len(p.free) - 1; i >= 0; i-- {
		if cap(p.free[i]) >= capBytes {
			buf = p.free[i][:0]
			last := len(p.free) - 1
			p.free[i], p.free[last] = p.free[last], nil
			p.free = p.free[:last]
			break
		}
	}
	if buf == nil {
		// Round up so that a buffer serves the next answers of about the
		// same size.
		buf = make([]byte, 0, max(64<<10, 1<<bits.Len(uint(max(capBytes, 1)-1))))
	}
	if p.lent == nil || len(p.lent) >= framePoolLentMax {
		p.lent = make(map[*byte]struct{})
	}
	p.lent[unsafe.SliceData(buf)] = struct{}{}
	return buf
}

// lend reports whether frame is a buffer NewFrame handed out, and takes
// it off the lent list.
func (p *framePool) lend(frame []byte) bool {
	if cap(frame) == 0 {
		return false
	}
	key := unsafe.SliceData(frame)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.lent[key]; !ok {
		return false
	}
	delete(p.lent, key)
	return true
}

// put returns a sent frame's buffer, dropping it when the pool is full or
// the buffer is larger than the pool keeps.
func (p *framePool) put(frame []byte) {
	if cap(frame) > framePoolBufferBytesMax {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < framePoolBuffersMax {
		p.free = append(p.free, frame[:0])
	}
}

// readPauseQueuedBytes is how many unsent bytes a connection may have
// queued before its reader stops reading requests: a peer that does not
// read its answers gets no more of its requests served, and TCP holds the
// rest back.
const readPauseQueuedBytes = 64 << 10

// readChunkBytes is the read size of a stream connection, and the step by
// which a frame's buffer grows as its bytes arrive.
const readChunkBytes = 64 << 10

func (c *conn) readLoop() {
	var err error
	if c.opts.Framing == sim.FrameLength32 {
		err = c.readFrames()
	} else {
		err = c.readStream()
	}
	c.nw.node.Post(func() {
		c.mu.Lock()
		closing, deadErr := c.closing, c.deadErr
		c.mu.Unlock()
		if closing {
			return // our own Close ended it
		}
		if deadErr != nil {
			err = deadErr
		}
		c.fail(err)
	})
}

func (c *conn) readFrames() error {
	var size [4]byte
	maxBytes := c.opts.MaxFrame()
	for {
		if !c.awaitDrained() {
			return nil
		}
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			return mapNetError(err)
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || int(n) > maxBytes {
			return fmt.Errorf("frame of %d bytes from %s (limit %d): %w", n, c.remote, maxBytes, sim.ErrFrameTooLarge)
		}
		frame, err := c.readBody(int(n))
		if err != nil {
			return mapNetError(err)
		}
		if !c.deliver(frame) {
			return nil
		}
	}
}

// readBody reads a frame of n bytes into a buffer that grows as the bytes
// arrive, so that a header announcing a large frame costs nothing until
// its body comes.
func (c *conn) readBody(n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunkBytes))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := c.nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

func (c *conn) readStream() error {
	for {
		if !c.awaitDrained() {
			return nil
		}
		buf := make([]byte, readChunkBytes)
		n, err := c.nc.Read(buf)
		if n > 0 && !c.deliver(buf[:n:n]) {
			return nil
		}
		if err != nil {
			return mapNetError(err)
		}
	}
}

// awaitDrained waits while the connection's answers are not drained; it
// reports false once the connection is reset.
func (c *conn) awaitDrained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pendingBytes+c.writingBytes > readPauseQueuedBytes && !c.dead && !c.closing {
		c.drained.Wait()
	}
	return !c.dead
}

// deliver hands a frame to the loop within the budget of queued frames and
// waits until the loop took it; it reports false once the connection or
// the node is gone.
func (c *conn) deliver(frame []byte) bool {
	size := len(frame)
	if !c.frames.acquire(size, &c.gone) {
		return false
	}
	posted := c.nw.node.Post(func() {
		c.frames.release(size)
		if !c.ended {
			c.handler.OnFrame(c, frame)
		}
		c.delivered <- struct{}{}
	})
	if !posted {
		c.frames.release(size)
		return false
	}
	select {
	case <-c.delivered:
		return true
	case <-c.nw.node.stopped:
		return false
	}
}

// frameBudget bounds the bytes of received frames waiting for the loop.
type frameBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int
	max  int
	// usedMax is the most ever held, for tests.
	usedMax int
}

func newFrameBudget(max int) *frameBudget {
	b := &frameBudget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes fit (a frame larger than the whole budget
// waits until nothing else is queued) and reports false if gone is set
// first.
func (b *frameBudget) acquire(n int, gone *atomic.Bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used > 0 && b.used+n > b.max && !gone.Load() {
		b.cond.Wait()
	}
	if gone.Load() {
		return false
	}
	b.used += n
	b.usedMax = max(b.usedMax, b.used)
	return true
}

func (b *frameBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// wake lets waiters recheck whether their connection is gone.
func (b *frameBudget) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

// mapNetError turns socket errors into the seams' connection errors; a
// graceful close by the peer is nil.
func mapNetError(err error) error {
	var netErr net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, sim.ErrFrameTooLarge):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %w", sim.ErrRefused, err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %w", sim.ErrReset, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %w", sim.ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", sim.ErrReset, err)
}

// ListenPacket implements sim.Network.
func (nw *Network) ListenPacket(addr string, onPacket func(from string, p []byte)) (sim.PacketConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	p := &packetConn{pc: pc, nw: nw}
	if !nw.track(p) {
		pc.Close()
		return nil, fmt.Errorf("listen udp %s: %w", addr, sim.ErrClosed)
	}
	go p.readLoop(onPacket)
	return p, nil
}

type packetConn struct {
	pc net.PacketConn
	nw *Network
}

// datagramMaxBytes is the largest UDP payload.
const datagramMaxBytes = 65507

func (p *packetConn) readLoop(onPacket func(string, []byte)) {
	for {
		buf := make([]byte, datagramMaxBytes)
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		data, sender := buf[:n], from.String()
		if !p.nw.node.Post(func() { onPacket(sender, data) }) {
			return
		}
	}
}

func (p *packetConn) SendTo(addr string, data []byte) error {
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	_, err = p.pc.WriteTo(data, to)
	return err
}

func (p *packetConn) Close() {
	p.nw.untrack(p)
	p.pc.Close()
}

func (p *packetConn) shut() { p.pc.Close() }

func (p *packetConn) LocalAddr() string { return p.pc.LocalAddr().String() }
