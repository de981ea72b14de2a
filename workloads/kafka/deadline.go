package kafka

import (
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// deadline is a client's one wake-up timer: it is armed for the earliest
// moment the client has something to do, and re-armed only when that
// moment changes, so a busy client does not churn timers.
type deadline struct {
	timer  sim.Timer
	atMono time.Duration
	// fire is what the timer runs, set once by the owner; onTimer wraps
	// it, bound once: arming is frequent, and a closure or method value
	// made per arm was a fair part of a client's allocations.
	fire    func()
	onTimer func()
}

// arm makes fire run at monotonic time at (a value ≤ now or < 0 means no
// deadline and leaves any armed timer alone, as it will fire harmlessly).
func (d *deadline) arm(clock sim.Clock, now, at time.Duration) {
	if at <= now || (d.timer != nil && d.atMono == at) {
		return
	}
	d.stop()
	d.atMono = at
	if d.onTimer == nil {
		d.onTimer = func() {
			d.timer = nil
			d.fire()
		}
	}
	d.timer = clock.AfterFunc(at-now, d.onTimer)
}

// stop cancels the armed timer, if any.
func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// earliest keeps the earliest of the moments it is offered after now.
type earliest struct {
	now, at time.Duration
}

func (e *earliest) consider(at time.Duration) {
	if at > e.now && (e.at <= e.now || at < e.at) {
		e.at = at
	}
}
