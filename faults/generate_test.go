package faults_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// TestGeneratedActionsAllAct applies generated schedules to a real world
// (nodes with no processes) and asserts that every action acts: none is a
// kill of a node already down, a restart of a running one, or a heal with
// nothing to heal.
func TestGeneratedActionsAllAct(t *testing.T) {
	targets, clients := []string{"b1", "b2", "b3"}, []string{"c1", "c2"}
	profile := faults.Profile{
		Targets: targets, Clients: clients,
		Start: time.Second, End: 60 * time.Second,
		IntervalMean: 700 * time.Millisecond, DurationMax: 6 * time.Second,
		Kinds: []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
			faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindDiskFull, faults.KindCorrupt,
			faults.KindReadErrors, faults.KindMetaErrors, faults.KindClockJump, faults.KindClockDrift},
	}
	const seeds = 300
	actions := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		s := faults.Generate(rand.New(rand.NewPCG(seed, 7)), profile)
		w := world.New(world.Config{Seed: seed})
		for _, name := range append(append([]string{}, targets...), clients...) {
			w.AddNode(name, func(sim.Env) {})
		}
		tally, err := s.Install(w)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		w.Run(profile.End+time.Second, 0)
		tally.NoteUnreached(w.Now())
		if len(tally.Warnings) > 0 || tally.Applied != len(s.Actions) {
			t.Fatalf("seed %d: %d of %d actions acted:\n%v", seed, tally.Applied, len(s.Actions), tally.Warnings)
		}
		for _, n := range w.Nodes() {
			if !n.Up() {
				t.Fatalf("seed %d: node %s is down after the schedule's end", seed, n.Name())
			}
		}
		actions += len(s.Actions)
	}
	if actions < seeds*20 {
		t.Fatalf("only %d actions over %d seeds: the profile draws too little to test", actions, seeds)
	}
}

// TestGenerateBoundsCorruptNodes: with CorruptNodesMax a schedule flips
// bits on no more targets than that, and a schedule that stays within the
// bound unbounded is drawn the same with it (seeds keep their schedules).
func TestGenerateBoundsCorruptNodes(t *testing.T) {
	unbounded := faults.Profile{
		Targets: []string{"b1", "b2", "b3", "ctl1"}, CorruptTargets: []string{"b1", "b2", "b3"},
		Start: time.Second, End: 30 * time.Second, IntervalMean: time.Second, DurationMax: 3 * time.Second,
		Kinds: []faults.Kind{faults.KindCorrupt, faults.KindKill, faults.KindPause},
	}
	bounded := unbounded
	bounded.CorruptNodesMax = 2
	kept, changed := 0, 0
	for seed := uint64(1); seed <= 200; seed++ {
		before := faults.Generate(rand.New(rand.NewPCG(seed, 7)), unbounded)
		after := faults.Generate(rand.New(rand.NewPCG(seed, 7)), bounded)
		if n := len(corruptedNodes(after)); n > bounded.CorruptNodesMax {
			t.Fatalf("seed %d: bit flips on %d targets, bound %d", seed, n, bounded.CorruptNodesMax)
		}
		if len(corruptedNodes(before)) > bounded.CorruptNodesMax {
			changed++
			continue
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("seed %d: a schedule within the bound was drawn anew", seed)
		}
		kept++
	}
	if kept == 0 || changed == 0 {
		t.Fatalf("%d schedules kept, %d bounded: the profile tests neither case", kept, changed)
	}
}

func corruptedNodes(s faults.Schedule) map[string]bool {
	nodes := map[string]bool{}
	for _, a := range s.Actions {
		if a.Op == faults.Corrupt {
			nodes[a.Node] = true
		}
	}
	return nodes
}

// TestMetaErrorsEndWithDiskHeal: a meta-errors action read from a
// schedule fails the node's creates from its time on, and disk-heal ends
// it.
func TestMetaErrorsEndWithDiskHeal(t *testing.T) {
	s, err := faults.Parse([]byte(`{"actions": [
		{"at": "1s", "op": "meta-errors", "node": "b1", "rate": 1},
		{"at": "2s", "op": "disk-heal", "node": "b1"}]}`), []string{"b1"})
	if err != nil {
		t.Fatal(err)
	}
	w := world.New(world.Config{Seed: 1})
	w.AddNode("b1", func(sim.Env) {})
	tally, err := s.Install(w)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) error {
		_, err := w.Node("b1").Disk().FS().Create(name)
		return err
	}
	outcomes := map[string]error{}
	for _, at := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond} {
		w.At(at, func() { outcomes[at.String()] = create("f" + at.String()) })
	}
	w.Run(3*time.Second, 0)
	if outcomes["500ms"] != nil || !errors.Is(outcomes["1.5s"], sim.ErrIO) || outcomes["2.5s"] != nil {
		t.Fatalf("creates before, during and after the fault: %v", outcomes)
	}
	if tally.Applied != 2 || tally.Fired[faults.MetaErrors] != 1 {
		t.Fatalf("tally %+v", tally)
	}
}
