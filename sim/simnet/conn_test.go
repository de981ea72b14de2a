package simnet

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// fixed is a link with a fixed 1ms latency and no jitter, so that times
// can be asserted exactly.
var fixed = Config{Link: LinkConfig{Latency: sched.Latency{Base: time.Millisecond}}}

func TestDialOpensAfterRoundTrip(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	cr := newRecorder(w.loop)
	c := w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(time.Second)
	if cr.opens != 1 || cr.openAt != 2*time.Millisecond {
		t.Fatalf("client opened %d times at %v, want once at 2ms", cr.opens, cr.openAt)
	}
	if len(srv.accepted) != 1 || srv.acceptAt[0] != time.Millisecond || srv.accepted[0].openAt != time.Millisecond {
		t.Fatalf("server accepted %d at %v, want one at 1ms", len(srv.accepted), srv.acceptAt)
	}
	if c.LocalAddr() != "a:32768" || c.RemoteAddr() != "b:9092" {
		t.Fatalf("client addrs %s -> %s", c.LocalAddr(), c.RemoteAddr())
	}
	sc := srv.accepted[0].conn
	if sc.LocalAddr() != "b:9092" || sc.RemoteAddr() != "a:32768" {
		t.Fatalf("server addrs %s -> %s", sc.LocalAddr(), sc.RemoteAddr())
	}
	c2 := w.net("a").Dial("b:9092", sim.ConnOptions{}, newRecorder(w.loop))
	if c2.LocalAddr() != "a:32769" {
		t.Fatalf("second ephemeral port %s, want a:32769", c2.LocalAddr())
	}
}

func TestDialNoSuchHostIsRefused(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a")
	cr := newRecorder(w.loop)
	w.net("a").Dial("nohost:9092", sim.ConnOptions{}, cr)
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrRefused) || !strings.Contains(cr.err.Error(), "no such host") {
		t.Fatalf("closes %d err %v, want one ErrRefused naming no such host", cr.closes, cr.err)
	}
	if cr.closeAt != 0 {
		t.Fatalf("refused at %v, want at once", cr.closeAt)
	}
}

