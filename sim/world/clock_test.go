package world

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// TestDriftingTimerWaitsItsFullNodeTime: on a node whose clock runs fast
// or slow, a timer fires only once the node's own monotonic clock has
// advanced by its whole duration. A timer that fired early would let a
// wait re-armed for the rest ("wait = deadline - Mono()") fire at the
// same instant forever.
func TestDriftingTimerWaitsItsFullNodeTime(t *testing.T) {
	for _, ppm := range []float64{292, -292, 500, -500, 1} {
		w := New(Config{Seed: 1})
		var env sim.Env
		w.AddNode("n", func(e sim.Env) { env = e })
		w.Run(time.Millisecond, 0)
		if err := w.ClockDrift("n", ppm); err != nil {
			t.Fatal(err)
		}
		for _, d := range []time.Duration{1, 2, 3, 7, 999, time.Millisecond + 1} {
			start := env.Clock.Mono()
			var firedAt time.Duration
			env.Clock.AfterFunc(d, func() { firedAt = env.Clock.Mono() })
			w.Run(w.Now()+2*d+time.Microsecond, 0)
			if firedAt-start < d {
				t.Fatalf("drift %v ppm: a %v timer fired after %v of node time", ppm, d, firedAt-start)
			}
		}
	}
}
