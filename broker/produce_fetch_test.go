package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
)

// slowDiskFactor stretches the broker's syncs: the default disk's 0.1 ms
// floor becomes syncFloor.
const (
	slowDiskFactor = 100
	syncFloor      = 10 * time.Millisecond
)

// expectRecords fails unless got holds exactly want, value by value at
// offsets 0, 1, ...
func expectRecords(t *testing.T, got []readRecord, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d: %v", len(got), len(want), got)
	}
	for i, rec := range got {
		if rec.offset != int64(i) || rec.value != want[i] {
			t.Fatalf("record %d: offset %d value %q, want offset %d value %q", i, rec.offset, rec.value, i, want[i])
		}
	}
}

func TestProduceThenFetch(t *testing.T) {
	modes := []struct {
		name      string
		configure func(*broker.Config)
	}{
		{"flush-never", nil},
		{"group-commit", groupCommit},
	}
	for i, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			r := newRig(t, 40+uint64(i), mode.configure)
			r.createTopic("orders", 2)
			var want []string
			for b, values := range [][]string{{"a", "b", "c"}, {"d"}, {"e", "f"}} {
				sp := r.produce("orders", 1, buildBatch(t, plain, 1000, values...))
				expectCode(t, fmt.Sprintf("produce %d", b), sp.ErrorCode, nil)
				if sp.BaseOffset != int64(len(want)) {
					t.Fatalf("batch %d got base offset %d, want %d", b, sp.BaseOffset, len(want))
				}
				if sp.LogStartOffset != 0 {
					t.Fatalf("log start offset %d", sp.LogStartOffset)
				}
				want = append(want, values...)
			}
			expectRecords(t, r.readAll("orders", 1), want)
			// A fetch inside a batch returns the whole batch (Kafka sends
			// batches whole); the record asked for is in it.
			fp := r.fetchNow("orders", 1, 4)
			recs := decodeRecords(t, fp.RecordBatches)
			if len(recs) == 0 || recs[0].offset > 4 || fp.HighWatermark != 6 {
				t.Fatalf("fetch at 4: %v, high watermark %d", recs, fp.HighWatermark)
			}
			// At the log end: empty, no error.
			fp = r.fetchNow("orders", 1, 6)
			expectCode(t, "fetch at the log end", fp.ErrorCode, nil)
			if len(fp.RecordBatches) != 0 {
				t.Fatalf("fetch at the log end returned %d bytes", len(fp.RecordBatches))
			}
			// Beyond it: out of range.
			fp = r.fetchNow("orders", 1, 7)
			expectCode(t, "fetch beyond the log end", fp.ErrorCode, kerr.OffsetOutOfRange)
			expectCode(t, "fetch at -1", r.fetchNow("orders", 1, -1).ErrorCode, kerr.OffsetOutOfRange)
			// The other partition is untouched; missing ones are unknown.
			if recs := r.readAll("orders", 0); len(recs) != 0 {
				t.Fatalf("partition 0 holds %v", recs)
			}
			expectCode(t, "fetch partition 2", r.fetchNow("orders", 2, 0).ErrorCode, kerr.UnknownTopicOrPartition)
			expectCode(t, "fetch unknown topic", r.fetchNow("nope", 0, 0).ErrorCode, kerr.UnknownTopicOrPartition)
			expectCode(t, "produce partition 2", r.produce("orders", 2, buildBatch(t, plain, 1000, "x")).ErrorCode, kerr.UnknownTopicOrPartition)
		})
	}
}

// A produce whose data is not one well-formed v2 batch is refused, and
// nothing of it is appended.
func TestProduceRefusesMalformedData(t *testing.T) {
	r := newRig(t, 42, nil)
	r.createTopic("orders", 1)
	good := buildBatch(t, plain, 1000, "a")
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-1] ^= 0x01
	cases := []struct {
		name string
		data []byte
		want *kerr.Error
	}{
		{"two batches", append(slices.Clone(good), good...), kerr.InvalidRecord},
		{"truncated", good[:len(good)-1], kerr.InvalidRecord},
		{"empty", []byte{}, kerr.InvalidRecord},
		{"bad crc", corrupt, kerr.CorruptMessage},
	}
	for _, c := range cases {
		sp := r.produce("orders", 0, c.data)
		expectCode(t, c.name, sp.ErrorCode, c.want)
		if sp.BaseOffset != -1 {
			t.Fatalf("%s: refused produce answered base offset %d", c.name, sp.BaseOffset)
		}
	}
	if got := r.latest("orders", 0); got != 0 {
		t.Fatalf("refused produces appended: high watermark %d", got)
	}
}

