package storage

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// filled returns a log with n two-record batches, flushed up to flushed
// batches (the rest unflushed), and its values.
func filled(t *testing.T, r *rig, cfg Config, n, flushed int) (*Log, []string) {
	t.Helper()
	l, _ := r.open(cfg, 0)
	var values []string
	for i := 0; i < n; i++ {
		if i == flushed {
			if err := r.flush(l); err != nil {
				t.Fatal(err)
			}
		}
		recs := testRecords(2, fmt.Sprintf("v%d", i), int64(1000+i))
		mustAppend(t, l, testBatch(t, recs), 0)
		values = append(values, string(recs[0].Value), string(recs[1].Value))
	}
	if flushed >= n {
		if err := r.flush(l); err != nil {
			t.Fatal(err)
		}
	}
	return l, values
}

func TestRecoveryCutsTornTail(t *testing.T) {
	r := newRig(t, 20, testDiskConfig())
	l, values := filled(t, r, Config{}, 10, 6)
	rp := l.RecoveryPoint()
	name, pos, size := segmentPosition(t, l, 16) // batch 8 of 10
	r.crash(false)
	f, err := r.fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(pos + int64(size)/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Open, not r.open: appends must be seen waiting for the cut.
	l2, report, err := Open(r.fs, r.clock, testDir, Config{}, rp, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Truncations) != 1 || len(report.Damage) != 0 || report.FlushedLost {
		t.Fatalf("report: %s", report)
	}
	tr := report.Truncations[0]
	if tr.Position != pos || tr.Offset != 16 || tr.GoodDataAfter || tr.Segment != path.Base(name) {
		t.Fatalf("truncation %+v, want at %d offset 16", tr, pos)
	}
	if l2.EndOffset() != 16 {
		t.Fatalf("end %d after cutting at 16", l2.EndOffset())
	}
	if got := readAll(t, l2); !sameStrings(got, values[:16]) {
		t.Fatalf("read %v", got)
	}
	if r.linesContaining(path.Base(name)) == 0 {
		t.Fatalf("no log line names the segment: %q", r.lines)
	}
	// Appends wait until the cut is durable.
	if _, err := l2.Append(testBatch(t, testRecords(1, "next", 1)), 0); !errors.Is(err, ErrTruncating) {
		t.Fatalf("append before the cut is durable: %v", err)
	}
	r.settle()
	res := mustAppend(t, l2, testBatch(t, testRecords(1, "next", 1)), 0)
	if res.BaseOffset != 16 {
		t.Fatalf("append after cut at %d", res.BaseOffset)
	}
}

// TestRecoveryCutsCorruptUnflushedMiddle: a bad batch above the recovery
// point that a torn write explains (bytes lost, not one bit) ends the log
// even with good batches after it (never durable, so replicas and
// producers supply it again); the report says good data went.
func TestRecoveryCutsCorruptUnflushedMiddle(t *testing.T) {
	l2, report, values, _, _, _ := reopenFlippedAt12(t, Config{FenceRot: true}, 3, 9)
	if len(report.Truncations) != 1 || !report.Truncations[0].GoodDataAfter || report.Truncations[0].Offset != 12 {
		t.Fatalf("report: %s", report)
	}
	if !strings.Contains(report.String(), "checksum") {
		t.Fatalf("report does not give the reason: %s", report)
	}
	if got := readAll(t, l2); !sameStrings(got, values[:12]) {
		t.Fatalf("read %v", got)
	}
}

// reopenFlippedAt12 fills a log with ten batches of two records, above
// its recovery point from offset 8, flips a bit in each byte fromEnd
// before the end of the batch holding offset 12 (batch 12..13) and
// reopens it with cfg. It returns the reopened log, recovery's report,
// the values written, the recovery point and the batch's position and
// size.
func reopenFlippedAt12(t *testing.T, cfg Config, fromEnd ...int64) (*Log, RecoveryReport, []string, int64, int64, int) {
	r := newRig(t, 21, testDiskConfig())
	l, values := filled(t, r, cfg, 10, 4)
	rp := l.RecoveryPoint()
	name, pos, size := segmentPosition(t, l, 12)
	l.Close()
	for _, back := range fromEnd {
		r.flipByte(name, pos+int64(size)-back)
	}
	l2, report := r.open(cfg, rp)
	return l2, report, values, rp, pos, size
}

// TestRecoveryKeepsRottedUnflushedBatch: a batch above the recovery
// point one bit off was most likely written whole and rotted later (a
// torn write loses whole sectors): a replica's recovery (FenceRot) keeps
// it fenced as damage, exactly its bytes and offsets, and keeps the valid
// batches after it, instead of cutting the log there; a lone log cuts it
// as a torn tail, since a torn sector's stale bytes may be one bit off
// too.
func TestRecoveryKeepsRottedUnflushedBatch(t *testing.T) {
	lone, loneReport, _, _, _, _ := reopenFlippedAt12(t, Config{}, 3)
	if len(loneReport.Truncations) != 1 || len(loneReport.Damage) != 0 || lone.EndOffset() != 12 {
		t.Fatalf("a lone log's recovery: end %d, report %s; want the tail cut at 12", lone.EndOffset(), loneReport)
	}
	l2, report, values, rp, pos, size := reopenFlippedAt12(t, Config{FenceRot: true}, 3)
	if len(report.Truncations) != 0 || len(report.Damage) != 1 || report.RotFenced != 1 || rp > 12 {
		t.Fatalf("recovery point %d, report: %s", rp, report)
	}
	if d := report.Damage[0]; d.Position != pos || d.EndPosition != pos+int64(size) || d.FirstOffset != 12 || d.LastOffset != 13 ||
		!strings.Contains(d.Reason, "one bit flipped") {
		t.Fatalf("damage %+v, want bytes %d..%d offsets 12..13, named a flipped bit", d, pos, pos+int64(size))
	}
	if l2.EndOffset() != 20 {
		t.Fatalf("end %d, want the 20 offsets written", l2.EndOffset())
	}
	if res, err := l2.Read(12, 1<<20, 20); !errors.Is(err, ErrCorruptLog) || len(res.Data) != 0 {
		t.Fatalf("read of the rotted batch: %d bytes, %v", len(res.Data), err)
	}
	if res, err := l2.Read(0, 1<<20, 20); err != nil || res.NextOffset != 12 {
		t.Fatalf("read from 0: next %d, %v; want a stop before the rotted batch", res.NextOffset, err)
	}
	res, err := l2.Read(14, 1<<20, 20)
	if err != nil || res.NextOffset != 20 {
		t.Fatalf("read from 14: next %d, %v; want the batches after the rotted one", res.NextOffset, err)
	}
	if len(values) != 20 {
		t.Fatalf("%d values written", len(values))
	}
}

// TestRecoveryReportsCorruptFlushedData: a bad batch below the recovery
// point was durable: it is kept, reported, and never served, and the good
// data around it stays readable.
func TestRecoveryReportsCorruptFlushedData(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust=%v", trust), func(t *testing.T) {
			r := newRig(t, 22, testDiskConfig())
			cfg := Config{SegmentBytes: 1200, TrustFlushed: trust}
			l, values := filled(t, r, cfg, 30, 30)
			rp := l.RecoveryPoint()
			name, pos, size := segmentPosition(t, l, 10) // batch 10..11, in the first segment
			if l.segmentFor(10) == len(l.segments)-1 {
				t.Fatal("want the damage in a flushed, closed segment")
			}
			l.Close()
			r.flipByte(name, pos+int64(size)-5)
			l2, report := r.open(cfg, rp)
			if trust {
				if !report.Clean() {
					t.Fatalf("trusting flushed segments, recovery read them: %s", report)
				}
			} else {
				if len(report.Damage) != 1 || len(report.Truncations) != 0 {
					t.Fatalf("report: %s", report)
				}
				d := report.Damage[0]
				if d.Position != pos || d.EndPosition != pos+int64(size) || d.FirstOffset != 10 || d.LastOffset != 11 || d.Segment != path.Base(name) {
					t.Fatalf("damage %+v, want bytes %d..%d offsets 10..11", d, pos, pos+int64(size))
				}
			}
			if l2.EndOffset() != 60 {
				t.Fatalf("end %d", l2.EndOffset())
			}
			for _, off := range []int64{10, 11} {
				if res, err := l2.Read(off, 1<<20, 60); !errors.Is(err, ErrCorruptLog) || len(res.Data) != 0 {
					t.Fatalf("read of damaged offset %d: %d bytes, %v", off, len(res.Data), err)
				}
			}
			// A read from before the damage stops short of it.
			res, err := l2.Read(6, 1<<20, 60)
			if err != nil || res.NextOffset != 10 {
				t.Fatalf("read from 6: next %d, %v", res.NextOffset, err)
			}
			// Around it, everything is served.
			for _, off := range []int64{0, 9, 12, 59} {
				if _, err := l2.Read(off, 1, 60); err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
			}
			if d := l2.Damage(); len(d) != 1 || d[0].FirstOffset != 10 {
				t.Fatalf("known damage %v", d)
			}
			if len(values) != 60 {
				t.Fatalf("%d values written", len(values))
			}
			// Appends go on after it.
			res2 := mustAppend(t, l2, testBatch(t, testRecords(1, "after", 1)), 0)
			if res2.BaseOffset != 60 {
				t.Fatalf("append after damage at %d", res2.BaseOffset)
			}
		})
	}
}

