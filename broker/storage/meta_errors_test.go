package storage

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/sim"
)

// TestPartialAppendThatCannotBeCutTakesTheLogOffline: an append the disk
// writes part of, and whose cut back then fails too, leaves bytes on disk
// the log does not account for. The log goes offline, says so once, and
// serves nothing; reopened, its recovery cuts the torn tail and keeps
// every whole batch.
func TestPartialAppendThatCannotBeCutTakesTheLogOffline(t *testing.T) {
	r := newRig(t, 1, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	var want []string
	for i := range 5 {
		recs := testRecords(2, fmt.Sprintf("b%d", i), 1000)
		mustAppend(t, l, testBatch(t, recs), 0)
		for _, rec := range recs {
			want = append(want, string(rec.Value))
		}
	}
	var offline []error
	l.OnOffline(func(err error) { offline = append(offline, err) })
	r.disk.SetMetaErrorRate(1)
	for range 3 {
		if _, err := l.Append(testBatch(t, testRecords(4, "torn", 1000)), 0); !errors.Is(err, ErrStorage) {
			t.Fatalf("append on a failing disk: %v", err)
		}
	}
	r.disk.SetMetaErrorRate(0)
	if len(offline) != 1 || !errors.Is(offline[0], sim.ErrIO) || !errors.Is(l.Err(), sim.ErrIO) {
		t.Fatalf("offline reports %v, Err %v; want one report of the failed cut", offline, l.Err())
	}
	if _, err := l.Read(0, 1<<20, l.EndOffset()); err == nil {
		t.Fatal("an offline log served a read")
	}
	if _, err := l.Append(testBatch(t, testRecords(1, "after", 1000)), 0); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("an offline log took an append: %v", err)
	}
	l.Close()
	r.crash(false)
	reopened, report := r.open(Config{}, 0)
	if got := readAll(t, reopened); !sameStrings(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	if len(report.Truncations) == 0 && reopened.SizeBytes() != l.SizeBytes() {
		t.Fatalf("recovery neither cut a torn tail nor found the log as it was: %s", report)
	}
}

// TestFailedRollsKeepNoIndexHandles: a roll that fails after writing the
// closing segment's index files drops their handles; the append that
// asked fails and the next rolls again, so failed rolls do not pile up
// handles. A log the faults take offline is reopened, as the broker's
// restart would, and keeps every batch it acknowledged.
func TestFailedRollsKeepNoIndexHandles(t *testing.T) {
	r := newRig(t, 3, testDiskConfig())
	cfg := Config{SegmentBytes: 600}
	l, _ := r.open(cfg, 0)
	var want []string
	failed, reopens := 0, 0
	for i := range 400 {
		recs := testRecords(3, fmt.Sprintf("b%d", i), 1000)
		r.disk.SetMetaErrorRate(0.2)
		_, err := l.Append(testBatch(t, recs), 0)
		r.disk.SetMetaErrorRate(0)
		switch {
		case err == nil:
			for _, rec := range recs {
				want = append(want, string(rec.Value))
			}
		case errors.Is(err, ErrStorage):
			failed++
		default:
			t.Fatalf("append %d: %v", i, err)
		}
		for _, s := range l.segments {
			if len(s.indexFiles) > 2 {
				t.Fatalf("after %d appends segment %d holds %d index handles", i+1, s.base, len(s.indexFiles))
			}
		}
		r.settle()
		if l.Err() != nil {
			l.Close()
			r.crash(false)
			l, _ = r.open(cfg, 0)
			reopens++
		}
	}
	if failed < 20 || reopens == 0 || len(l.segments) < 10 {
		t.Fatalf("%d appends failed, %d reopens, %d segments: the test met too few faults", failed, reopens, len(l.segments))
	}
	if got := readAll(t, l); !sameStrings(got, want) {
		t.Fatalf("read %d values, want %d", len(got), len(want))
	}
}

// renameFailFS fails the first rename of a file whose name ends with
// suffix (a cleaned segment when empty) once armed, as a disk failing a
// metadata operation would.
type renameFailFS struct {
	sim.FS
	suffix string
	armed  bool
}

func (f *renameFailFS) Rename(oldname, newname string) error {
	if f.armed && strings.HasSuffix(oldname, cmp.Or(f.suffix, suffixCleaned)) {
		f.armed = false
		return fmt.Errorf("rename %s: %w", oldname, sim.ErrIO)
	}
	return f.FS.Rename(oldname, newname)
}

// TestFailedCompactionSwapKeepsUnflushedBatches: a compaction whose swap
// fails reloads the log from disk, where nothing was lost: the batches
// appended since the last flush, acknowledged without one under
// flush=none, are still there and the log end does not move back.
func TestFailedCompactionSwapKeepsUnflushedBatches(t *testing.T) {
	r := newRig(t, 5, testDiskConfig())
	fs := &renameFailFS{FS: r.fs}
	l, _, err := Open(fs, r.clock, testDir, swapCrashCfg, 0, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	fillSmallSegments(t, r, l, 0, 200, cyclicKeys(5))
	for i := range 3 {
		mustAppend(t, l, testBatch(t, testRecords(2, fmt.Sprintf("unflushed%d", i), r.clock.Now().UnixMilli())), 0)
	}
	if l.RecoveryPoint() >= l.EndOffset() {
		t.Fatalf("recovery point %d, end %d: nothing unflushed to keep", l.RecoveryPoint(), l.EndOffset())
	}
	before, end := readRecords(t, l), l.EndOffset()
	fs.armed = true
	var compactErr error
	called := false
	if !l.Compact(l.EndOffset(), func(_ CompactResult, err error) { compactErr, called = err, true }) {
		t.Fatal("compaction did not start")
	}
	r.settle()
	if !called || compactErr == nil || fs.armed {
		t.Fatalf("compaction: called %v, error %v, rename failed %v", called, compactErr, !fs.armed)
	}
	if l.Err() != nil || l.EndOffset() != end {
		t.Fatalf("after the failed swap: Err %v, end %d, want %d", l.Err(), l.EndOffset(), end)
	}
	if got := readRecords(t, l); !slices.Equal(got, before) {
		t.Fatalf("after the failed swap the log holds %d records, before %d", len(got), len(before))
	}
}

// TestFailedEpochCheckpointWriteAfterTruncationTakesTheLogOffline: a
// follower that cuts a diverged tail drops its epochs from the leader
// epoch checkpoint; when that write fails, the file on disk still names
// an epoch the log no longer holds. Were the log to take the leader's
// batches of an older epoch at the cut, a restart would read the stale
// entry back above them and answer OffsetForLeaderEpoch for the dropped
// epoch as if the log held it, so a follower diverged in that epoch would
// keep its tail. As Kafka does on a failed checkpoint write, the log goes
// offline (the broker starts over), and recovery drops what lies past
// the log end.
func TestFailedEpochCheckpointWriteAfterTruncationTakesTheLogOffline(t *testing.T) {
	r := newRig(t, 7, testDiskConfig())
	fs := &renameFailFS{FS: r.fs, suffix: EpochCheckpointName + suffixTmp}
	l, _, err := Open(fs, r.clock, testDir, Config{}, 0, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	r.settle()
	for _, epoch := range []int32{5, 5, 6, 6} {
		mustAppend(t, l, testBatch(t, testRecords(2, "e", 1)), epoch)
	}
	var offline []error
	l.OnOffline(func(err error) { offline = append(offline, err) })
	fs.armed = true
	err = l.TruncateTo(4)
	if fs.armed {
		t.Fatal("the truncation wrote no leader epoch checkpoint")
	}
	offlineErr := l.Err()
	if offlineErr != nil {
		l.Close()
		r.crash(false)
		l, _ = r.open(Config{}, 0)
	} else if err := r.flush(l); err != nil { // appends wait for the cut to be durable
		t.Fatal(err)
	}
	// The new leader's log holds epoch 5 past the cut.
	replica := testBatch(t, testRecords(2, "leader", 1))
	replica.SetBaseOffset(l.EndOffset())
	replica.SetPartitionLeaderEpoch(5)
	if err := l.AppendReplica(replica); err != nil {
		t.Fatal(err)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	l.Close()
	r.crash(false)
	l, _ = r.open(Config{}, 0)
	if got, want := l.Epochs(), []EpochEntry{{Epoch: 5, StartOffset: 0}}; !slices.Equal(got, want) {
		t.Fatalf("recovered epochs %v, want %v", got, want)
	}
	if e, end := l.EndOffsetForEpoch(5); e != 5 || end != 6 {
		t.Fatalf("EndOffsetForEpoch(5) = %d, %d; want 5, 6", e, end)
	}
	if err == nil || offlineErr == nil || len(offline) != 1 {
		t.Fatalf("truncation whose checkpoint write failed: %v, Err %v, %d offline reports; want the log offline", err, offlineErr, len(offline))
	}
}
