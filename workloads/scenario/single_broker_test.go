package scenario

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/simdisk"
	"github.com/sluice-sim/sluice/sim/world"
)

// singleBrokerSeeds is how many seeds the replay test runs (each twice);
// make soak runs 500 through the command.
var singleBrokerSeeds = flag.Int("single-broker-seeds", 12, "seeds of TestSingleBrokerSeedsHoldAndReplay")

func singleBrokerDef(t testing.TB) Definition {
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

// fsyncgateSeeds is how many seeds TestFsyncgateLosesNothingAcknowledged
// runs with the fix and with the planted bug.
const fsyncgateSeeds = 10

// TestFsyncgateLosesNothingAcknowledged: on a disk with Linux's rules for
// failed fsyncs, the broker is killed while failing syncs are in flight,
// restarts, and loses power at the end. With recovery writing again what
// it reads back above the recovery point, every check holds on every seed;
// with the planted trust-page-cache bug (recovery trusts the page cache),
// the checkers catch data the broker acknowledged or served and the power
// loss took.
func TestFsyncgateLosesNothingAcknowledged(t *testing.T) {
	d := singleBrokerDef(t)
	params := map[string]string{"faults": "fsyncgate"}
	caught := 0
	for seed := uint64(1); seed <= fsyncgateSeeds; seed++ {
		res, err := Run(d, withParams(seed, params))
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Errorf("seed %d failed: %+v", seed, res.Failed())
		}
		if episodes := countEvents(res.WorldEvents, "kill b1"); episodes == 0 || countEvents(res.WorldEvents, "power-loss b1") == 0 {
			t.Errorf("seed %d: %d fsyncgate episodes and no power loss: %v", seed, episodes, res.WorldEvents)
		}
		bugged, err := Run(d, withParams(seed, params, faults.BugTrustPageCache))
		if err != nil {
			t.Fatal(err)
		}
		if !bugged.OK() {
			caught++
			if caught == 1 {
				t.Logf("trust-page-cache caught at seed %d: %+v", seed, bugged.Failed())
			}
		}
	}
	if caught == 0 {
		t.Fatalf("trusting the page cache after a failed fsync passed every check in %d seeds", fsyncgateSeeds)
	}
	t.Logf("trust-page-cache caught in %d of %d seeds", caught, fsyncgateSeeds)
}

// countEvents counts the world events ("1.5s kill b1") that are action.
func countEvents(events []string, action string) int {
	n := 0
	for _, e := range events {
		if _, what, ok := strings.Cut(e, " "); ok && what == action {
			n++
		}
	}
	return n
}

// TestDiskParameterPicksSyncFailureRules: disk=auto is Linux's rules only
// with faults=fsyncgate; disk=linux and disk=drop say which.
func TestDiskParameterPicksSyncFailureRules(t *testing.T) {
	d := singleBrokerDef(t)
	cases := []struct {
		params map[string]string
		want   simdisk.SyncFailureMode
	}{
		{nil, simdisk.SyncFailureDrops},
		{map[string]string{"faults": "fsyncgate"}, simdisk.SyncFailureLinux},
		{map[string]string{"disk": "linux"}, simdisk.SyncFailureLinux},
		{map[string]string{"disk": "drop", "faults": "fsyncgate"}, simdisk.SyncFailureDrops},
	}
	for _, c := range cases {
		o, err := d.resolve(withParams(1, c.params))
		if err != nil {
			t.Fatal(err)
		}
		var cfg world.Config
		d.Configure(&cfg, o)
		if cfg.Disk.SyncFailure != c.want {
			t.Errorf("params %v: sync failures %v, want %v", c.params, cfg.Disk.SyncFailure, c.want)
		}
	}
	if _, err := d.resolve(withParams(1, map[string]string{"disk": "ext3"})); err == nil || !strings.Contains(err.Error(), "disk") {
		t.Errorf("disk=ext3 accepted: %v", err)
	}
}
