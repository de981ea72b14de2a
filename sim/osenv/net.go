package osenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// Network is a node's TCP and UDP sockets.
type Network struct {
	node *Node
	mu   sync.Mutex
	// open holds every listener, connection and packet port, so that
	// stopping the node closes them all.
	open map[io.Closer]struct{}
}

// dialTimeout bounds a connection attempt, as the simulator's
// ConnectTimeout does.
const dialTimeout = 10 * time.Second

func (nw *Network) track(c io.Closer) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.open == nil {
		nw.open = make(map[io.Closer]struct{})
	}
	nw.open[c] = struct{}{}
}

func (nw *Network) untrack(c io.Closer) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.open, c)
}

func (nw *Network) closeAll() {
	nw.mu.Lock()
	open := nw.open
	nw.open = nil
	nw.mu.Unlock()
	for c := range open {
		c.Close()
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
	l := &listener{ln: ln, nw: nw}
	nw.track(ln)
	go l.acceptLoop(opts, accept)
	return l, nil
}

type listener struct {
	ln net.Listener
	nw *Network
}

func (l *listener) Addr() string { return l.ln.Addr().String() }

func (l *listener) Close() {
	l.nw.untrack(l.ln)
	l.ln.Close()
}

func (l *listener) acceptLoop(opts sim.ConnOptions, accept func(sim.Conn) sim.ConnHandler) {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.nw.node.logger.Logf("accept on %s: %v", l.Addr(), err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		c := newConn(l.nw, nc, opts)
		l.nw.node.Post(func() {
			c.handler = accept(c)
			c.established()
		})
	}
}

// Dial implements sim.Network.
func (nw *Network) Dial(addr string, opts sim.ConnOptions, h sim.ConnHandler) sim.Conn {
	c := &conn{nw: nw, opts: opts, handler: h, remote: addr}
	c.cond = sync.NewCond(&c.mu)
	go func() {
		nc, err := net.DialTimeout("tcp", addr, dialTimeout)
		nw.node.Post(func() {
			if err != nil {
				c.fail(mapNetError(err))
				return
			}
			c.attach(nc)
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
	nc      net.Conn

	// loop-only state
	open  bool // OnOpen delivered
	ended bool // OnClose delivered or Close called: no more callbacks

	mu          sync.Mutex
	cond        *sync.Cond
	queue       [][]byte
	queuedBytes int
	closing     bool // Close called: flush, then close
	dead        bool // writer gone
}

func newConn(nw *Network, nc net.Conn, opts sim.ConnOptions) *conn {
	c := &conn{nw: nw, opts: opts}
	c.cond = sync.NewCond(&c.mu)
	c.attach(nc)
	return c
}

func (c *conn) attach(nc net.Conn) {
	c.nc = nc
	c.local = nc.LocalAddr().String()
	c.remote = nc.RemoteAddr().String()
	c.nw.track(nc)
	go c.writeLoop()
}

// established runs on the loop once the socket exists.
func (c *conn) established() {
	if c.ended {
		c.nc.Close()
		return
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
	if c.queuedBytes+len(frame) > sim.MaxSendBufferBytes {
		c.dead = true
		c.cond.Broadcast()
		if c.nc != nil {
			c.nc.Close()
		}
		return fmt.Errorf("send to %s: %w", c.remote, sim.ErrSendBufferFull)
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame)
	c.cond.Signal()
	return nil
}

func (c *conn) Close() {
	c.ended = true
	c.mu.Lock()
	c.closing = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// fail ends the connection with err, on the loop.
func (c *conn) fail(err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.mu.Lock()
	c.dead = true
	c.cond.Broadcast()
	c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
	}
	c.handler.OnClose(c, err)
}

// writeLoop writes queued frames with one system call per batch.
func (c *conn) writeLoop() {
	defer func() {
		c.nw.untrack(c.nc)
		c.nc.Close()
	}()
	var prefixes []byte
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing && !c.dead {
			c.cond.Wait()
		}
		if c.dead || (len(c.queue) == 0 && c.closing) {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.queuedBytes = 0
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
		if _, err := bufs.WriteTo(c.nc); err != nil {
			c.nw.node.Post(func() { c.fail(mapNetError(err)) })
			return
		}
	}
}

// readChunkBytes is the read size of a stream connection.
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
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return // our own Close ended it
		}
		c.fail(err)
	})
}

func (c *conn) readFrames() error {
	var size [4]byte
	maxBytes := c.opts.MaxFrame()
	for {
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			return mapNetError(err)
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || int(n) > maxBytes {
			return fmt.Errorf("frame of %d bytes from %s (limit %d): %w", n, c.remote, maxBytes, sim.ErrFrameTooLarge)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c.nc, frame); err != nil {
			return mapNetError(err)
		}
		c.nw.node.Post(func() {
			if !c.ended {
				c.handler.OnFrame(c, frame)
			}
		})
	}
}

func (c *conn) readStream() error {
	for {
		buf := make([]byte, readChunkBytes)
		n, err := c.nc.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			c.nw.node.Post(func() {
				if !c.ended {
					c.handler.OnFrame(c, chunk)
				}
			})
		}
		if err != nil {
			return mapNetError(err)
		}
	}
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
	nw.track(pc)
	p := &packetConn{pc: pc, nw: nw}
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
		p.nw.node.Post(func() { onPacket(sender, data) })
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
	p.nw.untrack(p.pc)
	p.pc.Close()
}

func (p *packetConn) LocalAddr() string { return p.pc.LocalAddr().String() }
