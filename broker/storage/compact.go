package storage

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// CompactResult says what a compaction did.
type CompactResult struct {
	// EndOffset bounds the range compacted: [log start, EndOffset). Only
	// closed, flushed, undamaged segments below the high watermark are
	// compacted; the newest record per key is taken within this range.
	EndOffset int64
	// TombstoneCutoffMs: tombstones with timestamps before it went.
	TombstoneCutoffMs int64
	// SegmentsRewritten counts the segments replaced, SegmentsWritten
	// the cleaned segments that replaced them (one per group).
	SegmentsRewritten int
	SegmentsWritten   int
	RecordsRemoved    int64
	BytesBefore       int64
	BytesAfter        int64
}

// compactionKeysMax bounds the key map of one compaction (Kafka's dedupe
// buffer); a longer range is compacted in part.
const compactionKeysMax = 1 << 20

// compaction is one compaction in flight: cleaned files written, waiting
// for their syncs before they replace the segments.
type compaction struct {
	gen     uint64
	jobs    []*cleanJob
	pending int
	err     error
	result  CompactResult
	done    func(CompactResult, error)
	aborted bool
}

// cleanJob is the rewrite of a group of adjacent segments into one
// cleaned segment with the first one's base.
type cleanJob struct {
	olds     []*segment
	oldSizes []int64
	fresh    *segment
	files    []sim.File
}

// batchPlan says what compaction keeps of one batch.
type batchPlan struct {
	pos  int64
	keep []int64 // offsets of the records kept
	all  int
	// cleanedBytes is the batch's size once rewritten (HeaderBytes when
	// emptied: the size it has if kept).
	cleanedBytes int64
	// producerLast: the batch is its producer's last, kept even empty.
	producerLast bool
}

// segmentPlan is what compaction keeps of one segment.
type segmentPlan struct {
	s       *segment
	batches []batchPlan
	removed int64
	// innerBytes is the segment's cleaned size inside a group, where its
	// last batch goes if emptied; lastBytes its size ending a group,
	// where its last batch stays.
	innerBytes, lastBytes int64
}

// Compact starts a compaction (cleanup.policy=compact): in the closed,
// flushed segments below highWatermark it keeps the newest record per key
// (the newest within that range), drops records without a key, and drops
// tombstones older than TombstoneRetention. As Kafka's cleaner does, it
// groups adjacent segments whose cleaned sizes fit SegmentBytes (and
// whose offsets fit the index's relative offsets) into one cleaned
// segment, so that a compacted log does not keep a file per old segment.
// A batch keeps its offsets and producer fields when rewritten; a batch
// emptied entirely is dropped unless it is its group's last or its
// producer's last, which stay as empty batches so that the group's end
// and producer state survive, as in Kafka. Cleaned segments are synced
// before they replace the originals (see swap for the crash-safe order).
// done (may be nil) runs on the loop when it is over. It reports whether
// a compaction started; one runs at a time.
func (l *Log) Compact(highWatermark int64, done func(CompactResult, error)) bool {
	if done == nil {
		done = func(CompactResult, error) {}
	}
	if err := l.usable(); err != nil {
		l.later(func() { done(CompactResult{}, err) })
		return false
	}
	if l.compaction != nil {
		l.later(func() { done(CompactResult{}, fmt.Errorf("compact %s: a compaction is already running", l.dir)) })
		return false
	}
	l.lastCompactionMono = l.clock.Mono()
	c := &compaction{gen: l.gen, done: done}
	c.result.TombstoneCutoffMs = l.clock.Now().Add(-max(l.cfg.TombstoneRetention, 0)).UnixMilli()
	if err := l.planCompaction(c, highWatermark); err != nil {
		l.cleanupJobs(c)
		l.later(func() { done(c.result, err) })
		return false
	}
	if len(c.jobs) == 0 {
		l.later(func() { done(c.result, nil) })
		return true
	}
	l.compaction = c
	for _, job := range c.jobs {
		for _, f := range job.files {
			c.pending++
			f.Sync(func(err error) {
				c.pending--
				if err != nil && c.err == nil {
					c.err = err
				}
				if c.pending == 0 {
					l.finishCompaction(c)
				}
			})
		}
	}
	return true
}