// TestReadsVerifyChecksums: a bit flip after recovery is never served.
func TestReadsVerifyChecksums(t *testing.T) {
	r := newRig(t, 23, testDiskConfig())
	l, _ := filled(t, r, Config{}, 10, 10)
	name, pos, size := segmentPosition(t, l, 8)
	r.flipByte(name, pos+int64(size)-1)
	res, err := l.Read(8, 1<<20, l.EndOffset())
	if !errors.Is(err, ErrCorruptLog) || len(res.Data) != 0 {
		t.Fatalf("read of a flipped batch: %d bytes, %v", len(res.Data), err)
	}
	res, err = l.Read(0, 1<<20, l.EndOffset())
	if err != nil || res.NextOffset != 8 {
		t.Fatalf("read before the flip: next %d, %v", res.NextOffset, err)
	}
	if _, err := l.Read(10, 1<<20, l.EndOffset()); err != nil {
		t.Fatalf("read after the flip: %v", err)
	}
}

// TestSkipCRCBugServesCorruptData: with the planted bug, the same flip is
// served, and recovery keeps a corrupt tail.
func TestSkipCRCBugServesCorruptData(t *testing.T) {
	r := newRig(t, 24, testDiskConfig())
	cfg := Config{Bugs: faults.Bugs{faults.BugSkipCRC: true}}
	l, _ := filled(t, r, cfg, 10, 5)
	rp := l.RecoveryPoint()
	name, pos, size := segmentPosition(t, l, 8)
	r.flipByte(name, pos+int64(size)-1)
	res, err := l.Read(8, 1, l.EndOffset())
	if err != nil || res.Batches != 1 {
		t.Fatalf("bugged read: %v", err)
	}
	if err := record.Batch(res.Data).Verify(); !errors.Is(err, record.ErrChecksum) {
		t.Fatalf("bugged read served a batch that verifies: %v", err)
	}
	l.Close()
	l2, report := r.open(cfg, rp)
	if !report.Clean() || l2.EndOffset() != 20 {
		t.Fatalf("bugged recovery: %s", report)
	}
}

