package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// farGap is a gap wider than one segment's relative offsets (32 bits): a
// batch past it needs a segment of its own.
const farGap = 5 << 32

// replicaBatch is a batch as a follower fetches it: offsets and epoch
// assigned by the leader.
func replicaBatch(t *testing.T, base int64, n int, tag string) record.Batch {
	t.Helper()
	b := testBatch(t, testRecords(n, tag, 1000))
	b.SetBaseOffset(base)
	b.SetPartitionLeaderEpoch(0)
	return b
}

// TestReplicaFarPastAnEmptyLogReplacesItsSegment: a follower whose
// leader's log starts more than 2^32 offsets past the follower's empty
// log cannot put the leader's batch in its empty segment. The empty
// segment is replaced by one at the batch's base: the log stays online,
// holds the batch, and finds it again after a restart.
func TestReplicaFarPastAnEmptyLogReplacesItsSegment(t *testing.T) {
	r := newRig(t, 40, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	if err := l.AppendReplica(replicaBatch(t, farGap, 2, "far")); err != nil || l.Err() != nil {
		t.Fatalf("replicate past the gap: %v (log error %v)", err, l.Err())
	}
	segs := l.Segments()
	if len(segs) != 1 || segs[0].BaseOffset != farGap || l.EndOffset() != farGap+2 {
		t.Fatalf("segments %+v, end %d: want one segment at %d", segs, l.EndOffset(), int64(farGap))
	}
	if r.exists(segmentFile(testDir, 0, suffixLog)) {
		t.Fatal("the replaced empty segment's file is still there")
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	rp := l.RecoveryPoint()
	l.Close()
	l2, report := r.open(Config{}, rp)
	if got := readAll(t, l2); !report.Clean() || !sameStrings(got, []string{"far-0", "far-1"}) {
		t.Fatalf("after a restart: read %v; %s", got, report)
	}
}

// TestRetentionWaitsForTheSnapshotAtTheNewStart: retention deletes a
// segment only once the producer snapshot at the offset where the log
// will then start is durable; otherwise a crash could lose the producer
// state the deleted batches held. Here the first roll's snapshot has been
// flushed and the second's has not: retention deletes the first segment
// only, however far over its size bound the log is, and the second once a
// flush has made its snapshot durable.
func TestRetentionWaitsForTheSnapshotAtTheNewStart(t *testing.T) {
	r := newRig(t, 41, testDiskConfig())
	l, _ := r.open(Config{SegmentBytes: 400, RetentionBytes: 1}, 0)
	appendUntilRoll := func() int64 {
		for n := len(l.Segments()); len(l.Segments()) == n; {
			mustAppend(t, l, testBatch(t, testRecords(2, "r", 1000)), 0)
		}
		return l.active().base
	}
	first := appendUntilRoll()
	r.settle() // the roll's flush makes the snapshot at first durable
	second := appendUntilRoll()
	if n, err := l.ApplyRetention(l.EndOffset()); err != nil || n != 1 || l.StartOffset() != first {
		t.Fatalf("retention deleted %d segments (%v), start %d: want the first, up to %d, and not the one up to %d",
			n, err, l.StartOffset(), first, second)
	}
	r.settle()
	if n, err := l.ApplyRetention(l.EndOffset()); err != nil || n != 1 || l.StartOffset() != second {
		t.Fatalf("retention after the flush deleted %d segments (%v), start %d: want %d", n, err, l.StartOffset(), second)
	}
}

// TestOffsetForTimeRefusesACorruptBatch: a timestamp lookup whose answer
// lies in a batch that fails its CRC answers ErrCorruptLog and records
// the damage. Skipping the batch and answering with a later record would
// send a consumer past records it never saw.
func TestOffsetForTimeRefusesACorruptBatch(t *testing.T) {
	r := newRig(t, 42, testDiskConfig())
	l, _ := filled(t, r, Config{}, 10, 10) // batch i: offsets 2i, 2i+1 at time 1000+i
	name, pos, size := segmentPosition(t, l, 8)
	r.flipByte(name, pos+int64(size)-1) // a byte of the batch's last value
	if off, ts, found, err := l.OffsetForTime(1004); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("OffsetForTime(1004) over a corrupt batch = %d, %d, %v, %v; want %v", off, ts, found, err, ErrCorruptLog)
	}
	if d, ok := l.FirstDamage(); !ok || d.FirstOffset != 8 || d.LastOffset != 9 {
		t.Fatalf("damage %+v (found %v): want offsets 8..9", d, ok)
	}
}

// createFailFS fails creating files whose names end with suffix.
type createFailFS struct {
	sim.FS
	suffix string
}

func (f *createFailFS) Create(name string) (sim.File, error) {
	if strings.HasSuffix(name, f.suffix) {
		return nil, fmt.Errorf("create %s: %w", name, sim.ErrIO)
	}
	return f.FS.Create(name)
}

// TestOpenFailsWhenANewLogCannotCreateItsSegment: a log opened in an empty
// directory creates its first segment; when the disk refuses, Open fails
// with ErrStorage (the broker takes the directory offline) instead of
// returning a log without a segment.
func TestOpenFailsWhenANewLogCannotCreateItsSegment(t *testing.T) {
	r := newRig(t, 43, testDiskConfig())
	l, _, err := Open(&createFailFS{FS: r.fs, suffix: suffixLog}, r.clock, testDir, Config{}, 0, r.logf)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, sim.ErrIO) || l != nil {
		t.Fatalf("open with creates failing: %v", err)
	}
	l2, _ := r.open(Config{}, 0)
	if l2.EndOffset() != 0 || len(l2.Segments()) != 1 {
		t.Fatalf("open once creates work: end %d, segments %+v", l2.EndOffset(), l2.Segments())
	}
}

