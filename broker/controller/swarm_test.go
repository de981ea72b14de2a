package controller

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/sched"
)

// TestQuorumUnderRandomFaults gives each seed its own schedule of kills,
// power losses, pauses, partitions, blocked links, slow, failing and full
// disks and clock faults on the controllers while entries stream in. After
// the faults heal, a controller must serve, all must catch up, no term may
// have had two leaders and no committed entry may have been lost.
func TestQuorumUnderRandomFaults(t *testing.T) {
	seeds := uint64(30)
	if testing.Short() {
		seeds = 8
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		q := newQuorum(t, seed, nil, func(c *Config) { c.SnapshotEntries = 200 })
		schedule := faults.Generate(sched.NewRand(seed, "faults", 0), faults.Profile{
			Targets: q.names, Start: 500 * time.Millisecond, End: 8 * time.Second,
			IntervalMean: 700 * time.Millisecond, DurationMax: 1500 * time.Millisecond,
			Kinds: []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
				faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindDiskFull,
				faults.KindClockJump, faults.KindClockDrift},
		})
		if _, err := schedule.Install(q.w); err != nil {
			t.Fatal(err)
		}
		q.proposeEvery(5*time.Millisecond, 12*time.Second)
		q.run(14 * time.Second)
		if len(q.violations) > 0 {
			t.Fatalf("seed %d: %s", seed, q.violations[0])
		}
		if q.active() == "" {
			t.Fatalf("seed %d: no active controller 6 s after the faults healed", seed)
		}
		q.caughtUp()
	}
}
