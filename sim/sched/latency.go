package sched

import (
	"math/rand/v2"
	"time"
)

// Latency is a delay distribution: a fixed floor plus an exponential tail
// whose mean is Jitter, cut at TailMax times Jitter so one unlucky draw
// cannot stall a run. It fits network hops and device service times, both
// of which cluster near a floor with a long thin tail.
type Latency struct {
	Base   time.Duration `json:"base"`
	Jitter time.Duration `json:"jitter"`
}

// TailMax bounds a draw at Base + TailMax*Jitter.
const TailMax = 20

// Sample draws one delay.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	if l.Jitter <= 0 {
		return l.Base
	}
	tail := r.ExpFloat64()
	if tail > TailMax {
		tail = TailMax
	}
	return l.Base + time.Duration(tail*float64(l.Jitter))
}
