package faults

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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
// quarter to four times and from a third to three times. Last, each of
// SwarmOccasional joins the kinds with probability SwarmOccasionalShare.
// The variant lists no occasional kind of its own.
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
	for _, k := range p.SwarmOccasional {
		if r.Float64() < p.SwarmOccasionalShare {
			v.Kinds = append(v.Kinds, k)
		}
	}
	v.SwarmOccasional, v.SwarmOccasionalShare = nil, 0
	return v
}

// scaleLogUniform multiplies d by a factor drawn log-uniformly from
// [1/spread, spread].
func scaleLogUniform(r *rand.Rand, d time.Duration, spread float64) time.Duration {
	factor := math.Exp((2*r.Float64() - 1) * math.Log(spread))
	return max(time.Duration(float64(d)*factor), time.Millisecond)
}

// ProfileSpec is a fault profile a user writes (in a scenario file): what
// it sets replaces the scenario's own; what it leaves out keeps it.
type ProfileSpec struct {
	Kinds        []Kind   `json:"kinds,omitempty"`
	IntervalMean Duration `json:"interval_mean,omitempty"`
	DurationMax  Duration `json:"duration_max,omitempty"`
}

// Validate checks the spec's kinds and durations; errors name the field.
func (s ProfileSpec) Validate() error {
	for i, k := range s.Kinds {
		if !slices.Contains(allKinds, k) {
			return fmt.Errorf("kinds[%d]: unknown fault kind %q (known: %s)", i, k, kindNames())
		}
	}
	if s.IntervalMean < 0 {
		return fmt.Errorf("interval_mean: %v is negative", s.IntervalMean)
	}
	if s.DurationMax < 0 {
		return fmt.Errorf("duration_max: %v is negative", s.DurationMax)
	}
	return nil
}

// Apply returns p with the spec's settings in place of its own. Kinds
// the spec names replace the scenario's occasional swarm kinds too.
func (s ProfileSpec) Apply(p Profile) Profile {
	if len(s.Kinds) > 0 {
		p.Kinds = slices.Clone(s.Kinds)
		p.SwarmOccasional, p.SwarmOccasionalShare = nil, 0
	}
	if s.IntervalMean > 0 {
		p.IntervalMean = time.Duration(s.IntervalMean)
	}
	if s.DurationMax > 0 {
		p.DurationMax = time.Duration(s.DurationMax)
	}
	return p
}

// allKinds lists every fault kind a profile may draw.
var allKinds = []Kind{KindKill, KindPowerLoss, KindPause, KindPartition, KindBlock, KindSlowDisk,
	KindFailSyncs, KindDiskFull, KindCorrupt, KindReadErrors, KindMetaErrors, KindClockJump, KindClockDrift}

func kindNames() string {
	names := make([]string, len(allKinds))
	for i, k := range allKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