func TestDialNothingListeningIsRefusedAfterRoundTrip(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	cr := newRecorder(w.loop)
	w.net("b") // the process runs but listens on nothing
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(10 * time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrRefused) || cr.closeAt != 2*time.Millisecond {
		t.Fatalf("closes %d at %v err %v, want one ErrRefused at 2ms", cr.closes, cr.closeAt, cr.err)
	}
	if s := w.nw.Stats(); s.ConnsRefused != 1 || s.ConnsTimedOut != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDialHostDownTimesOut(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	w.listen("b", ":9092", sim.ConnOptions{})
	w.crash("b", true)
	cr := newRecorder(w.loop)
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(10 * time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrTimeout) || cr.closeAt != ConnectTimeoutDefault {
		t.Fatalf("closes %d at %v err %v, want one ErrTimeout at 3s", cr.closes, cr.closeAt, cr.err)
	}
}

func TestDialBlockedTimesOutAndRetransmitsSyn(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	w.listen("b", ":9092", sim.ConnOptions{})
	w.nw.Block("a", "b")
	cr := newRecorder(w.loop)
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(10 * time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrTimeout) || cr.closeAt != ConnectTimeoutDefault {
		t.Fatalf("blocked dial: closes %d at %v err %v, want ErrTimeout at 3s", cr.closes, cr.closeAt, cr.err)
	}

	// Blocked for half a second: the SYN sent at once is lost, the one
	// retransmitted after a second gets through.
	start := w.loop.Now()
	cr = newRecorder(w.loop)
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.at(start+500*time.Millisecond, func() { w.nw.Unblock("a", "b") })
	w.run(10 * time.Second)
	if cr.opens != 1 || cr.closes != 0 || cr.openAt != start+time.Second+2*time.Millisecond {
		t.Fatalf("healed dial: opens %d closes %d at %v err %v, want open at +1.002s", cr.opens, cr.closes, cr.openAt, cr.err)
	}
}

func TestDialBackPathBlockedTimesOut(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	w.nw.Block("b", "a")
	cr := newRecorder(w.loop)
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(10 * time.Second)
	if len(srv.accepted) != 1 {
		t.Fatalf("server accepted %d, want 1 (the SYN got through)", len(srv.accepted))
	}
	if cr.opens != 0 || !errors.Is(cr.err, sim.ErrTimeout) {
		t.Fatalf("client opens %d err %v, want ErrTimeout", cr.opens, cr.err)
	}
	// The client's RST travels a->b, which is open: the server is reset.
	if srv.accepted[0].closes != 1 || !errors.Is(srv.accepted[0].err, sim.ErrReset) {
		t.Fatalf("server end closes %d err %v, want ErrReset", srv.accepted[0].closes, srv.accepted[0].err)
	}
}

func TestLoopbackDial(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a")
	srv := w.listen("a", "localhost:7000", sim.ConnOptions{})
	for _, addr := range []string{"a:7000", "localhost:7000", ":7000"} {
		dialAt := w.loop.Now()
		c, cr, sr := w.connect("a", addr, srv, sim.ConnOptions{})
		if c.RemoteAddr() != "a:7000" {
			t.Fatalf("remote %s", c.RemoteAddr())
		}
		if rtt := cr.openAt - dialAt; rtt != 2*loopbackDefault.Latency.Base {
			t.Fatalf("loopback open after %v, want two loopback latencies", rtt)
		}
		if err := c.Send([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		w.run(time.Second)
		if len(sr.frames) != 1 || string(sr.frames[0]) != "hi" {
			t.Fatalf("loopback frames %q", sr.frames)
		}
	}
}

func TestListenAddresses(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	n := w.net("a")
	accept := func(sim.Conn) sim.ConnHandler { return newRecorder(w.loop) }
	for i, addr := range []string{":9092", "0.0.0.0:9093", "localhost:9094", "a:9095"} {
		l, err := n.Listen(addr, sim.ConnOptions{}, accept)
		if err != nil {
			t.Fatalf("listen %s: %v", addr, err)
		}
		if want := "a:" + []string{"9092", "9093", "9094", "9095"}[i]; l.Addr() != want {
			t.Fatalf("listen %s: addr %s, want %s", addr, l.Addr(), want)
		}
	}
	if _, err := n.Listen("b:9096", sim.ConnOptions{}, accept); err == nil {
		t.Fatal("listen on another host's address succeeded")
	}
	if _, err := n.Listen("a:9092", sim.ConnOptions{}, accept); !errors.Is(err, sim.ErrAddrInUse) {
		t.Fatalf("second listen on 9092: %v, want ErrAddrInUse", err)
	}
	if _, err := n.Listen("a:notaport", sim.ConnOptions{}, accept); err == nil {
		t.Fatal("listen on a bad port succeeded")
	}
	l0, err := n.Listen(":0", sim.ConnOptions{}, accept)
	if err != nil || l0.Addr() != "a:32768" {
		t.Fatalf("listen :0: %v %v, want a:32768", l0, err)
	}
	l1, err := n.Listen(":0", sim.ConnOptions{}, accept)
	if err != nil || l1.Addr() != "a:32769" {
		t.Fatalf("second listen :0: %v %v, want a:32769", l1, err)
	}
	l0.Close()
	if _, err := n.Listen(":32768", sim.ConnOptions{}, accept); err != nil {
		t.Fatalf("listen on a closed listener's port: %v", err)
	}
	// A dial takes the next free port, skipping the listening ones.
	c := w.net("a").Dial("b:1", sim.ConnOptions{}, newRecorder(w.loop))
	if c.LocalAddr() != "a:32770" {
		t.Fatalf("dial from %s, want a:32770", c.LocalAddr())
	}
}

func TestSendBeforeOpenIsQueued(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	cr := newRecorder(w.loop)
	c := w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	for i := 0; i < 5; i++ {
		if err := c.Send(frameN(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	w.run(time.Second)
	sr := srv.accepted[0]
	if len(sr.frames) != 5 {
		t.Fatalf("server got %d frames, want 5", len(sr.frames))
	}
	for i, f := range sr.frames {
		if frameIndex(f) != i || sr.frameAt[i] < cr.openAt+time.Millisecond {
			t.Fatalf("frame %d is #%d at %v; client opened at %v", i, frameIndex(f), sr.frameAt[i], cr.openAt)
		}
	}
}

func TestServerSendsFromAcceptArriveAfterOpen(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	_, err := w.net("b").Listen(":9092", sim.ConnOptions{}, func(c sim.Conn) sim.ConnHandler {
		if err := c.Send([]byte("banner")); err != nil {
			t.Errorf("send from accept: %v", err)
		}
		return newRecorder(w.loop)
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := newRecorder(w.loop)
	var openedBeforeFrame bool
	cr.onFrame = func(sim.Conn, []byte) { openedBeforeFrame = cr.opens == 1 }
	w.net("a").Dial("b:9092", sim.ConnOptions{}, cr)
	w.run(time.Second)
	if len(cr.frames) != 1 || !openedBeforeFrame {
		t.Fatalf("client frames %q, opened before first frame %v", cr.frames, openedBeforeFrame)
	}
}

func TestStallThenHealDeliversInOrder(t *testing.T) {
	cfg := fixed
	cfg.Link.Latency.Jitter = 500 * time.Microsecond
	w := newTestWorld(t, 7, cfg, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, _, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.nw.Block("a", "b")
	const frames = 200
	for i := 0; i < frames; i++ {
		if err := c.Send(frameN(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	w.run(5 * time.Second)
	if len(sr.frames) != 0 {
		t.Fatalf("%d frames crossed a blocked link", len(sr.frames))
	}
	healAt := w.loop.Now()
	w.nw.Unblock("a", "b")
	w.run(time.Second)
	if len(sr.frames) != frames {
		t.Fatalf("after heal %d frames, want %d", len(sr.frames), frames)
	}
	for i, f := range sr.frames {
		if frameIndex(f) != i {
			t.Fatalf("frame %d is #%d: out of order", i, frameIndex(f))
		}
		if sr.frameAt[i] < healAt+time.Millisecond {
			t.Fatalf("frame %d at %v, before heal at %v plus latency", i, sr.frameAt[i], healAt)
		}
	}
	if s := w.nw.Stats(); s.Stalls != 1 || s.StallTimeouts != 0 {
		t.Fatalf("stalls %d timeouts %d, want 1 and 0", s.Stalls, s.StallTimeouts)
	}
}

func TestStallPastTimeoutResets(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.nw.Block("a", "b")
	sentAt := w.loop.Now()
	if err := c.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	w.run(20 * time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrTimeout) || cr.closeAt != sentAt+time.Millisecond+StallTimeoutDefault {
		t.Fatalf("sender closes %d at %v err %v, want ErrTimeout at %v", cr.closes, cr.closeAt, cr.err,
			sentAt+time.Millisecond+StallTimeoutDefault)
	}
	if err := c.Send([]byte("y")); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("send after reset: %v, want ErrClosed", err)
	}
	// The RST travels a->b, which is still blocked.
	if sr.closes != 0 {
		t.Fatalf("receiver closed (%v) across a blocked link", sr.err)
	}
	w.nw.Unblock("a", "b")
	w.run(time.Second)
	if sr.closes != 1 || !errors.Is(sr.err, sim.ErrReset) || len(sr.frames) != 0 {
		t.Fatalf("receiver closes %d err %v frames %d, want ErrReset and no frame", sr.closes, sr.err, len(sr.frames))
	}
	if s := w.nw.Stats(); s.StallTimeouts != 1 || s.Resets != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIdleConnectionAcrossPartitionNoticesNothing(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b", "c")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.nw.Partition([]string{"a"}, []string{"b", "c"})
	if !w.nw.Blocked("a", "b") || !w.nw.Blocked("b", "a") || !w.nw.Blocked("c", "a") || w.nw.Blocked("b", "c") {
		t.Fatal("partition blocked the wrong links")
	}
	w.run(time.Minute)
	if cr.closes+sr.closes != 0 {
		t.Fatalf("idle connection closed across a partition: %v %v", cr.err, sr.err)
	}
	w.nw.HealAll()
	if err := c.Send([]byte("after")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if len(sr.frames) != 1 {
		t.Fatalf("frame after heal not delivered")
	}
}

func TestFrameTooLarge(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{MaxFrameBytes: 100})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	if err := c.Send(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(make([]byte, 101)); err != nil {
		t.Fatal(err) // the sender does not know the receiver's limit
	}
	w.run(time.Second)
	if len(sr.frames) != 1 || sr.closes != 1 || !errors.Is(sr.err, sim.ErrFrameTooLarge) {
		t.Fatalf("receiver frames %d closes %d err %v, want 1 frame then ErrFrameTooLarge", len(sr.frames), sr.closes, sr.err)
	}
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrReset) {
		t.Fatalf("sender closes %d err %v, want ErrReset", cr.closes, cr.err)
	}
}

func TestGracefulCloseDeliversQueuedFirst(t *testing.T) {
	cfg := fixed
	cfg.Link.BandwidthBytesPerSec = 1 << 20
	w := newTestWorld(t, 1, cfg, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	for i := 0; i < 10; i++ {
		if err := c.Send(frameN(i, 10000)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if err := c.Send([]byte("late")); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("send after close: %v, want ErrClosed", err)
	}
	w.run(time.Second)
	if len(sr.frames) != 10 || sr.closes != 1 || sr.err != nil {
		t.Fatalf("receiver frames %d closes %d err %v, want 10 frames then a graceful close", len(sr.frames), sr.closes, sr.err)
	}
	if sr.closeAt < sr.frameAt[9] {
		t.Fatalf("close at %v before last frame at %v", sr.closeAt, sr.frameAt[9])
	}
	if cr.closes != 0 {
		t.Fatalf("closer got OnClose(%v)", cr.err)
	}
	if err := sr.conn.Send([]byte("x")); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("send on a peer-closed end: %v, want ErrClosed", err)
	}
	for _, h := range []string{"a", "b"} {
		if n := len(w.hosts[h].stack.ends); n != 0 {
			t.Fatalf("%s still holds %d ends after a graceful close", h, n)
		}
	}
}

func TestFramesToClosedEndAreDiscarded(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	sr.conn.Close()
	if err := c.Send([]byte("crosses the FIN")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if len(sr.frames) != 0 || sr.closes != 0 {
		t.Fatalf("closed end got frames %d closes %d", len(sr.frames), sr.closes)
	}
	if cr.closes != 1 || cr.err != nil {
		t.Fatalf("client closes %d err %v, want graceful", cr.closes, cr.err)
	}
	if s := w.nw.Stats(); s.FramesDiscarded != 1 {
		t.Fatalf("discarded %d, want 1", s.FramesDiscarded)
	}
}

func TestCrashWithResetResetsPeers(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	crashAt := w.loop.Now()
	w.crash("b", true)
	if err := c.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrReset) || cr.closeAt != crashAt+time.Millisecond {
		t.Fatalf("peer closes %d at %v err %v, want ErrReset one latency after the crash", cr.closes, cr.closeAt, cr.err)
	}
	if sr.closes != 0 || len(sr.frames) != 0 {
		t.Fatalf("crashed handler got callbacks: closes %d frames %d", sr.closes, len(sr.frames))
	}
}

func TestCrashResetStallsUnderPartition(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	_, cr, _ := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.nw.Partition([]string{"a"}, []string{"b"})
	w.crash("b", true)
	w.run(time.Minute)
	if cr.closes != 0 {
		t.Fatalf("RST crossed a partition: %v", cr.err)
	}
	w.nw.HealAll()
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrReset) {
		t.Fatalf("after heal closes %d err %v, want ErrReset", cr.closes, cr.err)
	}
}

func TestPowerLossPeerLearnsWhenItSends(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, _ := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.crash("b", false)
	w.run(time.Minute)
	if cr.closes != 0 {
		t.Fatalf("idle peer of a powered-off host closed: %v", cr.err)
	}
	sentAt := w.loop.Now()
	if err := c.Send([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Minute)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrTimeout) || cr.closeAt != sentAt+time.Millisecond+StallTimeoutDefault {
		t.Fatalf("closes %d at %v err %v, want ErrTimeout after the stall timeout", cr.closes, cr.closeAt, cr.err)
	}
}

func TestPowerLossRebootedPeerAnswersReset(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, _ := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.crash("b", false)
	w.run(time.Second)
	w.node("b").Boot()
	srv2 := w.listen("b", ":9092", sim.ConnOptions{})
	sentAt := w.loop.Now()
	if err := c.Send([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrReset) || cr.closeAt != sentAt+2*time.Millisecond {
		t.Fatalf("closes %d at %v err %v, want ErrReset one round trip after the send", cr.closes, cr.closeAt, cr.err)
	}
	if len(srv2.accepted) != 0 {
		t.Fatal("the new incarnation accepted a stale connection")
	}
	// The new incarnation serves new connections.
	w.connect("a", "b:9092", srv2, sim.ConnOptions{})
}

func TestPausedReceiverDefersWithoutTimeout(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.node("b").Pause()
	for i := 0; i < 3; i++ {
		if err := c.Send(frameN(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	w.run(30 * time.Second)
	if len(sr.frames) != 0 || cr.closes != 0 {
		t.Fatalf("paused node got %d frames; sender closed %v", len(sr.frames), cr.err)
	}
	w.node("b").Resume()
	w.run(time.Second)
	if len(sr.frames) != 3 || frameIndex(sr.frames[2]) != 2 {
		t.Fatalf("after resume %d frames", len(sr.frames))
	}
}

func TestSendBufferFullResets(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.nw.Block("a", "b")
	chunk := make([]byte, 1<<20-4)
	var err error
	sent := 0
	for ; sent < 300 && err == nil; sent++ {
		err = c.Send(chunk)
	}
	if !errors.Is(err, sim.ErrSendBufferFull) || sent != sim.MaxSendBufferBytes>>20+1 {
		t.Fatalf("send %d: %v, want ErrSendBufferFull on send %d", sent, err, sim.MaxSendBufferBytes>>20+1)
	}
	if err := c.Send(chunk); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("send after reset: %v, want ErrClosed", err)
	}
	w.nw.Unblock("a", "b")
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrSendBufferFull) {
		t.Fatalf("sender closes %d err %v", cr.closes, cr.err)
	}
	if sr.closes != 1 || !errors.Is(sr.err, sim.ErrReset) || len(sr.frames) != 0 {
		t.Fatalf("receiver closes %d err %v frames %d", sr.closes, sr.err, len(sr.frames))
	}
}

func TestBandwidthSerialisesTheLink(t *testing.T) {
	cfg := fixed
	cfg.Link.BandwidthBytesPerSec = 1_000_000
	w := newTestWorld(t, 1, cfg, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c1, _, s1 := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	c2, _, s2 := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	start := w.loop.Now()
	const size = 99_996 // 100,000 bytes on the wire with the length prefix
	for i := 0; i < 5; i++ {
		if err := c1.Send(frameN(i, size)); err != nil {
			t.Fatal(err)
		}
		if err := c2.Send(frameN(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	w.run(5 * time.Second)
	if len(s1.frames) != 5 || len(s2.frames) != 5 {
		t.Fatalf("frames %d %d", len(s1.frames), len(s2.frames))
	}
	// The two connections share the link: their frames alternate, each
	// taking 100ms to serialise.
	for i := 0; i < 5; i++ {
		want1 := start + time.Duration(2*i+1)*100*time.Millisecond + time.Millisecond
		want2 := want1 + 100*time.Millisecond
		if s1.frameAt[i] != want1 || s2.frameAt[i] != want2 {
			t.Fatalf("frame %d at %v and %v, want %v and %v", i, s1.frameAt[i], s2.frameAt[i], want1, want2)
		}
	}
	// The other direction has its own serialiser.
	if err := s1.conn.Send(frameN(0, size)); err != nil {
		t.Fatal(err)
	}
}

func TestStreamFraming(t *testing.T) {
	cfg := fixed
	cfg.ResegmentStreams = true
	w := newTestWorld(t, 3, cfg, "a", "b")
	stream := sim.ConnOptions{Framing: sim.FrameStream}

	// Stream to stream: the bytes arrive in order, the chunks cut anew.
	srv := w.listen("b", ":514", stream)
	c, _, sr := w.connect("a", "b:514", srv, stream)
	var sent bytes.Buffer
	for i := 0; i < 500; i++ {
		line := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%40) + "\n")
		sent.Write(line)
		if err := c.Send(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send(nil); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	got := bytes.Join(sr.frames, nil)
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("stream bytes differ: got %d bytes, sent %d", len(got), sent.Len())
	}
	if len(sr.frames) == 500 {
		t.Fatal("resegmentation kept every chunk as sent")
	}

	// Length-prefixed sender, stream reader: the reader sees the prefixes.
	c2, _, sr2 := w.connect("a", "b:514", srv, sim.ConnOptions{})
	if err := c2.Send([]byte("kafka")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if got := bytes.Join(sr2.frames, nil); !bytes.Equal(got, []byte("\x00\x00\x00\x05kafka")) {
		t.Fatalf("stream reader got %q", got)
	}

	// Stream sender, length-prefixed reader: frames are cut from the
	// stream whatever the chunks.
	srv3 := w.listen("b", ":9092", sim.ConnOptions{MaxFrameBytes: 1000})
	c3, _, sr3 := w.connect("a", "b:9092", srv3, stream)
	wire := []byte("\x00\x00\x00\x03one\x00\x00\x00\x03two\x00\x00\x00\x00\x00\x00\x00\x05three")
	for _, cut := range [][2]int{{0, 2}, {2, 9}, {9, 10}, {10, len(wire)}} {
		if err := c3.Send(wire[cut[0]:cut[1]]); err != nil {
			t.Fatal(err)
		}
	}
	w.run(time.Second)
	if len(sr3.frames) != 4 || string(sr3.frames[0]) != "one" || string(sr3.frames[1]) != "two" ||
		len(sr3.frames[2]) != 0 || string(sr3.frames[3]) != "three" {
		t.Fatalf("cut frames %q", sr3.frames)
	}
	if err := c3.Send([]byte("\x00\x00\x10\x00")); err != nil { // 4096 > 1000
		t.Fatal(err)
	}
	w.run(time.Second)
	if !errors.Is(sr3.err, sim.ErrFrameTooLarge) {
		t.Fatalf("oversized prefix: %v, want ErrFrameTooLarge", sr3.err)
	}
}

func TestTraceNotesEverySend(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	w.loop.Trace().Record()
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, _, _ := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	if err := c.Send(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	records, _ := w.loop.Trace().Records()
	last := records[len(records)-1]
	if last.Kind != sched.KindSend || last.Node != "a" || last.Label != "a:32768->b:9092 #1 512B" {
		t.Fatalf("last trace record %v", last)
	}
}

func TestNodeCrashWithoutNetworkCrashActsAsPowerLoss(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	srv := w.listen("b", ":9092", sim.ConnOptions{})
	c, cr, sr := w.connect("a", "b:9092", srv, sim.ConnOptions{})
	w.node("b").Crash()
	w.node("b").Boot()
	if err := c.Send([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if cr.closes != 1 || !errors.Is(cr.err, sim.ErrReset) {
		t.Fatalf("closes %d err %v, want ErrReset from the new incarnation", cr.closes, cr.err)
	}
	if sr.closes != 0 || len(sr.frames) != 0 {
		t.Fatalf("old incarnation's handler called: closes %d frames %d", sr.closes, len(sr.frames))
	}
}
