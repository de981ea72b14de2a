package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// Three starts of a broker: epoch 0 wrote 0..9, epoch 1 wrote nothing,
// epoch 2 wrote 10..19, each batch by producer 7.
var auditedBatches = []auditBatch{
	{base: 0, last: 4, leaderEpoch: 0, producerID: 7, producerEpoch: 0, lastSequence: 4, hasProducer: true},
	{base: 5, last: 9, leaderEpoch: 0, producerID: 7, producerEpoch: 0, lastSequence: 9, hasProducer: true},
	{base: 10, last: 19, leaderEpoch: 2, producerID: 7, producerEpoch: 1, lastSequence: 9, hasProducer: true},
}

func TestAuditEpochs(t *testing.T) {
	cases := []struct {
		name     string
		entries  []storage.EpochEntry
		logStart int64
		want     string // a substring of the first fault; "" for none
	}{
		{"agrees", []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 10}}, 0, ""},
		{"an epoch without batches", []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 1, StartOffset: 10},
			{Epoch: 2, StartOffset: 10}}, 0, ""},
		{"log start inside the first batch", []storage.EpochEntry{{Epoch: 0, StartOffset: 3}, {Epoch: 2, StartOffset: 10}}, 3, ""},
		// A cache that never recorded a later epoch (an assign that
		// kept only the first).
		{"a later epoch not recorded", []storage.EpochEntry{{Epoch: 0, StartOffset: 0}}, 0,
			"batch 10..19 was written in epoch 2, the epoch cache says epoch 0 began at 0"},
		{"an epoch recorded too late", []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 11}}, 0,
			"batch 10..19 was written in epoch 2"},
		{"an epoch recorded too early", []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 5}}, 0,
			"batch 5..9 was written in epoch 0, the epoch cache says epoch 2 began at 5"},
		{"nothing before the first batch", []storage.EpochEntry{{Epoch: 0, StartOffset: 5}, {Epoch: 2, StartOffset: 10}}, 0,
			"lies before the epoch cache's first entry"},
		{"out of order", []storage.EpochEntry{{Epoch: 2, StartOffset: 0}, {Epoch: 2, StartOffset: 10}}, 0,
			"epoch cache out of order"},
	}
	for _, c := range cases {
		faults := auditEpochs(c.entries, auditedBatches, c.logStart)
		switch {
		case c.want == "" && len(faults) > 0:
			t.Errorf("%s: %v", c.name, faults)
		case c.want != "" && (len(faults) == 0 || !strings.Contains(faults[0], c.want)):
			t.Errorf("%s: faults %v, want one saying %q", c.name, faults, c.want)
		}
	}
}

func TestAuditProducers(t *testing.T) {
	state := func(epoch int16, lastSeq int32, lastOffset int64) []storage.ProducerState {
		return []storage.ProducerState{{ProducerID: 7, Epoch: epoch,
			Batches: []storage.ProducerBatch{{FirstSequence: 0, LastSequence: lastSeq, FirstOffset: 10, LastOffset: lastOffset}}}}
	}
	cases := []struct {
		name   string
		states []storage.ProducerState
		want   string
	}{
		{"agrees", state(1, 9, 19), ""},
		{"forgotten", nil, "producer 7 wrote batch 10..19 but the log keeps no state of it"},
		{"old epoch", state(0, 9, 19), "its state says epoch 0"},
		{"sequence not advanced", state(1, 4, 19), "last batch ..4 at 19"},
		{"offset of another batch", state(1, 9, 9), "last batch ..9 at 9"},
	}
	for _, c := range cases {
		faults := auditProducers(c.states, auditedBatches)
		switch {
		case c.want == "" && len(faults) > 0:
			t.Errorf("%s: %v", c.name, faults)
		case c.want != "" && (len(faults) == 0 || !strings.Contains(faults[0], c.want)):
			t.Errorf("%s: faults %v, want one saying %q", c.name, faults, c.want)
		}
	}
}

// TestSwarmSeedAuditsItsLog: a swarm seed whose broker restarts (so its
// logs hold batches of several leader epochs, and producer state rebuilt
// by recovery) ends with the log audit run over its batches, and passing.
// With an epoch cache that keeps only its first epoch, this seed fails
// the audit (a mutant of epochCache.assign did), and so it does with a
// producer table that no longer finds a replayed batch among the
// producer's last five (a mutant of producerTable.check).
func TestSwarmSeedAuditsItsLog(t *testing.T) {
	d := singleBrokerDef(t)
	o := withParams(2, nil)
	o.Swarm = true
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("swarm seed 2 failed: %+v", res.Failed())
	}
	if res.Stats["broker_starts"] < 2 || res.Stats["audited_batches"] < 100 {
		t.Fatalf("%d broker starts, %d batches audited: want a restart and a log to audit",
			res.Stats["broker_starts"], res.Stats["audited_batches"])
	}
	found := false
	for _, c := range res.Checks {
		found = found || c.Name == "log-state"
	}
	if !found {
		t.Fatalf("no log-state check among %+v", res.Checks)
	}
}

