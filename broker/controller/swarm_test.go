package controller

import (
	"bytes"
	"slices"
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

// TestBrokersUnderRandomFaults runs controllers and fake brokers under
// random faults on all of them. Once the faults heal and sessions have had
// time to settle, every broker must be registered and unfenced, every
// partition led by its preferred replica with a full ISR, and every
// broker's image equal to the controllers' state.
func TestBrokersUnderRandomFaults(t *testing.T) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 4
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		c := newCluster(t, seed)
		targets := append(slices.Clone(c.names), "b1", "b2", "b3")
		schedule := faults.Generate(sched.NewRand(seed, "faults", 0), faults.Profile{
			Targets: targets, Clients: []string{"admin"}, Start: 2 * time.Second, End: 9 * time.Second,
			IntervalMean: 600 * time.Millisecond, DurationMax: 3 * time.Second,
			Kinds: []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
				faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindClockJump},
		})
		if _, err := schedule.Install(c.w); err != nil {
			t.Fatal(err)
		}
		c.w.At(time.Second, func() { c.createTopic("orders", 6, 3) })
		c.run(20 * time.Second)
		c.check()
		s := c.state()
		for id := int32(1); id <= 3; id++ {
			if b := s.Brokers[id]; b == nil || b.Fenced || b.Epoch != c.brokers[id].epoch {
				t.Fatalf("seed %d: broker %d after the heal: %+v (its own epoch %d)", seed, id, b, c.brokers[id].epoch)
			}
		}
		topic := s.Topics["orders"]
		if topic == nil {
			t.Fatalf("seed %d: topic never created", seed)
		}
		for i, p := range topic.Partitions {
			if p.Leader != p.Replicas[0] || len(p.ISR) != 3 {
				t.Fatalf("seed %d: partition %d after the heal: %+v", seed, i, p)
			}
		}
		want := s.Encode()
		for id := int32(1); id <= 3; id++ {
			if got := c.brokers[id].image.State().Encode(); !bytes.Equal(got, want) {
				t.Fatalf("seed %d: broker %d image differs from the controllers' state", seed, id)
			}
		}
	}
}
