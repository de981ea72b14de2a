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
	KindMetaErrors Kind = "meta-errors"
	KindClockJump  Kind = "clock-jump"
	KindClockDrift Kind = "clock-drift"
)

// Profile says what faults a generated schedule may contain.
type Profile struct {
	// Targets may crash, pause, and have disk and clock faults.
	Targets []string
	// CorruptTargets are the targets whose stored bytes a corrupt fault
	// may flip; all Targets when empty. A scenario names fewer when some
	// targets keep data that nothing could repair (a controller stops on
	// a damaged metadata log for an operator to look at).
	CorruptTargets []string
	// CorruptNodesMax bounds how many of the corrupt targets one schedule
	// flips bits on (0: no bound). A flipped bit stays on the platter
	// until the cluster reads it and fetches the range again from another
	// replica, and the schedule cannot know when (or whether) that
	// happens, so a target counts as damaged from its first flip to the
	// end of the run. A scenario whose targets each hold a replica of
	// every partition sets it below the replication factor: a schedule
	// that flips bits on every replica asks the cluster for data no
	// replica holds, which no real cluster could give back.
	CorruptNodesMax int
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
	// SwarmOccasional are kinds a swarm variant (Swarm) adds to Kinds
	// with probability SwarmOccasionalShare each, drawn after the rest
	// of the variant: a seed that draws none keeps the variant, and so
	// the schedule, it had before they were added. Generate alone does
	// not draw them.
	SwarmOccasional      []Kind
	SwarmOccasionalShare float64
}

// generatedMax bounds the faults one schedule draws.
const generatedMax = 10_000

// Generate draws a schedule from r. The same r state and profile always
// give the same schedule. Every action it writes acts where it falls: it
// keeps a model of the world (which nodes are down or paused, which disks
// are faulted, whether the network is cut) and draws a fault only on what
// it can act on, so a kill never lands on a node already down and every
// recovery undoes exactly one fault. Each fault ends by p.End, so the world
// is healed from then on.
func Generate(r *rand.Rand, p Profile) Schedule {
	var s Schedule
	if len(p.Targets) == 0 || len(p.Kinds) == 0 || p.IntervalMean <= 0 {
		return s
	}
	m := newGenModel()
	t := p.Start
	for i := 0; i < generatedMax; i++ {
		t += time.Duration(r.ExpFloat64() * float64(p.IntervalMean))
		if t >= p.End {
			break
		}
		kind := p.Kinds[r.IntN(len(p.Kinds))]
		last := min(p.End, t+time.Duration(1+r.Int64N(int64(max(p.DurationMax, 1)))))
		s.Actions = append(s.Actions, p.draw(r, m, kind, t, last)...)
	}
	s.Sort()
	return s
}

// genModel is what a generated schedule has done to the world so far: until
// when each node is down, paused or has a faulted disk, and until when the
// network is cut. Faults are drawn in time order, so "busy until" is all it
// needs.
type genModel struct {
	nodeBusyUntil map[string]time.Duration // down or paused
	diskBusyUntil map[string]time.Duration
	netBusyUntil  time.Duration
	corrupted     []string // the targets flipped so far, in draw order
}

func newGenModel() *genModel {
	return &genModel{nodeBusyUntil: map[string]time.Duration{}, diskBusyUntil: map[string]time.Duration{}}
}

// pickCorrupt draws the target of a bit flip: any corrupt target until
// CorruptNodesMax of them were flipped, then one of those. The first
// draw is the one a schedule without the bound makes, so schedules that
// stay within it are drawn as before.
func (p Profile) pickCorrupt(r *rand.Rand, m *genModel) string {
	targets := p.Targets
	if len(p.CorruptTargets) > 0 {
		targets = p.CorruptTargets
	}
	node := targets[r.IntN(len(targets))]
	if p.CorruptNodesMax > 0 && len(m.corrupted) >= p.CorruptNodesMax && !slices.Contains(m.corrupted, node) {
		node = m.corrupted[r.IntN(len(m.corrupted))]
	}
	if !slices.Contains(m.corrupted, node) {
		m.corrupted = append(m.corrupted, node)
	}
	return node
}

