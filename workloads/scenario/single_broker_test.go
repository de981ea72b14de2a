package scenario

import (
	"flag"
	"slices"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

// singleBrokerSeeds is how many seeds the replay test runs (each twice);
// make soak runs 500 through the command.
var singleBrokerSeeds = flag.Int("single-broker-seeds", 12, "seeds of TestSingleBrokerSeedsHoldAndReplay")

func singleBrokerDef(t *testing.T) Definition {
	d, err := Lookup("single-broker")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func withParams(seed uint64, params map[string]string, bugs ...faults.Bug) Options {
	o := Options{Seed: seed, Params: params, Bugs: faults.Bugs{}}
	for _, b := range bugs {
		o.Bugs[b] = true
	}
	return o
}

// TestSingleBrokerSeedsHoldAndReplay: with group commit, under the full
// disk-fault mix (crashes, power loss with torn writes, sync failures,
// slow and full disks, partitions, pauses, clock jumps), every check holds,
// and each seed run twice gives the same trace.
func TestSingleBrokerSeedsHoldAndReplay(t *testing.T) {
	d := singleBrokerDef(t)
	for seed := uint64(1); seed <= uint64(*singleBrokerSeeds); seed++ {
		a, err := Run(d, withParams(seed, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !a.OK() {
			t.Errorf("seed %d failed: %+v", seed, a.Failed())
		}
		b, err := Run(d, withParams(seed, nil))
		if err != nil {
			t.Fatal(err)
		}
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: trace %s then %s", seed, a.TraceHash, b.TraceHash)
		}
	}
}

// TestFlushPolicyMatters: without fsync (Kafka's default on a single
// broker), a crash loses acknowledged acks=1 writes and the checkers say
// so; the same seed with group commit loses nothing.
func TestFlushPolicyMatters(t *testing.T) {
	d := singleBrokerDef(t)
	loss := []string{"lost-write", "unseen", "inconsistent-offsets"}
	for seed := uint64(1); seed <= 20; seed++ {
		none, err := Run(d, withParams(seed, map[string]string{"flush": "none", "acks": "1"}))
		if err != nil {
			t.Fatal(err)
		}
		if !anomalyIn(none, "kafka", loss) {
			continue
		}
		group, err := Run(d, withParams(seed, map[string]string{"flush": "group", "acks": "1"}))
		if err != nil {
			t.Fatal(err)
		}
		if anomalyIn(group, "kafka", loss) {
			t.Fatalf("seed %d: group commit lost acknowledged writes too: %+v", seed, group.Failed())
		}
		t.Logf("seed %d: flush=none lost acknowledged writes (%s); group commit did not", seed, checkDetail(none, "kafka"))
		return
	}
	t.Fatal("in 20 seeds no crash made flush=none lose an acknowledged write")
}

func anomalyIn(r Result, check string, kinds []string) bool {
	for _, c := range r.Failed() {
		if c.Name != check {
			continue
		}
		for _, k := range kinds {
			if slices.ContainsFunc([]string{c.Detail}, func(d string) bool { return containsWord(d, k) }) {
				return true
			}
		}
	}
	return false
}

func containsWord(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i:i+len(word)] == word {
			return true
		}
	}
	return false
}

func checkDetail(r Result, name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}

// TestSingleBrokerPlantedBugsAreCaught: each planted bug of the broker is
// caught by the check that guards its guarantee within 200 seeds; the
// seed of first detection is logged.
func TestSingleBrokerPlantedBugsAreCaught(t *testing.T) {
	d := singleBrokerDef(t)
	cases := []struct {
		bug    faults.Bug
		params map[string]string
		check  string
	}{
		{faults.BugAckBeforeSync, nil, "kafka"},
		{faults.BugDedupeOff, nil, "kafka"},
		{faults.BugIndexOffByOne, nil, "kafka"},
		{faults.BugSkipCRC, map[string]string{"faults": "corrupt"}, "no-corrupt-reads"},
	}
	for _, c := range cases {
		caught := uint64(0)
		for seed := uint64(1); seed <= 200 && caught == 0; seed++ {
			res, err := Run(d, withParams(seed, c.params, c.bug))
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(res.Failed(), func(f Check) bool { return f.Name == c.check }) {
				caught = seed
			}
		}
		if caught == 0 {
			t.Errorf("bug %s: check %s held for 200 seeds", c.bug, c.check)
			continue
		}
		t.Logf("bug %s: caught by %s at seed %d", c.bug, c.check, caught)
	}
}

// TestCorruptionIsNeverServed: a correct broker under bit flips may lose
// data (one replica) but never serves a batch whose checksum fails.
func TestCorruptionIsNeverServed(t *testing.T) {
	d := singleBrokerDef(t)
	for seed := uint64(1); seed <= 6; seed++ {
		res, err := Run(d, withParams(seed, map[string]string{"faults": "corrupt"}))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(res.Failed(), func(f Check) bool { return f.Name == "no-corrupt-reads" }) {
			t.Fatalf("seed %d: corrupt data served: %s", seed, checkDetail(res, "no-corrupt-reads"))
		}
	}
}