func TestRecoveryRemovesLeftovers(t *testing.T) {
	r := newRig(t, 25, testDiskConfig())
	l, values := filled(t, r, Config{}, 5, 5)
	l.Close()
	leftovers := []string{
		"00000000000000000500.index", "00000000000000000500.timeindex",
		"00000000000000000000.log.cleaned", "00000000000000000000.index.swap",
		"leader-epoch-checkpoint.tmp", "00000000000000000003.snapshot.tmp",
		"00000000000000000001.log.deleted",
	}
	for _, n := range leftovers {
		f, err := r.fs.Create(path.Join(testDir, n))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("junk"), 0)
		f.Close()
	}
	l2, report := r.open(Config{}, 10)
	slices.Sort(leftovers)
	removed := slices.Clone(report.RemovedFiles)
	slices.Sort(removed)
	if !slices.Equal(removed, leftovers) {
		t.Fatalf("removed %v, want %v", removed, leftovers)
	}
	for _, n := range leftovers {
		if r.exists(path.Join(testDir, n)) {
			t.Fatalf("%s survived", n)
		}
	}
	if got := readAll(t, l2); !sameStrings(got, values) {
		t.Fatalf("read %v", got)
	}
}

func TestRecoveryRebuildsIndexes(t *testing.T) {
	for _, damage := range []string{"missing", "garbage", "stale"} {
		for _, trust := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/trust=%v", damage, trust), func(t *testing.T) {
				r := newRig(t, 26, testDiskConfig())
				cfg := Config{SegmentBytes: 1500, IndexIntervalBytes: 150, TrustFlushed: trust}
				l, values := filled(t, r, cfg, 60, 60)
				rp := l.RecoveryPoint()
				second := l.segments[1]
				indexName := segmentFile(testDir, second.base, suffixIndex)
				want := r.fileBytes(indexName)
				if len(want) == 0 {
					t.Fatal("index file empty")
				}
				l.Close()
				switch damage {
				case "missing":
					if err := r.fs.Remove(indexName); err != nil {
						t.Fatal(err)
					}
				case "garbage":
					f, _ := r.fs.Open(indexName)
					f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, 0)
					f.Close()
				case "stale":
					// The previous segment's index: plausible entries,
					// wrong log.
					other := r.fileBytes(segmentFile(testDir, l.segments[0].base, suffixIndex))
					f, _ := r.fs.Create(indexName)
					f.WriteAt(other, 0)
					f.Close()
				}
				l2, report := r.open(cfg, rp)
				if !slices.Contains(report.RebuiltIndexes, path.Base(second.name)) && damage != "stale" {
					t.Fatalf("report: %s", report)
				}
				if got := r.fileBytes(indexName); string(got) != string(want) {
					t.Fatalf("rebuilt index differs: %x, want %x", got, want)
				}
				for off := l2.StartOffset(); off < l2.EndOffset(); off++ {
					res, err := l2.Read(off, 1, l2.EndOffset())
					if b := record.Batch(res.Data); err != nil || b.BaseOffset() > off || b.LastOffset() < off {
						t.Fatalf("read at %d: %v", off, err)
					}
				}
				if got := readAll(t, l2); !sameStrings(got, values) {
					t.Fatal("values differ")
				}
			})
		}
	}
}