// cleanable is the number of leading segments compaction may rewrite.
func (l *Log) cleanable(highWatermark int64) int {
	bound := min(l.active().base, l.recoveryPoint, highWatermark)
	n := 0
	for n < len(l.segments)-1 {
		s := l.segments[n]
		if !s.closed || s.next > bound || len(s.damage) > 0 || !s.hasLast {
			break
		}
		n++
	}
	return n
}

// planCompaction builds the key map, plans each segment, groups them and
// writes the cleaned segments.
func (l *Log) planCompaction(c *compaction, highWatermark int64) error {
	n := l.cleanable(highWatermark)
	if n == 0 {
		c.result.EndOffset = l.StartOffset()
		return nil
	}
	keys, n, err := l.newestOffsets(n)
	if err != nil || n == 0 {
		c.result.EndOffset = l.StartOffset()
		return err
	}
	c.result.EndOffset = l.segments[n-1].next
	// Groups are planned and written one at a time, so that only one
	// group's plans are held.
	var group []segmentPlan
	var innerBytes int64
	for _, s := range l.segments[:n] {
		p, err := l.planSegment(s, keys, c.result.TombstoneCutoffMs)
		if err != nil {
			return err
		}
		if len(group) > 0 && !fitsGroup(group[0].s.base, innerBytes, p, l.cfg.SegmentBytes) {
			if err := l.cleanGroup(c, group); err != nil {
				return err
			}
			group, innerBytes = nil, 0
		}
		group = append(group, p)
		innerBytes += p.innerBytes
	}
	return l.cleanGroup(c, group)
}

// groupRelativeOffsetMax bounds a group's offset range: the index keeps
// offsets relative to the segment base in 32 bits (Kafka keeps them
// below Int.MaxValue).
const groupRelativeOffsetMax = math.MaxInt32

// fitsGroup reports whether p may end a group starting at base whose
// other members weigh innerBytes once cleaned: the cleaned segment must
// fit segmentBytes (a segment too large on its own is a group of one) and
// its offsets the index.
func fitsGroup(base, innerBytes int64, p segmentPlan, segmentBytes int64) bool {
	return innerBytes+p.lastBytes <= segmentBytes && p.s.next-1-base <= groupRelativeOffsetMax
}

// cleanGroup writes the cleaned copy of a group unless nothing in it
// would change.
func (l *Log) cleanGroup(c *compaction, group []segmentPlan) error {
	removed := int64(0)
	for _, p := range group {
		removed += p.removed
	}
	if len(group) == 0 || (removed == 0 && len(group) == 1) {
		return nil
	}
	job, err := l.writeGroup(group)
	if err != nil {
		return err
	}
	c.jobs = append(c.jobs, job)
	c.result.SegmentsRewritten += len(group)
	c.result.SegmentsWritten++
	c.result.RecordsRemoved += removed
	for _, s := range job.olds {
		c.result.BytesBefore += s.sizeBytes
	}
	c.result.BytesAfter += job.fresh.sizeBytes
	return nil
}

// newestOffsets maps each key of the first n segments to its newest
// offset, shrinking n if the map would outgrow its bound.
func (l *Log) newestOffsets(n int) (map[string]int64, int, error) {
	keys := make(map[string]int64)
	for i := 0; i < n; i++ {
		var overflow bool
		err := l.eachBatch(l.segments[i], func(_ record.Batch, _ int64, records []record.Record) {
			for _, r := range records {
				if r.Key == nil {
					continue
				}
				if _, ok := keys[string(r.Key)]; !ok && len(keys) >= compactionKeysMax {
					overflow = true
					return
				}
				keys[string(r.Key)] = r.Offset
			}
		})
		if err != nil {
			return nil, 0, err
		}
		if overflow {
			if i == 0 {
				return nil, 0, nil
			}
			return l.newestOffsets(i)
		}
	}
	return keys, n, nil
}

