package storage

import (
	"fmt"
	"slices"
)

// Tick does the log's periodic work; the broker calls it every so often
// (Kafka's log manager runs such tasks every few hundred milliseconds to
// a few minutes). It rolls an active segment older than SegmentAge,
// flushes under FlushEveryInterval, applies retention (delete policy) and
// compaction (compact policy, every CompactionInterval), forgets
// producers idle longer than ProducerExpiration, and removes again the
// files a remove failed on. highWatermark bounds what
// retention and compaction may touch: never data some in-sync replica
// lacks.
func (l *Log) Tick(highWatermark int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	l.retryLeftovers()
	now := l.clock.Mono()
	if s := l.active(); s.hasLast && l.cfg.SegmentAge > 0 && now-s.createdMono >= l.cfg.SegmentAge {
		if err := l.roll(l.EndOffset(), "age"); err != nil {
			return err
		}
	}
	if l.cfg.Flush.Mode == FlushEveryInterval && now-l.lastFlushMono >= l.cfg.Flush.Interval && l.EndOffset() > l.recoveryPoint {
		l.Flush(nil)
	}
	if l.cfg.Cleanup.deletes() {
		if _, err := l.ApplyRetention(highWatermark); err != nil {
			return err
		}
	}
	// Segments a DeleteRecords left wholly below the log start go under
	// any cleanup policy, as in Kafka.
	if _, err := l.DeleteSegmentsBelowStart(); err != nil {
		return err
	}
	if l.cfg.Cleanup.compacts() && l.compaction == nil && now-l.lastCompactionMono >= l.cfg.CompactionInterval {
		l.Compact(highWatermark, nil)
	}
	cutoffMs := l.clock.Now().Add(-l.cfg.ProducerExpiration).UnixMilli()
	if n := l.producers.expire(cutoffMs); n > 0 {
		l.logf("log %s: forgot %d idle producers", l.dir, n)
	}
	return nil
}

// ApplyRetention deletes whole closed segments from the oldest on while
// they are older than RetentionAge (by their newest timestamp) or the log
// would still hold RetentionBytes without them, and never a segment with
// offsets at or past highWatermark. The log start offset moves to the
// first segment kept. It returns how many segments went.
func (l *Log) ApplyRetention(highWatermark int64) (int, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	nowMs := l.clock.Now().UnixMilli()
	total := l.SizeBytes()
	deleted := 0
	for len(l.segments) > 1 {
		s := l.segments[0]
		if s.next > highWatermark || !l.durableSnapshotAt(s.next) {
			// Never delete data some replica lacks, nor batches whose
			// producer state no durable snapshot at the new log start
			// holds.
			break
		}
		byAge := l.cfg.RetentionAge >= 0 && s.maxTimestamp >= 0 && nowMs-s.maxTimestamp > l.cfg.RetentionAge.Milliseconds()
		bySize := l.cfg.RetentionBytes >= 0 && total-s.sizeBytes >= l.cfg.RetentionBytes
		if !byAge && !bySize {
			break
		}
		s.release()
		if err := removeSegmentFiles(l.fs, l.dir, s.base); err != nil {
			l.fail(err)
			return deleted, err
		}
		l.dirDirty = true
		l.segments = l.segments[1:]
		total -= s.sizeBytes
		deleted++
		l.logf("log %s: retention deleted %s (offsets %d..%d, %d bytes, by age %v, by size %v)", l.dir, baseName(s.name), s.base, s.next-1, s.sizeBytes, byAge, bySize)
	}
	if deleted == 0 {
		return 0, nil
	}
	start := l.StartOffset()
	if l.epochs.truncateFromStart(start) {
		if err := l.writeEpochs(); err != nil {
			return deleted, fmt.Errorf("retention of %s: %w", l.dir, err)
		}
	}
	for _, snap := range slices.Clone(l.snapshots) {
		if snap.offset < start {
			l.discardSnapshot(snap.offset, nil)
		}
	}
	return deleted, nil
}
