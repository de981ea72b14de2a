package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// The model is the list of batches the log must hold, each with its
// records, and the lineage: every batch of the log's current history,
// including those retention deleted (their producer state lives on).
type mRecord struct {
	offset     int64
	key, value []byte
	ts         int64
}

type mBatch struct {
	base, last  int64
	records     []mRecord
	pid         int64
	pepoch      int16
	first, lsq  int32
	leaderEpoch int32
}

type logModel struct {
	batches []mBatch
	lineage []mBatch
	// former are lineages truncations cut since the last completed
	// flush: until a flush makes the cut durable, a crash may bring one
	// back (Kafka's followers truncate again after a restart, KIP-101).
	former [][]mBatch
	// history holds, in compacted runs, every version of a record ever
	// appended at each offset: a crash may undo a compaction whose
	// renames were not yet durable.
	history map[int64][]mRecord
	start   int64
	end     int64
	// durable is the recovery point the broker would have checkpointed.
	durable int64
	// flushed is what completed flushes made durable, whatever the
	// checkpoint says: it must survive every crash and every reopen.
	flushed     int64
	leaderEpoch int32
}

// producers folds the lineage below end into producer state, as the log
// keeps it: the epoch and the last five batches of each producer.
func (m *logModel) producers() map[int64]*ProducerState {
	out := map[int64]*ProducerState{}
	for _, b := range m.lineage {
		if b.pid < 0 || b.base >= m.end {
			continue
		}
		p := out[b.pid]
		if p == nil {
			p = &ProducerState{ProducerID: b.pid}
			out[b.pid] = p
		}
		if p.Epoch != b.pepoch {
			p.Epoch, p.Batches = b.pepoch, nil
		}
		p.Batches = append(p.Batches, ProducerBatch{FirstSequence: b.first, LastSequence: b.lsq, FirstOffset: b.base, LastOffset: b.last})
		if len(p.Batches) > producerBatchesMax {
			p.Batches = p.Batches[1:]
		}
	}
	return out
}

// cut drops every batch holding offsets at or after offset.
func (m *logModel) cut(offset int64) {
	if n := len(m.lineage); n > 0 && m.lineage[n-1].last >= offset {
		m.former = append(m.former, slices.Clone(m.lineage))
	}
	drop := func(b mBatch) bool { return b.last >= offset }
	m.batches = slices.DeleteFunc(m.batches, drop)
	m.lineage = slices.DeleteFunc(slices.Clone(m.lineage), drop)
}

// prefixOf returns lineage's batches within start..end if they tile it
// exactly (no batch straddles either bound).
func prefixOf(lineage []mBatch, start, end int64) ([]mBatch, bool) {
	var out []mBatch
	for _, b := range lineage {
		if (b.base < start && b.last >= start) || (b.base < end && b.last >= end) {
			return nil, false
		}
		if b.base >= start && b.last < end {
			out = append(out, b)
		}
	}
	return out, true
}

type modelRun struct {
	t         *rapid.T
	r         *rig
	cfg       Config
	l         *Log
	m         logModel
	compacted bool
	reopens   int
	// checkpointed is the recovery point as of the last tick: what a
	// broker, which writes its checkpoint periodically, would hand Open
	// after a crash. It may lag the truth.
	checkpointed int64
	// loadedEnd is the end of what the last Open found.
	loadedEnd int64
}

// modelRounds is how many times the model tests run rapid's default
// number of checks, each from its own seed: the default run explores a few
// thousand histories in seconds; -short runs one round. Longer runs:
// -rapid.checks=20000 -rapid.steps=300.
func modelRounds() int {
	if testing.Short() {
		return 1
	}
	return 20
}

func TestLogModelIdempotent(t *testing.T) {
	for i := 0; i < modelRounds(); i++ {
		rapid.Check(t, func(rt *rapid.T) { newModelRun(rt, false).run() })
	}
}

func TestLogModelCompacted(t *testing.T) {
	for i := 0; i < modelRounds(); i++ {
		rapid.Check(t, func(rt *rapid.T) { newModelRun(rt, true).run() })
	}
}