// eachBatch decodes every batch of a segment, in order. Corrupt data ends
// the pass: it is recorded as damage and compaction of s stops there.
func (l *Log) eachBatch(s *segment, fn func(b record.Batch, pos int64, records []record.Record)) error {
	sc := scanner{s: s, verifyCRC: true}
	for pos := int64(0); pos < s.sizeBytes; {
		b, err := sc.batch(pos)
		var records []record.Record
		if err == nil {
			records, err = b.Records()
		}
		if err != nil {
			if !isIOError(err) {
				if _, derr := l.noteDamage(s, pos, err.Error()); derr != nil {
					return derr
				}
			}
			return fmt.Errorf("compact %s at %d: %w", s.name, pos, err)
		}
		fn(b, pos, records)
		pos += b.Size()
	}
	return nil
}

// planSegment decides which records of s stay and what its batches will
// weigh once rewritten.
func (l *Log) planSegment(s *segment, keys map[string]int64, tombstoneCutoffMs int64) (segmentPlan, error) {
	p := segmentPlan{s: s}
	var buildErr error
	err := l.eachBatch(s, func(b record.Batch, pos int64, records []record.Record) {
		bp := batchPlan{pos: pos, all: len(records), cleanedBytes: b.Size(), producerLast: l.producerLastBatch(b)}
		for _, r := range records {
			if b.Control() || (r.Key != nil && keys[string(r.Key)] == r.Offset && !(r.Value == nil && r.Timestamp < tombstoneCutoffMs)) {
				bp.keep = append(bp.keep, r.Offset)
			}
		}
		if len(bp.keep) < bp.all {
			// The grouping needs the cleaned size; records may be
			// compressed, so only building the batch tells it.
			cleaned, err := record.BuilderFor(b).Build(keepOffsets(records, bp.keep))
			if err != nil {
				buildErr = cmp.Or(buildErr, fmt.Errorf("compact %s at %d: %w", s.name, pos, err))
				return
			}
			bp.cleanedBytes = cleaned.Size()
		}
		p.removed += int64(bp.all - len(bp.keep))
		if k := len(p.batches); k > 0 && droppable(p.batches[k-1]) {
			// Only a segment's last batch may stay empty: forget it.
			p.batches = p.batches[:k-1]
		}
		p.batches = append(p.batches, bp)
	})
	if err == nil {
		err = buildErr
	}
	if err != nil {
		return p, err
	}
	for _, bp := range p.batches {
		if !droppable(bp) {
			p.innerBytes += bp.cleanedBytes
		}
		p.lastBytes += bp.cleanedBytes
	}
	return p, nil
}

// droppable reports whether a batch goes unless it ends its group: it
// keeps no record and is not its producer's last.
func droppable(bp batchPlan) bool { return len(bp.keep) == 0 && !bp.producerLast }

// writeGroup writes the cleaned copy of a group of segments as
// <base>.log.cleaned and its index files, unsynced.
func (l *Log) writeGroup(group []segmentPlan) (*cleanJob, error) {
	first := group[0].s
	job := &cleanJob{fresh: newSegment(l.dir, first.base, nil, 0, first.createdMono)}
	for _, p := range group {
		job.olds = append(job.olds, p.s)
		job.oldSizes = append(job.oldSizes, p.s.sizeBytes)
	}
	name := first.name + suffixCleaned
	f, err := l.createFile(name)
	if err != nil {
		// A create that fails may still have left the name (a
		// metadata error after the entry was made).
		l.discardJob(job)
		return nil, storageError("create "+name, err)
	}
	job.files = append(job.files, f)
	for gi, p := range group {
		if err := l.writeCleaned(job, f, p, gi == len(group)-1); err != nil {
			l.discardJob(job)
			return nil, err
		}
	}
	job.fresh.idx.maybeAddTime(job.fresh.base, job.fresh.maxTimestamp, job.fresh.offsetOfMaxTimestamp)
	for _, x := range []struct {
		suffix string
		data   []byte
	}{
		{suffixIndex, encodeOffsetIndex(job.fresh.idx.offsets)},
		{suffixTimeIndex, encodeTimeIndex(job.fresh.idx.times)},
	} {
		name := segmentFile(l.dir, first.base, x.suffix) + suffixCleaned
		f, err := l.createFile(name)
		if err != nil {
			l.discardJob(job)
			return nil, storageError("create "+name, err)
		}
		job.files = append(job.files, f)
		if _, err := f.WriteAt(x.data, 0); err != nil {
			l.discardJob(job)
			return nil, storageError("write "+name, err)
		}
	}
	return job, nil
}

