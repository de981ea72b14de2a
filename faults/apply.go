package faults

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/sim"
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
	Heal() error
	SlowDisk(node string, factor float64) error
	FailSyncs(node string, count int) error
	FillDisk(node string) error
	Corrupt(node string, count int) error
	ReadErrors(node string, rate float64) error
	MetaErrors(node string, rate float64) error
	DiskHeal(node string) error
	ClockJump(node string, by time.Duration) error
	ClockDrift(node string, ppm float64) error
}

// Install validates the schedule against the target's nodes and schedules
// every action on it. The returned Tally fills in as the actions come due:
// what each did, and which found nothing to act on.
func (s Schedule) Install(t Target) (*Tally, error) {
	if err := s.Validate(t.NodeNames()); err != nil {
		return nil, fmt.Errorf("install fault schedule: %w", err)
	}
	tally := &Tally{Scheduled: len(s.Actions), Fired: map[Op]int{}, actions: s.Actions, ran: make([]bool, len(s.Actions))}
	for i, a := range s.Actions {
		t.At(time.Duration(a.At), func() {
			tally.ran[i] = true
			err := a.Apply(t)
			switch {
			case err == nil:
				tally.Applied++
				tally.Fired[a.Op]++
			case errors.Is(err, sim.ErrNoEffect):
				tally.warn(i, a, err.Error())
			default:
				// The schedule was validated against these nodes, so any
				// other error is a bug in the world or in validation.
				panic(fmt.Sprintf("apply validated fault %s: %v", a, err))
			}
		})
	}
	return tally, nil
}

// Tally counts what a schedule's actions did in a run.
type Tally struct {
	// Scheduled is the number of actions in the schedule.
	Scheduled int
	// Applied is the number that acted on the world.
	Applied int
	// Fired counts the actions that acted, by op: the run's fault coverage.
	Fired map[Op]int
	// Warnings name the actions that did not act, in the order found:
	// those that found nothing to act on and those that fell after the
	// run ended.
	Warnings []string

	actions []Action
	ran     []bool
}

func (t *Tally) warn(i int, a Action, why string) {
	t.Warnings = append(t.Warnings, fmt.Sprintf("actions[%d] (%s at %v): %s", i, a.Label(), a.At, why))
}

// NoteUnreached records, once the run is over, the actions that never came
// due because the run ended at end first.
func (t *Tally) NoteUnreached(end time.Duration) {
	for i, a := range t.actions {
		if !t.ran[i] {
			t.warn(i, a, fmt.Sprintf("falls after the run ends at %v", end))
		}
	}
}

// Label is the op and the nodes it names, for messages: "kill b1",
// "partition b1 | p1,p2".
func (a Action) Label() string {
	parts := []string{string(a.Op)}
	switch {
	case a.Node != "":
		parts = append(parts, a.Node)
	case a.From != "":
		parts = append(parts, a.From+"->"+a.To)
	case len(a.Groups) > 0:
		groups := make([]string, len(a.Groups))
		for i, g := range a.Groups {
			groups[i] = strings.Join(g, ",")
		}
		parts = append(parts, strings.Join(groups, " | "))
	}
	return strings.Join(parts, " ")
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
		return t.Heal()
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
	case MetaErrors:
		return t.MetaErrors(a.Node, a.Rate)
	case DiskHeal:
		return t.DiskHeal(a.Node)
	case ClockJump:
		return t.ClockJump(a.Node, time.Duration(a.By))
	case ClockDrift:
		return t.ClockDrift(a.Node, a.PPM)
	}
	return fmt.Errorf("unknown op %q", a.Op)
}
