package osenv

import (
	"time"

	"github.com/sluice-sim/sluice/sim"
)

type clock struct {
	node   *Node
	origin time.Time
}

func (c *clock) Now() time.Time { return time.Now() }

func (c *clock) Mono() time.Duration { return time.Since(c.origin) }

func (c *clock) AfterFunc(d time.Duration, f func()) sim.Timer {
	t := &timer{}
	t.real = time.AfterFunc(d, func() {
		c.node.Post(func() {
			if t.stopped {
				return
			}
			t.fired = true
			f()
		})
	})
	return t
}

// timer's flags are touched only on the loop, so a Stop on the loop after
// the real timer fired but before its callback ran still prevents the call,
// as it does in simulation.
type timer struct {
	real    *time.Timer
	stopped bool
	fired   bool
}

func (t *timer) Stop() bool {
	if t.fired || t.stopped {
		return false
	}
	t.stopped = true
	t.real.Stop()
	return true
}
