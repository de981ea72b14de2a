package scenario

import (
	"errors"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

// TestShrinkKeepsADeterminismFailure: the counter's map-order bug passes
// every check, so a plain shrink has nothing to keep; shrinking for
// determinism keeps runs whose two runs still diverge, and cuts actions.
func TestShrinkKeepsADeterminismFailure(t *testing.T) {
	d := counterDef(t)
	o := short(1, faults.BugMapOrder)
	if _, err := Shrink(d, o, 10, nil); !errors.Is(err, ErrDoesNotFail) {
		t.Fatalf("a map-order run fails a check (%v): pick a run that only diverges", err)
	}
	sh, err := ShrinkWithin(d, o, ShrinkLimits{TriesMax: 30, Determinism: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, after := len(sh.Original.Schedule.Actions), len(sh.Smallest.Schedule.Actions)
	if sh.Check != "determinism" || after >= before {
		t.Fatalf("check %q, actions %d -> %d: want determinism and fewer actions", sh.Check, before, after)
	}
	_, opts, err := sh.Smallest.Options(&sh.Smallest.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	_, det, err := RunTwice(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if det.Same() {
		t.Fatalf("the shrunk run's two runs gave the same trace hash %s", det.Hashes[0])
	}
}

// TestShrinkStopsWhenAsked: a caller's Stop ends the shrink at once with
// the original run as the smallest.
func TestShrinkStopsWhenAsked(t *testing.T) {
	d := counterDef(t)
	sh, err := ShrinkWithin(d, short(1, faults.BugDedupeOff), ShrinkLimits{TriesMax: 30, Stop: func() bool { return true }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sh.Stopped || sh.Tries != 0 || sh.Smallest.TraceHash != sh.Original.TraceHash {
		t.Fatalf("stopped %v after %d tries; smallest %s, original %s", sh.Stopped, sh.Tries, sh.Smallest.TraceHash, sh.Original.TraceHash)
	}
}

// TestShrinkDropsPlantedEpisodes: leader-crash plants its own crashes of
// whichever broker leads, which are not schedule data; shrinking skips
// those the failure does not need, and the smallest run, replayed from its
// recipe, fails the same way with the same trace.
func TestShrinkDropsPlantedEpisodes(t *testing.T) {
	d, err := Lookup("leader-crash")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := Shrink(d, withParams(1, nil, faults.BugAckBeforeISR), 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, after := sh.Original.Stats["planted_faults"], sh.Smallest.Stats["planted_faults"]
	if after >= before || len(sh.Smallest.EpisodesSkipped) == 0 {
		t.Fatalf("planted episodes %d -> %d (skipped %v): nothing cut", before, after, sh.Smallest.EpisodesSkipped)
	}
	rd, ro, err := sh.Smallest.Recipe.Options(&sh.Smallest.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Run(rd, ro)
	if err != nil {
		t.Fatal(err)
	}
	if again.TraceHash != sh.Smallest.TraceHash || again.OK() {
		t.Fatalf("replay: hash %s (want %s), ok %v", again.TraceHash, sh.Smallest.TraceHash, again.OK())
	}
	t.Log(sh.Summary())
}

// TestFsyncgateEpisodesCanBeSkipped: single-broker's fsyncgate episodes
// (and its closing power loss) are numbered like a cluster's crashes; a run
// that skips them all acts on none, and trust-page-cache, which only they
// reveal, then goes unseen.
func TestFsyncgateEpisodesCanBeSkipped(t *testing.T) {
	d, err := Lookup("single-broker")
	if err != nil {
		t.Fatal(err)
	}
	o := withParams(1, map[string]string{"faults": "fsyncgate"}, faults.BugTrustPageCache)
	full, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	n, planted := full.EpisodesActed()
	if !planted || n < 2 || full.OK() {
		t.Fatalf("fsyncgate seed 1: %d episodes (planted %v), ok %v", n, planted, full.OK())
	}
	o.EpisodesSkipped = episodesExcept(int(n), nil)
	none, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if acted, _ := none.EpisodesActed(); acted != 0 || !none.OK() {
		t.Fatalf("every episode skipped: %d acted, failed %+v", acted, none.Failed())
	}
}
