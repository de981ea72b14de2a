package osenv

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// smallReceiveBuffer sets a socket's receive buffer before it connects,
// so that the kernel takes little on behalf of a peer that does not read.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var err error
	rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	return err
}

// silentPeer accepts raw TCP connections and never reads from them.
func silentPeer(t *testing.T) (string, chan net.Conn) {
	t.Helper()
	lc := net.ListenConfig{Control: smallReceiveBuffer}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	return l.Addr().String(), accepted
}

// sendUntilFull sends 1 MiB frames until Send fails or limit bytes went
// out, and returns the bytes it sent.
func sendUntilFull(n *Node, c sim.Conn, limit int) (int, error) {
	chunk := make([]byte, 1<<20)
	sent := 0
	var err error
	for sent < limit {
		if err = c.Send(chunk); err != nil {
			break
		}
		sent += len(chunk)
		// Let the writer take what it can, as it would between callbacks.
		time.Sleep(time.Millisecond)
	}
	return sent, err
}

// A peer that never reads can make a connection hold at most its bound:
// bytes count until the socket took them, not until the writer took the
// batch.
func TestSendQueueBoundHoldsWhileThePeerDoesNotRead(t *testing.T) {
	const queueMax = 16 << 20
	client := newTestNode(t, "client")
	addr, _ := silentPeer(t)
	col := &collector{}
	var c sim.Conn
	client.Call(func() { c = client.Env().Net.Dial(addr, sim.ConnOptions{SendQueueBytesMax: queueMax}, col) })
	waitFor(t, client, "the dial", func() bool { return col.opened })
	var sent int
	var err error
	client.Call(func() { sent, err = sendUntilFull(client, c, 256<<20) })
	if !errors.Is(err, sim.ErrSendBufferFull) {
		t.Fatalf("after %d MiB to a peer that does not read: %v, want ErrSendBufferFull", sent>>20, err)
	}
	// The kernel's socket buffers take some; the rest is the bound.
	if sent > queueMax+16<<20 {
		t.Fatalf("a connection bounded at %d MiB accepted %d MiB for a peer that does not read", queueMax>>20, sent>>20)
	}
	waitFor(t, client, "OnClose after the reset", func() bool { return col.ended })
	// The writer gives back its batch once its write fails.
	waitFor(t, client, "the reset connection's bytes to be given back", func() bool { return client.net.SendQueuedBytes() == 0 })
}

// The node's bound holds across connections.
func TestNodeSendQueueBoundAcrossConnections(t *testing.T) {
	const nodeMax = 24 << 20
	n, err := NewNode(Options{Name: "client", DataDir: t.TempDir(), Seed: 1, SendQueueBytesMax: nodeMax})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	addr, _ := silentPeer(t)
	total := 0
	var lastErr error
	for i := range 8 {
		col := &collector{}
		var c sim.Conn
		n.Call(func() { c = n.Env().Net.Dial(addr, sim.ConnOptions{SendQueueBytesMax: 16 << 20}, col) })
		waitFor(t, n, "the dial", func() bool { return col.opened })
		var sent int
		n.Call(func() { sent, lastErr = sendUntilFull(n, c, 16<<20-1) })
		total += sent
		if i == 7 && !errors.Is(lastErr, sim.ErrSendBufferFull) {
			t.Fatalf("8 connections of 16 MiB each under a 24 MiB node bound: last send %v", lastErr)
		}
	}
	if queued := n.net.SendQueuedBytes(); queued > nodeMax {
		t.Fatalf("%d MiB queued on the node, over its %d MiB bound", queued>>20, nodeMax>>20)
	}
	t.Logf("%d MiB accepted over 8 connections (kernel buffers take some)", total>>20)
}

// A peer that stops reading is reset once the write makes no progress for
// the write timeout.
func TestWriteTimeoutResetsAStalledConnection(t *testing.T) {
	client := newTestNode(t, "client")
	addr, _ := silentPeer(t)
	col := &collector{}
	var c sim.Conn
	opts := sim.ConnOptions{WriteTimeout: 200 * time.Millisecond}
	client.Call(func() { c = client.Env().Net.Dial(addr, opts, col) })
	waitFor(t, client, "the dial", func() bool { return col.opened })
	client.Call(func() { c.Send(make([]byte, 32<<20)) })
	waitFor(t, client, "the stalled connection to reset", func() bool { return col.ended })
	client.Call(func() {
		if !errors.Is(col.closed, sim.ErrTimeout) {
			t.Fatalf("stalled connection ended with %v, want ErrTimeout", col.closed)
		}
	})
}

// bigAnswer answers every frame with 1 MiB and counts the frames.
type bigAnswer struct{ frames *int }

func (bigAnswer) OnOpen(sim.Conn) {}
func (h bigAnswer) OnFrame(c sim.Conn, _ []byte) {
	*h.frames++
	c.Send(make([]byte, 1<<20))
}
func (bigAnswer) OnClose(sim.Conn, error) {}

// A client that sends requests and never reads the answers gets only a
// few of them served: its connection is not read while its answers are
// not drained.
func TestRequestsOfANonReadingClientWaitForItsAnswersToDrain(t *testing.T) {
	server := newTestNode(t, "server")
	frames := 0
	addr := listen(t, server, sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return bigAnswer{&frames} })
	d := net.Dialer{Control: smallReceiveBuffer}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const requests = 1000
	go func() {
		for range requests {
			if _, err := c.Write([]byte{0, 0, 0, 1, 'r'}); err != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	var served int
	var queued int
	server.Call(func() { served, queued = frames, server.net.SendQueuedBytes() })
	t.Logf("%d of %d requests served, %d MiB queued", served, requests, queued>>20)
	// The kernel's buffers take a few answers; then reading stops.
	if served > 32 {
		t.Fatalf("%d of %d requests served to a client that reads nothing", served, requests)
	}
	if served == 0 {
		t.Fatalf("no request served")
	}
}

// Connections that announce large frames and stall allocate as bytes
// arrive, not what the header announced.
func TestStalledFrameHeadersAllocateAsBytesArrive(t *testing.T) {
	server := newTestNode(t, "server")
	addr := listen(t, server, sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return echo{} })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns = 20
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(append(binary.BigEndian.AppendUint32(nil, 100<<20), "the start of a body"...))
	}
	time.Sleep(300 * time.Millisecond)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB for %d stalled 100 MiB headers", grown>>10, conns)
	if grown > 16<<20 {
		t.Fatalf("%d stalled 100 MiB frame headers grew the heap by %d MiB", conns, grown>>20)
	}
}

