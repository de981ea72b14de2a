package storage

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// groupedPID is the producer whose only batch every later record
// supersedes: compaction must keep it (empty) for producer state.
const groupedPID = 9

// fillSmallSegments appends single-record batches from..to-1, record i
// with key keyOf(i), into small segments, record 0 from producer
// groupedPID, and flushes.
func fillSmallSegments(t *testing.T, r *rig, l *Log, from, to int, keyOf func(int) string) []keyed {
	t.Helper()
	var all []keyed
	for i := from; i < to; i++ {
		key := keyOf(i)
		rec := record.Record{Timestamp: r.clock.Now().UnixMilli(), Key: []byte(key), Value: []byte(fmt.Sprintf("v%d", i))}
		bl := record.NewBuilder()
		if i == 0 {
			bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = groupedPID, 0, 0
		}
		b, err := bl.Build([]record.Record{rec})
		if err != nil {
			t.Fatal(err)
		}
		res := mustAppend(t, l, b, 0)
		all = append(all, keyed{offset: res.BaseOffset, key: key, value: string(rec.Value)})
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	return all
}

// compactNow runs a compaction to its end.
func compactNow(t *testing.T, r *rig, l *Log) CompactResult {
	t.Helper()
	var got CompactResult
	var gotErr error
	called := false
	if !l.Compact(l.EndOffset(), func(res CompactResult, err error) { got, gotErr, called = res, err, true }) {
		t.Fatal("compaction did not start")
	}
	r.settle()
	if !called || gotErr != nil {
		t.Fatalf("compaction: called %v, %v", called, gotErr)
	}
	return got
}

// cyclicKeys cycles through n keys.
func cyclicKeys(n int) func(int) string {
	return func(i int) string { return fmt.Sprintf("k%d", i%n) }
}

// newestBelow keeps the newest record per key below end, and all after.
func newestBelow(all []keyed, end int64) []keyed {
	newest := map[string]int64{}
	for _, k := range all {
		if k.offset < end {
			newest[k.key] = k.offset
		}
	}
	var out []keyed
	for _, k := range all {
		if k.offset >= end || newest[k.key] == k.offset {
			out = append(out, k)
		}
	}
	return out
}

// dirFiles lists the partition directory's files with the given suffix.
func dirFiles(t *testing.T, fs sim.FS, suffix string) []string {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

// TestCompactionGroupsSmallSegments: many small segments compact into a
// few, with the newest record per key, every offset readable (reads skip
// the gaps), and producer state rebuilt from the log after a power loss.
func TestCompactionGroupsSmallSegments(t *testing.T) {
	r := newRig(t, 60, testDiskConfig())
	cfg := Config{Cleanup: CleanupCompact, SegmentBytes: 1000, TombstoneRetention: time.Hour}
	l, _ := r.open(cfg, 0)
	all := fillSmallSegments(t, r, l, 0, 300, cyclicKeys(6))
	before := len(l.segments)
	if before < 20 {
		t.Fatalf("only %d segments to start with", before)
	}
	res := compactNow(t, r, l)
	if res.SegmentsRewritten != before-1 || res.SegmentsWritten > 2 || res.EndOffset != l.active().base {
		t.Fatalf("compaction result %+v of %d segments", res, before)
	}
	t.Logf("%d segments compacted into %d: %+v", before, len(l.segments), res)
	if len(l.segments) > 3 {
		t.Fatalf("after compaction %d segments: %v", len(l.segments), l.Segments())
	}
	if logs := dirFiles(t, r.fs, suffixLog); len(logs) != len(l.segments) {
		t.Fatalf("directory holds %v for %d segments", logs, len(l.segments))
	}
	for _, suffix := range []string{suffixCleaned, suffixSwap} {
		if left := dirFiles(t, r.fs, suffix); len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	}
	want := newestBelow(all, res.EndOffset)
	if got := readRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after compaction\n got %v\nwant %v", got, want)
	}
	checkReadsFromEveryOffset(t, l, want)

	// The producer's batch stays, empty, and its state survives a power
	// loss and a rebuild from the log alone.
	if p, ok := l.Producer(groupedPID); !ok || p.LastSequence() != 0 {
		t.Fatalf("producer after compaction: %+v %v", p, ok)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	rp := l.RecoveryPoint()
	segments := l.Segments()
	r.crash(true)
	for _, snap := range dirFiles(t, r.fs, suffixSnapshot) {
		if err := r.fs.Remove(path.Join(testDir, snap)); err != nil {
			t.Fatal(err)
		}
	}
	l2, report := r.open(cfg, rp)
	if !report.Clean() || report.ProducerSnapshot != -1 {
		t.Fatalf("recovery: %s", report)
	}
	if fmt.Sprint(l2.Segments()) != fmt.Sprint(segments) {
		t.Fatalf("segments after power loss %v, before %v", l2.Segments(), segments)
	}
	if got := readRecords(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after power loss\n got %v\nwant %v", got, want)
	}
	if p, ok := l2.Producer(groupedPID); !ok || p.LastSequence() != 0 || p.Epoch != 0 {
		t.Fatalf("producer after power loss: %+v %v", p, ok)
	}
	// A batch of the producer that repeats its last is a duplicate still.
	dup := producerBatch(t, groupedPID, 0, 0, 1, "again")
	if res, err := l2.Append(dup, 0); err != nil || !res.Duplicate {
		t.Fatalf("the producer's batch again: %+v %v", res, err)
	}
}

// checkReadsFromEveryOffset reads from each offset of the log: the first
// record served at or after it is the first one kept.
func checkReadsFromEveryOffset(t *testing.T, l *Log, want []keyed) {
	t.Helper()
	for off := l.StartOffset(); off < l.EndOffset(); off++ {
		res, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil || res.Batches == 0 {
			t.Fatalf("read at %d: %d batches, %v", off, res.Batches, err)
		}
		batches, err := record.Split(res.Data, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var first *keyed
		for _, b := range batches {
			recs, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if rec.Offset >= off && first == nil {
					first = &keyed{offset: rec.Offset, key: string(rec.Key), value: string(rec.Value), tombstone: rec.Value == nil}
				}
			}
		}
		i := slices.IndexFunc(want, func(k keyed) bool { return k.offset >= off })
		switch {
		case i < 0 && first != nil:
			t.Fatalf("read at %d served %v past every kept record", off, *first)
		case i >= 0 && (first == nil || *first != want[i]):
			// The read may end at its segment with only an empty batch:
			// the next read goes on from NextOffset.
			if first == nil && res.NextOffset > off && res.NextOffset <= want[i].offset {
				continue
			}
			t.Fatalf("read at %d: first record %v, want %v", off, first, want[i])
		}
	}
}

// TestCompactionMergesCompactedSegments: segments an earlier compaction
// left are merged with newer ones by the next.
func TestCompactionMergesCompactedSegments(t *testing.T) {
	r := newRig(t, 61, testDiskConfig())
	cfg := Config{Cleanup: CleanupCompact, SegmentBytes: 1200}
	l, _ := r.open(cfg, 0)
	all := fillSmallSegments(t, r, l, 0, 120, cyclicKeys(4))
	compactNow(t, r, l)
	all = append(all, fillSmallSegments(t, r, l, 120, 240, cyclicKeys(4))...)
	n := len(l.segments)
	second := compactNow(t, r, l)
	t.Logf("second compaction of %d segments: %+v, now %v", n, second, l.Segments())
	if second.SegmentsWritten > 2 || len(l.segments) > 3 || second.SegmentsRewritten != n-1 {
		t.Fatalf("second compaction %+v left %v", second, l.Segments())
	}
	want := newestBelow(all, second.EndOffset)
	if got := readRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after two compactions\n got %v\nwant %v", got, want)
	}
	checkReadsFromEveryOffset(t, l, want)
}
