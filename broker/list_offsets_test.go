package broker_test

import (
	"time"

	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestListOffsets(t *testing.T) {
	r := newRig(t, 70, nil)
	r.createTopic("orders", 2)
	// Three batches of two records: timestamps 1000-1001, 2000-2001,
	// 3000-3001 at offsets 0-1, 2-3, 4-5.
	for i, ts := range []int64{1000, 2000, 3000} {
		sp := r.produce("orders", 0, buildBatch(t, plain, ts, fmt.Sprint(2*i), fmt.Sprint(2*i+1)))
		expectCode(t, "produce", sp.ErrorCode, nil)
	}
	cases := []struct {
		timestamp  int64
		wantOffset int64
		// wantTime is the timestamp answered for a time lookup.
		wantTime int64
	}{
		{-2, 0, -1},     // earliest
		{-1, 6, -1},     // latest: the high watermark
		{0, 0, 1000},    // before everything: the first record
		{1000, 0, 1000}, // exact
		{1001, 1, 1001}, // inside the first batch
		{1500, 2, 2000}, // between batches: the next one
		{2001, 3, 2001}, // inside a later batch
		{3001, 5, 3001}, // the last record
		{3002, -1, -1},  // after everything: no offset
		{99999, -1, -1}, // far after
	}
	for _, c := range cases {
		lo := r.listOffset("orders", 0, c.timestamp)
		expectCode(t, fmt.Sprintf("list at %d", c.timestamp), lo.ErrorCode, nil)
		if lo.Offset != c.wantOffset || lo.Timestamp != c.wantTime {
			t.Fatalf("list at %d: offset %d timestamp %d, want offset %d timestamp %d",
				c.timestamp, lo.Offset, lo.Timestamp, c.wantOffset, c.wantTime)
		}
		if lo.LeaderEpoch != 0 {
			t.Fatalf("list at %d: leader epoch %d, want 0", c.timestamp, lo.LeaderEpoch)
		}
	}
	// An empty partition: earliest and latest are 0, no time matches.
	if lo := r.listOffset("orders", 1, -1); lo.ErrorCode != 0 || lo.Offset != 0 {
		t.Fatalf("latest of an empty partition: %s %d", errName(lo.ErrorCode), lo.Offset)
	}
	if lo := r.listOffset("orders", 1, 0); lo.ErrorCode != 0 || lo.Offset != -1 {
		t.Fatalf("time lookup in an empty partition: %s %d", errName(lo.ErrorCode), lo.Offset)
	}
	expectCode(t, "unknown partition", r.listOffset("orders", 2, -1).ErrorCode, kerr.UnknownTopicOrPartition)
	expectCode(t, "unknown topic", r.listOffset("nope", 0, -1).ErrorCode, kerr.UnknownTopicOrPartition)

	// A start makes the broker leader at a new epoch.
	r.killCycle()
	if lo := r.listOffset("orders", 0, -2); lo.LeaderEpoch != 1 {
		t.Fatalf("leader epoch after a restart %d, want 1", lo.LeaderEpoch)
	}
	fenced := listOffsetsRequest("orders", 0, -1)
	fenced.Topics[0].Partitions[0].CurrentLeaderEpoch = 0
	expectCode(t, "stale leader epoch", listOffsetsPartition(t, r.roundTrip(fenced)).ErrorCode, kerr.FencedLeaderEpoch)
	fenced.Topics[0].Partitions[0].CurrentLeaderEpoch = 2
	expectCode(t, "future leader epoch", listOffsetsPartition(t, r.roundTrip(fenced)).ErrorCode, kerr.UnknownLeaderEpoch)
}

// TestLeaderEpochRisesAtEveryStart: every start is a new leadership, even
// when the previous one wrote nothing, so no two leaderships share an epoch.
func TestLeaderEpochRisesAtEveryStart(t *testing.T) {
	r := newRig(t, 300, groupCommit)
	r.createTopic("t", 1)
	r.runFor(time.Second)
	for want := int32(1); want <= 3; want++ {
		r.killCycle()
		r.runFor(time.Second)
		if lo := r.listOffset("t", 0, -2); lo.LeaderEpoch != want {
			t.Fatalf("start %d: leader epoch %d, want %d", want+1, lo.LeaderEpoch, want)
		}
	}
}
