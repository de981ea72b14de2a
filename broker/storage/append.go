package storage

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// AppendResult says where an appended batch went.
type AppendResult struct {
	BaseOffset int64
	LastOffset int64
	// AppendTimeMs is the log's wall time at the append; -1 for a
	// duplicate, as Kafka answers.
	AppendTimeMs int64
	// Duplicate: the batch replays one of the producer's last five,
	// which the log already holds; nothing was written and the offsets
	// are the original's.
	Duplicate      bool
	LogStartOffset int64
}

// Append is the leader's produce path. batch is one RecordBatch v2 from a
// producer; only its header is parsed and its CRC checked, and it is
// written as it came but for its base offset and partition leader epoch,
// which Append assigns in place (they lie outside the CRC). An idempotent
// producer's batch is checked against the producer's state: a replay of
// one of its last five batches returns the original offsets, a gap is
// ErrOutOfOrderSequence, an older epoch ErrInvalidProducerEpoch.
func (l *Log) Append(batch record.Batch, leaderEpoch int32) (AppendResult, error) {
	if err := l.appendable(); err != nil {
		return AppendResult{}, err
	}
	if len(batch) > l.cfg.MaxBatchBytes {
		return AppendResult{}, fmt.Errorf("append to %s: %w: %d bytes, at most %d", l.dir, ErrBatchTooLarge, len(batch), l.cfg.MaxBatchBytes)
	}
	if err := batch.VerifyProduced(); err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", l.dir, err)
	}
	if latest := l.epochs.latestEpoch(); leaderEpoch < latest || leaderEpoch < 0 {
		return AppendResult{}, fmt.Errorf("append to %s: %w: leader epoch %d, the log has reached %d", l.dir, ErrInvalidAppend, leaderEpoch, latest)
	}
	original, err := l.producers.check(batch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", l.dir, err)
	}
	if original != nil && !l.dedupeOff {
		return AppendResult{BaseOffset: original.FirstOffset, LastOffset: original.LastOffset, AppendTimeMs: -1, Duplicate: true, LogStartOffset: l.StartOffset()}, nil
	}
	batch.SetBaseOffset(l.EndOffset())
	batch.SetPartitionLeaderEpoch(leaderEpoch)
	nowMs := l.clock.Now().UnixMilli()
	h, err := l.write(batch, nowMs)
	if err != nil {
		return AppendResult{}, err
	}
	return AppendResult{BaseOffset: h.base, LastOffset: h.last, AppendTimeMs: nowMs, LogStartOffset: l.StartOffset()}, nil
}

// AppendReplica is the follower's path: a batch fetched from the leader,
// offsets and epoch already assigned. It must start at or after the log
// end (a compacted leader log has gaps) and not go back in leader epoch.
// The whole batch is verified; producer state is recorded, not checked.
func (l *Log) AppendReplica(batch record.Batch) error {
	if err := l.appendable(); err != nil {
		return err
	}
	if int64(len(batch)) > l.cfg.SegmentBytes {
		return fmt.Errorf("replicate to %s: %w: %d bytes, a segment holds %d", l.dir, ErrBatchTooLarge, len(batch), l.cfg.SegmentBytes)
	}
	if err := batch.Verify(); err != nil {
		return fmt.Errorf("replicate to %s: %w", l.dir, err)
	}
	if batch.BaseOffset() < l.EndOffset() {
		return fmt.Errorf("replicate to %s: %w: batch at offset %d, the log ends at %d", l.dir, ErrInvalidAppend, batch.BaseOffset(), l.EndOffset())
	}
	_, err := l.write(batch, l.clock.Now().UnixMilli())
	return err
}

// lastBatch is the header of the log's last batch.
func (l *Log) lastBatch() (batchInfo, bool) {
	for i := len(l.segments) - 1; i >= 0; i-- {
		if s := l.segments[i]; s.hasLast {
			return s.last, true
		}
	}
	return batchInfo{}, false
}

// write appends a batch whose offsets are assigned and updates every
// index and cache.
func (l *Log) write(batch record.Batch, nowMs int64) (batchInfo, error) {
	if last, ok := l.lastBatch(); ok && batch.PartitionLeaderEpoch() < last.leaderEpoch {
		return batchInfo{}, fmt.Errorf("append to %s: %w: leader epoch %d after a batch of epoch %d", l.dir, ErrInvalidAppend, batch.PartitionLeaderEpoch(), last.leaderEpoch)
	}
	if err := l.maybeRoll(len(batch), batch.BaseOffset(), batch.LastOffset()); err != nil {
		return batchInfo{}, err
	}
	s := l.active()
	pos := s.sizeBytes
	if n, err := s.file.Append(batch); err != nil {
		if n > 0 {
			if terr := s.file.Truncate(pos); terr != nil {
				l.fail(storageError("undo a partial append to "+s.name, terr))
			}
		}
		return batchInfo{}, storageError("append to "+s.name, err)
	}
	if !s.hasLast {
		s.createdMono = l.clock.Mono()
	}
	h := infoOf(batch, pos)
	s.account(h, l.cfg.IndexIntervalBytes)
	s.logDirty = true
	if l.epochs.latestEpoch() != h.leaderEpoch && l.epochs.assign(h.leaderEpoch, h.base) {
		if err := l.writeEpochs(); err != nil {
			// Recovery rebuilds the cache from the batches; the data
			// is written, so the append stands.
			l.logf("log %s: write leader epoch checkpoint: %v", l.dir, err)
		}
	}
	l.producers.update(h, nowMs, l.cfg.ProducersMax)
	l.unflushedMessages += int64(h.records)
	if l.cfg.Flush.Mode == FlushEveryMessages && l.unflushedMessages >= l.cfg.Flush.Messages {
		l.Flush(nil)
	}
	return h, nil
}

