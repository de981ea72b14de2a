package simnet

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// busyScenario runs a little of everything the network does: connections
// with jittered, bandwidth-bound frames echoed back, lossy datagrams, a
// partition that heals and a killed host, and returns the trace.
func busyScenario(t *testing.T, seed uint64) (*sched.Trace, Stats) {
	cfg := Config{Link: LinkConfig{
		Latency:              sched.Latency{Base: time.Millisecond, Jitter: 200 * time.Microsecond},
		BandwidthBytesPerSec: 10 << 20,
		DropRate:             0.05, DupRate: 0.05,
	}}
	w := newTestWorld(t, seed, cfg, "a", "b", "c")
	w.loop.Trace().Record()
	_, err := w.net("b").Listen(":9092", sim.ConnOptions{}, func(c sim.Conn) sim.ConnHandler {
		r := newRecorder(w.loop)
		r.onFrame = func(c sim.Conn, f []byte) { _ = c.Send(f) }
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.listenPacket("c", ":5140")
	pc, _ := w.listenPacket("a", ":0")
	for _, client := range []string{"a", "c"} {
		c := w.net(client).Dial("b:9092", sim.ConnOptions{}, newRecorder(w.loop))
		for i := 0; i < 200; i++ {
			at := time.Duration(i) * time.Millisecond
			frame := frameN(i, 10+i*37%3000)
			w.loop.At(at, w.node(client), sched.KindUser, 0, func() { _ = c.Send(frame) })
		}
	}
	for i := 0; i < 100; i++ {
		w.loop.At(time.Duration(i)*time.Millisecond, w.node("a"), sched.KindUser, 0, func() {
			_ = pc.SendTo("c:5140", frameN(i, 64))
		})
	}
	w.at(50*time.Millisecond, func() { w.nw.Partition([]string{"a"}, []string{"b", "c"}) })
	w.at(120*time.Millisecond, func() { w.nw.HealAll() })
	w.at(300*time.Millisecond, func() { w.crash("c", true) })
	w.run(time.Minute)
	return w.loop.Trace(), w.nw.Stats()
}

func TestSameSeedSameTrace(t *testing.T) {
	first, stats := busyScenario(t, 42)
	second, _ := busyScenario(t, 42)
	if stats.FramesDelivered < 500 || stats.DatagramsDelivered < 50 || stats.Stalls == 0 || stats.Resets == 0 {
		t.Fatalf("scenario too quiet to prove anything: %+v", stats)
	}
	a, _ := first.Records()
	b, _ := second.Records()
	if d, diverged := sched.Diverge(a, b); diverged {
		t.Fatalf("same seed, different runs:\n%s", d)
	}
	if first.Hash() != second.Hash() || first.Count() != second.Count() {
		t.Fatalf("same seed, hashes %#x and %#x", first.Hash(), second.Hash())
	}
	other, _ := busyScenario(t, 43)
	if other.Hash() == first.Hash() {
		t.Fatalf("seeds 42 and 43 gave the same trace %#x", first.Hash())
	}
}
