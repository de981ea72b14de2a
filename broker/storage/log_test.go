package storage

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

func TestAppendAndRead(t *testing.T) {
	r := newRig(t, 1, testDiskConfig())
	l, report := r.open(Config{}, 0)
	if !report.Clean() || l.StartOffset() != 0 || l.EndOffset() != 0 {
		t.Fatalf("fresh log: %s", report)
	}
	var want []string
	for i := 0; i < 10; i++ {
		recs := testRecords(1+i%3, fmt.Sprintf("b%d", i), 1000+int64(i))
		res := mustAppend(t, l, testBatch(t, recs), 0)
		if res.BaseOffset != int64(len(want)) || res.LastOffset != int64(len(want)+len(recs)-1) || res.Duplicate {
			t.Fatalf("append %d: %+v", i, res)
		}
		for _, rec := range recs {
			want = append(want, string(rec.Value))
		}
	}
	if got := readAll(t, l); !sameStrings(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	end := l.EndOffset()
	// Every offset: the first batch returned holds it.
	for off := int64(0); off < end; off++ {
		res, err := l.Read(off, 1, end)
		if err != nil || res.Batches != 1 {
			t.Fatalf("read at %d: %d batches, %v", off, res.Batches, err)
		}
		b := record.Batch(res.Data)
		if b.BaseOffset() > off || b.LastOffset() < off || res.NextOffset != b.NextOffset() {
			t.Fatalf("read at %d returned %s", off, b)
		}
	}
	if res, err := l.Read(end, 100, end); err != nil || res.Batches != 0 || res.NextOffset != end {
		t.Fatalf("read at the end: %+v %v", res, err)
	}
	if _, err := l.Read(end+1, 100, end); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past the end: %v", err)
	}
	// The high watermark bounds reads: nothing at or past it.
	res, err := l.Read(0, 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := record.Split(res.Data, 100)
	for _, b := range batches {
		if b.LastOffset() >= 3 {
			t.Fatalf("read up to 3 returned %s", b)
		}
	}
	if res.NextOffset > 3 || res.Batches == 0 {
		t.Fatalf("read up to 3: %+v", res)
	}
}

func TestReadReturnsOneBatchEvenIfLarger(t *testing.T) {
	r := newRig(t, 2, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, testBatch(t, testRecords(50, "big", 1)), 0)
	}
	res, err := l.Read(0, 10, l.EndOffset())
	if err != nil || res.Batches != 1 || res.NextOffset != 50 {
		t.Fatalf("read of 10 bytes: %d batches, next %d, %v", res.Batches, res.NextOffset, err)
	}
	res, err = l.Read(0, len(res.Data)*2, l.EndOffset())
	if err != nil || res.Batches != 2 {
		t.Fatalf("read of two batches' worth: %d batches, %v", res.Batches, err)
	}
}

func TestAppendRefusesBadBatches(t *testing.T) {
	r := newRig(t, 3, testDiskConfig())
	l, _ := r.open(Config{MaxBatchBytes: 500, SegmentBytes: 4096}, 0)
	b := testBatch(t, testRecords(2, "x", 1))
	b[len(b)-1] ^= 1
	if _, err := l.Append(b, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt batch: %v", err)
	}
	if _, err := l.Append(testBatch(t, testRecords(40, "large", 1)), 0); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("large batch: %v", err)
	}
	mustAppend(t, l, testBatch(t, testRecords(1, "ok", 1)), 5)
	if _, err := l.Append(testBatch(t, testRecords(1, "old", 1)), 4); !errors.Is(err, ErrInvalidAppend) {
		t.Fatalf("stale leader epoch: %v", err)
	}
	replica := testBatch(t, testRecords(1, "r", 1))
	if err := l.AppendReplica(replica); !errors.Is(err, ErrInvalidAppend) {
		t.Fatalf("replica batch below the log end: %v", err)
	}
	replica.SetBaseOffset(10)
	replica.SetPartitionLeaderEpoch(6)
	if err := l.AppendReplica(replica); err != nil || l.EndOffset() != 11 {
		t.Fatalf("replica batch with a gap: %v, end %d", err, l.EndOffset())
	}
	if l.EndOffset() != 11 || l.LatestEpoch() != 6 {
		t.Fatalf("end %d epoch %d", l.EndOffset(), l.LatestEpoch())
	}
}