// maybeRoll rolls the active segment if a batch of size bytes spanning
// offsets base..last does not belong in it.
func (l *Log) maybeRoll(size int, base, last int64) error {
	s := l.active()
	var reason string
	switch {
	case s.sizeBytes == 0:
		if last-s.base <= math.MaxUint32 {
			return nil
		}
		reason = "offsets out of the empty segment's range"
	case s.sizeBytes+int64(size) > l.cfg.SegmentBytes:
		reason = "size"
	case l.cfg.SegmentAge > 0 && l.clock.Mono()-s.createdMono >= l.cfg.SegmentAge:
		reason = "age"
	case last-s.base > math.MaxUint32:
		reason = "offset range"
	default:
		return nil
	}
	// A new segment starts at the log end, even when a replica batch
	// leaves a gap, so that recovery can tell a segment that lost its
	// tail; only a gap too wide for relative offsets starts it later.
	newBase := l.EndOffset()
	if last-newBase > math.MaxUint32 {
		newBase = base
	}
	return l.roll(newBase, reason)
}

// roll closes the active segment and starts one at newBase. As Kafka does,
// it flushes the closed segment asynchronously.
func (l *Log) roll(newBase int64, reason string) error {
	s := l.active()
	if s.sizeBytes == 0 {
		// Nothing to close: replace the empty segment. Its files are
		// closed, so a failure from here on leaves the log without an
		// active segment to serve: offline.
		s.closeFiles()
		if err := removeSegmentFiles(l.fs, l.dir, s.base); err != nil {
			l.fail(err)
			return err
		}
		l.dirDirty = true
		fresh, err := l.createSegment(newBase)
		if err != nil {
			l.fail(err)
			return err
		}
		l.segments[len(l.segments)-1] = fresh
		return nil
	}
	s.idx.maybeAddTime(s.base, s.maxTimestamp, s.offsetOfMaxTimestamp)
	// A roll that fails leaves the segment active, and the append that
	// asked fails; the next one rolls again, writing the index files
	// anew, so the handles this one made go.
	written := len(s.indexFiles)
	if err := s.writeIndexFiles(l.fs, l.dir); err != nil {
		s.closeIndexFilesFrom(written)
		return fmt.Errorf("roll %s: %w", s.name, err)
	}
	fresh, err := l.createSegment(newBase)
	if err != nil {
		s.closeIndexFilesFrom(written)
		return fmt.Errorf("roll %s (%s): %w", s.name, reason, err)
	}
	s.closed = true
	l.segments = append(l.segments, fresh)
	if err := l.writeSnapshot(newBase); err != nil {
		// An older snapshot and a longer replay serve as well.
		l.logf("log %s: producer snapshot at %d: %v", l.dir, newBase, err)
	}
	l.Flush(nil)
	return nil
}

// writeSnapshot writes the producer state as of offset off (the log end).
// As in Kafka, there is one per segment base; they go with their segments
// (retention) or with the offsets they describe (truncation).
func (l *Log) writeSnapshot(off int64) error {
	var anchor batchAnchor
	if last, ok := l.lastBatch(); ok && last.last < off {
		anchor = anchorOf(last)
	}
	data := encodeSnapshot(off, anchor, l.producers.sorted())
	if err := l.writeSmallFile(segmentFile(l.dir, off, suffixSnapshot), data); err != nil {
		return err
	}
	l.pendingFiles[len(l.pendingFiles)-1].snapshot = off
	l.snapshots = slices.DeleteFunc(l.snapshots, func(s snapshotFile) bool { return s.offset == off })
	l.snapshots = append(l.snapshots, snapshotFile{offset: off})
	slices.SortFunc(l.snapshots, func(a, b snapshotFile) int { return cmp.Compare(a.offset, b.offset) })
	return nil
}

// fail takes the log offline: its state no longer matches the disk and it
// could not be recovered. OnOffline's function hears of it. Failing
// without an error is a programmer's mistake: the log would go offline
// and stay usable.
func (l *Log) fail(err error) {
	sim.Assert(err != nil, "log %s taken offline without an error", l.dir)
	if l.failed == nil {
		l.failed = err
		l.logf("log %s offline: %v", l.dir, err)
		if l.onOffline != nil {
			l.onOffline(err)
		}
	}
}
