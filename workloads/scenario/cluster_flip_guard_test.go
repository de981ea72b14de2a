package scenario

import (
	"fmt"
	"testing"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// TestFlipGuardFindsTheBatchOfASpot: the guard names the partition of a
// segment file and the batch (offsets, leader epoch) a flip lands in,
// and gives up, sparing the flip, where the headers cannot be walked.
func TestFlipGuardFindsTheBatchOfASpot(t *testing.T) {
	for name, want := range map[string]string{
		"kafka-logs/jepsen-0/00000000000000001738.log":         "jepsen 0 true",
		"kafka-logs/orders-2026-11/00000000000000000000.log":   "orders-2026 11 true",
		"kafka-logs/jepsen-0/00000000000000001738.index":       " 0 false",
		"kafka-logs/jepsen-0/leader-epoch-checkpoint":          " 0 false",
		"kafka-logs/broker-starts":                             " 0 false",
		"kafka-logs/jepsen-x/00000000000000000000.log":         " 0 false",
		"kafka-logs/jepsen-0.abc-delete/00000000000000000.log": " 0 false",
	} {
		topic, partition, ok := partitionOfSegment(name)
		if got := fmt.Sprint(topic, " ", partition, " ", ok); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var segment []byte
	var starts []int
	for i, base := range []int64{100, 103, 110} {
		bl := record.NewBuilder()
		bl.BaseOffset, bl.PartitionLeaderEpoch = base, int32(4+i)
		b, err := bl.Build([]record.Record{{Offset: base, Value: []byte("a")}, {Offset: base + 2, Value: []byte("bc")}})
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, len(segment))
		segment = append(segment, b...)
	}
	spot := func(offset int64, data []byte) simdisk.FlipSpot {
		return simdisk.FlipSpot{Name: "kafka-logs/jepsen-0/00000000000000000100.log", Offset: offset, SizeBytes: int64(len(data)),
			Read: func(p []byte, at int64) int { return copy(p, data[min(at, int64(len(data))):]) }}
	}
	for i, want := range []spotBatch{{100, 102, 4}, {103, 105, 5}, {110, 112, 6}} {
		for _, at := range []int{starts[i], starts[i] + 30, starts[i] + record.HeaderBytes + 1} {
			if got, ok := batchAtSpot(spot(int64(at), segment)); !ok || got != want {
				t.Errorf("byte %d: batch %+v %v, want %+v", at, got, ok, want)
			}
		}
	}
	torn := segment[:starts[2]+20]
	if got, ok := batchAtSpot(spot(int64(starts[2]+5), torn)); ok {
		t.Errorf("a flip in a torn last header: batch %+v, want it spared", got)
	}
	garbled := append([]byte(nil), segment...)
	copy(garbled[starts[1]+8:], []byte{0, 0, 0, 5}) // the second batch's length: too short for a header
	if got, ok := batchAtSpot(spot(int64(starts[2]+1), garbled)); ok {
		t.Errorf("a flip past a garbled length: batch %+v, want it spared", got)
	}
}

// TestClusterFlipsSpareTheLastCopy: in cluster-swarm's own fault mix
// (seed 28 draws bit flips among crashes, power losses and partitions)
// the guard spares flips that would land in a batch no other clean
// replica holds, other flips still land, and the run passes every check.
func TestClusterFlipsSpareTheLastCopy(t *testing.T) {
	d, err := Lookup("cluster-swarm")
	if err != nil {
		t.Fatal(err)
	}
	const seed = 28
	r, err := Run(d, Options{Seed: seed, Swarm: true, Bugs: faults.Bugs{}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d: %+v", seed, r.Failed())
	}
	if r.FaultsFired[string(faults.Corrupt)] == 0 || r.Stats["flips_spared"] == 0 {
		t.Fatalf("seed %d: corrupt fired %d times, %d flips spared", seed, r.FaultsFired[string(faults.Corrupt)], r.Stats["flips_spared"])
	}
}