// Under group commit a produce is answered only once its batch is on
// disk, and until then consumers cannot see it: the high watermark is
// what is durable, not what is appended.
func TestGroupCommitAcksAndExposesOnlyDurableData(t *testing.T) {
	r := newRig(t, 43, groupCommit)
	r.createTopic("orders", 1)
	if err := r.w.SlowDisk(brokerNode, slowDiskFactor); err != nil {
		t.Fatal(err)
	}
	producer, reader, poller := r.dial(), r.dial(), r.dial()
	r.runUntil("connections open", answerWaitMax, func() bool { return producer.opened && reader.opened && poller.opened })
	longPoll := poller.send(fetchRequest("orders", 0, 0, 5*time.Second, 1))
	r.runFor(time.Millisecond)
	produce := producer.send(produceRequest("orders", 0, -1, buildBatch(t, plain, 1000, "a", "b")))
	// While the sync runs, reads see nothing of the batch.
	r.runFor(2 * time.Millisecond)
	if produce.done {
		t.Fatalf("produce answered after %v, faster than a sync", produce.at-produce.sentAt)
	}
	during := fetchPartition(t, r.wait(reader.send(fetchRequest("orders", 0, 0, 0, 0))))
	if during.HighWatermark != 0 || len(during.RecordBatches) != 0 {
		t.Fatalf("during the sync a fetch saw high watermark %d and %d bytes", during.HighWatermark, len(during.RecordBatches))
	}
	if got := r.listOffsetOn(reader, "orders", 0, -1); got != 0 {
		t.Fatalf("during the sync ListOffsets latest said %d", got)
	}
	if produce.done || longPoll.done {
		t.Fatalf("answered before the sync: produce %v, long poll %v", produce.done, longPoll.done)
	}
	r.wait(produce)
	expectCode(t, "produce", producePartition(t, produce.resp).ErrorCode, nil)
	if got := produce.at - produce.sentAt; got < syncFloor {
		t.Fatalf("produce answered after %v, less than one slowed sync (%v)", got, syncFloor)
	}
	r.wait(longPoll)
	if longPoll.at < produce.sentAt+syncFloor {
		t.Fatalf("long poll woke at %v, before the batch sent at %v could be durable", longPoll.at, produce.sentAt)
	}
	lp := fetchPartition(t, longPoll.resp)
	if lp.HighWatermark != 2 {
		t.Fatalf("long poll high watermark %d, want 2", lp.HighWatermark)
	}
	expectRecords(t, decodeRecords(t, lp.RecordBatches), []string{"a", "b"})
	expectRecords(t, r.readAll("orders", 0), []string{"a", "b"})
}

// listOffsetOn asks ListOffsets on a given connection.
func (r *rig) listOffsetOn(tc *testConn, topic string, partition int32, timestamp int64) int64 {
	r.t.Helper()
	lo := listOffsetsPartition(r.t, r.wait(tc.send(listOffsetsRequest(topic, partition, timestamp))))
	expectCode(r.t, "list offsets", lo.ErrorCode, nil)
	return lo.Offset
}

// With flush never (Kafka's default) the answer does not wait for the
// disk and the high watermark is the log end at once.
func TestFlushNeverExposesTheLogEnd(t *testing.T) {
	r := newRig(t, 44, nil)
	r.createTopic("orders", 1)
	if err := r.w.SlowDisk(brokerNode, slowDiskFactor); err != nil {
		t.Fatal(err)
	}
	tc := r.dial()
	produce := tc.send(produceRequest("orders", 0, -1, buildBatch(t, plain, 1000, "a", "b", "c")))
	r.wait(produce)
	expectCode(t, "produce", producePartition(t, produce.resp).ErrorCode, nil)
	if got := produce.at - produce.sentAt; got >= syncFloor {
		t.Fatalf("produce with flush never took %v: it waited for a sync", got)
	}
	fp := fetchPartition(t, r.wait(tc.send(fetchRequest("orders", 0, 0, 0, 0))))
	if fp.HighWatermark != 3 {
		t.Fatalf("high watermark %d right after the produce, want the log end 3", fp.HighWatermark)
	}
	expectRecords(t, decodeRecords(t, fp.RecordBatches), []string{"a", "b", "c"})
	if got := r.latest("orders", 0); got != 3 {
		t.Fatalf("ListOffsets latest %d, want 3", got)
	}
}

