package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// short keeps these tests quick: the faults and the drain still happen,
// over fewer simulated seconds.
func short(seed uint64, bugs ...faults.Bug) Options {
	set := faults.Bugs{}
	for _, b := range bugs {
		set[b] = true
	}
	return Options{Seed: seed, Bugs: set, Run: 6 * time.Second, Drain: 3 * time.Second}
}

func counterDef(t *testing.T) Definition {
	d, err := Lookup("counter")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCounterSeedsReplay runs 200 seeds twice each: every seed must give
// the same trace hash both times, and every check must hold.
func TestCounterSeedsReplay(t *testing.T) {
	d := counterDef(t)
	hashes := map[string]uint64{}
	for seed := uint64(1); seed <= 200; seed++ {
		a, err := Run(d, short(seed))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(d, short(seed))
		if err != nil {
			t.Fatal(err)
		}
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: trace %s then %s", seed, a.TraceHash, b.TraceHash)
		}
		if !a.OK() {
			t.Fatalf("seed %d failed: %+v", seed, a.Failed())
		}
		if other, dup := hashes[a.TraceHash]; dup {
			t.Fatalf("seeds %d and %d gave the same trace: the seed does not reach the run", other, seed)
		}
		hashes[a.TraceHash] = seed
	}
}

// TestNondeterministicActorIsCaught plants a client that sends in map
// iteration order: the determinism check must say the runs diverge and
// name a send of that client as the first divergent event.
func TestNondeterministicActorIsCaught(t *testing.T) {
	d := counterDef(t)
	_, det, err := RunTwice(d, short(3, faults.BugMapOrder))
	if err != nil {
		t.Fatal(err)
	}
	if det.Same() || det.Divergence == nil {
		t.Fatal("a client iterating a map into its messages was not caught")
	}
	div := det.Divergence
	if div.First == nil || div.Second == nil {
		t.Fatalf("divergence does not name the event in both runs: %s", div)
	}
	if div.First.Kind.String() != "send" || !strings.HasPrefix(div.First.Node, "c") {
		t.Fatalf("divergence named %s, want a client's send", div.First)
	}
	if !strings.Contains(div.String(), "->server:7000") {
		t.Fatalf("divergence report does not name the connection:\n%s", div)
	}
	// Without the bug the same seed replays exactly.
	_, det, err = RunTwice(d, short(3))
	if err != nil {
		t.Fatal(err)
	}
	if !det.Same() {
		t.Fatalf("correct client diverged:\n%s", det.Divergence)
	}
}

// TestCounterPlantedBugsAreCaught proves each check can fail: with its bug
// planted, some seed among the first 50 fails exactly that check.
func TestCounterPlantedBugsAreCaught(t *testing.T) {
	d := counterDef(t)
	for _, c := range []struct {
		bug   faults.Bug
		check string
	}{
		{faults.BugAckBeforeSync, "acknowledged-durable"},
		{faults.BugDedupeOff, "no-double-apply"},
	} {
		caught := uint64(0)
		for seed := uint64(1); seed <= 50 && caught == 0; seed++ {
			res, err := Run(d, short(seed, c.bug))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failed() {
				if f.Name == c.check {
					caught = seed
				}
			}
		}
		if caught == 0 {
			t.Errorf("bug %s: check %s never failed in 50 seeds", c.bug, c.check)
			continue
		}
		t.Logf("bug %s caught by %s at seed %d", c.bug, c.check, caught)
	}
}

func TestScheduleFromFileReplaysTheSameRun(t *testing.T) {
	d := counterDef(t)
	first, err := Run(d, short(11))
	if err != nil {
		t.Fatal(err)
	}
	s, err := faults.Parse(first.Schedule.Marshal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := short(11)
	o.Schedule = &s
	again, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.TraceHash != first.TraceHash {
		t.Fatalf("replaying the saved schedule gave trace %s, want %s", again.TraceHash, first.TraceHash)
	}
}

func TestBadOptionsAreRejected(t *testing.T) {
	d := counterDef(t)
	if _, err := Run(d, Options{Seed: 1, Params: map[string]string{"nope": "1"}}); err == nil {
		t.Error("unknown parameter accepted")
	}
	if _, err := Run(d, Options{Seed: 1, Bugs: faults.Bugs{faults.BugSkipCRC: true}}); err == nil {
		t.Error("a bug the scenario does not plant was accepted")
	}
}

// TestCounterServerListensAfterAFailedFirstRecovery: read errors make the
// first recovery after a restart fail; the retry must still start the
// listener, or no increment is ever acknowledged again (a swarm with a
// read-errors profile found this on seed 36).
func TestCounterServerListensAfterAFailedFirstRecovery(t *testing.T) {
	o := Options{Seed: 36, Profile: &faults.ProfileSpec{
		Kinds: []faults.Kind{faults.KindReadErrors, faults.KindKill, faults.KindPause}}}
	res, err := Run(counterDef(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("failed: %+v", res.Failed())
	}
}
