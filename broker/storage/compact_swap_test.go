package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// stepFS carries out the first limit renames and removals once armed,
// and dies (panics with stepDeath) at the next: the disk then holds the
// state of that moment, as when a process dies there.
type stepFS struct {
	sim.FS
	armed bool
	limit int
	steps int
}

// stepDeath is what a stepFS panics with when its limit is reached.
var stepDeath = new(int)

func (f *stepFS) step() {
	if !f.armed {
		return
	}
	if f.steps == f.limit {
		panic(stepDeath)
	}
	f.steps++
}

func (f *stepFS) Rename(oldname, newname string) error {
	f.step()
	return f.FS.Rename(oldname, newname)
}

func (f *stepFS) Remove(name string) error {
	f.step()
	return f.FS.Remove(name)
}

// swapCrashCfg makes segments of about a dozen batches whose cleaned
// copies need several groups.
var swapCrashCfg = Config{Cleanup: CleanupCompact, SegmentBytes: 900, TombstoneRetention: time.Hour}

// swapCrashRun is one log filled the same way from the same seed,
// compacted with the disk steps after limit lost (limit < 0: none).
type swapCrashRun struct {
	r      *rig
	fs     *stepFS
	l      *Log
	before []keyed
	rp     int64
	res    CompactResult
}

func newSwapCrashRun(t *testing.T, seed uint64, limit int) *swapCrashRun {
	r := newRig(t, seed, testDiskConfig())
	fs := &stepFS{FS: r.fs, limit: limit}
	l, report, err := Open(fs, r.clock, testDir, swapCrashCfg, 0, r.logf)
	if err != nil || !report.Clean() {
		t.Fatalf("open: %v %s", err, report)
	}
	r.settle()
	run := &swapCrashRun{r: r, fs: fs, l: l}
	// Every third record has a key of its own, which stays: each
	// segment keeps about a third of its bytes.
	fillSmallSegments(t, r, l, 0, 200, func(i int) string {
		if i%3 == 2 {
			return fmt.Sprintf("u%d", i)
		}
		return fmt.Sprintf("k%d", i%5)
	})
	run.before = readRecords(t, l)
	run.rp = l.RecoveryPoint()
	fs.armed = limit >= 0
	run.compact(t)
	return run
}

// compact runs the compaction until it ends or the process dies.
func (run *swapCrashRun) compact(t *testing.T) {
	defer func() {
		if p := recover(); p != nil && p != stepDeath {
			panic(p)
		}
	}()
	run.res = compactNow(t, run.r, run.l)
}

// TestCompactionSwapCrashAtEveryStep: a process kill or a power loss at
// every step of the swaps leaves a log that recovery opens with, in each
// group's range, exactly the contents before or after compaction: no
// newest record per key lost, no offset twice, producer state whole.
func TestCompactionSwapCrashAtEveryStep(t *testing.T) {
	const seed = 62
	full := newSwapCrashRun(t, seed, -1)
	after := readRecords(t, full.l)
	var groups [][2]int64 // the cleaned segments' offset ranges
	for _, s := range full.l.Segments() {
		if s.NextOffset <= full.res.EndOffset {
			groups = append(groups, [2]int64{s.BaseOffset, s.NextOffset})
		}
	}
	if len(groups) < 2 || full.res.SegmentsWritten != len(groups) || full.res.SegmentsRewritten < 2*len(groups) {
		t.Fatalf("want several groups of several segments: %+v, %v", full.res, full.l.Segments())
	}
	// Count the steps of a whole swap.
	counted := newSwapCrashRun(t, seed, 1<<30)
	steps := counted.fs.steps
	if steps < 4*len(groups) {
		t.Fatalf("only %d steps for %d groups", steps, len(groups))
	}
	t.Logf("%d groups (%+v), %d steps", len(groups), full.res, steps)
	for limit := 0; limit <= steps; limit++ {
		for _, power := range []bool{false, true} {
			run := newSwapCrashRun(t, seed+uint64(limit), limit)
			run.r.crash(power)
			l, report, err := Open(run.r.fs, run.r.clock, testDir, swapCrashCfg, run.rp, run.r.logf)
			if err != nil || !report.Clean() {
				t.Fatalf("step %d power %v: open: %v %s", limit, power, err, report)
			}
			run.r.settle()
			got := readRecords(t, l)
			compacted := checkPreOrPost(t, got, run.before, after, groups, fmt.Sprintf("step %d power %v", limit, power))
			if !power {
				// A kill loses nothing: before the first commit point
				// nothing is compacted, after the last step everything.
				if limit == 0 && compacted != 0 || limit == steps && compacted != len(groups) {
					t.Fatalf("step %d kill: %d of %d groups compacted", limit, compacted, len(groups))
				}
			}
			if p, ok := l.Producer(groupedPID); !ok || p.LastSequence() != 0 {
				t.Fatalf("step %d power %v: producer %+v %v", limit, power, p, ok)
			}
			for _, suffix := range []string{suffixCleaned, suffixSwap} {
				if left := dirFiles(t, run.r.fs, suffix); len(left) > 0 {
					t.Fatalf("step %d power %v: left behind %v", limit, power, left)
				}
			}
			// What recovery made of it is durable once flushed, and a
			// second recovery finds the same.
			if err := run.r.flush(l); err != nil {
				t.Fatal(err)
			}
			rp := l.RecoveryPoint()
			run.r.crash(true)
			l2, report := run.r.open(swapCrashCfg, rp)
			if len(report.CompletedSwaps) > 0 || !report.Clean() {
				t.Fatalf("step %d power %v: second recovery: %s", limit, power, report)
			}
			if again := readRecords(t, l2); fmt.Sprint(again) != fmt.Sprint(got) {
				t.Fatalf("step %d power %v: second recovery read\n%v\nfirst\n%v", limit, power, again, got)
			}
		}
	}
}