func newModelRun(t *rapid.T, compacted bool) *modelRun {
	disk := testDiskConfig()
	disk.SectorBytes = rapid.SampledFrom([]int{64, 512, 4096}).Draw(t, "sector")
	if rapid.Bool().Draw(t, "writeback") {
		disk.WritebackAge = 5 * time.Second
	}
	if rapid.Bool().Draw(t, "linuxSyncFailures") {
		// A failed sync leaves its pages in the cache, marked clean.
		disk.SyncFailure = simdisk.SyncFailureLinux
	}
	r := newRig(t, rapid.Uint64().Draw(t, "seed"), disk)
	cfg := Config{
		SegmentBytes:       int64(rapid.IntRange(600, 3000).Draw(t, "segmentBytes")),
		IndexIntervalBytes: rapid.IntRange(0, 500).Draw(t, "indexInterval"),
		SegmentAge:         30 * time.Minute,
		RetentionAge:       time.Hour,
		RetentionBytes:     int64(rapid.SampledFrom([]int{-1, 2000, 5000}).Draw(t, "retentionBytes")),
		TombstoneRetention: 10 * time.Minute,
		CompactionInterval: time.Hour,
		TrustFlushed:       rapid.Bool().Draw(t, "trust"),
	}
	cfg.MaxBatchBytes = int(cfg.SegmentBytes)
	switch rapid.IntRange(0, 3).Draw(t, "flushMode") {
	case 1:
		cfg.Flush = FlushPolicy{Mode: FlushEveryMessages, Messages: 7}
	case 2:
		cfg.Flush = FlushPolicy{Mode: FlushEveryInterval, Interval: time.Second}
	case 3:
		cfg.Flush = FlushPolicy{Mode: FlushGroupCommit}
	}
	if compacted {
		cfg.Cleanup = CleanupCompact
		cfg.CompactionInterval = 1000 * time.Hour // the compact action compacts
	}
	mr := &modelRun{t: t, r: r, cfg: cfg, compacted: compacted}
	if compacted {
		mr.m.history = map[int64][]mRecord{}
	}
	l, report, err := Open(r.fs, r.clock, testDir, cfg, 0, r.logf)
	if err != nil || !report.Clean() {
		t.Fatalf("open: %v %s", err, report)
	}
	mr.l = l
	return mr
}

func (mr *modelRun) run() {
	actions := map[string]func(*rapid.T){
		"append":   mr.appendPlain,
		"read":     mr.read,
		"flush":    mr.flush,
		"tick":     mr.tick,
		"truncate": mr.truncate,
		"crash":    mr.crash,
		"failSync": mr.failSync,
		"noSpace":  mr.noSpace,
		"":         mr.check,
	}
	if mr.compacted {
		actions["compact"] = mr.compact
	} else {
		actions["appendIdempotent"] = mr.appendIdempotent
		actions["truncateFully"] = mr.truncateFully
	}
	// Each action leaves a line, so that a failure shows the log's shape
	// along the way.
	traced := make(map[string]func(*rapid.T), len(actions))
	for name, action := range actions {
		traced[name] = action
		if name == "" {
			continue
		}
		traced[name] = func(t *rapid.T) {
			action(t)
			mr.r.logf("after %s: log %d..%d rp %d, segments %v, reopens %d", name, mr.l.StartOffset(), mr.l.EndOffset(), mr.l.RecoveryPoint(), mr.l.Segments(), mr.l.Reopens())
		}
	}
	mr.t.Repeat(traced)
}

var modelKeys = [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}

func (mr *modelRun) drawRecords(t *rapid.T, n int) []record.Record {
	recs := make([]record.Record, n)
	now := mr.r.clock.Now().UnixMilli()
	for i := range recs {
		recs[i] = record.Record{Offset: int64(i), Timestamp: now}
		if !mr.compacted || rapid.IntRange(0, 9).Draw(t, "nullKey") > 0 {
			recs[i].Key = modelKeys[rapid.IntRange(0, len(modelKeys)-1).Draw(t, "key")]
		}
		if !mr.compacted || rapid.IntRange(0, 4).Draw(t, "tombstone") > 0 {
			recs[i].Value = bytes.Repeat([]byte{byte('a' + i)}, rapid.IntRange(0, 120).Draw(t, "valueBytes"))
		}
	}
	return recs
}

