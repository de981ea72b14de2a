package faults

import (
	"fmt"
	"time"
)

// Target is a world that faults act on; sim/world's World is one.
type Target interface {
	NodeNames() []string
	// At runs fn at simulated time t.
	At(t time.Duration, fn func())

	Kill(node string) error
	PowerLoss(node string) error
	Restart(node string) error
	Pause(node string) error
	Resume(node string) error
	Partition(groups [][]string) error
	Block(from, to string) error
	Heal()
	SlowDisk(node string, factor float64) error
	FailSyncs(node string, count int) error
	FillDisk(node string) error
	Corrupt(node string, count int) error
	ReadErrors(node string, rate float64) error
	DiskHeal(node string) error
	ClockJump(node string, by time.Duration) error
	ClockDrift(node string, ppm float64) error
}

// Install validates the schedule against the target's nodes and schedules
// every action on it.
func (s Schedule) Install(t Target) error {
	if err := s.Validate(t.NodeNames()); err != nil {
		return fmt.Errorf("install fault schedule: %w", err)
	}
	for _, a := range s.Actions {
		a := a
		t.At(time.Duration(a.At), func() {
			// The schedule was validated against these nodes, so an
			// error here is a bug in the world or in validation.
			if err := a.Apply(t); err != nil {
				panic(fmt.Sprintf("apply validated fault %s: %v", a, err))
			}
		})
	}
	return nil
}

// Apply performs the action on the target now.
func (a Action) Apply(t Target) error {
	switch a.Op {
	case Kill:
		return t.Kill(a.Node)
	case PowerLoss:
		return t.PowerLoss(a.Node)
	case Restart:
		return t.Restart(a.Node)
	case Pause:
		return t.Pause(a.Node)
	case Resume:
		return t.Resume(a.Node)
	case Partition:
		return t.Partition(a.Groups)
	case Block:
		return t.Block(a.From, a.To)
	case Heal:
		t.Heal()
		return nil
	case SlowDisk:
		return t.SlowDisk(a.Node, a.Factor)
	case FailSyncs:
		return t.FailSyncs(a.Node, a.Count)
	case DiskFull:
		return t.FillDisk(a.Node)
	case Corrupt:
		return t.Corrupt(a.Node, a.Count)
	case ReadErrors:
		return t.ReadErrors(a.Node, a.Rate)
	case DiskHeal:
		return t.DiskHeal(a.Node)
	case ClockJump:
		return t.ClockJump(a.Node, time.Duration(a.By))
	case ClockDrift:
		return t.ClockDrift(a.Node, a.PPM)
	}
	return fmt.Errorf("unknown op %q", a.Op)
}
