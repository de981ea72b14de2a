package world

import (
	"math"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// nodeClock is a node's view of simulated time. Its oscillator runs fast or
// slow by driftPPM; its wall clock also carries an offset (skew plus every
// jump). Monotonic time is unaffected by the offset, as CLOCK_MONOTONIC is
// unaffected by settimeofday.
type nodeClock struct {
	loop     *sched.Loop
	node     *sched.Node
	epoch    time.Time
	offset   time.Duration
	driftPPM float64
	// monoBase and monoAt anchor monotonic time so that changing the drift
	// does not make it jump.
	monoBase time.Duration
	monoAt   time.Duration
}

func (c *nodeClock) rate() float64 { return 1 + c.driftPPM/1e6 }

func (c *nodeClock) Now() time.Time {
	return c.epoch.Add(c.Mono() + c.offset)
}

func (c *nodeClock) Mono() time.Duration {
	elapsed := c.loop.Now() - c.monoAt
	if c.driftPPM == 0 {
		// What the float arithmetic below gives at a rate of exactly 1
		// (for any run shorter than 2^53 ns, about 104 days), without it:
		// clients read the clock several times per request.
		return c.monoBase + elapsed
	}
	return c.monoBase + time.Duration(float64(elapsed)*c.rate())
}

func (c *nodeClock) setDrift(ppm float64) {
	c.monoBase = c.Mono()
	c.monoAt = c.loop.Now()
	c.driftPPM = ppm
}

// AfterFunc converts node time into simulated time: a node whose clock runs
// fast sees its timers fire early in real terms.
func (c *nodeClock) AfterFunc(d time.Duration, f func()) sim.Timer {
	// Rounded up, so that the node's own clock has advanced by at least d
	// when the timer fires: rounded down, a timer re-armed for what is
	// left of a wait could fire with no node time passed and spin.
	if c.driftPPM == 0 && d >= 0 && d < 1<<53 {
		return c.loop.AfterTimer(d, c.node, f) // what the arithmetic below gives at a rate of 1
	}
	rate := c.rate()
	real := time.Duration(math.Ceil(float64(d) / rate))
	if time.Duration(float64(real)*rate) < d {
		real++ // float rounding
	}
	return c.loop.AfterTimer(real, c.node, f)
}
