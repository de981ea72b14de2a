package scenario

import (
	"flag"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

var groupRebalanceSeeds = flag.Int("group-rebalance-seeds", 8, "seeds of TestGroupRebalanceSeedsHoldAndReplay")

func groupRebalanceDef(t testing.TB) Definition {
	d, err := Lookup("group-rebalance")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGroupRebalanceSeedsHoldAndReplay: members joining, leaving, killed
// and paused past their sessions, under the broker's disk faults, with
// each assignor: every check holds, the group saw rebalances, and a seed
// run twice gives the same trace.
func TestGroupRebalanceSeedsHoldAndReplay(t *testing.T) {
	d := groupRebalanceDef(t)
	assignors := []string{"range", "roundrobin", "cooperative-sticky"}
	for seed := uint64(1); seed <= uint64(*groupRebalanceSeeds); seed++ {
		params := map[string]string{"assignor": assignors[int(seed)%len(assignors)]}
		a, err := Run(d, withParams(seed, params))
		if err != nil {
			t.Fatal(err)
		}
		if !a.OK() {
			t.Errorf("seed %d failed: %+v", seed, a.Failed())
		}
		if a.Stats["member_syncs"] < 3 || a.Stats["groups_commits_ok"] == 0 {
			t.Errorf("seed %d: %d syncs and %d commits: the group hardly ran", seed,
				a.Stats["member_syncs"], a.Stats["groups_commits_ok"])
		}
		b, err := Run(d, withParams(seed, params))
		if err != nil {
			t.Fatal(err)
		}
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: trace %s then %s", seed, a.TraceHash, b.TraceHash)
		}
	}
}

// TestGroupRebalanceCatchesCommitBeforeProcess: a member that commits what
// it polled before processing it, killed in between, loses records to the
// group; the groups checker says so within 200 seeds.
func TestGroupRebalanceCatchesCommitBeforeProcess(t *testing.T) {
	d := groupRebalanceDef(t)
	for seed := uint64(1); seed <= 200; seed++ {
		r, err := Run(d, withParams(seed, nil, faults.BugCommitBeforeProcess))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == "groups" {
				t.Logf("seed %d: %s", seed, c.Detail)
				return
			}
		}
	}
	t.Fatal("commit-before-process went unnoticed for 200 seeds")
}