func (mr *modelRun) build(t *rapid.T, recs []record.Record, pid int64, epoch int16, seq int32) record.Batch {
	bl := record.NewBuilder()
	bl.Compression = record.Compression(rapid.IntRange(0, 4).Draw(t, "compression"))
	bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = pid, epoch, seq
	b, err := bl.Build(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appended records a successful append in the model.
func (mr *modelRun) appended(t *rapid.T, res AppendResult, recs []record.Record, pid int64, epoch int16, seq int32) {
	if res.BaseOffset != mr.m.end || res.LastOffset != mr.m.end+int64(len(recs))-1 || res.Duplicate {
		t.Fatalf("append landed at %+v, the model's end is %d", res, mr.m.end)
	}
	b := mBatch{base: res.BaseOffset, last: res.LastOffset, pid: pid, pepoch: epoch, first: seq, leaderEpoch: mr.m.leaderEpoch}
	b.lsq = record.IncrementSequence(seq, int32(len(recs)-1))
	if pid < 0 {
		b.first, b.lsq = record.NoSequence, record.NoSequence
	}
	for i, r := range recs {
		rec := mRecord{offset: res.BaseOffset + int64(i), key: r.Key, value: r.Value, ts: r.Timestamp}
		b.records = append(b.records, rec)
		if mr.m.history != nil {
			mr.m.history[rec.offset] = append(mr.m.history[rec.offset], rec)
		}
	}
	mr.m.batches = append(mr.m.batches, b)
	mr.m.lineage = append(mr.m.lineage, b)
	mr.m.end = res.LastOffset + 1
}

func (mr *modelRun) appendPlain(t *rapid.T) {
	recs := mr.drawRecords(t, rapid.IntRange(1, 6).Draw(t, "records"))
	b := mr.build(t, recs, -1, -1, -1)
	res, err := mr.append(t, b)
	if len(b) > mr.cfg.MaxBatchBytes {
		if !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("append of %d bytes, at most %d: %v", len(b), mr.cfg.MaxBatchBytes, err)
		}
		return
	}
	if err != nil {
		mr.appendFailed(t, err)
		return
	}
	mr.appended(t, res, recs, -1, -1, -1)
}

// append appends; after a truncation the log refuses appends until a
// flush has made the truncation durable, so it waits for that once.
func (mr *modelRun) append(t *rapid.T, b record.Batch) (AppendResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := mr.l.Append(b, mr.m.leaderEpoch)
		if !errors.Is(err, ErrTruncating) || attempt == 3 {
			return res, err
		}
		mr.r.settle()
		mr.noteReopen(t)
	}
}

// appendFailed accepts only the failures a test action arranged.
func (mr *modelRun) appendFailed(t *rapid.T, err error) {
	if errors.Is(err, sim.ErrNoSpace) || errors.Is(err, ErrTruncating) {
		return
	}
	t.Fatalf("append: %v", err)
}

// appendIdempotent sends a batch of one of two producers: the next in
// sequence, a replay, a gap, a fenced epoch, or a new epoch. The model
// decides the outcome from the producer state it folds from the lineage.
func (mr *modelRun) appendIdempotent(t *rapid.T) {
	pid := int64(rapid.IntRange(1, 2).Draw(t, "pid"))
	st := mr.m.producers()[pid]
	epoch, seq := int16(0), int32(0)
	n := rapid.IntRange(1, 4).Draw(t, "records")
	kind := rapid.SampledFrom([]string{"next", "next", "replay", "gap", "fenced", "bump", "bumpBad"}).Draw(t, "kind")
	var original *ProducerBatch
	if st != nil {
		epoch, seq = st.Epoch, record.IncrementSequence(st.LastSequence(), 1)
		switch kind {
		case "replay":
			if len(st.Batches) > 0 {
				pb := st.Batches[rapid.IntRange(0, len(st.Batches)-1).Draw(t, "which")]
				original = &pb
				seq, n = pb.FirstSequence, int(pb.LastOffset-pb.FirstOffset)+1
			}
		case "gap":
			seq = record.IncrementSequence(seq, int32(rapid.IntRange(1, 3).Draw(t, "gap")))
		case "fenced":
			if epoch > 0 {
				epoch--
			}
		case "bump":
			epoch, seq = epoch+1, 0
		case "bumpBad":
			epoch, seq = epoch+1, 2
		}
	}
	var want error
	if st != nil && original == nil {
		switch {
		case epoch < st.Epoch:
			want = ErrInvalidProducerEpoch
		case epoch > st.Epoch && seq != 0:
			want = ErrOutOfOrderSequence
		case epoch == st.Epoch && seq != record.IncrementSequence(st.LastSequence(), 1):
			want = ErrOutOfOrderSequence
		}
	}
	recs := mr.drawRecords(t, n)
	b := mr.build(t, recs, pid, epoch, seq)
	if len(b) > mr.cfg.MaxBatchBytes {
		return
	}
	res, err := mr.append(t, b)
	switch {
	case errors.Is(err, sim.ErrNoSpace) || errors.Is(err, ErrTruncating):
		return
	case want != nil:
		if !errors.Is(err, want) {
			t.Fatalf("producer %d epoch %d seq %d (%s): got %v, want %v (state %+v)", pid, epoch, seq, kind, err, want, st)
		}
	case err != nil:
		t.Fatalf("producer %d epoch %d seq %d (%s): %v (state %+v)", pid, epoch, seq, kind, err, st)
	case original != nil:
		if !res.Duplicate || res.BaseOffset != original.FirstOffset || res.LastOffset != original.LastOffset {
			t.Fatalf("replay of %+v answered %+v", original, res)
		}
	default:
		mr.appended(t, res, recs, pid, epoch, seq)
	}
}