// TestCompactionRunsWhenItsIntervalHasPassed: Tick compacts a compacted
// log once CompactionInterval has passed since the last compaction began
// (Open, for the first): not a tick before, and not a tick later.
func TestCompactionRunsWhenItsIntervalHasPassed(t *testing.T) {
	r := newRig(t, 44, testDiskConfig())
	cfg := swapCrashCfg
	cfg.CompactionInterval = time.Minute
	opened := r.clock.Mono()
	l, _ := r.open(cfg, 0)
	fillSmallSegments(t, r, l, 0, 200, cyclicKeys(5))
	r.advance(opened + cfg.CompactionInterval - time.Nanosecond - r.clock.Mono())
	if err := l.Tick(l.EndOffset()); err != nil || l.compaction != nil {
		t.Fatalf("a tick before the interval: %v, compaction started %v", err, l.compaction != nil)
	}
	r.advance(time.Nanosecond)
	if err := l.Tick(l.EndOffset()); err != nil || l.compaction == nil {
		t.Fatalf("a tick at the interval: %v, compaction started %v", err, l.compaction != nil)
	}
	r.settle()
	if l.RecordsCompacted() == 0 {
		t.Fatal("the compaction the tick started removed nothing")
	}
}

// TestReadAfterABatchWhoseBaseOffsetFlippedUp: a bit flipped in a batch's
// base offset (outside the CRC) makes the batch claim offsets past the
// ones after it, so a read from the next batch's offset meets the flipped
// batch first. The batch after it falls back to exactly the offset asked
// for: the flipped batch is fenced as damage, and the read never serves
// its records under offsets they never had.
func TestReadAfterABatchWhoseBaseOffsetFlippedUp(t *testing.T) {
	r := newRig(t, 45, testDiskConfig())
	l, _ := filled(t, r, Config{}, 15, 15) // batch i: offsets 2i, 2i+1, values vi-0, vi-1
	name, pos, _ := segmentPosition(t, l, 8)
	r.flipByte(name, pos+7) // base offset 8 becomes 24: offsets 24..25
	res, err := l.Read(10, 1<<20, l.EndOffset())
	if errors.Is(err, ErrCorruptLog) {
		// The read found the damage; the next one goes past it.
		res, err = l.Read(10, 1<<20, l.EndOffset())
	}
	if err != nil {
		t.Fatalf("read at 10: %v", err)
	}
	batches, err := record.Split(res.Data, 1<<20)
	if err != nil || len(batches) == 0 {
		t.Fatalf("read at 10 returned %d batches: %v", len(batches), err)
	}
	recs, err := batches[0].Records()
	if err != nil || recs[0].Offset != 10 || string(recs[0].Value) != "v5-0" {
		t.Fatalf("read at 10 starts with %+v (%v): want offset 10, v5-0", recs[0], err)
	}
	if d, ok := l.FirstDamage(); !ok || d.FirstOffset != 8 || d.LastOffset != 9 {
		t.Fatalf("damage %+v (found %v): want the flipped batch, offsets 8..9", d, ok)
	}
}