// TestRecoveryPointBeyondEnd: flushed data that is gone is reported, not
// silently accepted.
func TestRecoveryPointBeyondEnd(t *testing.T) {
	r := newRig(t, 27, testDiskConfig())
	l, _ := filled(t, r, Config{}, 5, 5)
	l.Close()
	_, report := r.open(Config{}, 50)
	if !report.FlushedLost || report.Clean() || !strings.Contains(report.String(), "FLUSHED DATA LOST") {
		t.Fatalf("report: %s", report)
	}
}

// TestStaleSnapshotIgnored: a snapshot left from a truncated history (its
// deletion was not durable) does not describe the log and is discarded.
func TestStaleSnapshotIgnored(t *testing.T) {
	r := newRig(t, 28, testDiskConfig())
	cfg := Config{SegmentBytes: 800}
	l, _ := r.open(cfg, 0)
	for seq := int32(0); seq < 30; seq++ {
		mustAppend(t, l, producerBatch(t, 9, 0, seq, 1, "old"), 1)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	snaps := slices.Clone(l.snapshots)
	last := snaps[len(snaps)-1].offset
	stale := r.fileBytes(segmentFile(testDir, last, suffixSnapshot))
	if err := l.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// The new history rolls no segment, so the stale snapshot is the
	// newest at or below the log end.
	cfg = Config{}
	l, _ = r.open(cfg, 5)
	for seq := int32(0); seq < 40; seq++ {
		mustAppend(t, l, producerBatch(t, 11, 0, seq, 1, "new"), 2)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	rp := l.RecoveryPoint()
	r.crash(false)
	// Put the stale snapshot back, as a crash could have.
	for _, s := range []string{segmentFile(testDir, last, suffixSnapshot)} {
		f, err := r.fs.Create(s)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(stale, 0)
		f.Close()
	}
	l2, report := r.open(cfg, rp)
	if !slices.Contains(report.DiscardedSnapshots, path.Base(segmentFile(testDir, last, suffixSnapshot))) {
		t.Fatalf("stale snapshot kept: %s", report)
	}
	if r.linesContaining("does not match") != 1 {
		t.Fatalf("the snapshot was not refused for not matching the log: %q", r.lines)
	}
	p, ok := l2.Producer(9)
	if !ok || p.LastSequence() != 4 {
		t.Fatalf("producer 9: %+v", p)
	}
	if p, ok := l2.Producer(11); !ok || p.LastSequence() != 39 {
		t.Fatalf("producer 11: %+v", p)
	}
}

// TestEpochCheckpointRebuilt: a lost or torn leader epoch checkpoint is
// rebuilt from the batches.
func TestEpochCheckpointRebuilt(t *testing.T) {
	r := newRig(t, 29, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	for e := int32(0); e < 4; e++ {
		for i := 0; i < 3; i++ {
			mustAppend(t, l, testBatch(t, testRecords(1, "e", 1)), e*2)
		}
	}
	want := l.Epochs()
	if len(want) != 4 || want[3] != (EpochEntry{Epoch: 6, StartOffset: 9}) {
		t.Fatalf("epochs %v", want)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	data := r.fileBytes(path.Join(testDir, EpochCheckpointName))
	if string(data) != "0\n4\n0 0\n2 3\n4 6\n6 9\n" {
		t.Fatalf("checkpoint %q", data)
	}
	l.Close()
	l2, report := r.open(Config{}, 12)
	if !slices.Equal(l2.Epochs(), want) || report.EpochCheckpointError != "" {
		t.Fatalf("epochs after restart %v: %s", l2.Epochs(), report)
	}
	l2.Close()
	f, _ := r.fs.Create(path.Join(testDir, EpochCheckpointName))
	f.WriteAt([]byte("0\n4\n0 0\n2 3"), 0) // torn
	f.Close()
	l3, report := r.open(Config{}, 12)
	if !slices.Equal(l3.Epochs(), want) || report.EpochCheckpointError == "" {
		t.Fatalf("epochs after a torn checkpoint %v: %s", l3.Epochs(), report)
	}
	if got := r.fileBytes(path.Join(testDir, EpochCheckpointName)); string(got) != string(data) {
		t.Fatalf("checkpoint not rewritten: %q", got)
	}
}

func TestOpenOnFailingDisk(t *testing.T) {
	r := newRig(t, 30, testDiskConfig())
	l, _ := filled(t, r, Config{}, 5, 5)
	l.Close()
	r.disk.SetReadErrorRate(1)
	_, _, err := Open(r.fs, r.clock, testDir, Config{}, 0, r.logf)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, sim.ErrIO) {
		t.Fatalf("open with failing reads: %v", err)
	}
	r.disk.SetReadErrorRate(0)
	l2, report := r.open(Config{}, 0)
	if !report.Clean() || l2.EndOffset() != 10 {
		t.Fatalf("open after the disk recovered: %s", report)
	}
}

// TestRecoveryCutsStaleBytesAfterSegmentEnd: a segment truncated and
// rolled again before the truncation became durable can come back with
// its old tail after a power loss. The bytes past the next segment's base
// hold no offsets of the log and are cut, even below the recovery point.
func TestRecoveryCutsStaleBytesAfterSegmentEnd(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust=%v", trust), func(t *testing.T) {
			r := newRig(t, 31, testDiskConfig())
			cfg := Config{TrustFlushed: trust}
			l, values := filled(t, r, cfg, 10, 10)
			name, pos, _ := segmentPosition(t, l, 10)
			l.Close()
			// The state such a crash leaves: the old segment whole, and
			// the segment rolled at 10 after the truncation.
			f, err := r.fs.Create(segmentFile(testDir, 10, suffixLog))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			l2, report := r.open(cfg, 10)
			if !report.Clean() || len(report.Truncations) != 1 {
				t.Fatalf("report: %s", report)
			}
			tr := report.Truncations[0]
			if !tr.Stale || tr.Offset != 10 || tr.Position != pos || tr.Segment != path.Base(name) {
				t.Fatalf("truncation %+v, want stale bytes at %d", tr, pos)
			}
			if l2.EndOffset() != 10 || len(l2.Segments()) != 2 {
				t.Fatalf("end %d, segments %v", l2.EndOffset(), l2.Segments())
			}
			if got := readAll(t, l2); !sameStrings(got, values[:10]) {
				t.Fatalf("read %v", got)
			}
		})
	}
}

