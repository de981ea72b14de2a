package storage

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// startRig fills a log of small segments: 60 batches of 2 records, each
// segment holding a few batches.
func startRig(t *testing.T, seed uint64, cfg Config) (*rig, *Log) {
	r := newRig(t, seed, testDiskConfig())
	l, _ := r.open(cfg, 0)
	for i := 0; i < 60; i++ {
		mustAppend(t, l, testBatch(t, testRecords(2, "r", r.clock.Now().UnixMilli())), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	if len(l.Segments()) < 4 {
		t.Fatalf("want several segments, have %v", l.Segments())
	}
	return r, l
}

// TestLogStartInsideSegment: DeleteRecords's move of the log start to an
// offset inside a segment refuses reads below it, serves from it, and
// deletes only the segments wholly below it.
func TestLogStartInsideSegment(t *testing.T) {
	_, l := startRig(t, 41, Config{SegmentBytes: 1000})
	segs := l.Segments()
	target := segs[2].BaseOffset + 3 // inside the third segment, mid-batch
	moved, err := l.AdvanceStartOffset(target)
	if err != nil || !moved {
		t.Fatalf("advance to %d: moved %v, %v", target, moved, err)
	}
	if l.StartOffset() != target {
		t.Fatalf("start %d, want %d", l.StartOffset(), target)
	}
	if got := l.Segments(); len(got) != len(segs)-2 || got[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("segments after the move: %v (before %v)", got, segs)
	}
	if _, err := l.Read(target-1, 100, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	res, err := l.Read(target, 100, l.EndOffset())
	if err != nil || res.Batches == 0 || res.LogStartOffset != target {
		t.Fatalf("read at the start: %+v %v", res, err)
	}
	if b := record.Batch(res.Data); b.LastOffset() < target || b.BaseOffset() > target {
		t.Fatalf("read at %d returned %s", target, b)
	}
	// Never back, never past the end.
	if moved, err := l.AdvanceStartOffset(target - 1); moved || err != nil {
		t.Fatalf("moving back: moved %v, %v", moved, err)
	}
	if _, err := l.AdvanceStartOffset(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	// Up to the end: the log is empty but keeps its end.
	end := l.EndOffset()
	if moved, err := l.AdvanceStartOffset(end); !moved || err != nil || l.StartOffset() != end || l.EndOffset() != end {
		t.Fatalf("to the end: moved %v, %v, start %d end %d", moved, err, l.StartOffset(), l.EndOffset())
	}
	if res, err := l.Read(end, 100, end); err != nil || res.Batches != 0 {
		t.Fatalf("read at the end of an emptied log: %+v %v", res, err)
	}
}

// TestLogStartRestored: the log keeps no start of its own across a
// restart; the broker's checkpoint hands it back, clamped to the log end.
func TestLogStartRestored(t *testing.T) {
	r, l := startRig(t, 42, Config{SegmentBytes: 1000})
	target := l.Segments()[1].BaseOffset + 1
	if _, err := l.AdvanceStartOffset(target); err != nil {
		t.Fatal(err)
	}
	end := l.EndOffset()
	r.settle()
	r.crash(false)
	l, _ = r.open(Config{SegmentBytes: 1000}, 0)
	if l.StartOffset() == target {
		t.Fatalf("start %d without the checkpoint: the test proves nothing", l.StartOffset())
	}
	l.RestoreStartOffset(target)
	if l.StartOffset() != target || l.EndOffset() != end {
		t.Fatalf("restored start %d end %d, want %d and %d", l.StartOffset(), l.EndOffset(), target, end)
	}
	if _, err := l.Read(target-1, 100, end); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the restored start: %v", err)
	}
	// A checkpoint past the log end (a namesake topic's, or a lost tail)
	// cannot hide records appended later.
	l.RestoreStartOffset(end + 100)
	if l.StartOffset() != end {
		t.Fatalf("start %d after restoring past the end %d", l.StartOffset(), end)
	}
	mustAppend(t, l, testBatch(t, testRecords(1, "after", 1)), 0)
	if res, err := l.Read(end, 100, l.EndOffset()); err != nil || res.Batches != 1 {
		t.Fatalf("read of the next append: %+v %v", res, err)
	}
}

// TestLogStartWithRetentionAndTruncation: retention still deletes whole
// segments under a start inside one; a policy without deletion still
// drops the segments wholly below the start; a cut below the start takes
// it down.
func TestLogStartWithRetentionAndTruncation(t *testing.T) {
	r, l := startRig(t, 43, Config{SegmentBytes: 1000, RetentionBytes: 2000, Cleanup: CleanupCompact})
	segs := l.Segments()
	target := segs[0].BaseOffset + 1
	if _, err := l.AdvanceStartOffset(target); err != nil {
		t.Fatal(err)
	}
	if len(l.Segments()) != len(segs) || l.StartOffset() != target {
		t.Fatalf("a start inside the first segment deleted something: %v", l.Segments())
	}
	// Compact-only: no size retention, but a start past whole segments
	// drops them at the next tick even if the move left them (say, for a
	// snapshot not yet durable).
	l.startOffset = segs[2].BaseOffset + 1
	if err := l.Tick(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := l.Segments(); got[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("tick under compact kept segments below the start: %v", got)
	}
	// Size retention under delete still works and moves the start past
	// a start inside a segment.
	l.cfg.Cleanup = CleanupDelete
	n, err := l.ApplyRetention(l.EndOffset())
	if err != nil || n == 0 {
		t.Fatalf("size retention deleted %d: %v (size %d, %v)", n, err, l.SizeBytes(), l.Segments())
	}
	if l.StartOffset() != l.Segments()[0].BaseOffset || l.SizeBytes() < 2000 {
		t.Fatalf("after retention: start %d, segments %v", l.StartOffset(), l.Segments())
	}
	start := l.StartOffset()
	if _, err := l.AdvanceStartOffset(start + 1); err != nil {
		t.Fatal(err)
	}
	// A follower cutting below its start restarts the log there.
	if err := l.TruncateTo(start); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second)
	if l.StartOffset() > l.EndOffset() || l.StartOffset() != start && l.EndOffset() != start {
		t.Fatalf("after the cut: start %d end %d", l.StartOffset(), l.EndOffset())
	}
	mustAppend(t, l, testBatch(t, testRecords(1, "next", 1)), 0)
	if _, err := l.Read(l.StartOffset(), 100, l.EndOffset()); err != nil {
		t.Fatalf("read after the cut: %v", err)
	}
}

// TestRestoredStartCutsTheEpochs: a move of the start whose epoch
// checkpoint write fails (a full disk) leaves the file naming an epoch's
// start below the log's; the start read back after a restart cuts the
// epochs as the live log did (single-broker swarm seed 523 of the
// 10,000-seed swarm, restart-state).
func TestRestoredStartCutsTheEpochs(t *testing.T) {
	cfg := Config{SegmentBytes: 1000}
	r, l := startRig(t, 43, cfg)
	firstEpochEnd := l.Segments()[2].BaseOffset
	if err := l.AssignEpoch(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpoch(2, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustAppend(t, l, testBatch(t, testRecords(2, "e2", r.clock.Now().UnixMilli())), 2)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	target := firstEpochEnd + 1 // inside epoch 1
	r.disk.SetCapacity(r.disk.UsedBytes())
	if moved, err := l.AdvanceStartOffset(target); !moved || !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("move of the start on a full disk: moved %v, %v; want moved, no space", moved, err)
	}
	r.disk.SetCapacity(0)
	live := l.Epochs()
	if len(live) == 0 || live[0].StartOffset != target {
		t.Fatalf("live epochs %v after moving the start to %d", live, target)
	}
	r.settle()
	r.crash(false)
	l, _ = r.open(cfg, 0)
	l.RestoreStartOffset(target)
	if got := l.Epochs(); !slices.Equal(got, live) {
		t.Fatalf("epochs read back with the start restored: %v; the live log's %v", got, live)
	}
}