// modelRecords is every record the model holds at or after from and below
// to, in order.
func (mr *modelRun) modelRecords(from, to int64) []mRecord {
	var out []mRecord
	for _, b := range mr.m.batches {
		for _, r := range b.records {
			if r.offset >= from && r.offset < to {
				out = append(out, r)
			}
		}
	}
	return out
}

func sameRecord(a mRecord, b record.Record) bool {
	return a.offset == b.Offset && bytes.Equal(a.key, b.Key) && (a.key == nil) == (b.Key == nil) &&
		bytes.Equal(a.value, b.Value) && (a.value == nil) == (b.Value == nil)
}

func (mr *modelRun) read(t *rapid.T) {
	if mr.m.end == mr.m.start {
		return
	}
	offset := rapid.Int64Range(mr.m.start, mr.m.end).Draw(t, "offset")
	maxBytes := rapid.IntRange(1, 3000).Draw(t, "maxBytes")
	hws := []int64{mr.m.end}
	for _, b := range mr.m.batches {
		if b.last+1 > offset {
			hws = append(hws, b.last+1)
		}
	}
	hw := rapid.SampledFrom(hws).Draw(t, "highWatermark")
	res, err := mr.l.Read(offset, maxBytes, hw)
	if err != nil {
		t.Fatalf("read at %d: %v\nlog lines:\n%s", offset, err, strings.Join(mr.r.lines, "\n"))
	}
	batches, err := record.Split(res.Data, 1<<20)
	if err != nil || len(batches) != res.Batches {
		t.Fatalf("read at %d: %d batches, split %d: %v", offset, res.Batches, len(batches), err)
	}
	var got []record.Record
	for i, b := range batches {
		recs, err := b.Records()
		if err != nil {
			t.Fatalf("read at %d served a bad batch: %v", offset, err)
		}
		if b.LastOffset() >= hw {
			t.Fatalf("read up to %d served %s", hw, b)
		}
		if i == 0 && b.LastOffset() < offset {
			t.Fatalf("read at %d began with %s", offset, b)
		}
		if len(batches) > 1 && len(res.Data) > maxBytes {
			t.Fatalf("read of %d bytes returned %d in %d batches", maxBytes, len(res.Data), len(batches))
		}
		got = append(got, recs...)
	}
	want := mr.modelRecords(offset, res.NextOffset)
	if len(batches) > 0 {
		// The first batch may begin before offset.
		want = mr.modelRecords(batches[0].BaseOffset(), res.NextOffset)
	}
	if len(got) != len(want) {
		t.Fatalf("read at %d (up to %d, %d bytes): %d records, model has %d in %d..%d", offset, hw, maxBytes, len(got), len(want), offset, res.NextOffset)
	}
	for i := range got {
		if !sameRecord(want[i], got[i]) {
			t.Fatalf("read at %d: record %d is %+v, model %+v", offset, i, got[i], want[i])
		}
	}
	if res.Batches == 0 && len(mr.modelRecords(offset, hw)) > 0 {
		t.Fatalf("read at %d up to %d returned nothing; the model holds records there", offset, hw)
	}
	if !mr.compacted {
		for i, b := range batches {
			if int(b.RecordCount()) != int(b.LastOffset()-b.BaseOffset()+1) {
				t.Fatalf("batch %d: %s", i, b)
			}
		}
	}
}

