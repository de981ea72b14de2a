package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
)

type keyed struct {
	offset    int64
	key       string
	value     string
	tombstone bool
}

// readRecords reads every record of the log.
func readRecords(t *testing.T, l *Log) []keyed {
	t.Helper()
	var out []keyed
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if res.Batches == 0 {
			off++
			continue
		}
		batches, err := record.Split(res.Data, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			recs, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out = append(out, keyed{offset: r.Offset, key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil})
			}
		}
		off = res.NextOffset
	}
	return out
}

func TestCompaction(t *testing.T) {
	r := newRig(t, 40, testDiskConfig())
	cfg := Config{Cleanup: CleanupCompact, SegmentBytes: 1000, TombstoneRetention: time.Hour}
	l, _ := r.open(cfg, 0)
	var all []keyed
	for i := 0; i < 80; i++ {
		key := fmt.Sprintf("k%d", i%7)
		rec := record.Record{Offset: 0, Timestamp: r.clock.Now().UnixMilli(), Key: []byte(key), Value: []byte(fmt.Sprintf("v%d", i))}
		if i%11 == 5 {
			rec.Value = nil
		}
		res := mustAppend(t, l, testBatch(t, []record.Record{rec}), 0)
		all = append(all, keyed{offset: res.BaseOffset, key: key, value: string(rec.Value), tombstone: rec.Value == nil})
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	compact := func() CompactResult {
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
	// expect: newest per key below end, tombstones kept unless older
	// than the cutoff; everything at or after end as it was.
	expect := func(end, cutoffMs int64, tsOf func(keyed) int64) []keyed {
		newest := map[string]int64{}
		for _, k := range all {
			if k.offset < end {
				newest[k.key] = k.offset
			}
		}
		var out []keyed
		for _, k := range all {
			if k.offset >= end || (newest[k.key] == k.offset && !(k.tombstone && tsOf(k) < cutoffMs)) {
				out = append(out, k)
			}
		}
		return out
	}
	before := l.EndOffset()
	res := compact()
	if res.SegmentsRewritten == 0 || res.RecordsRemoved == 0 || res.EndOffset == 0 || res.EndOffset > l.active().base {
		t.Fatalf("compaction result %+v", res)
	}
	zero := func(keyed) int64 { return r.clock.epoch.UnixMilli() }
	want := expect(res.EndOffset, res.TombstoneCutoffMs, zero)
	got := readRecords(t, l)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after compaction\n got %v\nwant %v", got, want)
	}
	if l.EndOffset() != before {
		t.Fatalf("compaction moved the log end to %d", l.EndOffset())
	}
	// Later, the tombstones expire.
	r.advance(2 * time.Hour)
	res = compact()
	all = want
	want = expect(res.EndOffset, res.TombstoneCutoffMs, zero)
	for _, k := range want {
		if k.tombstone && k.offset < res.EndOffset {
			t.Fatalf("tombstone %v survived its retention", k)
		}
	}
	got = readRecords(t, l)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after tombstone expiry\n got %v\nwant %v", got, want)
	}
	// The compacted log survives a power loss once flushed.
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	rp := l.RecoveryPoint()
	r.crash(true)
	l2, report := r.open(cfg, rp)
	if !report.Clean() {
		t.Fatalf("recovery: %s", report)
	}
	if got := readRecords(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after power loss\n got %v\nwant %v", got, want)
	}
}

// TestCompactionKeepsProducerLastBatch: a producer whose records were all
// superseded keeps its last batch (empty), so its state survives.
func TestCompactionKeepsProducerLastBatch(t *testing.T) {
	r := newRig(t, 41, testDiskConfig())
	cfg := Config{Cleanup: CleanupCompact, SegmentBytes: 600}
	l, _ := r.open(cfg, 0)
	bl := record.NewBuilder()
	bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = 5, 0, 0
	b, err := bl.Build([]record.Record{{Key: []byte("k"), Value: []byte("producer"), Timestamp: 1}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, b, 0)
	for i := 0; i < 30; i++ {
		mustAppend(t, l, testBatch(t, []record.Record{{Key: []byte("k"), Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: 1}}), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	done := false
	l.Compact(l.EndOffset(), func(res CompactResult, err error) {
		if err != nil || res.RecordsRemoved == 0 {
			t.Errorf("compaction %+v: %v", res, err)
		}
		done = true
	})
	r.settle()
	if !done {
		t.Fatal("compaction did not finish")
	}
	res, err := l.Read(0, 1, l.EndOffset())
	if err != nil || res.Batches != 1 {
		t.Fatal(err)
	}
	first := record.Batch(res.Data)
	if first.ProducerID() != 5 || first.RecordCount() != 0 || first.BaseOffset() != 0 {
		t.Fatalf("first batch after compaction: %s", first)
	}
	if recs := readRecords(t, l); len(recs) == 0 || recs[0].value == "producer" {
		t.Fatalf("records %v", recs)
	}
	// State rebuilt from the log alone (no snapshot) still knows it.
	l.Close()
	for _, snap := range l.snapshots {
		r.fs.Remove(segmentFile(testDir, snap.offset, suffixSnapshot))
	}
	r.fs.Remove(segmentFile(testDir, l.EndOffset(), suffixSnapshot))
	l2, _ := r.open(cfg, l.RecoveryPoint())
	if p, ok := l2.Producer(5); !ok || p.LastSequence() != 0 {
		t.Fatalf("producer after compaction and restart: %+v %v", p, ok)
	}
}