func TestIdempotentProducer(t *testing.T) {
	r := newRig(t, 4, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	// A producer the log does not know may start anywhere (its state may
	// have expired).
	first := mustAppend(t, l, producerBatch(t, 7, 0, 10, 2, "a"), 0)
	var results []AppendResult
	for seq := int32(12); seq < 12+2*7; seq += 2 {
		results = append(results, mustAppend(t, l, producerBatch(t, 7, 0, seq, 2, "a"), 0))
	}
	// Replays of the last five return the original offsets.
	for i := 2; i < 7; i++ {
		seq := int32(12 + 2*i)
		res := mustAppend(t, l, producerBatch(t, 7, 0, seq, 2, "a"), 0)
		if !res.Duplicate || res.BaseOffset != results[i].BaseOffset || res.LastOffset != results[i].LastOffset {
			t.Fatalf("replay of seq %d: %+v, original %+v", seq, res, results[i])
		}
	}
	end := l.EndOffset()
	// Older than the last five: not answerable.
	if _, err := l.Append(producerBatch(t, 7, 0, 12, 2, "a"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("old replay: %v", err)
	}
	if _, err := l.Append(producerBatch(t, 7, 0, 10, 2, "a"), 0); !errors.Is(err, ErrOutOfOrderSequence) || first.BaseOffset != 0 {
		t.Fatalf("first batch replayed: %v", err)
	}
	if _, err := l.Append(producerBatch(t, 7, 0, 30, 1, "gap"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := l.Append(producerBatch(t, 7, 1, 5, 1, "new epoch"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	mustAppend(t, l, producerBatch(t, 7, 1, 0, 1, "new epoch"), 0)
	if _, err := l.Append(producerBatch(t, 7, 0, 26, 1, "fenced"), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	if l.EndOffset() != end+1 {
		t.Fatalf("refused batches were written: end %d, want %d", l.EndOffset(), end+1)
	}
	p, ok := l.Producer(7)
	if !ok || p.Epoch != 1 || p.LastSequence() != 0 || len(p.Batches) != 1 {
		t.Fatalf("producer state %+v", p)
	}
}

// TestProducerStateSurvivesRestart: a replay after a restart (clean, or a
// power loss after a flush, with snapshots from rolls) is still answered
// with the original offsets.
func TestProducerStateSurvivesRestart(t *testing.T) {
	for _, crash := range []string{"clean", "power"} {
		t.Run(crash, func(t *testing.T) {
			r := newRig(t, 5, testDiskConfig())
			cfg := Config{SegmentBytes: 600}
			l, _ := r.open(cfg, 0)
			var results []AppendResult
			for seq := int32(0); seq < 40; seq++ {
				results = append(results, mustAppend(t, l, producerBatch(t, 3, 2, seq, 1, "p"), 0))
				mustAppend(t, l, producerBatch(t, 4, 0, seq, 1, "q"), 0)
			}
			if len(l.Segments()) < 3 {
				t.Fatalf("want several segments, got %d", len(l.Segments()))
			}
			if err := r.flush(l); err != nil {
				t.Fatal(err)
			}
			rp := l.RecoveryPoint()
			if crash == "clean" {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				r.settle()
			} else {
				r.crash(true)
			}
			l2, report := r.open(cfg, rp)
			if !report.Clean() || report.ProducerSnapshot < 0 {
				t.Fatalf("recovery: %s (snapshot %d)", report, report.ProducerSnapshot)
			}
			res := mustAppend(t, l2, producerBatch(t, 3, 2, 38, 1, "p"), 0)
			if !res.Duplicate || res.BaseOffset != results[38].BaseOffset {
				t.Fatalf("replay after restart: %+v, original %+v", res, results[38])
			}
			if _, err := l2.Append(producerBatch(t, 4, 0, 41, 1, "q"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after restart: %v", err)
			}
			mustAppend(t, l2, producerBatch(t, 4, 0, 40, 1, "q"), 0)
		})
	}
}

func TestRollAndIndexEveryOffset(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust=%v", trust), func(t *testing.T) {
			r := newRig(t, 6, testDiskConfig())
			cfg := Config{SegmentBytes: 2048, IndexIntervalBytes: 200, TrustFlushed: trust}
			l, _ := r.open(cfg, 0)
			for i := 0; i < 120; i++ {
				mustAppend(t, l, testBatch(t, testRecords(1+i%4, fmt.Sprintf("v%d", i), int64(i))), 0)
			}
			check := func(l *Log) {
				t.Helper()
				for off := l.StartOffset(); off < l.EndOffset(); off++ {
					res, err := l.Read(off, 1, l.EndOffset())
					if err != nil || res.Batches != 1 {
						t.Fatalf("read at %d: %v", off, err)
					}
					if b := record.Batch(res.Data); b.BaseOffset() > off || b.LastOffset() < off {
						t.Fatalf("read at %d returned %s", off, b)
					}
				}
			}
			check(l)
			if n := len(l.Segments()); n < 5 {
				t.Fatalf("%d segments", n)
			}
			if err := r.flush(l); err != nil {
				t.Fatal(err)
			}
			rp := l.RecoveryPoint()
			if rp != l.EndOffset() {
				t.Fatalf("recovery point %d after flush, end %d", rp, l.EndOffset())
			}
			before := readAll(t, l)
			l.Close()
			r.settle()
			l2, report := r.open(cfg, rp)
			if !report.Clean() || len(report.RebuiltIndexes) != 0 {
				t.Fatalf("reopen: %s", report)
			}
			if trust && report.SegmentsScanned != 1 {
				t.Fatalf("trusting flushed segments, scanned %d", report.SegmentsScanned)
			}
			check(l2)
			if got := readAll(t, l2); !sameStrings(got, before) {
				t.Fatal("log changed across a restart")
			}
		})
	}
}

// TestIndexOffByOneBugSkipsRecords: the planted bug makes some reads start
// one indexed batch too far.
func TestIndexOffByOneBugSkipsRecords(t *testing.T) {
	r := newRig(t, 7, testDiskConfig())
	l, _ := r.open(Config{IndexIntervalBytes: 100, Bugs: faults.Bugs{faults.BugIndexOffByOne: true}}, 0)
	for i := 0; i < 50; i++ {
		mustAppend(t, l, testBatch(t, testRecords(2, "v", 1)), 0)
	}
	skipped := 0
	for off := int64(0); off < l.EndOffset(); off++ {
		res, err := l.Read(off, 1, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if b := record.Batch(res.Data); res.Batches == 0 || b.BaseOffset() > off {
			skipped++
		}
	}
	if skipped == 0 {
		t.Fatal("the planted index bug skipped nothing")
	}
}

func TestGroupCommitCoalesces(t *testing.T) {
	r := newRig(t, 8, testDiskConfig())
	counting := newCountingFS(r.fs)
	l, _, err := Open(counting, r.clock, testDir, Config{Flush: FlushPolicy{Mode: FlushGroupCommit}}, 0, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, testBatch(t, testRecords(1, "g", 1)), 0)
	if err := r.flush(l); err != nil { // settle the directory and the epoch checkpoint
		t.Fatal(err)
	}
	counting.syncs = 0
	var results []error
	var flushedAt []int64
	for i := 0; i < 10; i++ {
		mustAppend(t, l, testBatch(t, testRecords(1, "g", 1)), 0)
		l.Flush(func(err error) {
			results = append(results, err)
			flushedAt = append(flushedAt, l.FlushedOffset())
		})
	}
	if l.FlushedOffset() != 1 {
		t.Fatal("flushed before any sync completed")
	}
	r.settle()
	if len(results) != 10 {
		t.Fatalf("%d of 10 flushes completed", len(results))
	}
	for i, err := range results {
		if err != nil || flushedAt[i] < int64(i+2) {
			t.Fatalf("flush %d: %v, flushed offset %d", i, err, flushedAt[i])
		}
	}
	// The first call started a round covering one append; the nine
	// others waited and shared the second.
	if counting.syncs != 2 {
		t.Fatalf("%d syncs for 10 coalesced flushes, want 2", counting.syncs)
	}
}

// countingFS counts file syncs.
type countingFS struct {
	fileWrappingFS
	syncs int
}

func newCountingFS(fs sim.FS) *countingFS {
	c := &countingFS{}
	c.fileWrappingFS = fileWrappingFS{FS: fs, wrap: func(f sim.File) sim.File { return &countingFile{File: f, fs: c} }}
	return c
}

type countingFile struct {
	sim.File
	fs *countingFS
}

func (f *countingFile) Sync(done func(error)) {
	f.fs.syncs++
	f.File.Sync(done)
}

func TestFlushModes(t *testing.T) {
	r := newRig(t, 9, testDiskConfig())
	l, _ := r.open(Config{Flush: FlushPolicy{Mode: FlushEveryMessages, Messages: 5}}, 0)
	mustAppend(t, l, testBatch(t, testRecords(3, "m", 1)), 0)
	r.settle()
	if l.FlushedOffset() != 0 {
		t.Fatalf("flushed at %d after 3 of 5 messages", l.FlushedOffset())
	}
	mustAppend(t, l, testBatch(t, testRecords(3, "m", 1)), 0)
	r.settle()
	if l.FlushedOffset() != 6 {
		t.Fatalf("flushed at %d after 6 of 5 messages", l.FlushedOffset())
	}

	r2 := newRig(t, 10, testDiskConfig())
	l2, _ := r2.open(Config{Flush: FlushPolicy{Mode: FlushEveryInterval, Interval: time.Second}}, 0)
	mustAppend(t, l2, testBatch(t, testRecords(3, "m", 1)), 0)
	r2.advance(500 * time.Millisecond)
	if err := l2.Tick(l2.EndOffset()); err != nil {
		t.Fatal(err)
	}
	r2.settle()
	if l2.FlushedOffset() != 0 {
		t.Fatal("flushed before the interval")
	}
	r2.advance(time.Second)
	l2.Tick(l2.EndOffset())
	r2.settle()
	if l2.FlushedOffset() != 3 {
		t.Fatalf("flushed at %d after the interval", l2.FlushedOffset())
	}

	// FlushNever syncs a segment when it rolls.
	r3 := newRig(t, 11, testDiskConfig())
	l3, _ := r3.open(Config{SegmentBytes: 1000}, 0)
	for l3.RecoveryPoint() == 0 {
		mustAppend(t, l3, testBatch(t, testRecords(3, "m", 1)), 0)
		r3.settle()
		if l3.EndOffset() > 100 {
			t.Fatal("no flush on roll")
		}
	}
	if rp := l3.RecoveryPoint(); rp != l3.active().base {
		t.Fatalf("recovery point %d after a roll at %d", rp, l3.active().base)
	}
}

// TestFailedSyncReopens: after a failed fsync the unsynced bytes may be
// gone; the log reopens from disk at its recovery point, tells the flush
// callers, and keeps working.
func TestFailedSyncReopens(t *testing.T) {
	r := newRig(t, 12, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	for i := 0; i < 10; i++ {
		mustAppend(t, l, testBatch(t, testRecords(2, fmt.Sprintf("a%d", i), 1)), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	durable := l.RecoveryPoint()
	want := readAll(t, l)
	for i := 0; i < 10; i++ {
		mustAppend(t, l, testBatch(t, testRecords(2, "lost", 1)), 0)
	}
	r.disk.FailSyncs(1)
	err := r.flush(l)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, sim.ErrIO) {
		t.Fatalf("flush after a failed sync: %v", err)
	}
	if l.Reopens() != 1 || l.Err() != nil || l.EndOffset() != durable || l.RecoveryPoint() != durable {
		t.Fatalf("after reopen: reopens %d, err %v, end %d, recovery point %d, want %d", l.Reopens(), l.Err(), l.EndOffset(), l.RecoveryPoint(), durable)
	}
	if got := readAll(t, l); !sameStrings(got, want) {
		t.Fatalf("after reopen read %v, want %v", got, want)
	}
	mustAppend(t, l, testBatch(t, testRecords(2, "after", 1)), 0)
	if err := r.flush(l); err != nil || l.RecoveryPoint() != durable+2 {
		t.Fatalf("flush after reopen: %v, recovery point %d", err, l.RecoveryPoint())
	}
	r.crash(true)
	l2, report := r.open(Config{}, durable+2)
	if !report.Clean() || len(readAll(t, l2)) != len(want)+2 {
		t.Fatalf("after power loss: %s", report)
	}
}

// TestFailedRoundFailsTheNextRoundsCallers: appends made while a flush
// round runs wait for the next round. When the running round fails, the
// reopen may drop those appends, so their callers must hear of a failure,
// not of a later round's success.
func TestFailedRoundFailsTheNextRoundsCallers(t *testing.T) {
	r := newRig(t, 29, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	mustAppend(t, l, testBatch(t, testRecords(2, "first", 1)), 0)
	r.disk.FailSyncs(1)
	var first, second error = errPending, errPending
	l.Flush(func(err error) { first = err })
	secondAt := mustAppend(t, l, testBatch(t, testRecords(2, "second", 1)), 0)
	l.Flush(func(err error) { second = err })
	r.settle()
	if first == nil || first == errPending {
		t.Fatalf("the failed round's caller heard %v", first)
	}
	if second == errPending {
		t.Fatal("the next round's caller heard nothing")
	}
	kept := l.EndOffset() > secondAt.LastOffset && l.RecoveryPoint() > secondAt.LastOffset
	if second == nil && !kept {
		t.Fatalf("the next round's caller heard success, but its append (offset %d) is gone: end %d, recovery point %d",
			secondAt.BaseOffset, l.EndOffset(), l.RecoveryPoint())
	}
}

var errPending = errors.New("pending")

func TestNoSpace(t *testing.T) {
	r := newRig(t, 13, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	mustAppend(t, l, testBatch(t, testRecords(2, "a", 1)), 0)
	r.disk.SetCapacity(r.disk.UsedBytes())
	_, err := l.Append(testBatch(t, testRecords(2, "b", 1)), 0)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("append to a full disk: %v", err)
	}
	if l.EndOffset() != 2 {
		t.Fatalf("end %d after a refused append", l.EndOffset())
	}
	r.disk.SetCapacity(0)
	mustAppend(t, l, testBatch(t, testRecords(2, "c", 1)), 0)
	if got := readAll(t, l); !sameStrings(got, []string{"a-0", "a-1", "c-0", "c-1"}) {
		t.Fatalf("read %v", got)
	}
}

func TestTruncate(t *testing.T) {
	r := newRig(t, 14, testDiskConfig())
	cfg := Config{SegmentBytes: 1000}
	l, _ := r.open(cfg, 0)
	for i := 0; i < 30; i++ {
		mustAppend(t, l, producerBatch(t, 1, 0, int32(2*i), 2, fmt.Sprintf("e1-%d", i)), 1)
	}
	if err := l.AssignEpoch(2, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	for i := 30; i < 40; i++ {
		mustAppend(t, l, producerBatch(t, 1, 0, int32(2*i), 2, fmt.Sprintf("e2-%d", i)), 2)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	// Offset 45 lies inside the batch 44..45: the cut falls at 44.
	if err := l.TruncateTo(45); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 44 || l.RecoveryPoint() != 44 {
		t.Fatalf("end %d recovery point %d after truncating to 45", l.EndOffset(), l.RecoveryPoint())
	}
	if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 44 {
		t.Fatalf("epoch 1 ends at %d (%d)", off, e)
	}
	if got := l.Epochs(); len(got) != 1 {
		t.Fatalf("epochs %v after truncating epoch 2 away", got)
	}
	p, _ := l.Producer(1)
	if p.LastSequence() != 43 {
		t.Fatalf("producer state after truncation: %+v", p)
	}
	// Appends wait until the truncation is durable.
	if _, err := l.Append(producerBatch(t, 1, 0, 44, 2, "again"), 3); !errors.Is(err, ErrTruncating) {
		t.Fatalf("append right after a truncation: %v", err)
	}
	r.settle()
	mustAppend(t, l, producerBatch(t, 1, 0, 44, 2, "again"), 3)
	if err := l.TruncateFullyAndStartAt(1000); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 1000 || l.EndOffset() != 1000 || len(l.Segments()) != 1 || len(l.Epochs()) != 0 {
		t.Fatalf("after full truncation: %d..%d, %v, epochs %v", l.StartOffset(), l.EndOffset(), l.Segments(), l.Epochs())
	}
	if _, ok := l.Producer(1); ok {
		t.Fatal("producer state survived a full truncation")
	}
	r.settle()
	res := mustAppend(t, l, testBatch(t, testRecords(1, "x", 1)), 4)
	if res.BaseOffset != 1000 {
		t.Fatalf("append after full truncation at %d", res.BaseOffset)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	rp := l.RecoveryPoint()
	r.crash(true)
	l2, report := r.open(cfg, rp)
	if !report.Clean() || l2.StartOffset() != 1000 || l2.EndOffset() != 1001 {
		t.Fatalf("after power loss: %s", report)
	}
}

func TestRetention(t *testing.T) {
	r := newRig(t, 15, testDiskConfig())
	cfg := Config{SegmentBytes: 1000, RetentionBytes: 3000, RetentionAge: time.Hour, SegmentAge: time.Hour}
	l, _ := r.open(cfg, 0)
	for i := 0; i < 60; i++ {
		ts := r.clock.Now().UnixMilli()
		mustAppend(t, l, testBatch(t, testRecords(2, "r", ts)), 0)
	}
	r.settle()
	total := l.SizeBytes()
	if _, err := l.ApplyRetention(10); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() > 10 {
		t.Fatalf("retention went past the high watermark: start %d", l.StartOffset())
	}
	n, err := l.ApplyRetention(l.EndOffset())
	if err != nil || n == 0 {
		t.Fatalf("size retention deleted %d: %v", n, err)
	}
	if l.SizeBytes() < 3000 || l.SizeBytes()-l.segments[0].sizeBytes >= 3000 || l.SizeBytes() >= total {
		t.Fatalf("size %d after retention to 3000", l.SizeBytes())
	}
	start := l.StartOffset()
	if _, err := l.Read(start-1, 100, l.EndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	r.advance(2 * time.Hour)
	// The first tick rolls the active segment by age; its snapshot must
	// be durable before the segments it covers may go.
	if err := l.Tick(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if err := l.Tick(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if len(l.Segments()) != 1 || l.StartOffset() != 120 {
		t.Fatalf("age retention: %v", l.Segments())
	}
	mustAppend(t, l, testBatch(t, testRecords(2, "new", r.clock.Now().UnixMilli())), 0)
	if got := readAll(t, l); !sameStrings(got, []string{"new-0", "new-1"}) {
		t.Fatalf("read %v", got)
	}
}

// TestOffsetForTime: ListOffsets by timestamp finds the first record at
// or after a time, through the time index, across segments.
func TestOffsetForTime(t *testing.T) {
	r := newRig(t, 16, testDiskConfig())
	cfg := Config{SegmentBytes: 1200, IndexIntervalBytes: 100}
	l, _ := r.open(cfg, 0)
	// Batch i holds records at 1000+10i and 1005+10i (create time), but
	// every fifth batch carries old timestamps, as a slow producer's
	// would.
	type stamp struct{ offset, ts int64 }
	var stamps []stamp
	for i := 0; i < 60; i++ {
		base := int64(1000 + 10*i)
		if i%5 == 4 {
			base = 500
		}
		recs := []record.Record{
			{Offset: 0, Timestamp: base, Value: []byte("a")},
			{Offset: 1, Timestamp: base + 5, Value: []byte("b")},
		}
		res := mustAppend(t, l, testBatch(t, recs), 0)
		stamps = append(stamps, stamp{res.BaseOffset, base}, stamp{res.BaseOffset + 1, base + 5})
	}
	if len(l.Segments()) < 3 {
		t.Fatalf("%d segments", len(l.Segments()))
	}
	check := func(l *Log) {
		t.Helper()
		for ts := int64(400); ts <= 1700; ts += 7 {
			var want stamp
			found := false
			for _, s := range stamps {
				if s.ts >= ts {
					want, found = s, true
					break
				}
			}
			off, got, ok, err := l.OffsetForTime(ts)
			if err != nil || ok != found || (found && (off != want.offset || got != want.ts)) {
				t.Fatalf("OffsetForTime(%d) = %d, %d, %v, %v; want %+v, %v", ts, off, got, ok, err, want, found)
			}
		}
	}
	check(l)
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, _ := r.open(Config{SegmentBytes: 1200, IndexIntervalBytes: 100, TrustFlushed: true}, l.RecoveryPoint())
	check(l2)
}

func TestEndOffsetForEpochAcrossRestart(t *testing.T) {
	r := newRig(t, 17, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	for _, e := range []int32{1, 1, 3, 3, 3, 7} {
		mustAppend(t, l, testBatch(t, testRecords(2, "e", 1)), e)
	}
	for _, tc := range []struct {
		ask, epoch int32
		end        int64
	}{{1, 1, 4}, {2, 1, 4}, {3, 3, 10}, {7, 7, 12}, {0, 0, 0}, {8, -1, -1}} {
		if e, end := l.EndOffsetForEpoch(tc.ask); e != tc.epoch || end != tc.end {
			t.Fatalf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.ask, e, end, tc.epoch, tc.end)
		}
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	r.crash(true)
	l2, _ := r.open(Config{}, 12)
	if e, end := l2.EndOffsetForEpoch(3); e != 3 || end != 10 {
		t.Fatalf("after power loss: EndOffsetForEpoch(3) = %d, %d", e, end)
	}
	// A new leader records its epoch before it appends.
	if err := l2.AssignEpoch(9, 12); err != nil {
		t.Fatal(err)
	}
	if e, end := l2.EndOffsetForEpoch(7); e != 7 || end != 12 {
		t.Fatalf("after a new epoch: EndOffsetForEpoch(7) = %d, %d", e, end)
	}
}