func (mr *modelRun) flush(t *rapid.T) {
	target := mr.m.end
	var got error
	done := false
	mr.l.Flush(func(err error) { got, done = err, true })
	mr.r.settle()
	if !done {
		t.Fatal("flush did not complete")
	}
	if mr.noteReopen(t) {
		return
	}
	if got != nil {
		t.Fatalf("flush: %v", got)
	}
	if mr.l.FlushedOffset() < target {
		t.Fatalf("flushed to %d after a flush at %d", mr.l.FlushedOffset(), target)
	}
	mr.m.durable = mr.l.RecoveryPoint()
	mr.m.flushed = mr.l.RecoveryPoint()
	mr.m.former = nil
}

// noteReopen brings the model along when the log reopened itself after a
// failed sync: it dropped what was not durable.
func (mr *modelRun) noteReopen(t *rapid.T) bool {
	if mr.l.Reopens() == mr.reopens {
		return false
	}
	mr.reopens = mr.l.Reopens()
	if err := mr.l.Err(); err != nil {
		t.Fatalf("log offline after a reopen: %v", err)
	}
	end := mr.l.EndOffset()
	// A reopen keeps everything flushed, drops this incarnation's
	// unflushed appends, and keeps what Open found only as far as the
	// disk still holds it.
	if end < mr.m.durable || end < mr.m.flushed || end < mr.l.RecoveryPoint() ||
		end > max(mr.l.RecoveryPoint(), mr.loadedEnd) {
		t.Fatalf("reopened at %d, recovery point %d, durable %d, flushed %d, found at open %d\nlog lines:\n%s",
			end, mr.l.RecoveryPoint(), mr.m.durable, mr.m.flushed, mr.loadedEnd, strings.Join(mr.r.lines, "\n"))
	}
	mr.loadedEnd = min(mr.loadedEnd, end)
	// The reload reads the disk, which may still hold data a truncation
	// cut (the cut was not durable yet): as after a crash, the log is a
	// prefix of its lineage or of one a truncation cut.
	content := mr.content(t)
	if mr.compacted {
		mr.crashCompacted(t, content, max(mr.l.RecoveryPoint(), mr.m.flushed))
	} else {
		mr.crashExact(t, content, mr.l.StartOffset(), end, mr.l.LastRecovery())
	}
	mr.m.start, mr.m.end = mr.l.StartOffset(), end
	mr.m.leaderEpoch++
	mr.checkContent(t)
	return true
}

func (mr *modelRun) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Millisecond, time.Second, 10 * time.Minute, 40 * time.Minute, 2 * time.Hour}).Draw(t, "advance")
	mr.r.advance(d)
	if mr.noteReopen(t) {
		return
	}
	if err := mr.l.Tick(mr.m.end); err != nil {
		t.Fatalf("tick: %v", err)
	}
	mr.r.settle()
	mr.checkpointed = mr.l.RecoveryPoint()
	if mr.noteReopen(t) {
		return
	}
	mr.retained(t)
}

// retained follows retention: the log start may move up to a batch
// boundary.
func (mr *modelRun) retained(t *rapid.T) {
	start := mr.l.StartOffset()
	if start < mr.m.start || start > mr.m.end {
		t.Fatalf("log start %d outside the model's %d..%d", start, mr.m.start, mr.m.end)
	}
	if start == mr.m.start {
		return
	}
	mr.m.batches = slices.DeleteFunc(mr.m.batches, func(b mBatch) bool { return b.last < start })
	if len(mr.m.batches) > 0 && mr.m.batches[0].base < start {
		t.Fatalf("log start %d inside batch %d..%d", start, mr.m.batches[0].base, mr.m.batches[0].last)
	}
	mr.m.start = start
}

