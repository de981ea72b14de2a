package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// deleteRecords asks the broker to move one partition's log start to
// offset, at version.
func (r *rig) deleteRecords(version int16, topic string, partition int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	r.t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.SetVersion(version)
	req.TimeoutMillis = 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{rp}
	req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
	resp := r.roundTrip(req).(*kmsg.DeleteRecordsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Topic != topic {
		r.t.Fatalf("delete records answer: %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// TestDeleteRecords: on one broker, DeleteRecords moves the log start
// inside a segment; ListOffsets earliest and fetches below it see it at
// once and after a power loss right after the answer (the checkpoint was
// durable before it); -1 means the high watermark; offsets past it,
// compact-only topics and unknown partitions are refused.
func TestDeleteRecords(t *testing.T) {
	// Group commit: the high watermark is on disk, so that a power loss
	// keeps every record the test counts on.
	r := newRig(t, 2101, groupCommit)
	for _, rt := range r.createTopics(false,
		newTopicSpec("logs", 1, "segment.bytes", "1024", "max.message.bytes", "1000"),
		newTopicSpec("keys", 1, "cleanup.policy", "compact")) {
		expectCode(t, "create "+rt.Topic, rt.ErrorCode, nil)
	}
	for i := 0; i < 20; i++ {
		sp := r.produce("logs", 0, buildBatch(t, plain, 1000+int64(i), fmt.Sprint(2*i), fmt.Sprint(2*i+1)))
		expectCode(t, "produce", sp.ErrorCode, nil)
	}
	hw := r.latest("logs", 0)
	if hw != 40 {
		t.Fatalf("high watermark %d, want 40", hw)
	}

	// Inside a batch (7 is the second record of offsets 6-7): the low
	// watermark is exactly the offset asked. A slow disk makes the
	// checkpoint's syncs outlast the network's round trip, so that an
	// answer sent before the checkpoint is durable would be lost to the
	// power loss below.
	if err := r.w.SlowDisk(brokerNode, 200); err != nil {
		t.Fatal(err)
	}
	dr := r.deleteRecords(2, "logs", 0, 7)
	expectCode(t, "delete before 7", dr.ErrorCode, nil)
	if dr.LowWatermark != 7 {
		t.Fatalf("low watermark %d, want 7", dr.LowWatermark)
	}
	checkLogStart(t, r, "logs", 7)

	// The start was durable before the answer: a power loss right after
	// it keeps it.
	r.powerCycle()
	if err := r.w.DiskHeal(brokerNode); err != nil {
		t.Fatal(err)
	}
	checkLogStart(t, r, "logs", 7)
	// The high watermark returns once the restart's flush completes.
	r.runUntil("high watermark back", time.Second, func() bool { return r.latest("logs", 0) == hw })

	// Below the start: nothing moves, the answer is the start.
	dr = r.deleteRecords(0, "logs", 0, 3)
	expectCode(t, "delete before 3", dr.ErrorCode, nil)
	if dr.LowWatermark != 7 {
		t.Fatalf("low watermark after asking less: %d, want 7", dr.LowWatermark)
	}
	expectCode(t, "past the high watermark", r.deleteRecords(1, "logs", 0, hw+1).ErrorCode, kerr.OffsetOutOfRange)
	expectCode(t, "negative", r.deleteRecords(1, "logs", 0, -5).ErrorCode, kerr.OffsetOutOfRange)
	expectCode(t, "compact-only", r.deleteRecords(2, "keys", 0, 0).ErrorCode, kerr.PolicyViolation)
	expectCode(t, "unknown topic", r.deleteRecords(2, "nope", 0, 0).ErrorCode, kerr.UnknownTopicOrPartition)
	expectCode(t, "unknown partition", r.deleteRecords(2, "logs", 1, 0).ErrorCode, kerr.UnknownTopicOrPartition)

	// -1: everything below the high watermark.
	dr = r.deleteRecords(2, "logs", 0, -1)
	expectCode(t, "delete to the high watermark", dr.ErrorCode, nil)
	if dr.LowWatermark != hw {
		t.Fatalf("low watermark %d, want the high watermark %d", dr.LowWatermark, hw)
	}
	checkLogStart(t, r, "logs", hw)
	r.killCycle()
	checkLogStart(t, r, "logs", hw)
	r.runFor(100 * time.Millisecond) // appends wait for the restart's flush
	// The log goes on from there.
	expectCode(t, "produce after", r.produce("logs", 0, buildBatch(t, plain, 5000, "after")).ErrorCode, nil)
	if fp := r.fetchNow("logs", 0, hw); fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
		t.Fatalf("fetch at the start after a produce: %s, %d bytes", errName(fp.ErrorCode), len(fp.RecordBatches))
	}
}

// checkLogStart checks that ListOffsets earliest answers start, that a
// fetch below it is OFFSET_OUT_OF_RANGE, and that a fetch at it is served
// with the start in the answer.
func checkLogStart(t *testing.T, r *rig, topic string, start int64) {
	t.Helper()
	lo := r.listOffset(topic, 0, -2)
	expectCode(t, "list earliest", lo.ErrorCode, nil)
	if lo.Offset != start {
		t.Fatalf("earliest %d, want %d", lo.Offset, start)
	}
	expectCode(t, "fetch below the start", r.fetchNow(topic, 0, start-1).ErrorCode, kerr.OffsetOutOfRange)
	fp := r.fetchNow(topic, 0, start)
	expectCode(t, "fetch at the start", fp.ErrorCode, nil)
	if fp.LogStartOffset != start {
		t.Fatalf("fetch answer's log start %d, want %d", fp.LogStartOffset, start)
	}
}

// TestDeleteRecordsFailedCheckpoint: a checkpoint whose sync fails
// answers KAFKA_STORAGE_ERROR; the retry, though the start already
// moved, writes it again and succeeds.
func TestDeleteRecordsFailedCheckpoint(t *testing.T) {
	r := newRig(t, 2102, groupCommit)
	r.createTopic("logs", 1)
	for i := 0; i < 5; i++ {
		expectCode(t, "produce", r.produce("logs", 0, buildBatch(t, plain, 1000, fmt.Sprint(i))).ErrorCode, nil)
	}
	r.runFor(100 * time.Millisecond)
	if err := r.w.FailSyncs(brokerNode, 1); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "delete with a failing sync", r.deleteRecords(2, "logs", 0, 3).ErrorCode, kerr.KafkaStorageError)
	dr := r.deleteRecords(2, "logs", 0, 3)
	expectCode(t, "retry", dr.ErrorCode, nil)
	if dr.LowWatermark != 3 {
		t.Fatalf("low watermark %d, want 3", dr.LowWatermark)
	}
	r.powerCycle()
	checkLogStart(t, r, "logs", 3)
}
