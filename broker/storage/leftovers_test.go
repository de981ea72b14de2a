package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// TestFailedRemovesAreTriedAgain: removes that fail (a producer snapshot
// retention dropped, a temporary file given up on) leave no file the log
// does not account for: each is kept and removed again at a Tick once the
// disk heals, so the directory ends with no stray file. A log the faults
// take offline is reopened, as the broker's restart would.
func TestFailedRemovesAreTriedAgain(t *testing.T) {
	r := newRig(t, 5, testDiskConfig())
	cfg := Config{SegmentBytes: 600, RetentionBytes: 1500}
	l, _ := r.open(cfg, 0)
	remembered, reopens := 0, 0
	for i := range 300 {
		r.disk.SetMetaErrorRate(0.3)
		if _, err := l.Append(producerBatch(t, int64(i+1), 0, 0, 3, fmt.Sprintf("b%d", i)), 0); err == nil {
			l.Tick(l.EndOffset())
		}
		r.disk.SetMetaErrorRate(0)
		remembered = max(remembered, len(l.leftovers))
		if l.Err() != nil {
			l.Close()
			l, _ = r.open(cfg, 0)
			reopens++
			continue
		}
		r.flush(l)
		if stray, err := l.StrayFiles(); err != nil || len(stray) > 0 {
			t.Fatalf("after batch %d: stray files %v (%v)", i, stray, err)
		}
	}
	if remembered == 0 {
		t.Fatalf("no remove failed in 300 batches (%d reopens): the test proves nothing", reopens)
	}
	if err := l.Tick(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if len(l.leftovers) != 0 {
		t.Fatalf("a Tick on a healed disk left %v to remove", l.leftovers)
	}
	names, err := r.fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, suffixTmp) || strings.HasSuffix(n, suffixCleaned) {
			t.Fatalf("a healed log's directory still holds %s: %v", n, names)
		}
	}
}

// TestCreatedFileIsNoLongerALeftover: a file the log creates again under a
// name a failed remove left to retry is live: the next Tick must not
// remove it, and a create that fails keeps the name to retry.
func TestCreatedFileIsNoLongerALeftover(t *testing.T) {
	r := newRig(t, 1, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	name := testDir + "/00000000000000000000.log" + suffixCleaned
	if _, err := l.createFile(name); err != nil {
		t.Fatal(err)
	}
	r.disk.SetMetaErrorRate(1)
	if l.removeOrRemember(name) {
		t.Fatal("a remove on a failing disk reported success")
	}
	if _, err := l.createFile(name); err == nil {
		t.Fatal("a create on a failing disk succeeded")
	}
	r.disk.SetMetaErrorRate(0)
	if len(l.leftovers) != 1 {
		t.Fatalf("after a failed remove and a failed create, leftovers %v; want the name kept", l.leftovers)
	}
	if _, err := l.createFile(name); err != nil {
		t.Fatal(err)
	}
	if err := l.Tick(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if !r.exists(name) || len(l.leftovers) != 0 {
		t.Fatalf("a Tick removed a file created again (exists %v, leftovers %v)", r.exists(name), l.leftovers)
	}
}

// TestCompactionOnAFullDiskLeavesNoCleanedFiles: a compaction whose
// cleaned copy cannot be written (the disk fills part way) gives up and
// removes what it wrote, so the directory holds no file the log does not
// account for while it runs on (single-broker swarm seed 458, 10,000-seed
// swarm: two .log.cleaned files left until the next start).
func TestCompactionOnAFullDiskLeavesNoCleanedFiles(t *testing.T) {
	r := newRig(t, 3, testDiskConfig())
	cfg := Config{Cleanup: CleanupCompact, SegmentBytes: 1000}
	l, _ := r.open(cfg, 0)
	for i := range 60 {
		rec := record.Record{Timestamp: r.clock.Now().UnixMilli(), Key: []byte(fmt.Sprintf("k%d", i%5)),
			Value: []byte(fmt.Sprintf("value %d", i))}
		mustAppend(t, l, testBatch(t, []record.Record{rec}), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	// Room for part of the first cleaned segment only.
	r.disk.SetCapacity(r.disk.UsedBytes() + 100)
	var compactErr error
	called := false
	l.Compact(l.EndOffset(), func(_ CompactResult, err error) { compactErr, called = err, true })
	r.settle()
	if !called || !errors.Is(compactErr, sim.ErrNoSpace) {
		t.Fatalf("compaction on a full disk: called %v, error %v; want no space", called, compactErr)
	}
	if stray, err := l.StrayFiles(); err != nil || len(stray) > 0 {
		t.Fatalf("stray files after the failed compaction: %v (%v)", stray, err)
	}
	r.disk.SetCapacity(0)
	if !l.Compact(l.EndOffset(), nil) {
		t.Fatal("no compaction after the disk healed")
	}
	r.settle()
	if stray, err := l.StrayFiles(); err != nil || len(stray) > 0 {
		t.Fatalf("stray files after a compaction on the healed disk: %v (%v)", stray, err)
	}
}
