package scenario

import (
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

func coordinatorFailoverDef(t testing.TB) Definition {
	d, err := Lookup(coordinatorFailoverName)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCoordinatorFailoverSeedsHoldAndReplay: the group's coordinator
// killed, powered off, or either, with members churning or steady: every
// check holds (healed, drained, kafka, groups), the coordinator really
// died and came back, the group committed, and a seed run twice gives one
// trace.
func TestCoordinatorFailoverSeedsHoldAndReplay(t *testing.T) {
	d := coordinatorFailoverDef(t)
	for _, tc := range []struct {
		seed   uint64
		params map[string]string
	}{
		{1, nil},
		{2, map[string]string{"crash": "power", "members": "steady"}},
		{3, map[string]string{"crash": "kill", "flush": "group"}},
		// A follower's late SyncGroup was once answered before the
		// generation's record reached the ISR; the coordinator then died
		// and its successor handed generation 2 out again.
		{103, map[string]string{"flush": "group"}},
	} {
		r, det, err := RunTwice(d, withParams(tc.seed, tc.params))
		if err != nil {
			t.Fatal(err)
		}
		if !det.Same() {
			t.Fatalf("seed %d: trace %s then %s\n%s", tc.seed, det.Hashes[0], det.Hashes[1], det.Divergence)
		}
		if !r.OK() {
			t.Fatalf("seed %d %v failed: %+v", tc.seed, tc.params, r.Failed())
		}
		if r.Stats["planted_faults"] == 0 || r.Stats["broker_starts"] <= 3 || r.Stats["groups_commits_ok"] < 100 {
			t.Fatalf("seed %d: too little happened to judge: %v", tc.seed, r.Stats)
		}
	}
}

// TestCoordinatorFailoverIsolatedLeaderKeepsCommits: seed 87 isolates the
// coordinator, which also led orders-1. A member that took orders-1 over
// at a committed offset of 119 once fetched from that deposed leader
// (its log ended at 54) on stale metadata, got OFFSET_OUT_OF_RANGE, reset
// to the earliest offset and committed 0 (commit-backwards). With KIP-320
// the commit carries its record's leader epoch and the member fetches only
// from a leader at least that new, naming the epoch so a deposed leader is
// fenced: every check holds, and twice.
func TestCoordinatorFailoverIsolatedLeaderKeepsCommits(t *testing.T) {
	d := coordinatorFailoverDef(t)
	params := map[string]string{"crash": "isolate"}
	r, det, err := RunTwice(d, withParams(87, params))
	if err != nil {
		t.Fatal(err)
	}
	if !det.Same() {
		t.Fatalf("seed 87: trace %s then %s\n%s", det.Hashes[0], det.Hashes[1], det.Divergence)
	}
	if !r.OK() {
		t.Fatalf("seed 87 %v failed: %+v", params, r.Failed())
	}
	if r.Stats["episodes_coordinator_isolated"] == 0 || r.Stats["groups_commits_ok"] < 100 {
		t.Fatalf("seed 87: too little happened to judge: %v", r.Stats)
	}
}

// firstCaught runs seeds 1..300 of coordinator-failover with bug on and
// returns the first whose groups check reports kind; 0 if none does.
func firstCaught(t *testing.T, d Definition, bug faults.Bug, kind string) (uint64, Result) {
	t.Helper()
	for seed := uint64(1); seed <= 300; seed++ {
		r, err := Run(d, withParams(seed, nil, bug))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == "groups" && strings.Contains(c.Detail, kind) {
				t.Logf("%s: seed %d: %s", bug, seed, c.Detail)
				return seed, r
			}
		}
	}
	return 0, Result{}
}

// assertPassesWithout runs seed without any bug: the checks must hold,
// so that what caught the bug was the bug.
func assertPassesWithout(t *testing.T, d Definition, seed uint64) Result {
	t.Helper()
	r, err := Run(d, withParams(seed, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d fails without the bug too: %+v", seed, r.Failed())
	}
	return r
}

// TestCoordinatorFailoverCatchesNoOffsetReload: a new coordinator that
// serves the group without reading __consumer_offsets back has forgotten
// its generation and its offsets. The members, told UNKNOWN_MEMBER_ID,
// join a group it starts over at generation 1, which hands partitions
// owned in the old generation 1 to other members (group-double-owner),
// and, with no committed offsets, read their partitions again from the
// earliest offset (reads-again). Reset to the latest offset would show
// the loss as lost-to-group, but would also flag the records a correct
// run's members skip when they first join after the producer started.
func TestCoordinatorFailoverCatchesNoOffsetReload(t *testing.T) {
	d := coordinatorFailoverDef(t)
	seed, r := firstCaught(t, d, faults.BugNoOffsetReload, "group-double-owner")
	if seed != 1 {
		t.Fatalf("no-offset-reload first caught at seed %d, want 1", seed)
	}
	clean := assertPassesWithout(t, d, seed)
	t.Logf("seed %d: %d records read again with the bug, %d without", seed,
		r.Stats["groups_reads_again"], clean.Stats["groups_reads_again"])
	if r.Stats["groups_reads_again"] <= 2*clean.Stats["groups_reads_again"] {
		t.Fatalf("seed %d: %d records read again with the bug, %d without: the group did not start over",
			seed, r.Stats["groups_reads_again"], clean.Stats["groups_reads_again"])
	}
}

// TestCoordinatorFailoverCatchesStaleGenerationCommit: a coordinator that
// accepts commits from an older generation lets a member that lost a
// partition (its coordinator died with its heartbeats, or it paused past
// its session) commit over the new owner's offsets, moving them
// backwards.
func TestCoordinatorFailoverCatchesStaleGenerationCommit(t *testing.T) {
	d := coordinatorFailoverDef(t)
	seed, _ := firstCaught(t, d, faults.BugStaleGenerationCommit, "commit-backwards")
	if seed != 2 {
		t.Fatalf("stale-generation-commit first caught at seed %d, want 2", seed)
	}
	assertPassesWithout(t, d, seed)
}
