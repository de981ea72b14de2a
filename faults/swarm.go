package faults

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Swarm testing (Groce et al., 2012) gives each seed its own fault mix
// rather than every fault kind at one rate: a run with few kinds on
// exercises deep paths of those kinds that a crowd of other faults would
// cut short, and a swarm of such runs covers more than as many runs of one
// mix.

// Swarm draws a variant of the profile from r: each kind is kept with
// probability one half (at least one is), and the mean interval and the
// longest duration are scaled by factors drawn log-uniformly from a
// quarter to four times and from a third to three times.
func (p Profile) Swarm(r *rand.Rand) Profile {
	if len(p.Kinds) == 0 {
		return p
	}
	kinds := make([]Kind, 0, len(p.Kinds))
	for _, k := range p.Kinds {
		if r.IntN(2) == 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = append(kinds, p.Kinds[r.IntN(len(p.Kinds))])
	}
	v := p
	v.Kinds = slices.Clip(kinds)
	v.IntervalMean = scaleLogUniform(r, p.IntervalMean, 4)
	v.DurationMax = scaleLogUniform(r, p.DurationMax, 3)
	return v
}

// scaleLogUniform multiplies d by a factor drawn log-uniformly from
// [1/spread, spread].
func scaleLogUniform(r *rand.Rand, d time.Duration, spread float64) time.Duration {
	factor := math.Exp((2*r.Float64() - 1) * math.Log(spread))
	return max(time.Duration(float64(d)*factor), time.Millisecond)
}
