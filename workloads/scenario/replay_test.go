package scenario

import "testing"

// seedsReplayedPerScenario is how many seeds of each scenario
// TestEveryScenarioReplaysAndActs runs twice; the counter's wider sweep is
// TestCounterSeedsReplay, and `make soak` runs hundreds.
const seedsReplayedPerScenario = 12

// seedsReplayedPerClusterScenario is fewer: the broker-cluster scenarios
// (coordinator-failover among them) share one cluster, and each seed runs
// six nodes.
const seedsReplayedPerClusterScenario = 3

// TestEveryScenarioReplaysAndActs runs seeds of every registered scenario
// twice: both runs must give one trace hash, and every action of the
// generated schedule must have acted (no kill of a node already down, no
// heal with nothing to heal, nothing after the run's end).
func TestEveryScenarioReplaysAndActs(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			d, _ := Lookup(name)
			seeds := uint64(seedsReplayedPerScenario)
			if brokerClusterScenario(name) {
				seeds = seedsReplayedPerClusterScenario
			}
			for seed := uint64(1); seed <= seeds; seed++ {
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

// TestProbesReachTheResult: a counter seed whose schedule fails syncs makes
// the server reload its log, and the run's result counts that probe.
func TestProbesReachTheResult(t *testing.T) {
	d, _ := Lookup("counter")
	for seed := uint64(1); seed <= 30; seed++ {
		res, err := Run(d, short(seed))
		if err != nil {
			t.Fatal(err)
		}
		if res.Probes["counter/sync-failed-reload"] > 0 {
			if res.FaultsFired["fail-syncs"] == 0 {
				t.Fatalf("seed %d reloaded after a failed sync without a fail-syncs fault", seed)
			}
			return
		}
	}
	t.Fatal("no counter seed of 30 hit counter/sync-failed-reload")
}
