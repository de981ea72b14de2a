package storage

import (
	"errors"
	"fmt"

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
	SegmentsRewritten int
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

// cleanJob is the rewrite of one segment.
type cleanJob struct {
	old     *segment
	oldSize int64
	fresh   *segment
	files   []sim.File
}

// Compact starts a compaction (cleanup.policy=compact): in the closed,
// flushed segments below highWatermark it keeps the newest record per key
// (the newest within that range), drops records without a key, and drops
// tombstones older than TombstoneRetention. A batch keeps its offsets and
// producer fields when rewritten; a batch emptied entirely is dropped
// unless it is its segment's last or its producer's last, which stay as
// empty batches so that segment ends and producer state survive, as in
// Kafka. Cleaned segments are synced before they replace the originals.
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
		if !s.closed || s.next > bound || len(s.damage) > 0 {
			break
		}
		n++
	}
	return n
}

// planCompaction builds the key map and writes the cleaned segments.
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
	for _, s := range l.segments[:n] {
		job, removed, err := l.cleanSegment(s, keys, c.result.TombstoneCutoffMs)
		if err != nil {
			return err
		}
		if job == nil {
			continue
		}
		c.jobs = append(c.jobs, job)
		c.result.SegmentsRewritten++
		c.result.RecordsRemoved += removed
		c.result.BytesBefore += s.sizeBytes
		c.result.BytesAfter += job.fresh.sizeBytes
	}
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

// cleanSegment writes the compacted copy of s, or returns nil if nothing
// in s would change.
func (l *Log) cleanSegment(s *segment, keys map[string]int64, tombstoneCutoffMs int64) (*cleanJob, int64, error) {
	type planned struct {
		pos  int64
		keep []int64 // offsets of the records kept
		all  int
	}
	var plan []planned
	var removed int64
	err := l.eachBatch(s, func(b record.Batch, pos int64, records []record.Record) {
		p := planned{pos: pos, all: len(records)}
		for _, r := range records {
			if b.Control() || (r.Key != nil && keys[string(r.Key)] == r.Offset && !(r.Value == nil && r.Timestamp < tombstoneCutoffMs)) {
				p.keep = append(p.keep, r.Offset)
			}
		}
		removed += int64(len(records) - len(p.keep))
		plan = append(plan, p)
	})
	if err != nil {
		return nil, 0, err
	}
	if removed == 0 {
		return nil, 0, nil
	}
	job := &cleanJob{old: s, oldSize: s.sizeBytes, fresh: newSegment(l.dir, s.base, nil, 0, s.createdMono)}
	name := s.name + suffixCleaned
	f, err := l.fs.Create(name)
	if err != nil {
		return nil, 0, storageError("create "+name, err)
	}
	job.files = append(job.files, f)
	sc := scanner{s: s, verifyCRC: true}
	for i, p := range plan {
		b, err := sc.batch(p.pos)
		if err != nil {
			l.closeJob(job)
			return nil, 0, fmt.Errorf("compact %s at %d: %w", s.name, p.pos, err)
		}
		if len(p.keep) < p.all {
			last := i == len(plan)-1
			if len(p.keep) == 0 && !last && !l.producerLastBatch(b) {
				continue
			}
			all, err := b.Records()
			if err != nil {
				l.closeJob(job)
				return nil, 0, err
			}
			keep := keepOffsets(all, p.keep)
			if b, err = record.BuilderFor(b).Build(keep); err != nil {
				l.closeJob(job)
				return nil, 0, fmt.Errorf("compact %s at %d: %w", s.name, p.pos, err)
			}
		}
		h := infoOf(b, job.fresh.sizeBytes)
		if _, err := f.Append(b); err != nil {
			l.closeJob(job)
			return nil, 0, storageError("write "+name, err)
		}
		job.fresh.account(h, l.cfg.IndexIntervalBytes)
	}
	job.fresh.idx.maybeAddTime(job.fresh.base, job.fresh.maxTimestamp, job.fresh.offsetOfMaxTimestamp)
	for _, x := range []struct {
		suffix string
		data   []byte
	}{
		{suffixIndex, encodeOffsetIndex(job.fresh.idx.offsets)},
		{suffixTimeIndex, encodeTimeIndex(job.fresh.idx.times)},
	} {
		name := segmentFile(l.dir, s.base, x.suffix) + suffixCleaned
		f, err := l.fs.Create(name)
		if err != nil {
			l.closeJob(job)
			return nil, 0, storageError("create "+name, err)
		}
		job.files = append(job.files, f)
		if _, err := f.WriteAt(x.data, 0); err != nil {
			l.closeJob(job)
			return nil, 0, storageError("write "+name, err)
		}
	}
	return job, removed, nil
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
			l.reopen(err)
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

// swap replaces a segment by its cleaned copy. Each step leaves a state
// recovery accepts: the old index files go first (recovery rebuilds
// missing ones), then the log is renamed over the old one atomically, then
// the new index files follow.
func (l *Log) swap(job *cleanJob) error {
	i := -1
	for j, s := range l.segments {
		if s == job.old {
			i = j
		}
	}
	if i < 0 || job.old.sizeBytes != job.oldSize {
		// Retention or truncation took the segment meanwhile.
		l.closeJob(job)
		return l.removeCleaned(job)
	}
	for _, f := range job.files {
		f.Close()
	}
	job.files = nil
	base := job.old.base
	if err := l.removeIndexFiles(job.old); err != nil {
		return err
	}
	for _, suffix := range []string{suffixLog, suffixIndex, suffixTimeIndex} {
		name := segmentFile(l.dir, base, suffix)
		if err := l.fs.Rename(name+suffixCleaned, name); err != nil {
			return storageError("rename "+name+suffixCleaned, err)
		}
	}
	f, err := l.fs.Open(job.old.name)
	if err != nil {
		return storageError("open "+job.old.name, err)
	}
	job.fresh.file = f
	job.fresh.closed = true
	job.old.release()
	l.segments[i] = job.fresh
	l.dirDirty = true
	return nil
}

func (l *Log) closeJob(job *cleanJob) {
	for _, f := range job.files {
		f.Close()
	}
	job.files = nil
}

// removeCleaned deletes a job's cleaned files.
func (l *Log) removeCleaned(job *cleanJob) error {
	for _, suffix := range []string{suffixLog, suffixIndex, suffixTimeIndex} {
		name := segmentFile(l.dir, job.old.base, suffix) + suffixCleaned
		if err := l.fs.Remove(name); err != nil && !errors.Is(err, sim.ErrNotExist) {
			return storageError("remove "+name, err)
		}
	}
	return nil
}

// cleanupJobs closes and deletes the files of every job of c.
func (l *Log) cleanupJobs(c *compaction) {
	for _, job := range c.jobs {
		l.closeJob(job)
		if err := l.removeCleaned(job); err != nil {
			l.logf("log %s: %v", l.dir, err)
		}
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