func (mr *modelRun) truncate(t *rapid.T) {
	offset := rapid.Int64Range(mr.m.start, mr.m.end).Draw(t, "truncateTo")
	if err := mr.l.TruncateTo(offset); err != nil {
		t.Fatalf("truncate to %d: %v", offset, err)
	}
	want := mr.m.end
	for _, b := range mr.m.batches {
		if b.last >= offset {
			want = b.base
			break
		}
	}
	if mr.compacted {
		// Compaction may have emptied the batch the cut lands on and
		// dropped it; the cut then falls at a lower boundary.
		want = min(want, offset)
	}
	end := mr.l.EndOffset()
	if (!mr.compacted && end != want) || end > offset || end < mr.m.start {
		t.Fatalf("truncate to %d: end %d, want %d", offset, end, want)
	}
	mr.m.cut(end)
	mr.m.end = end
	mr.m.durable = min(mr.m.durable, end)
	mr.m.flushed = min(mr.m.flushed, end)
	// A broker rewrites its checkpoint after a truncation.
	mr.checkpointed = min(mr.checkpointed, end)
	mr.loadedEnd = min(mr.loadedEnd, end)
	mr.m.leaderEpoch++ // a truncation comes with a new leader
}

func (mr *modelRun) truncateFully(t *rapid.T) {
	offset := mr.m.end + rapid.Int64Range(0, 5).Draw(t, "beyond")
	if err := mr.l.TruncateFullyAndStartAt(offset); err != nil {
		t.Fatalf("truncate fully at %d: %v", offset, err)
	}
	mr.m.cut(mr.m.start)
	mr.m.batches, mr.m.lineage = nil, nil
	mr.m.start, mr.m.end = offset, offset
	mr.m.durable = min(mr.m.durable, offset)
	mr.m.flushed = min(mr.m.flushed, offset)
	mr.checkpointed = min(mr.checkpointed, offset)
	mr.loadedEnd = min(mr.loadedEnd, offset)
	mr.m.leaderEpoch++
	// As a broker must, make the truncation durable before relying on it.
	mr.flush(t)
}

func (mr *modelRun) compact(t *rapid.T) {
	mr.flush(t)
	var got CompactResult
	var gotErr error
	done := false
	mr.l.Compact(mr.m.end, func(res CompactResult, err error) { got, gotErr, done = res, err, true })
	mr.r.settle()
	if mr.noteReopen(t) {
		return
	}
	if !done {
		t.Fatal("compaction did not finish")
	}
	if gotErr != nil {
		if errors.Is(gotErr, sim.ErrIO) || errors.Is(gotErr, sim.ErrNoSpace) {
			return
		}
		t.Fatalf("compact: %v", gotErr)
	}
	newest := map[string]int64{}
	for _, r := range mr.modelRecords(mr.m.start, got.EndOffset) {
		if r.key != nil {
			newest[string(r.key)] = r.offset
		}
	}
	for i := range mr.m.batches {
		b := &mr.m.batches[i]
		b.records = slices.DeleteFunc(b.records, func(r mRecord) bool {
			if r.offset >= got.EndOffset {
				return false
			}
			return r.key == nil || newest[string(r.key)] != r.offset || (r.value == nil && r.ts < got.TombstoneCutoffMs)
		})
	}
}

func (mr *modelRun) failSync(t *rapid.T) {
	mr.r.settle() // no truncation pending: the append goes through
	mr.noteReopen(t)
	// The next sync fails: the one this append makes necessary, or one
	// of a round already under way.
	mr.r.disk.FailSyncs(1)
	recs := mr.drawRecords(t, 1)
	res, err := mr.l.Append(mr.build(t, recs, -1, -1, -1), mr.m.leaderEpoch)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	mr.appended(t, res, recs, -1, -1, -1)
	got := errors.New("flush did not complete")
	mr.l.Flush(func(err error) { got = err })
	mr.r.settle()
	mr.r.disk.FailSyncs(0)
	if !mr.noteReopen(t) {
		t.Fatalf("no reopen after a failed sync (flush said %v)", got)
	}
	if got != nil && (!errors.Is(got, ErrStorage) || !errors.Is(got, sim.ErrIO)) {
		t.Fatalf("flush after a failed sync: %v", got)
	}
}

func (mr *modelRun) noSpace(t *rapid.T) {
	mr.r.settle() // no truncation pending: the refusal must be the disk's
	mr.noteReopen(t)
	mr.r.disk.SetCapacity(mr.r.disk.UsedBytes())
	recs := mr.drawRecords(t, 2)
	_, err := mr.l.Append(mr.build(t, recs, -1, -1, -1), mr.m.leaderEpoch)
	mr.r.disk.SetCapacity(0)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("append to a full disk: %v", err)
	}
	if mr.l.EndOffset() != mr.m.end {
		t.Fatalf("a refused append moved the end to %d", mr.l.EndOffset())
	}
}

