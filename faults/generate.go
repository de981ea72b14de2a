package faults

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is a family of faults a generator may draw.
type Kind string

// Fault kinds for Profile.Kinds.
const (
	KindKill       Kind = "kill"
	KindPowerLoss  Kind = "power-loss"
	KindPause      Kind = "pause"
	KindPartition  Kind = "partition"
	KindBlock      Kind = "block"
	KindSlowDisk   Kind = "slow-disk"
	KindFailSyncs  Kind = "fail-syncs"
	KindDiskFull   Kind = "disk-full"
	KindCorrupt    Kind = "corrupt"
	KindReadErrors Kind = "read-errors"
	KindClockJump  Kind = "clock-jump"
	KindClockDrift Kind = "clock-drift"
)

// Profile says what faults a generated schedule may contain.
type Profile struct {
	// Targets may crash, pause, and have disk and clock faults.
	Targets []string
	// Clients are only ever cut off from targets by the network.
	Clients []string
	// Faults start in [Start, End); at End everything heals: partitions
	// end, paused nodes resume, crashed nodes restart, disks recover.
	Start, End time.Duration
	// IntervalMean is the mean time between faults.
	IntervalMean time.Duration
	// DurationMax bounds how long one fault lasts before its recovery.
	DurationMax time.Duration
	Kinds       []Kind
}

// generatedMax bounds the faults one schedule draws.
const generatedMax = 10_000

// Generate draws a schedule from r. The same r state and profile always
// give the same schedule.
func Generate(r *rand.Rand, p Profile) Schedule {
	var s Schedule
	if len(p.Targets) == 0 || len(p.Kinds) == 0 || p.IntervalMean <= 0 {
		return s
	}
	t := p.Start
	for i := 0; i < generatedMax; i++ {
		t += time.Duration(r.ExpFloat64() * float64(p.IntervalMean))
		if t >= p.End {
			break
		}
		kind := p.Kinds[r.IntN(len(p.Kinds))]
		last := min(p.End, t+time.Duration(1+r.Int64N(int64(max(p.DurationMax, 1)))))
		s.Actions = append(s.Actions, p.draw(r, kind, t, last)...)
	}
	s.Actions = append(s.Actions, p.healAll()...)
	s.Sort()
	return s
}

func (p Profile) draw(r *rand.Rand, kind Kind, at, until time.Duration) []Action {
	node := p.Targets[r.IntN(len(p.Targets))]
	if (kind == KindPartition || kind == KindBlock) && len(p.Targets)+len(p.Clients) < 2 {
		return nil // one node has no link to cut
	}
	start, end := Duration(at), Duration(until)
	switch kind {
	case KindKill, KindPowerLoss:
		op := Kill
		if kind == KindPowerLoss {
			op = PowerLoss
		}
		return []Action{{At: start, Op: op, Node: node}, {At: end, Op: Restart, Node: node}}
	case KindPause:
		return []Action{{At: start, Op: Pause, Node: node}, {At: end, Op: Resume, Node: node}}
	case KindPartition:
		return []Action{{At: start, Op: Partition, Groups: p.split(r)}, {At: end, Op: Heal}}
	case KindBlock:
		from, to := p.pair(r)
		return []Action{{At: start, Op: Block, From: from, To: to}, {At: end, Op: Heal}}
	case KindSlowDisk:
		factor := float64(2 + r.IntN(99))
		return []Action{{At: start, Op: SlowDisk, Node: node, Factor: factor}, {At: end, Op: DiskHeal, Node: node}}
	case KindFailSyncs:
		return []Action{{At: start, Op: FailSyncs, Node: node, Count: 1 + r.IntN(3)}}
	case KindDiskFull:
		return []Action{{At: start, Op: DiskFull, Node: node}, {At: end, Op: DiskHeal, Node: node}}
	case KindCorrupt:
		return []Action{{At: start, Op: Corrupt, Node: node, Count: 1 + r.IntN(3)}}
	case KindReadErrors:
		rate := 0.001 + r.Float64()*0.1
		return []Action{{At: start, Op: ReadErrors, Node: node, Rate: rate}, {At: end, Op: DiskHeal, Node: node}}
	case KindClockJump:
		by := time.Duration(r.Int64N(int64(10*time.Minute))) - 5*time.Minute
		if by == 0 {
			by = time.Second // zero would read as "field missing"
		}
		return []Action{{At: start, Op: ClockJump, Node: node, By: Duration(by)}}
	case KindClockDrift:
		ppm := float64(r.IntN(1001) - 500)
		if ppm == 0 {
			ppm = 1
		}
		return []Action{{At: start, Op: ClockDrift, Node: node, PPM: ppm}}
	}
	panic("faults: unknown kind " + string(kind))
}

// split cuts every node into two non-empty groups.
func (p Profile) split(r *rand.Rand) [][]string {
	all := append(slices.Clone(p.Targets), p.Clients...)
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	cut := 1 + r.IntN(len(all)-1)
	a, b := slices.Clone(all[:cut]), slices.Clone(all[cut:])
	slices.Sort(a)
	slices.Sort(b)
	return [][]string{a, b}
}

// pair draws a directed link with at least one end a target.
func (p Profile) pair(r *rand.Rand) (string, string) {
	all := append(slices.Clone(p.Targets), p.Clients...)
	target := p.Targets[r.IntN(len(p.Targets))]
	other := all[r.IntN(len(all))]
	for other == target && len(all) > 1 {
		other = all[r.IntN(len(all))]
	}
	if r.IntN(2) == 0 {
		return target, other
	}
	return other, target
}

func (p Profile) healAll() []Action {
	at := Duration(p.End)
	acts := []Action{{At: at, Op: Heal}}
	for _, n := range p.Targets {
		acts = append(acts,
			Action{At: at, Op: Resume, Node: n},
			Action{At: at, Op: Restart, Node: n},
			Action{At: at, Op: DiskHeal, Node: n})
	}
	return acts
}
