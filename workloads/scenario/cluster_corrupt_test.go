package scenario

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// clusterCorruptOptions is a short cluster-swarm run whose only faults
// are bit flips on the brokers' disks, about one every 700 ms.
func clusterCorruptOptions(seed uint64, bugs ...faults.Bug) Options {
	o := leaderCrashShort(seed, nil, bugs...)
	o.Profile = &faults.ProfileSpec{Kinds: []faults.Kind{faults.KindCorrupt}, IntervalMean: faults.Duration(700 * time.Millisecond)}
	return o
}

// TestClusterRepairsCorruptReplicas: in cluster-swarm's own fault mix
// (seed 8 draws two bit flips among crashes, pauses, partitions, disk and
// clock faults) no acknowledged write is lost and no corrupt batch served:
// the leader that reads the damage restarts so that an in-sync replica
// leads, and when it follows again it cuts its log at the damage and
// fetches it from the new leader (the probes say so). The run passes every
// check, drained consumers and healed ISRs included.
func TestClusterRepairsCorruptReplicas(t *testing.T) {
	d, err := Lookup("cluster-swarm")
	if err != nil {
		t.Fatal(err)
	}
	const seed = 8
	r, err := Run(d, Options{Seed: seed, Bugs: faults.Bugs{}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d: %+v", seed, r.Failed())
	}
	if r.FaultsFired[string(faults.Corrupt)] == 0 {
		t.Fatalf("seed %d: no corrupt fault fired: %v", seed, r.FaultsFired)
	}
	for _, probe := range []string{"storage/damage-fenced", "broker/damage-found-restart", "broker/damaged-replica-truncated"} {
		if r.Probes[probe] == 0 {
			t.Errorf("seed %d: probe %s never fired: %v", seed, probe, r.Probes)
		}
	}
	if r.Stats["sends_ok"] < 1000 {
		t.Fatalf("seed %d: too little happened to judge: %v", seed, r.Stats)
	}
}

// TestClusterCatchesSkipCRC plants skip-crc (the logs check no checksum
// on reads or recovery) in the cluster under frequent bit flips: a leader
// serves the batches the disk flipped, and a consumer's own check catches
// them.
func TestClusterCatchesSkipCRC(t *testing.T) {
	d, err := Lookup("cluster-swarm")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Bugs, faults.BugSkipCRC) {
		t.Fatalf("cluster-swarm does not list %s among its bugs: %v", faults.BugSkipCRC, d.Bugs)
	}
	const seed = 1
	r, err := Run(d, clusterCorruptOptions(seed, faults.BugSkipCRC))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(r.Failed(), func(c Check) bool { return c.Name == "no-corrupt-reads" }) {
		t.Fatalf("seed %d with %s: no-corrupt-reads held; failed: %+v", seed, faults.BugSkipCRC, r.Failed())
	}
}

// TestPlantedClusterScenariosTakeCorrupt: --param corrupt=on adds bit
// flips on the brokers' disks to a planted scenario's own episodes, and
// the cluster repairs them: leader crashes with flips pass every check,
// and the flips really fired.
func TestPlantedClusterScenariosTakeCorrupt(t *testing.T) {
	d := leaderCrashDef(t)
	const seed = 3
	r, err := Run(d, Options{Seed: seed, Bugs: faults.Bugs{}, Params: map[string]string{"corrupt": "on"}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d: %+v", seed, r.Failed())
	}
	if r.FaultsFired[string(faults.Corrupt)] == 0 || r.Stats["planted_faults"] == 0 {
		t.Fatalf("seed %d: corrupt fired %d times, %d planted episodes", seed, r.FaultsFired[string(faults.Corrupt)], r.Stats["planted_faults"])
	}
	for _, a := range r.Schedule.Actions {
		if a.Op == faults.Corrupt && !slices.Contains([]string{"b1", "b2", "b3"}, a.Node) {
			t.Fatalf("a bit flip on %s: only brokers' disks take them", a.Node)
		}
	}
}

// TestClusterSwarmSparesOneReplica: cluster-swarm seed 757 draws bit
// flips on every broker's disk. Unbounded, each replica of a partition was
// damaged at its own offsets, each cut its log at its first damage, and a
// consumer stayed refused (CORRUPT_MESSAGE) at a range no replica held
// any more: the run failed to drain. The schedule asked for data no
// cluster could give back; flips now land on at most two of the three
// brokers, and the seed passes every check: the brokers that read their
// damage restart and hand their leaderships to the undamaged replicas.
func TestClusterSwarmSparesOneReplica(t *testing.T) {
	const seed = 757
	r := runClusterSwarmSeed(t, seed)
	flipped := map[string]bool{}
	for _, a := range r.Schedule.Actions {
		if a.Op == faults.Corrupt {
			flipped[a.Node] = true
		}
	}
	if len(flipped) != clusterCorruptBrokersMax {
		t.Fatalf("seed %d: bit flips on %d brokers %v, want %d", seed, len(flipped), flipped, clusterCorruptBrokersMax)
	}
	if !r.OK() {
		t.Fatalf("seed %d: %+v", seed, r.Failed())
	}
	if r.Probes["broker/damage-found-restart"] == 0 {
		t.Fatalf("seed %d: no broker found its damage: %v", seed, r.Probes)
	}
}

// TestDrainReadsLaggingPartitionAtOnce: in cluster-swarm seed 565 the
// drain's reread leaves two partitions of one leader far behind while the
// third, of another leader, has caught up. A poll waited for every fetch
// it sent, so the caught-up partition's fetch, held by its leader for
// FetchMaxWait, paced the others to one answer (one 16 KiB segment) per
// 100 ms, and the drain did not finish. A poll with records now completes
// without waiting for its held fetches, and the seed passes.
func TestDrainReadsLaggingPartitionAtOnce(t *testing.T) {
	const seed = 565
	r := runClusterSwarmSeed(t, seed)
	if !r.OK() {
		t.Fatalf("seed %d: %+v", seed, r.Failed())
	}
	if r.Stats["knob_segment_bytes"] > 16<<10 {
		t.Fatalf("seed %d drew %d-byte segments: it no longer tests reads of one small segment per fetch", seed, r.Stats["knob_segment_bytes"])
	}
}

// runClusterSwarmSeed runs a cluster-swarm seed as 'sim swarm' does, with
// its own fault mix and no planted bug.
func runClusterSwarmSeed(t *testing.T, seed uint64) Result {
	t.Helper()
	d, err := Lookup("cluster-swarm")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(d, Options{Seed: seed, Swarm: true, Bugs: faults.Bugs{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