// crash kills the process or the machine and recovers from the recovery
// point the broker would have checkpointed; the log must come back as a
// prefix of the model's lineage (or of one a truncation cut, not yet
// durably) holding everything durable, with its producer state.
func (mr *modelRun) crash(t *rapid.T) {
	power := rapid.Bool().Draw(t, "power")
	checkpoint := mr.l.RecoveryPoint()
	if rapid.Bool().Draw(t, "staleCheckpoint") {
		checkpoint = min(mr.checkpointed, checkpoint)
	}
	mr.r.crash(power)
	// The flush recovery starts may fail: with Linux's rules the reopen
	// then finds again pages that no later sync writes unless recovery
	// writes them again.
	failRecovery := rapid.IntRange(0, 3).Draw(t, "failRecoverySync") == 0
	if failRecovery {
		mr.r.disk.FailSyncs(1)
	}
	l, report, err := Open(mr.r.fs, mr.r.clock, testDir, mr.cfg, checkpoint, mr.r.logf)
	if err != nil {
		t.Fatalf("open after crash (power %v): %v", power, err)
	}
	mr.l, mr.reopens = l, 0
	if report.FlushedLost || len(report.Damage) > 0 {
		t.Fatalf("recovery (power %v) from %d: %s", power, checkpoint, report)
	}
	for _, tr := range report.Truncations {
		if tr.Offset < checkpoint && !tr.Stale {
			t.Fatalf("recovery cut durable data: %s", report)
		}
	}
	start, end := l.StartOffset(), l.EndOffset()
	if end < checkpoint || end < mr.m.flushed || start > mr.m.start {
		t.Fatalf("recovered %d..%d; durable %d, model %d..%d\n%s", start, end, checkpoint, mr.m.start, mr.m.end, report)
	}
	content := mr.content(t)
	if mr.compacted {
		mr.crashCompacted(t, content, max(checkpoint, mr.m.flushed))
	} else {
		mr.crashExact(t, content, start, end, report)
	}
	mr.m.start, mr.m.end = start, end
	mr.m.durable = checkpoint
	mr.loadedEnd = end
	mr.m.leaderEpoch = max(mr.m.leaderEpoch, l.LatestEpoch()) + 1
	mr.checkContent(t)
	if failRecovery {
		mr.r.settle()
		mr.r.disk.FailSyncs(0)
		mr.noteReopen(t)
	}
}

// crashExact finds the lineage the recovered log is a prefix of.
func (mr *modelRun) crashExact(t *rapid.T, content []mBatch, start, end int64, report RecoveryReport) {
	candidates := append([][]mBatch{mr.m.lineage}, mr.m.former...)
	for i, lineage := range candidates {
		want, ok := prefixOf(lineage, start, end)
		if !ok || !sameBatches(want, content) {
			continue
		}
		if i > 0 {
			mr.m.former = append(mr.m.former, mr.m.lineage)
		}
		// What recovery cut is gone from the page cache but maybe not
		// from the platter: a later crash may bring it back.
		mr.m.lineage = slices.Clone(lineage)
		mr.m.cut(end)
		mr.m.batches = content
		return
	}
	t.Fatalf("recovered log %d..%d (%d batches) is no prefix of the lineage or of %d former ones\n%s\nlog: %v\nlineage: %v\nlog lines:\n%s",
		start, end, len(content), len(mr.m.former), report, describe(content), describe(mr.m.lineage), strings.Join(mr.r.lines, "\n"))
}

// crashCompacted accepts any version of each record ever appended, and
// requires every record the model still holds below the checkpoint.
func (mr *modelRun) crashCompacted(t *rapid.T, content []mBatch, checkpoint int64) {
	have := map[int64]bool{}
	for _, b := range content {
		for _, r := range b.records {
			ok := false
			for _, v := range mr.m.history[r.offset] {
				ok = ok || (bytes.Equal(v.key, r.key) && bytes.Equal(v.value, r.value) && (v.value == nil) == (r.value == nil))
			}
			if !ok {
				t.Fatalf("recovered record %+v was never appended", r)
			}
			have[r.offset] = true
		}
	}
	for _, r := range mr.modelRecords(mr.m.start, checkpoint) {
		if !have[r.offset] {
			t.Fatalf("durable record %+v lost", r)
		}
	}
	mr.m.batches = content
	mr.m.lineage = slices.Clone(content)
	mr.m.former = nil
}