// Received frames waiting for the loop are bounded in bytes: a reader
// whose frame does not fit waits until the loop took others.
func TestQueuedFrameBytesAreBounded(t *testing.T) {
	server := newTestNode(t, "server")
	block := make(chan struct{})
	frames := 0
	const frameBytes, budget = 1 << 20, 3 << 20
	opts := sim.ConnOptions{QueuedFrameBytesMax: budget}
	var ln *listener
	accepted := 0
	server.Call(func() {
		l, err := server.Env().Net.Listen("127.0.0.1:0", opts, func(sim.Conn) sim.ConnHandler {
			accepted++
			return countFrames{&frames}
		})
		if err != nil {
			t.Fatal(err)
		}
		ln = l.(*listener)
	})
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", ln.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitFor(t, server, "every connection accepted", func() bool { return accepted == 10 })
	// Hold the loop so that frames pile up.
	go server.Call(func() { <-block })
	for _, c := range conns {
		go c.Write(append(binary.BigEndian.AppendUint32(nil, frameBytes), make([]byte, frameBytes)...))
	}
	usedMax := func() int {
		ln.frames.mu.Lock()
		defer ln.frames.mu.Unlock()
		return ln.frames.usedMax
	}
	// Wait until the budget is as full as whole frames can make it, then
	// give the other readers time to pass it if they could.
	for deadline := time.Now().Add(10 * time.Second); usedMax() < budget && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	held := usedMax()
	close(block)
	waitFor(t, server, "every frame", func() bool { return frames == 10 })
	if held > budget {
		t.Fatalf("%d MiB of frames queued for the loop, over the %d MiB budget", held>>20, budget>>20)
	}
	if held < frameBytes {
		t.Fatalf("no frame was queued while the loop was busy (%d bytes)", held)
	}
}

type countFrames struct{ n *int }

func (countFrames) OnOpen(sim.Conn)            {}
func (h countFrames) OnFrame(sim.Conn, []byte) { *h.n++ }
func (countFrames) OnClose(sim.Conn, error)    {}

// Stopping a node leaves no goroutine behind: writers exit, readers exit,
// and a connection accepted as the node stops is closed.
func TestStopLeavesNoGoroutines(t *testing.T) {
	settle := func() int {
		var n int
		for range 100 {
			runtime.GC()
			n = runtime.NumGoroutine()
			time.Sleep(10 * time.Millisecond)
			if n == runtime.NumGoroutine() {
				break
			}
		}
		return n
	}
	before := settle()
	for round := range 3 {
		n, err := NewNode(Options{Name: "stopped", DataDir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { n.Run(ctx); close(ran) }()
		var addr string
		n.Call(func() {
			l, err := n.Env().Net.Listen("127.0.0.1:0", sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return echo{} })
			if err != nil {
				t.Fatal(err)
			}
			addr = l.Addr()
			for range 5 {
				n.Env().Net.Dial(addr, sim.ConnOptions{}, &collector{})
			}
			n.Env().Clock.AfterFunc(time.Hour, func() {})
		})
		var peers []net.Conn
		for range 20 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			peers = append(peers, c)
		}
		// Connections keep arriving while the node stops. Only those
		// that completed before the stop began are counted: once the
		// listener closes, another process may take the freed port and
		// hold a later connection open.
		stopping := make(chan struct{})
		late := make(chan []net.Conn)
		go func() {
			var dialled []net.Conn
			defer func() { late <- dialled }()
			for {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				select {
				case <-stopping:
					c.Close()
					return
				default:
				}
				dialled = append(dialled, c)
			}
		}()
		time.Sleep(20 * time.Millisecond)
		close(stopping)
		cancel()
		<-ran
		peers = append(peers, <-late...)
		time.Sleep(20 * time.Millisecond)
		for i, c := range peers {
			if c.LocalAddr().String() == c.RemoteAddr().String() {
				c.Close() // a dial to the closed port connected to itself
				continue
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); isTimeoutErr(err) {
				t.Fatalf("round %d: connection %d of %d (%s to %s) to the stopped node is still open", round, i, len(peers), c.LocalAddr(), c.RemoteAddr())
			}
			c.Close()
		}
	}
	after := settle()
	for deadline := time.Now().Add(5 * time.Second); after > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after stopping 3 nodes:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// The accept error log writes one line per second and counts the rest.
func TestAcceptErrorLogIsRateLimited(t *testing.T) {
	ll := logLimiter{every: time.Second}
	start := time.Unix(1000, 0)
	lines := 0
	var last string
	for i := range 5000 { // 5000 errors over 2.5 s
		if suffix, ok := ll.note(start.Add(time.Duration(i) * 500 * time.Microsecond)); ok {
			lines++
			last = suffix
		}
	}
	if lines != 3 {
		t.Fatalf("%d lines for 2.5 s of errors, want 3 (one a second)", lines)
	}
	if last != " (1999 more since the last report)" {
		t.Fatalf("the line after a second of errors says %q", last)
	}
}
