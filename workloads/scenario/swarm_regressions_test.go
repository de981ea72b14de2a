package scenario

import (
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

// TestSwarmSeedsOfTheTenThousand runs again the single-broker seeds a
// 10,000-seed swarm over every scenario failed, each for a broker bug
// since fixed: 458 and 582 (a compaction that failed on a full disk left
// its .cleaned files), 523 (an epoch checkpoint whose write failed named an
// epoch's start below the log start read back after a restart) and 591 (a
// log start checkpoint write that ended after a fatal error panicked on
// the closed broker).
func TestSwarmSeedsOfTheTenThousand(t *testing.T) {
	d, err := Lookup("single-broker")
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{458, 523, 582, 591} {
		r, err := Run(d, Options{Seed: seed, Swarm: true, Bugs: faults.Bugs{}})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Errorf("single-broker swarm seed %d: %+v", seed, r.Failed())
		}
	}
}
