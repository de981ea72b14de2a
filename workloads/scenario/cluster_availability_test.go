package scenario

import (
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

// firstCatch runs seeds 1..last of a scenario with a planted bug and
// returns the first whose named check fails with detail containing want;
// the seeds before it must not fail that way.
func firstCatch(t *testing.T, scenario string, options func(seed uint64, bug faults.Bug) Options, bug faults.Bug,
	last uint64, check, want string) uint64 {
	t.Helper()
	d, err := Lookup(scenario)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= last; seed++ {
		r, err := Run(d, options(seed, bug))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == check && strings.Contains(c.Detail, want) {
				t.Logf("%s seed %d with %s: %s: %s", scenario, seed, bug, c.Name, c.Detail)
				return seed
			}
		}
	}
	t.Fatalf("%s: %s not caught by %s (%s) in seeds 1..%d", scenario, bug, check, want, last)
	return 0
}

// passesWithout runs a seed without bugs and requires every check to hold.
func passesWithout(t *testing.T, scenario string, o Options) Result {
	t.Helper()
	d, err := Lookup(scenario)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("%s seed %d without bugs: %+v", scenario, o.Seed, r.Failed())
	}
	return r
}

// plainRun are the options of 'sluice sim run --seed N [--bug B]': the
// scenario's own lengths, so that a seed here is the seed there.
func plainRun(seed uint64, bug faults.Bug) Options {
	o := Options{Seed: seed, Bugs: faults.Bugs{}}
	if bug != "" {
		o.Bugs[bug] = true
	}
	return o
}

// The first follower-cut seeds that catch the ISR bugs; one seed, so one
// run without bugs shows both pass without them.
const (
	neverShrinkISRSeed = 1
	isrShrinkLocalSeed = neverShrinkISRSeed
)

// TestFollowerCutCatchesISRBugs plants the two ISR bugs in follower-cut,
// where the link between a leader and a follower is cut and the leader
// killed late in the cut:
//   - never-shrink-isr: neither side drops the other from its ISR, so
//     acks=all writes to the partitions either leads wait until the
//     leader dies and the controller fences it, longer than the bound the
//     availability check allows;
//   - isr-shrink-local: the leader drops the follower on its own word and
//     acknowledges writes without it; killed, it is replaced by that
//     follower, which the controller still counted in sync, and the
//     writes are lost, which the Kafka checker reports.
//
// The same seed without bugs passes, its writes held up no longer than
// the lag time and the shrink.
func TestFollowerCutCatchesISRBugs(t *testing.T) {
	if seed := firstCatch(t, "follower-cut", plainRun, faults.BugNeverShrinkISR, neverShrinkISRSeed,
		"available", "unavailable"); seed != neverShrinkISRSeed {
		t.Fatalf("never-shrink-isr: first catching seed %d, want %d", seed, neverShrinkISRSeed)
	}
	if seed := firstCatch(t, "follower-cut", plainRun, faults.BugISRShrinkLocal, isrShrinkLocalSeed,
		"kafka", "lost-write"); seed != isrShrinkLocalSeed {
		t.Fatalf("isr-shrink-local: first catching seed %d, want %d", seed, isrShrinkLocalSeed)
	}
	r := passesWithout(t, "follower-cut", plainRun(neverShrinkISRSeed, ""))
	if r.Stats["planted_faults"] == 0 {
		t.Fatalf("seed %d: no link was cut", neverShrinkISRSeed)
	}
}

// noEpochTruncationSeed is the first leader-crash seed in which
// no-epoch-truncation leaves replicas that disagree below the high
// watermark.
const noEpochTruncationSeed = 1

// TestLeaderCrashCatchesNoEpochTruncation plants no-epoch-truncation: a
// deposed leader keeps the tail its successor never had and fetches on
// past it, so its log disagrees with the leader's below the high
// watermark, which the replicas-agree check reports once the run is
// over; the same seed without the bug passes.
func TestLeaderCrashCatchesNoEpochTruncation(t *testing.T) {
	seed := firstCatch(t, "leader-crash", plainRun, faults.BugNoEpochTruncation, noEpochTruncationSeed,
		"replicas-agree", "replicas-diverge")
	if seed != noEpochTruncationSeed {
		t.Fatalf("first catching seed %d, want %d", seed, noEpochTruncationSeed)
	}
	passesWithout(t, "leader-crash", plainRun(seed, ""))
}