// writeCleaned appends what stays of one planned segment to the group's
// cleaned file. An emptied batch stays only as its producer's last or as
// the group's last (groupLast: p ends the group).
func (l *Log) writeCleaned(job *cleanJob, f sim.File, p segmentPlan, groupLast bool) error {
	sc := scanner{s: p.s, verifyCRC: true}
	for i, bp := range p.batches {
		b, err := sc.batch(bp.pos)
		if err != nil {
			return fmt.Errorf("compact %s at %d: %w", p.s.name, bp.pos, err)
		}
		// An empty batch (emptied now or kept empty by an earlier
		// compaction as its segment's last) goes unless it still marks
		// an end.
		if droppable(bp) && !(groupLast && i == len(p.batches)-1) {
			continue
		}
		if len(bp.keep) < bp.all {
			all, err := b.Records()
			if err != nil {
				return fmt.Errorf("compact %s at %d: %w", p.s.name, bp.pos, err)
			}
			if b, err = record.BuilderFor(b).Build(keepOffsets(all, bp.keep)); err != nil {
				return fmt.Errorf("compact %s at %d: %w", p.s.name, bp.pos, err)
			}
		}
		h := infoOf(b, job.fresh.sizeBytes)
		if _, err := f.Append(b); err != nil {
			return storageError("write "+job.fresh.name+suffixCleaned, err)
		}
		job.fresh.account(h, l.cfg.IndexIntervalBytes)
	}
	return nil
}

// keepOffsets keeps the records of all whose offsets are listed, in
// order, in kept.
func keepOffsets(all []record.Record, kept []int64) []record.Record {
	out := all[:0]
	j := 0
	for _, r := range all {
		if j < len(kept) && kept[j] == r.Offset {
			out = append(out, r)
			j++
		}
	}
	return out
}

// producerLastBatch reports whether b is its producer's last batch, which
// compaction keeps (empty if need be) so that producer state can be
// rebuilt from the log.
func (l *Log) producerLastBatch(b record.Batch) bool {
	if !b.HasProducer() {
		return false
	}
	p := l.producers.byID[b.ProducerID()]
	return p != nil && len(p.Batches) > 0 && p.Batches[len(p.Batches)-1].LastOffset == b.LastOffset()
}

// finishCompaction swaps the synced cleaned segments in.
func (l *Log) finishCompaction(c *compaction) {
	if l.compaction == c {
		l.compaction = nil
	}
	var err error
	switch {
	case c.aborted || c.gen != l.gen || l.closed:
		err = fmt.Errorf("compact %s: aborted", l.dir)
	case c.err != nil:
		err = storageError("sync cleaned segments of "+l.dir, c.err)
	}
	if err != nil {
		l.cleanupJobs(c)
		c.done(c.result, err)
		return
	}
	for _, job := range c.jobs {
		if err := l.swap(job); err != nil {
			l.cleanupJobs(c)
			l.reopen(err, false)
			c.done(c.result, err)
			return
		}
	}
	l.recordsCompacted += c.result.RecordsRemoved
	c.done(c.result, nil)
}

// RecordsCompacted counts the records compactions removed from the log
// since it was opened.
func (l *Log) RecordsCompacted() int64 { return l.recordsCompacted }

