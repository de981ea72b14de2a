package osenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

func newTestNode(t *testing.T, name string) *Node {
	t.Helper()
	n, err := NewNode(Options{Name: name, DataDir: t.TempDir(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go n.Run(ctx)
	return n
}

// echo answers every frame with the same frame.
type echo struct{}

func (echo) OnOpen(sim.Conn)                  {}
func (echo) OnFrame(c sim.Conn, frame []byte) { c.Send(frame) }
func (echo) OnClose(sim.Conn, error)          {}

// collector records what a client connection sees; it is touched only on
// the client node's loop.
type collector struct {
	frames [][]byte
	closed error
	ended  bool
	opened bool
}

func (c *collector) OnOpen(sim.Conn)                  { c.opened = true }
func (c *collector) OnFrame(_ sim.Conn, frame []byte) { c.frames = append(c.frames, frame) }
func (c *collector) OnClose(_ sim.Conn, err error)    { c.closed, c.ended = err, true }

func waitFor(t *testing.T, n *Node, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		n.Call(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func listen(t *testing.T, n *Node, opts sim.ConnOptions, h func(sim.Conn) sim.ConnHandler) string {
	t.Helper()
	var addr string
	var err error
	n.Call(func() {
		var l sim.Listener
		l, err = n.Env().Net.Listen("127.0.0.1:0", opts, h)
		if err == nil {
			addr = l.Addr()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestFramesArriveInOrder(t *testing.T) {
	server, client := newTestNode(t, "server"), newTestNode(t, "client")
	addr := listen(t, server, sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return echo{} })
	col := &collector{}
	const frames = 1000
	client.Call(func() {
		c := client.Env().Net.Dial(addr, sim.ConnOptions{}, col)
		for i := 0; i < frames; i++ { // queued before the dial completes
			c.Send([]byte(fmt.Sprintf("frame %d", i)))
		}
	})
	waitFor(t, client, "echoes", func() bool { return len(col.frames) == frames })
	client.Call(func() {
		for i, f := range col.frames {
			if string(f) != fmt.Sprintf("frame %d", i) {
				t.Fatalf("frame %d is %q", i, f)
			}
		}
	})
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	server, client := newTestNode(t, "server"), newTestNode(t, "client")
	addr := listen(t, server, sim.ConnOptions{MaxFrameBytes: 64}, func(sim.Conn) sim.ConnHandler { return echo{} })
	bad, good := &collector{}, &collector{}
	client.Call(func() {
		client.Env().Net.Dial(addr, sim.ConnOptions{}, bad).Send(make([]byte, 65))
	})
	waitFor(t, client, "the oversized frame's connection to close", func() bool { return bad.ended })
	client.Call(func() {
		client.Env().Net.Dial(addr, sim.ConnOptions{}, good).Send([]byte("still serving"))
	})
	waitFor(t, client, "an echo on a new connection", func() bool { return len(good.frames) == 1 })
}

func TestDialRefusedAndGracefulClose(t *testing.T) {
	client := newTestNode(t, "client")
	refused := &collector{}
	client.Call(func() { client.Env().Net.Dial(closedAddr(t), sim.ConnOptions{}, refused) })
	waitFor(t, client, "refusal", func() bool { return refused.ended })
	client.Call(func() {
		if !errors.Is(refused.closed, sim.ErrRefused) {
			t.Errorf("dial of a closed port ended with %v, want ErrRefused", refused.closed)
		}
	})

	server := newTestNode(t, "server")
	addr := listen(t, server, sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return closer{} })
	col := &collector{}
	client.Call(func() { client.Env().Net.Dial(addr, sim.ConnOptions{}, col).Send([]byte("bye")) })
	waitFor(t, client, "graceful close", func() bool { return col.ended })
	client.Call(func() {
		if col.closed != nil || len(col.frames) != 1 || string(col.frames[0]) != "bye" {
			t.Errorf("graceful close: frames %q, err %v; want the queued reply then nil", col.frames, col.closed)
		}
	})
}

// closer answers once and closes.
type closer struct{}

func (closer) OnOpen(sim.Conn)                  {}
func (closer) OnFrame(c sim.Conn, frame []byte) { c.Send(frame); c.Close() }
func (closer) OnClose(sim.Conn, error)          {}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestStreamFraming(t *testing.T) {
	server, client := newTestNode(t, "server"), newTestNode(t, "client")
	stream := sim.ConnOptions{Framing: sim.FrameStream}
	addr := listen(t, server, stream, func(sim.Conn) sim.ConnHandler { return echo{} })
	col := &collector{}
	client.Call(func() {
		c := client.Env().Net.Dial(addr, stream, col)
		c.Send([]byte("line one\n"))
		c.Send([]byte("line two\n"))
	})
	waitFor(t, client, "echoed bytes", func() bool { return len(bytes.Join(col.frames, nil)) == 18 })
	client.Call(func() {
		if got := string(bytes.Join(col.frames, nil)); got != "line one\nline two\n" {
			t.Errorf("stream echoed %q", got)
		}
	})
}

func TestTimerStopOnLoopPreventsCall(t *testing.T) {
	n := newTestNode(t, "n")
	fired := 0
	n.Call(func() {
		tm := n.Env().Clock.AfterFunc(time.Millisecond, func() { fired++ })
		if !tm.Stop() {
			t.Error("Stop of a pending timer reported false")
		}
		n.Env().Clock.AfterFunc(2*time.Millisecond, func() { fired += 10 })
	})
	waitFor(t, n, "second timer", func() bool { return fired >= 10 })
	n.Call(func() {
		if fired != 10 {
			t.Errorf("fired = %d, want 10 (the stopped timer must not run)", fired)
		}
	})
}

func TestFilesAndSync(t *testing.T) {
	n := newTestNode(t, "n")
	var synced error = io.ErrUnexpectedEOF
	n.Call(func() {
		fs := n.Env().FS
		if err := fs.MkdirAll("a/b"); err != nil {
			t.Fatal(err)
		}
		f, err := fs.Create("a/b/f.log")
		if err != nil {
			t.Fatal(err)
		}
		f.Append([]byte("hello "))
		f.Append([]byte("world"))
		f.Sync(func(err error) { synced = err })
		buf := make([]byte, 11)
		if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello world" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if err := fs.Rename("a/b/f.log", "a/b/g.log"); err != nil {
			t.Fatal(err)
		}
		names, err := fs.List("a/b")
		if err != nil || len(names) != 1 || names[0] != "g.log" {
			t.Fatalf("list = %v, %v", names, err)
		}
		if _, err := fs.Open("a/b/f.log"); !errors.Is(err, sim.ErrNotExist) {
			t.Fatalf("open of renamed file: %v, want ErrNotExist", err)
		}
		if _, err := fs.Create("../escape"); err == nil {
			t.Fatal("a path outside the data directory was accepted")
		}
	})
	waitFor(t, n, "sync", func() bool { return synced != io.ErrUnexpectedEOF })
	n.Call(func() {
		if synced != nil {
			t.Fatalf("sync: %v", synced)
		}
	})
}

func TestDatagrams(t *testing.T) {
	server, client := newTestNode(t, "server"), newTestNode(t, "client")
	var got []string
	var addr string
	server.Call(func() {
		pc, err := server.Env().Net.ListenPacket("127.0.0.1:0", func(from string, p []byte) { got = append(got, string(p)) })
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr()
	})
	client.Call(func() {
		pc, err := client.Env().Net.ListenPacket("127.0.0.1:0", func(string, []byte) {})
		if err != nil {
			t.Fatal(err)
		}
		pc.SendTo(addr, []byte("ping"))
	})
	waitFor(t, server, "datagram", func() bool { return len(got) == 1 && got[0] == "ping" })
}