// TestTruncationLostToProcessCrashIsNotSpliced: a truncation still in the
// page cache when the process dies leaves a durable file that is longer
// and holds the cut batches. The reopened log takes no appends until what
// it found is durable; otherwise a power loss brings the old batches back
// below the new ones, splicing two histories.
func TestTruncationLostToProcessCrashIsNotSpliced(t *testing.T) {
	cfg := testDiskConfig()
	cfg.CrashModes = []simdisk.CrashMode{simdisk.DropUnsynced}
	r := newRig(t, 22, cfg)
	l, values := filled(t, r, Config{}, 10, 10) // all ten durable
	// A flush in flight when the truncation comes: the truncation waits
	// for the next round, which the process does not live to start.
	mustAppend(t, l, testBatch(t, testRecords(1, "late", 1)), 0)
	l.Flush(nil)
	if err := l.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	r.crash(false)
	l2, _, err := Open(r.fs, r.clock, testDir, Config{}, 4, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Append(testBatch(t, testRecords(1, "early", 1)), 1); !errors.Is(err, ErrTruncating) {
		t.Fatalf("append before what recovery found is durable: %v", err)
	}
	r.settle()
	var fresh []string
	for i := 0; i < 3; i++ {
		recs := testRecords(1, fmt.Sprintf("new%d", i), 2000)
		mustAppend(t, l2, testBatch(t, recs), 1)
		fresh = append(fresh, string(recs[0].Value))
	}
	r.crash(true) // the new batches were never flushed: they may go
	l3, _ := r.open(Config{}, 4)
	got := readAll(t, l3)
	want := append(append([]string(nil), values[:4]...), fresh...)
	if len(got) > len(want) || !sameStrings(got, want[:len(got)]) || len(got) < 4 {
		t.Fatalf("recovered %v, want a prefix of %v at least 4 long", got, want)
	}
}