// swap replaces a group of segments by their cleaned copy, in Kafka's
// order, each step leaving a state recovery turns into the old segments
// or the new one (completeSwaps):
//
//  1. <base>.log.cleaned, synced, is renamed to <base>.log.swap: the
//     commit point. Before it recovery deletes the .cleaned files (the
//     old segments are whole); from it on recovery completes the swap.
//  2. The old segments' files go, the first (<base>.log) first.
//  3. <base>.log.swap is renamed to <base>.log.
//  4. The cleaned index files are renamed into place (recovery rebuilds
//     missing ones).
//
// The cleaned segment ends with the group's last batch, so its offsets
// tell recovery which segments the swap replaces.
func (l *Log) swap(job *cleanJob) error {
	i := l.groupAt(job)
	if i < 0 {
		// Retention or truncation took a segment meanwhile.
		l.closeJob(job)
		return l.removeCleaned(job)
	}
	l.closeJob(job)
	base := job.fresh.base
	logName := segmentFile(l.dir, base, suffixLog)
	l.dirDirty = true
	if err := l.fs.Rename(logName+suffixCleaned, logName+suffixSwap); err != nil {
		return storageError("rename "+logName+suffixCleaned, err)
	}
	for _, old := range job.olds {
		old.release()
		if err := l.removeIndexFiles(old); err != nil {
			return err
		}
		if err := l.fs.Remove(old.name); err != nil && !errors.Is(err, sim.ErrNotExist) {
			return storageError("remove "+old.name, err)
		}
	}
	if err := l.fs.Rename(logName+suffixSwap, logName); err != nil {
		return storageError("rename "+logName+suffixSwap, err)
	}
	for _, suffix := range []string{suffixIndex, suffixTimeIndex} {
		name := segmentFile(l.dir, base, suffix)
		if err := l.fs.Rename(name+suffixCleaned, name); err != nil {
			return storageError("rename "+name+suffixCleaned, err)
		}
	}
	f, err := l.fs.Open(logName)
	if err != nil {
		return storageError("open "+logName, err)
	}
	job.fresh.file = f
	job.fresh.closed = true
	l.segments = slices.Replace(l.segments, i, i+len(job.olds), job.fresh)
	return nil
}

// groupAt finds a job's segments in the log, where they must still be
// adjacent, unchanged and followed by another segment; -1 if not.
func (l *Log) groupAt(job *cleanJob) int {
	i := slices.Index(l.segments, job.olds[0])
	if i < 0 || i+len(job.olds) >= len(l.segments) {
		return -1
	}
	for j, old := range job.olds {
		if l.segments[i+j] != old || old.sizeBytes != job.oldSizes[j] || !old.closed {
			return -1
		}
	}
	return i
}

func (l *Log) closeJob(job *cleanJob) {
	for _, f := range job.files {
		f.Close()
	}
	job.files = nil
}

// cleanedNames are the files of a job's cleaned copy.
func (l *Log) cleanedNames(job *cleanJob) []string {
	names := make([]string, 0, 3)
	for _, suffix := range []string{suffixLog, suffixIndex, suffixTimeIndex} {
		names = append(names, segmentFile(l.dir, job.fresh.base, suffix)+suffixCleaned)
	}
	return names
}

// removeCleaned deletes a job's cleaned files.
func (l *Log) removeCleaned(job *cleanJob) error {
	for _, name := range l.cleanedNames(job) {
		if err := l.fs.Remove(name); err != nil && !errors.Is(err, sim.ErrNotExist) {
			return storageError("remove "+name, err)
		}
	}
	return nil
}

// cleanupJobs discards every job of c.
func (l *Log) cleanupJobs(c *compaction) {
	for _, job := range c.jobs {
		l.discardJob(job)
	}
}

// discardJob closes and deletes a job's cleaned files, those it wrote and
// those it had not come to yet; a file a remove fails on is removed again
// later. A job whose writing failed (a full disk) is discarded so too:
// it never joined its compaction's jobs, and its files would stay until
// the next start.
func (l *Log) discardJob(job *cleanJob) {
	l.closeJob(job)
	for _, name := range l.cleanedNames(job) {
		l.removeOrRemember(name)
	}
}

// abortCompaction stops the compaction in flight: its syncs complete, and
// its files are then deleted instead of swapped in.
func (l *Log) abortCompaction() {
	if l.compaction != nil {
		l.compaction.aborted = true
		l.compaction = nil
	}
}
