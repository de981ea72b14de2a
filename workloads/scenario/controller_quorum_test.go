package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

func quorumDef(t *testing.T) Definition {
	t.Helper()
	d, err := Lookup("controller-quorum")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// quorumShort is a short run: long enough a drain for the quorum to settle
// (recovery takes at most 2 s over hundreds of seeds) and the admin to stop
// and the brokers' images to catch up.
func quorumShort(seed uint64, params map[string]string, bugs ...faults.Bug) Options {
	o := short(seed, bugs...)
	o.Drain = 6 * time.Second
	o.Params = params
	return o
}

// TestControllerQuorumSeedsHoldAndReplay: 24 seeds of the mixed faults
// on three controllers pass every check, twice each with one trace hash,
// and the admin's changes and the brokers' registrations were really
// acknowledged and checked (not an empty run that passes trivially).
func TestControllerQuorumSeedsHoldAndReplay(t *testing.T) {
	d := quorumDef(t)
	hashes := map[string]uint64{}
	for seed := uint64(1); seed <= 24; seed++ {
		r, det, err := RunTwice(d, quorumShort(seed, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !det.Same() {
			t.Fatalf("seed %d: trace %s then %s\n%s", seed, det.Hashes[0], det.Hashes[1], det.Divergence)
		}
		if !r.OK() {
			t.Fatalf("seed %d failed: %+v", seed, r.Failed())
		}
		if r.Stats["acked_changes"] < 20 || r.Stats["acked_after_heal"] == 0 || r.Stats["registrations"] < 3 {
			t.Fatalf("seed %d: too little was acknowledged to judge: %v", seed, r.Stats)
		}
		if r.FaultsApplied == 0 {
			t.Fatalf("seed %d: no fault acted", seed)
		}
		if other, dup := hashes[r.TraceHash]; dup {
			t.Fatalf("seeds %d and %d gave the same trace", other, seed)
		}
		hashes[r.TraceHash] = seed
	}
}

// TestControllerQuorumFiveAndCorrelated: five controllers under the mixed
// faults, and three under correlated power losses, hold too.
func TestControllerQuorumFiveAndCorrelated(t *testing.T) {
	d := quorumDef(t)
	for _, params := range []map[string]string{{"controllers": "5"}, {"faults": "correlated"}} {
		for seed := uint64(1); seed <= 8; seed++ {
			r, err := Run(d, quorumShort(seed, params))
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Fatalf("%v seed %d failed: %+v", params, seed, r.Failed())
			}
		}
	}
}

// TestControllerQuorumCatchesRaftAckBeforeSync plants raft-ack-before-sync:
// within 10 seeds of the default fault mix a run must fail quorum-safety,
// the oracle's check, naming a committed entry replaced or a log raft
// found damaged. (Over 100 seeds of full-length runs, 61 fail it.)
func TestControllerQuorumCatchesRaftAckBeforeSync(t *testing.T) {
	d := quorumDef(t)
	for seed := uint64(1); seed <= 10; seed++ {
		r, err := Run(d, quorumShort(seed, nil, faults.BugRaftAckBeforeSync))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == "quorum-safety" {
				if !strings.Contains(c.Detail, "where term") && !strings.Contains(c.Detail, "lost acknowledged entries") {
					t.Fatalf("seed %d: quorum-safety failed without naming the loss: %s", seed, c.Detail)
				}
				t.Logf("seed %d caught it: %s", seed, c.Detail)
				return
			}
		}
	}
	t.Fatal("raft-ack-before-sync did not fail quorum-safety in 10 seeds")
}

// TestControllerQuorumProbesHit: over a few full-length seeds each of the
// controller's rare paths runs: a torn tail cut (correlated power losses),
// a snapshot sent to a follower, a restart after a failed sync, and a
// leader that lost its quorum stepping down.
func TestControllerQuorumProbesHit(t *testing.T) {
	d := quorumDef(t)
	hit := map[string]bool{}
	for seed := uint64(1); seed <= 12; seed++ {
		for _, params := range []map[string]string{{"controllers": "5"}, {"faults": "correlated"}} {
			r, err := Run(d, Options{Seed: seed, Params: params})
			if err != nil {
				t.Fatal(err)
			}
			for name, n := range r.Probes {
				if n > 0 {
					hit[name] = true
				}
			}
		}
	}
	for _, p := range []string{"controller/torn-tail-cut", "controller/snapshot-installed",
		"controller/sync-failed-restart", "controller/leader-lost-quorum"} {
		if !hit[p] {
			t.Errorf("no seed hit %s (hit: %v)", p, hit)
		}
	}
}

// TestControllerQuorumRejectsBadParams: a quorum size it does not run is
// an error naming the parameter.
func TestControllerQuorumRejectsBadParams(t *testing.T) {
	d := quorumDef(t)
	err := d.Validate(Options{Params: map[string]string{"controllers": "4"}})
	if err == nil || !strings.Contains(err.Error(), "controllers") {
		t.Fatalf("controllers=4: %v", err)
	}
}

// TestControllerQuorumBugShrinksAndReplays: a run that the planted bug
// fails shrinks to a smaller schedule that still fails quorum-safety, and
// the shrunk run's recipe and schedule replay to the same trace hash.
func TestControllerQuorumBugShrinksAndReplays(t *testing.T) {
	d := quorumDef(t)
	var failing *Options
	for seed := uint64(1); seed <= 10 && failing == nil; seed++ {
		o := quorumShort(seed, nil, faults.BugRaftAckBeforeSync)
		r, err := Run(d, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == "quorum-safety" {
				failing = &o
			}
		}
	}
	if failing == nil {
		t.Fatal("no seed of 10 failed quorum-safety with raft-ack-before-sync")
	}
	sh, err := Shrink(d, *failing, 60, nil)
	if err != nil {
		t.Fatal(err)
	}
	small := sh.Smallest
	if !strings.Contains(sh.Check, "quorum-safety") || len(small.Schedule.Actions) >= len(sh.Original.Schedule.Actions) {
		t.Fatalf("shrunk to %d actions from %d, failing %q", len(small.Schedule.Actions), len(sh.Original.Schedule.Actions), sh.Check)
	}
	def, o, err := small.Recipe.Options(&small.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Run(def, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.TraceHash != small.TraceHash || again.OK() {
		t.Fatalf("replay of the shrunk run: trace %s (ok %v), shrunk run's %s", again.TraceHash, again.OK(), small.TraceHash)
	}
	t.Logf("shrunk from %d to %d actions in %d runs", len(sh.Original.Schedule.Actions), len(small.Schedule.Actions), sh.Tries)
}

// TestControllerQuorumSwarmTearsLogTail: swarm seeds 11 and 13 of the
// mixed faults plant a power loss while a controller's log write is in
// flight; recovery cuts the torn frame (the controller/torn-tail-cut
// probe, which the mixed faults alone never reached over 95 seeds) and
// every check passes. A plain run of a seed plants no such episode.
func TestControllerQuorumSwarmTearsLogTail(t *testing.T) {
	d := quorumDef(t)
	for _, seed := range []uint64{11, 13} {
		r, err := Run(d, Options{Seed: seed, Swarm: true})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("seed %d failed: %+v", seed, r.Failed())
		}
		if r.Stats["torn_tail_episodes"] == 0 || r.Probes["controller/torn-tail-cut"] == 0 {
			t.Fatalf("seed %d: %d torn-tail episodes, probes %v", seed, r.Stats["torn_tail_episodes"], r.Probes)
		}
	}
	r, err := Run(d, Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stats[plantedEpisodesStat] != 0 {
		t.Fatalf("a plain run planted %d episodes", r.Stats[plantedEpisodesStat])
	}
}
