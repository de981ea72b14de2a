package simnet

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// BenchmarkFrames measures frames delivered per second of real time:
// clients keep a window of frames in flight to an echo server, sending a
// new frame for every echo, over a jittered link. Both directions count.
// With a window of one (ping-pong) every frame is its own delivery event;
// with a wide window, frames that arrive together share one.
func BenchmarkFrames(b *testing.B) {
	for _, shape := range []struct{ conns, window int }{{100, 1}, {1, 64}, {100, 64}} {
		name := fmt.Sprintf("%d-conns-window-%d", shape.conns, shape.window)
		b.Run(name, func(b *testing.B) {
			cfg := Config{Link: LinkConfig{Latency: sched.Latency{Base: 200 * time.Microsecond, Jitter: 50 * time.Microsecond}}}
			w := newTestWorld(b, 1, cfg, "client", "server")
			frame := make([]byte, 100)
			_, err := w.net("server").Listen(":9092", sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler {
				return echoHandler{}
			})
			if err != nil {
				b.Fatal(err)
			}
			target := uint64(b.N)
			for i := 0; i < shape.conns; i++ {
				w.net("client").Dial("server:9092", sim.ConnOptions{}, &windowClient{frame: frame, window: shape.window})
			}
			w.run(10 * time.Millisecond) // connect
			start := w.nw.Stats().FramesDelivered
			eventsStart := w.loop.Dispatched()
			b.ReportAllocs()
			b.ResetTimer()
			for w.nw.Stats().FramesDelivered-start < target && w.loop.Step() {
			}
			b.StopTimer()
			delivered := w.nw.Stats().FramesDelivered - start
			if delivered < target {
				b.Fatalf("delivered %d of %d frames", delivered, target)
			}
			b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(w.loop.Dispatched()-eventsStart)/float64(delivered), "events/frame")
		})
	}
}

type echoHandler struct{}

func (echoHandler) OnOpen(sim.Conn)              {}
func (echoHandler) OnFrame(c sim.Conn, f []byte) { _ = c.Send(f) }
func (echoHandler) OnClose(sim.Conn, error)      {}

type windowClient struct {
	frame  []byte
	window int
}

func (h *windowClient) OnOpen(c sim.Conn) {
	for i := 0; i < h.window; i++ {
		_ = c.Send(h.frame)
	}
}
func (h *windowClient) OnFrame(c sim.Conn, f []byte) { _ = c.Send(h.frame) }
func (h *windowClient) OnClose(sim.Conn, error)      {}