// truncateFailFS's files fail every Truncate once armed, as a disk
// failing a metadata operation would.
type truncateFailFS struct {
	fileWrappingFS
	armed bool
}

func newTruncateFailFS(fs sim.FS) *truncateFailFS {
	t := &truncateFailFS{}
	t.fileWrappingFS = fileWrappingFS{FS: fs, wrap: func(f sim.File) sim.File { return &truncateFailFile{File: f, fs: t} }}
	return t
}

type truncateFailFile struct {
	sim.File
	fs *truncateFailFS
}

func (f *truncateFailFile) Truncate(size int64) error {
	if f.fs.armed {
		return fmt.Errorf("truncate %s to %d: %w", f.Name(), size, sim.ErrIO)
	}
	return f.File.Truncate(size)
}

// TestTruncationToASegmentEndLeavesItsFileAlone: a follower's log whose
// last segment starts past a gap too wide for one segment is cut back to
// an offset in that gap. Only the later segment goes: the earlier one
// already ends at its last batch, so its file is not truncated, and a
// disk failing truncates does not take the log offline.
func TestTruncationToASegmentEndLeavesItsFileAlone(t *testing.T) {
	r := newRig(t, 46, testDiskConfig())
	fs := newTruncateFailFS(r.fs)
	l, _, err := Open(fs, r.clock, testDir, Config{}, 0, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	var want []string
	for i := range 5 {
		recs := testRecords(2, fmt.Sprintf("v%d", i), 1000)
		mustAppend(t, l, testBatch(t, recs), 0)
		want = append(want, string(recs[0].Value), string(recs[1].Value))
	}
	if err := l.AppendReplica(replicaBatch(t, 10+farGap, 2, "far")); err != nil || len(l.Segments()) != 2 {
		t.Fatalf("replicate past the gap: %v, segments %+v", err, l.Segments())
	}
	fs.armed = true
	if err := l.TruncateTo(12); err != nil || l.Err() != nil {
		t.Fatalf("truncate into the gap: %v (log error %v)", err, l.Err())
	}
	fs.armed = false
	if got := readAll(t, l); len(l.Segments()) != 1 || l.EndOffset() != 10 || !sameStrings(got, want) {
		t.Fatalf("after the cut: segments %+v, end %d, read %v", l.Segments(), l.EndOffset(), got)
	}
}

// TestTruncateFullyOnAClosedLogTouchesNothing: a closed log (its broker
// shutting down, or the partition moved away, while a fetcher still acts
// on it) refuses a full truncation with ErrClosed and leaves its files:
// the next Open finds every batch where it was.
func TestTruncateFullyOnAClosedLogTouchesNothing(t *testing.T) {
	r := newRig(t, 47, testDiskConfig())
	l, values := filled(t, r, Config{}, 5, 5)
	rp := l.RecoveryPoint()
	l.Close()
	if err := l.TruncateFullyAndStartAt(100); !errors.Is(err, ErrClosed) {
		t.Fatalf("full truncation of a closed log: %v, want %v", err, ErrClosed)
	}
	l2, _ := r.open(Config{}, rp)
	if got := readAll(t, l2); l2.StartOffset() != 0 || !sameStrings(got, values) {
		t.Fatalf("reopened: start %d, read %v; want %v", l2.StartOffset(), got, values)
	}
}
