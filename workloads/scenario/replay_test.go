package scenario

import "testing"

// seedsReplayedPerScenario is how many seeds of each scenario
// TestEveryScenarioReplaysAndActs runs twice; the counter's wider sweep is
// TestCounterSeedsReplay, and `make soak` runs hundreds.
const seedsReplayedPerScenario = 12

// TestEveryScenarioReplaysAndActs runs seeds of every registered scenario
// twice: both runs must give one trace hash, and every action of the
// generated schedule must have acted (no kill of a node already down, no
// heal with nothing to heal, nothing after the run's end).
func TestEveryScenarioReplaysAndActs(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			d, _ := Lookup(name)
			for seed := uint64(1); seed <= seedsReplayedPerScenario; seed++ {
				a, det, err := RunTwice(d, short(seed))
				if err != nil {
					t.Fatal(err)
				}
				if !det.Same() {
					t.Fatalf("seed %d: trace %s then %s\n%s", seed, det.Hashes[0], det.Hashes[1], det.Divergence)
				}
				if len(a.FaultWarnings) > 0 || a.FaultsApplied != len(a.Schedule.Actions) {
					t.Fatalf("seed %d: %d of %d generated actions acted: %v", seed, a.FaultsApplied, len(a.Schedule.Actions), a.FaultWarnings)
				}
			}
		})
	}
}