// checkPreOrPost checks that got holds offsets in order, each once, and
// in each group's range exactly before's records or after's, and outside
// them before's; it returns how many groups hold after's.
func checkPreOrPost(t *testing.T, got, before, after []keyed, groups [][2]int64, what string) int {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].offset <= got[i-1].offset {
			t.Fatalf("%s: offset %d after %d", what, got[i].offset, got[i-1].offset)
		}
	}
	in := func(ks []keyed, from, to int64) string {
		var b strings.Builder
		for _, k := range ks {
			if k.offset >= from && k.offset < to {
				fmt.Fprint(&b, k, " ")
			}
		}
		return b.String()
	}
	compacted := 0
	from := int64(0)
	for _, g := range groups {
		if in(got, from, g[0]) != in(before, from, g[0]) {
			t.Fatalf("%s: offsets %d..%d changed:\n%s\nwas\n%s", what, from, g[0], in(got, from, g[0]), in(before, from, g[0]))
		}
		switch in(got, g[0], g[1]) {
		case in(after, g[0], g[1]):
			compacted++
		case in(before, g[0], g[1]):
		default:
			t.Fatalf("%s: group %d..%d holds\n%s\nneither\n%s\nnor\n%s", what, g[0], g[1]-1,
				in(got, g[0], g[1]), in(before, g[0], g[1]), in(after, g[0], g[1]))
		}
		from = g[1]
	}
	if end := int64(1) << 62; in(got, from, end) != in(before, from, end) {
		t.Fatalf("%s: offsets from %d changed", what, from)
	}
	return compacted
}

// TestCompactionDamagedSwapRollsBack: a swap file that does not read
// back whole is dropped while the segments it was to replace are all
// there.
func TestCompactionDamagedSwapRollsBack(t *testing.T) {
	run := newSwapCrashRun(t, 63, 1) // dies after the first commit rename
	run.r.crash(false)
	swaps := dirFiles(t, run.r.fs, suffixSwap)
	if len(swaps) != 1 {
		t.Fatalf("swap files %v", swaps)
	}
	name := testDir + "/" + swaps[0]
	run.r.flipByte(name, int64(len(run.r.fileBytes(name))-1))
	l, report := run.r.open(swapCrashCfg, run.rp)
	if len(report.CompletedSwaps) != 0 || !slices.Contains(report.RemovedFiles, swaps[0]) || !report.Clean() {
		t.Fatalf("recovery: %s", report)
	}
	if got := readRecords(t, l); fmt.Sprint(got) != fmt.Sprint(run.before) {
		t.Fatalf("after a damaged swap\n got %v\nwant %v", got, run.before)
	}
}