func TestJudgeReplay(t *testing.T) {
	b := auditedBatches[2]
	cases := []struct {
		name string
		res  storage.AppendResult
		err  error
		want string
	}{
		{"recognised", storage.AppendResult{BaseOffset: 10, LastOffset: 19, Duplicate: true}, nil, ""},
		{"refused", storage.AppendResult{}, storage.ErrOutOfOrderSequence, "was refused"},
		{"written again", storage.AppendResult{BaseOffset: 20, LastOffset: 29}, nil, "was written again at 20..29"},
		{"another batch's offsets", storage.AppendResult{BaseOffset: 0, LastOffset: 9, Duplicate: true}, nil, "answered as a duplicate at 0..9"},
	}
	for _, c := range cases {
		got := judgeReplay(b, c.res, c.err)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestAuditSegments: a segment may pass the configured size by at most
// one batch; one that never rolled (a segment size read as the 1 GiB
// default) is a fault.
func TestAuditSegments(t *testing.T) {
	segments := []storage.SegmentInfo{{BaseOffset: 0, NextOffset: 90, SizeBytes: 16 << 10},
		{BaseOffset: 90, NextOffset: 180, SizeBytes: 20 << 10}}
	if faults := auditSegments(segments, 16<<10, 4<<10); len(faults) != 0 {
		t.Errorf("within one batch of the size: %v", faults)
	}
	faults := auditSegments(segments, 16<<10, 2<<10)
	if len(faults) != 1 || !strings.Contains(faults[0], "segment 90..180 holds 20480 bytes; segments are 16384 bytes") {
		t.Errorf("a segment past the size by more than a batch: %v", faults)
	}
}

// loopClock is a node's clock over a loop driven by hand.
type loopClock struct {
	loop *sched.Loop
	node *sched.Node
}

func (c loopClock) Now() time.Time      { return time.Unix(1_700_000_000, 0).Add(c.loop.Now()) }
func (c loopClock) Mono() time.Duration { return c.loop.Now() }
func (c loopClock) AfterFunc(d time.Duration, f func()) sim.Timer {
	return c.loop.AfterTimer(d, c.node, f)
}

// openAuditedLog opens an empty log on a simulated disk, its batches at
// most maxBatchBytes.
func openAuditedLog(t *testing.T, maxBatchBytes int) *storage.Log {
	t.Helper()
	loop := sched.New()
	node := loop.AddNode("broker")
	node.Boot()
	disk := simdisk.New(loop, node, sched.NewRand(1, "disk", 0), simdisk.Config{SectorBytes: 512})
	cfg := storage.Config{SegmentBytes: 64 << 10, MaxBatchBytes: maxBatchBytes}
	lg, _, err := storage.Open(disk.FS(), loopClock{loop, node}, "orders-0", cfg, 0, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	loop.Run(sched.Limits{Until: loop.Now() + time.Second})
	return lg
}

func TestBatchOfBytesHitsTheSize(t *testing.T) {
	for _, size := range []int{100, 127, 128, 129, 4096, 16383, 16384, 16385, 64 << 10} {
		b, err := batchOfBytes(size)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != size || b.Size() != int64(size) {
			t.Fatalf("asked %d bytes, built %d (length field says %d)", size, len(b), b.Size())
		}
		if err := b.VerifyProduced(); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
}

// TestAppendAtLimit: a log whose limit is the one the audit assumes
// passes; a log that takes a byte more than the limit, or refuses the
// limit itself, is a fault.
func TestAppendAtLimit(t *testing.T) {
	cases := []struct {
		name                 string
		logLimit, auditLimit int
		want                 string
	}{
		{"inclusive limit", 4096, 4096, ""},
		{"takes a byte more", 4096, 4095, "over the limit of 4095"},
		{"refuses the limit", 4096, 4097, "exactly the limit of 4097 bytes was refused"},
	}
	for _, c := range cases {
		got := strings.Join(appendAtLimit(openAuditedLog(t, c.logLimit), c.auditLimit), "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestAuditEndOffsets: the epochs of auditedBatches (0 from 0, 2 from 10)
// with a log ending at 20; an answer that is the log end for every epoch,
// or undefined for the latest, is a fault.
func TestAuditEndOffsets(t *testing.T) {
	entries := []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 10}}
	sound := func(epoch int32) (int32, int64) {
		if epoch == 2 {
			return 2, 20
		}
		return 0, 10
	}
	logEndAlways := func(epoch int32) (int32, int64) { return epoch, 20 }
	undefinedLatest := func(epoch int32) (int32, int64) {
		if epoch == 2 {
			return -1, -1
		}
		return sound(epoch)
	}
	if got := auditEndOffsets(entries, 20, sound); got != nil {
		t.Fatalf("sound answers: %v", got)
	}
	if got := strings.Join(auditEndOffsets(entries, 20, logEndAlways), ""); !strings.Contains(got, "OffsetForLeaderEpoch(0) answers epoch 0 ending at 20") {
		t.Fatalf("log end for every epoch: %q", got)
	}
	if got := strings.Join(auditEndOffsets(entries, 20, undefinedLatest), ""); !strings.Contains(got, "OffsetForLeaderEpoch(2) answers epoch -1 ending at -1") {
		t.Fatalf("undefined for the latest: %q", got)
	}
}

// TestSwarmSeedWithMetaErrorsTakesALogOffline: swarm seed 44 draws
// meta-errors, whose failed cut of a partial append takes a log offline;
// the broker starts over, recovery reads the log back, and the run passes
// every check, the log audit included. The seed draws the sticky
// partitioner since that became a knob; the run keeps the round-robin it
// was found with.
func TestSwarmSeedWithMetaErrorsTakesALogOffline(t *testing.T) {
	d := singleBrokerDef(t)
	o := withParams(44, map[string]string{"partitioner": "round-robin"})
	o.Swarm = true
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("swarm seed 44 failed: %+v", res.Failed())
	}
	if res.FaultsFired["meta-errors"] == 0 || res.Probes["storage/log-offline"] == 0 ||
		res.Probes["broker/restart-after-fatal"] == 0 {
		t.Fatalf("faults %v, probes %v: want meta-errors to take a log offline and the broker to start over",
			res.FaultsFired, res.Probes)
	}
	if res.Stats["audited_batches"] < 100 {
		t.Fatalf("%d batches audited", res.Stats["audited_batches"])
	}
}
