package world

import (
	"math"
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

// TestUndriftedClockMatchesTheArithmetic: a node clock without drift
// (whose Mono and AfterFunc skip the float arithmetic) reads and times
// exactly as the arithmetic at a rate of 1 does, after a drift was set
// and cleared too, so the shortcut cannot change a run.
func TestUndriftedClockMatchesTheArithmetic(t *testing.T) {
	w := New(Config{Seed: 2})
	var env sim.Env
	w.AddNode("n", func(e sim.Env) { env = e })
	w.Run(time.Millisecond, 0)
	for round, ppm := range []float64{0, 300, 0} {
		if err := w.ClockDrift("n", ppm); err != nil {
			t.Fatal(err)
		}
		c := env.Clock.(*nodeClock)
		for _, d := range []time.Duration{0, 1, 3, 999, 7 * time.Millisecond, 30 * time.Second} {
			elapsed := c.loop.Now() - c.monoAt
			want := c.monoBase + time.Duration(float64(elapsed)*c.rate())
			if got := c.Mono(); got != want {
				t.Fatalf("round %d: Mono %v, the arithmetic gives %v", round, got, want)
			}
			start := w.Now()
			var firedAt time.Duration
			env.Clock.AfterFunc(d, func() { firedAt = w.Now() })
			w.Run(start+2*d+time.Microsecond, 0)
			wantReal := time.Duration(math.Ceil(float64(d) / c.rate()))
			if time.Duration(float64(wantReal)*c.rate()) < d {
				wantReal++
			}
			if firedAt-start != wantReal {
				t.Fatalf("round %d, drift %v: a %v timer fired after %v, the arithmetic says %v", round, ppm, d, firedAt-start, wantReal)
			}
		}
	}
}