// pick draws one of the targets free at time at in busyUntil, or "" if
// none is. Drawing among the free ones, in the profile's order, keeps the
// choice a function of the seed.
func (p Profile) pick(r *rand.Rand, busyUntil map[string]time.Duration, at time.Duration) string {
	free := make([]string, 0, len(p.Targets))
	for _, n := range p.Targets {
		if busyUntil[n] <= at {
			free = append(free, n)
		}
	}
	if len(free) == 0 {
		return ""
	}
	return free[r.IntN(len(free))]
}

func (p Profile) draw(r *rand.Rand, m *genModel, kind Kind, at, until time.Duration) []Action {
	start, end := Duration(at), Duration(until)
	switch kind {
	case KindKill, KindPowerLoss, KindPause:
		node := p.pick(r, m.nodeBusyUntil, at)
		if node == "" {
			return nil
		}
		m.nodeBusyUntil[node] = until
		switch kind {
		case KindKill:
			return []Action{{At: start, Op: Kill, Node: node}, {At: end, Op: Restart, Node: node}}
		case KindPowerLoss:
			return []Action{{At: start, Op: PowerLoss, Node: node}, {At: end, Op: Restart, Node: node}}
		}
		return []Action{{At: start, Op: Pause, Node: node}, {At: end, Op: Resume, Node: node}}
	case KindPartition, KindBlock:
		if len(p.Targets)+len(p.Clients) < 2 || m.netBusyUntil > at {
			return nil // one node has no link to cut; a heal ends every cut
		}
		m.netBusyUntil = until
		if kind == KindPartition {
			return []Action{{At: start, Op: Partition, Groups: p.split(r)}, {At: end, Op: Heal}}
		}
		from, to := p.pair(r)
		return []Action{{At: start, Op: Block, From: from, To: to}, {At: end, Op: Heal}}
	case KindSlowDisk, KindFailSyncs, KindDiskFull, KindReadErrors, KindMetaErrors:
		node := p.pick(r, m.diskBusyUntil, at)
		if node == "" {
			return nil // a disk-heal ends every disk fault of its node
		}
		m.diskBusyUntil[node] = until
		return []Action{diskFault(r, kind, node, start), {At: end, Op: DiskHeal, Node: node}}
	case KindCorrupt:
		return []Action{{At: start, Op: Corrupt, Node: p.pickCorrupt(r, m), Count: 1 + r.IntN(3)}}
	case KindClockJump:
		by := time.Duration(r.Int64N(int64(10*time.Minute))) - 5*time.Minute
		if by == 0 {
			by = time.Second // zero would read as "field missing"
		}
		return []Action{{At: start, Op: ClockJump, Node: p.Targets[r.IntN(len(p.Targets))], By: Duration(by)}}
	case KindClockDrift:
		ppm := float64(r.IntN(1001) - 500)
		if ppm == 0 {
			ppm = 1
		}
		return []Action{{At: start, Op: ClockDrift, Node: p.Targets[r.IntN(len(p.Targets))], PPM: ppm}}
	}
	panic("faults: unknown kind " + string(kind))
}

// diskFault is the action that starts a disk fault of the given kind.
func diskFault(r *rand.Rand, kind Kind, node string, at Duration) Action {
	switch kind {
	case KindSlowDisk:
		return Action{At: at, Op: SlowDisk, Node: node, Factor: float64(2 + r.IntN(99))}
	case KindFailSyncs:
		return Action{At: at, Op: FailSyncs, Node: node, Count: 1 + r.IntN(3)}
	case KindDiskFull:
		return Action{At: at, Op: DiskFull, Node: node}
	case KindMetaErrors:
		// Rarer than read errors: a log calls these operations a few
		// times a second, and almost every failure costs a restart.
		return Action{At: at, Op: MetaErrors, Node: node, Rate: 0.001 + r.Float64()*0.05}
	}
	return Action{At: at, Op: ReadErrors, Node: node, Rate: 0.001 + r.Float64()*0.1}
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