func sameBatches(a, b []mBatch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].base != b[i].base || a[i].last != b[i].last || len(a[i].records) != len(b[i].records) ||
			a[i].pid != b[i].pid || a[i].pepoch != b[i].pepoch || a[i].first != b[i].first || a[i].leaderEpoch != b[i].leaderEpoch {
			return false
		}
		for j, r := range a[i].records {
			s := b[i].records[j]
			if r.offset != s.offset || !bytes.Equal(r.key, s.key) || !bytes.Equal(r.value, s.value) || (r.value == nil) != (s.value == nil) {
				return false
			}
		}
	}
	return true
}

func describe(batches []mBatch) string {
	var b bytes.Buffer
	for _, x := range batches {
		fmt.Fprintf(&b, "[%d..%d e%d p%d]", x.base, x.last, x.leaderEpoch, x.pid)
	}
	return b.String()
}

// content reads the whole log as batches.
func (mr *modelRun) content(t *rapid.T) []mBatch {
	l := mr.l
	var out []mBatch
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v\nlog lines:\n%s", off, err, strings.Join(mr.r.lines, "\n"))
		}
		if res.Batches == 0 {
			t.Fatalf("read at %d (end %d) returned nothing", off, l.EndOffset())
		}
		batches, _ := record.Split(res.Data, 1<<20)
		for _, b := range batches {
			recs, err := b.Records()
			if err != nil {
				t.Fatalf("read at %d served a bad batch: %v", off, err)
			}
			mb := mBatch{base: b.BaseOffset(), last: b.LastOffset(), pid: b.ProducerID(), pepoch: b.ProducerEpoch(),
				first: b.BaseSequence(), lsq: b.LastSequence(), leaderEpoch: b.PartitionLeaderEpoch()}
			for _, r := range recs {
				mb.records = append(mb.records, mRecord{offset: r.Offset, key: r.Key, value: r.Value, ts: r.Timestamp})
			}
			out = append(out, mb)
		}
		off = res.NextOffset
	}
	return out
}

// check compares the whole log with the model.
func (mr *modelRun) check(t *rapid.T) {
	if mr.l.EndOffset() != mr.m.end || mr.l.StartOffset() != mr.m.start {
		t.Fatalf("log %d..%d, model %d..%d", mr.l.StartOffset(), mr.l.EndOffset(), mr.m.start, mr.m.end)
	}
	if mr.l.RecoveryPoint() < mr.m.durable {
		t.Fatalf("recovery point %d below the durable %d", mr.l.RecoveryPoint(), mr.m.durable)
	}
	mr.checkContent(t)
}

// checkContent reads the whole log and compares records and producers.
func (mr *modelRun) checkContent(t *rapid.T) {
	l := mr.l
	var got []mRecord
	for _, b := range mr.content(t) {
		got = append(got, b.records...)
	}
	want := mr.modelRecords(l.StartOffset(), l.EndOffset())
	if len(got) != len(want) {
		t.Fatalf("log holds %d records, model %d (log %d..%d)\nlog lines:\n%s", len(got), len(want), l.StartOffset(), l.EndOffset(), strings.Join(mr.r.lines, "\n"))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.offset != w.offset || !bytes.Equal(g.key, w.key) || !bytes.Equal(g.value, w.value) || (g.value == nil) != (w.value == nil) {
			t.Fatalf("record %d is %+v, model %+v\nlog lines:\n%s", i, g, w, strings.Join(mr.r.lines, "\n"))
		}
	}
	if mr.compacted {
		return
	}
	wantProducers := mr.m.producers()
	gotProducers := l.Producers()
	if len(gotProducers) != len(wantProducers) {
		t.Fatalf("log knows %d producers, model %d: %+v\nlineage %s\nlog lines:\n%s", len(gotProducers), len(wantProducers), gotProducers, describe(mr.m.lineage), strings.Join(mr.r.lines, "\n"))
	}
	for _, p := range gotProducers {
		w := wantProducers[p.ProducerID]
		if w == nil || p.Epoch != w.Epoch || !slices.Equal(p.Batches, w.Batches) {
			t.Fatalf("producer %d: log %+v, model %+v", p.ProducerID, p, w)
		}
	}
}
