package storage

import (
	"fmt"
	"testing"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// linuxDiskConfig is a disk with Linux's rules for a failed fsync (the
// pages are marked clean and kept in the page cache, the next fsync
// succeeds without writing them) whose power losses drop everything
// unsynced, so that what is lost is exactly what no sync wrote.
func linuxDiskConfig() simdisk.Config {
	cfg := testDiskConfig()
	cfg.SyncFailure = simdisk.SyncFailureLinux
	cfg.CrashModes = []simdisk.CrashMode{simdisk.DropUnsynced}
	return cfg
}

// fsyncgateRun plays the sequence the fsyncgate review found: batches
// appended but not flushed, kill -9, the first flush after the restart
// fails (Linux keeps the pages in the cache, marked clean), the log
// reopens and finds them again, the next flush succeeds and the recovery
// point covers them, then the power fails. It returns the values the
// recovery point covered before the power loss, and the log recovered
// after it with its report.
func fsyncgateRun(t *testing.T, cfg Config, tornTail bool) (covered []string, after *Log, report RecoveryReport) {
	r := newRig(t, 41, linuxDiskConfig())
	l, _ := r.open(cfg, 0)
	for i := range 4 {
		mustAppend(t, l, testBatch(t, testRecords(2, fmt.Sprintf("durable%d", i), 1)), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	checkpoint := l.RecoveryPoint()
	for i := range 4 {
		mustAppend(t, l, testBatch(t, testRecords(2, fmt.Sprintf("cached%d", i), 1)), 0)
	}
	segment := l.segments[0].name
	r.crash(false) // kill -9: the page cache keeps the unsynced batches
	if tornTail {
		// A batch cut short: recovery cuts it, and must still write
		// again what it keeps above the recovery point.
		f, err := r.fs.Open(segment)
		if err != nil {
			t.Fatal(err)
		}
		size, _ := f.Size()
		if _, err := f.WriteAt([]byte{0, 0, 0}, size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	r.disk.FailSyncs(1)
	l, found := r.open(cfg, checkpoint) // the recovery round fails
	if rewrites := !cfg.Bugs.On(faults.BugTrustPageCache); (found.RewrittenBytes > 0) != rewrites {
		t.Fatalf("recovery above the recovery point wrote %d bytes again\n%s", found.RewrittenBytes, found)
	}
	if l.Reopens() != 1 || l.Err() != nil {
		t.Fatalf("after the failed recovery flush: %d reopens, %v", l.Reopens(), l.Err())
	}
	if err := r.flush(l); err != nil {
		t.Fatalf("flush after the reopen: %v", err)
	}
	if l.RecoveryPoint() != l.EndOffset() || l.EndOffset() != found.EndOffset {
		t.Fatalf("recovery point %d, end %d, found %d..%d", l.RecoveryPoint(), l.EndOffset(), found.StartOffset, found.EndOffset)
	}
	covered = readAll(t, l)
	durable := l.RecoveryPoint()
	r.crash(true)
	l, report = r.open(cfg, durable)
	return covered, l, report
}

// TestFsyncgateRecoveredDataIsWrittenAgain: what recovery reads back above
// the recovery point counts as durable only once a sync after the
// recovery really wrote it: with the rewrite, everything the recovery
// point covered survives the power loss.
func TestFsyncgateRecoveredDataIsWrittenAgain(t *testing.T) {
	for _, torn := range []bool{false, true} {
		covered, l, report := fsyncgateRun(t, Config{}, torn)
		if len(covered) != 16 {
			t.Fatalf("torn tail %v: the recovery point covered %d records, want the 16 appended", torn, len(covered))
		}
		if after := readAll(t, l); !sameStrings(after, covered) || !report.Clean() {
			t.Fatalf("torn tail %v: after the power loss the log holds %v (want %v)\n%s", torn, after, covered, report)
		}
	}
}

// TestFsyncgateTrustPageCacheBugLosesFlushedData: the planted bug skips
// the rewrite, and the power loss takes data the recovery point covered:
// the next recovery finds zeros where flushed batches were.
func TestFsyncgateTrustPageCacheBugLosesFlushedData(t *testing.T) {
	_, _, report := fsyncgateRun(t, Config{Bugs: faults.Bugs{faults.BugTrustPageCache: true}}, false)
	if report.Clean() || len(report.Damage) == 0 || report.Damage[0].FirstOffset != 8 {
		t.Fatalf("trusting the page cache lost nothing flushed: %s", report)
	}
}