// Disk faults turn into Kafka's retriable storage errors, a failed sync
// drops the batch it failed to make durable (never shown, never
// acknowledged), and the broker serves again once the disk heals.
func TestDiskFaultsAnswerStorageErrors(t *testing.T) {
	r := newRig(t, 45, groupCommit)
	r.createTopic("orders", 1)
	expectCode(t, "produce a", r.produce("orders", 0, buildBatch(t, plain, 1000, "a")).ErrorCode, nil)
	if err := r.w.FailSyncs(brokerNode, 1); err != nil {
		t.Fatal(err)
	}
	sp := r.produce("orders", 0, buildBatch(t, plain, 1000, "lost"))
	expectCode(t, "produce over a failing sync", sp.ErrorCode, kerr.KafkaStorageError)
	if sp.BaseOffset != -1 {
		t.Fatalf("failed produce answered base offset %d", sp.BaseOffset)
	}
	r.runFor(10 * time.Millisecond)
	sp = r.produce("orders", 0, buildBatch(t, plain, 1000, "b"))
	expectCode(t, "produce after the failed sync", sp.ErrorCode, nil)
	if sp.BaseOffset != 1 {
		t.Fatalf("batch after the failed sync at %d, want 1: the unsynced batch was kept", sp.BaseOffset)
	}
	expectRecords(t, r.readAll("orders", 0), []string{"a", "b"})

	if err := r.w.FillDisk(brokerNode); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "produce to a full disk", r.produce("orders", 0, buildBatch(t, plain, 1000, "full")).ErrorCode, kerr.KafkaStorageError)
	expectCode(t, "create on a full disk", r.createTopics(false, newTopicSpec("more", 1))[0].ErrorCode, kerr.KafkaStorageError)
	pid := r.roundTrip(initPIDRequest(initPIDVersion, -1, -1)).(*kmsg.InitProducerIDResponse)
	expectCode(t, "init producer id on a full disk", pid.ErrorCode, kerr.CoordinatorNotAvailable)
	expectCode(t, "metadata of the failed creation", r.metadata("more")["more"].ErrorCode, kerr.UnknownTopicOrPartition)

	if err := r.w.DiskHeal(brokerNode); err != nil {
		t.Fatal(err)
	}
	sp = r.produce("orders", 0, buildBatch(t, plain, 1000, "c"))
	expectCode(t, "produce after healing", sp.ErrorCode, nil)
	r.createTopic("more", 1)
	expectRecords(t, r.readAll("orders", 0), []string{"a", "b", "c"})
	if r.starts != 1 {
		t.Fatalf("the broker restarted %d times over disk faults", r.starts-1)
	}
}

// A fetch returns at least one whole batch even when it exceeds the byte
// limits (KIP-74), and otherwise stops within them.
func TestFetchByteLimits(t *testing.T) {
	r := newRig(t, 46, nil)
	r.createTopic("orders", 2)
	big := make([]string, 50)
	for i := range big {
		big[i] = fmt.Sprintf("value-%03d-%s", i, "................................................")
	}
	for range 3 {
		expectCode(t, "produce p0", r.produce("orders", 0, buildBatch(t, plain, 1000, big...)).ErrorCode, nil)
		expectCode(t, "produce p1", r.produce("orders", 1, buildBatch(t, plain, 1000, big...)).ErrorCode, nil)
	}
	// One byte per partition: still one whole batch from the first.
	req := fetchRequest("orders", 0, 0, 0, 0)
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1
	fp := fetchPartition(t, r.roundTrip(req))
	if recs := decodeRecords(t, fp.RecordBatches); len(recs) != len(big) {
		t.Fatalf("a 1-byte fetch returned %d records, want one whole batch of %d", len(recs), len(big))
	}
	// A request budget of one byte over two partitions: the first gets a
	// batch, the second nothing (but its high watermark).
	req = fetchRequest("orders", 0, 0, 0, 0)
	req.MaxBytes = 1
	second := req.Topics[0].Partitions[0]
	second.Partition = 1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, second)
	resp := r.roundTrip(req).(*kmsg.FetchResponse)
	parts := resp.Topics[0].Partitions
	if len(parts) != 2 {
		t.Fatalf("fetch of two partitions answered %d", len(parts))
	}
	if recs := decodeRecords(t, parts[0].RecordBatches); len(recs) != len(big) {
		t.Fatalf("first partition under a 1-byte budget: %d records, want one batch", len(recs))
	}
	if len(parts[1].RecordBatches) != 0 || parts[1].HighWatermark != int64(3*len(big)) {
		t.Fatalf("second partition under a spent budget: %d bytes, high watermark %d", len(parts[1].RecordBatches), parts[1].HighWatermark)
	}
	// A generous limit returns everything.
	if recs := r.readAll("orders", 1); len(recs) != 3*len(big) {
		t.Fatalf("read %d records of partition 1, want %d", len(recs), 3*len(big))
	}
}

// TestLongPollWaitsAfterManyExpiredPolls: long polls that expire on an idle
// partition must not pile up there; the 10,001st still waits.
func TestLongPollWaitsAfterManyExpiredPolls(t *testing.T) {
	r := newRig(t, 201, nil)
	r.createTopic("idle", 1)
	tc := r.dial()
	for i := range 10_050 {
		lp := tc.send(fetchRequest("idle", 0, 0, 100*time.Millisecond, 1))
		r.wait(lp)
		if got := lp.at - lp.sentAt; got < 100*time.Millisecond {
			t.Fatalf("long poll %d on an idle partition answered after %v, before its 100 ms wait", i, got)
		}
	}
}
