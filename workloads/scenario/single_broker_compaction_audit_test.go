package scenario

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/sim/sched"
)

// TestSupersededLeftNamesWhatTheCleanerMissed: only a record with a newer
// one of its key in the cleanable part counts; the newest of each key,
// however old, stays.
func TestSupersededLeftNamesWhatTheCleanerMissed(t *testing.T) {
	clean := []keyedRecord{{3, "a"}, {7, "b"}, {9, "c"}}
	if n, ex := supersededLeft(clean); n != 0 {
		t.Fatalf("a cleaned part: %d superseded (%v), want none", n, ex)
	}
	dirty := []keyedRecord{{1, "a"}, {2, "b"}, {3, "a"}, {4, "a"}, {5, "b"}}
	n, ex := supersededLeft(dirty)
	if n != 3 {
		t.Fatalf("%d superseded (%v), want 3: a at 1 and 3, b at 2", n, ex)
	}
	if !strings.Contains(ex[0], `key "a" at 1 (newest at 4)`) {
		t.Fatalf("first example %q does not name key a at 1", ex[0])
	}
}

// compactedSwarmSeed finds a swarm seed that draws a compacted topic with
// power losses planted as compactions complete.
func compactedSwarmSeed(t *testing.T) uint64 {
	for seed := uint64(1); seed < 200; seed++ {
		k := drawSingleBrokerKnobs(sched.NewRand(seed, "workload", 0), fixedSingleBrokerKnobs(withParams(seed, nil)))
		if k.Compacted && k.CompactionPowerLosses > 0 && k.SegmentBytes <= 16<<10 {
			return seed
		}
	}
	t.Fatal("no swarm seed below 200 draws a compacted topic with compaction power losses")
	return 0
}

// TestCompactedSwarmSeedAuditsCompaction: a compacted swarm seed, with
// power losses falling as compactions complete, passes every check,
// including the compaction audit over a cleanable part that holds
// records, and recovery completes an interrupted swap or a compaction
// removed records (so the audit judged a log the cleaner worked on).
func TestCompactedSwarmSeedAuditsCompaction(t *testing.T) {
	seed := compactedSwarmSeed(t)
	o := withParams(seed, nil)
	o.Swarm = true
	res, err := Run(singleBrokerDef(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("compacted swarm seed %d failed: %+v", seed, res.Failed())
	}
	if res.Stats["compaction_cleanable_offsets"] == 0 {
		t.Fatalf("seed %d: the compaction audit saw no cleanable part (stats %v)", seed, res.Stats)
	}
	if res.Stats["broker_starts"] < 2 {
		t.Fatalf("seed %d: %d broker starts, want a power loss planted as a compaction completed", seed, res.Stats["broker_starts"])
	}
	if res.Probes["broker/compaction-removed-records"] == 0 {
		t.Fatalf("seed %d: no compaction removed records (probes %v)", seed, res.Probes)
	}
}

// TestRetentionIgnoredOnlyUnderCompaction: the knob that keeps retention
// settings on a compact-only topic is drawn only for compacted topics
// with retention settings, and then the policy deletes nothing.
func TestRetentionIgnoredOnlyUnderCompaction(t *testing.T) {
	fixed := fixedSingleBrokerKnobs(withParams(1, nil))
	ignored := 0
	for seed := range uint64(400) {
		k := drawSingleBrokerKnobs(rand.New(rand.NewPCG(seed, 1)), fixed)
		if !k.RetentionIgnored {
			continue
		}
		ignored++
		if !k.Compacted || !k.retentionSet() || k.retentionOn() || k.cleanupPolicy().String() != "compact" {
			t.Fatalf("seed %d: %+v ignores retention, policy %v", seed, k, k.cleanupPolicy())
		}
	}
	if ignored == 0 {
		t.Fatal("no draw of 400 ignores retention settings")
	}
}

// TestCompactionCrashEpisodesCanBeSkipped: the power losses a compacted
// seed plants are numbered episodes, so shrinking can leave them out: a
// run that skips them all cuts the power fewer times.
func TestCompactionCrashEpisodesCanBeSkipped(t *testing.T) {
	seed := compactedSwarmSeed(t)
	o := withParams(seed, nil)
	o.Swarm = true
	full, err := Run(singleBrokerDef(t), o)
	if err != nil {
		t.Fatal(err)
	}
	n, planted := full.EpisodesActed()
	if !planted || n == 0 {
		t.Fatalf("seed %d: %d compaction crash episodes (planted %v)", seed, n, planted)
	}
	o.EpisodesSkipped = episodesExcept(int(n), nil)
	none, err := Run(singleBrokerDef(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if acted, _ := none.EpisodesActed(); acted != 0 {
		t.Fatalf("every episode skipped: %d acted", acted)
	}
	losses := func(r Result) int { return countEvents(r.WorldEvents, "power-loss "+singleBrokerNode) }
	if losses(none) >= losses(full) {
		t.Fatalf("seed %d: %d power losses with every episode skipped, %d with none", seed, losses(none), losses(full))
	}
}
