package storage

import (
	"fmt"
	"slices"
)

// TruncateTo drops every batch that holds an offset at or after offset,
// as a follower does to meet its leader's log (KIP-101). The cut falls at
// the start of the batch holding offset, so the log end may land below
// offset. Below the log start it is TruncateFullyAndStartAt. The recovery
// point drops with the log end; the broker must checkpoint it before
// appending more.
func (l *Log) TruncateTo(offset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if offset >= l.EndOffset() {
		return nil
	}
	if offset < l.StartOffset() {
		return l.TruncateFullyAndStartAt(offset)
	}
	return l.truncateTo(offset)
}

func (l *Log) truncateTo(offset int64) error {
	l.abortCompaction()
	// The cut lands at a batch boundary at or below offset.
	defer func() { l.loadedEnd = min(l.loadedEnd, l.EndOffset()) }()
	i := l.segmentFor(offset)
	s := l.segments[i]
	cut, err := l.cutPosition(s, offset)
	if err != nil {
		return fmt.Errorf("truncate %s to %d: %w", l.dir, offset, err)
	}
	if cut < s.sizeBytes {
		if err := s.file.Truncate(cut); err != nil {
			l.fail(storageError("truncate "+s.name, err))
			return l.failed
		}
		s.sizeBytes = cut
		s.logDirty = true
		s.dropDamageFrom(cut)
	}
	for _, later := range l.segments[i+1:] {
		later.release()
		if err := removeSegmentFiles(l.fs, l.dir, later.base); err != nil {
			l.fail(err)
			return err
		}
		l.dirDirty = true
	}
	l.segments = l.segments[:i+1]
	if s.closed {
		if err := l.removeIndexFiles(s); err != nil {
			l.fail(err)
			return err
		}
		s.closed = false
	}
	if err := l.rescan(s); err != nil {
		l.fail(err)
		return err
	}
	return l.afterTruncation()
}

// cutPosition is where the batch holding offset (or the first batch
// after it) starts.
func (l *Log) cutPosition(s *segment, offset int64) (int64, error) {
	cut := s.sizeBytes
	err := l.walk(s, s.idx.lookup(s.base, offset, false),
		func(d Damage) bool {
			if d.LastOffset >= offset {
				cut = d.Position
				return false
			}
			return true
		},
		func(h batchInfo) bool {
			if h.last >= offset {
				cut = h.pos
				return false
			}
			return true
		})
	return cut, err
}

// rescan rebuilds a segment's bookkeeping from its batch headers.
func (l *Log) rescan(s *segment) error {
	s.resetBookkeeping()
	return l.walk(s, 0,
		func(d Damage) bool {
			s.next = max(s.next, d.LastOffset+1)
			return true
		},
		func(h batchInfo) bool {
			s.account(h, l.cfg.IndexIntervalBytes)
			return true
		})
}

// afterTruncation brings the recovery point, the flush round in flight,
// the epoch cache, the snapshots and the producer state down to the new
// log end.
func (l *Log) afterTruncation() error {
	l.truncated()
	end := l.EndOffset()
	l.recoveryPoint = min(l.recoveryPoint, end)
	// A cut below the log start takes the start down with it (Kafka's
	// truncateTo), so that appends after the cut are served.
	l.startOffset = min(l.startOffset, end)
	if l.round != nil {
		l.round.target = min(l.round.target, end)
	}
	if l.epochs.truncateFromEnd(end) {
		// The checkpoint on disk would name epochs past the cut, which a
		// restart after more appends reads back above them; as Kafka
		// does on a failed checkpoint write, the log goes offline.
		if err := l.writeEpochs(); err != nil {
			l.fail(err)
			return err
		}
	}
	for _, snap := range slices.Clone(l.snapshots) {
		if snap.offset > end {
			l.discardSnapshot(snap.offset, nil)
		}
	}
	l.producers = newProducerTable()
	var report RecoveryReport
	if err := l.loadProducers(&report); err != nil {
		l.fail(err)
		return err
	}
	return nil
}

// TruncateFullyAndStartAt empties the log and restarts it at offset: a
// follower whose leader's log starts past this one's end. The recovery
// point only drops (to offset, if it was above); it reaches offset when a
// flush makes the deletions durable, so that a crash before then never
// pairs a checkpoint at offset with the old segments.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("truncate %s fully: %w: negative offset %d", l.dir, ErrInvalidAppend, offset)
	}
	l.abortCompaction()
	l.loadedEnd = min(l.loadedEnd, offset)
	for _, s := range l.segments {
		s.release()
		if err := removeSegmentFiles(l.fs, l.dir, s.base); err != nil {
			l.fail(err)
			return err
		}
	}
	l.dirDirty = true
	for _, snap := range slices.Clone(l.snapshots) {
		l.discardSnapshot(snap.offset, nil)
	}
	s, err := l.createSegment(offset)
	if err != nil {
		l.segments = nil
		l.fail(err)
		return err
	}
	l.segments = []*segment{s}
	l.startOffset = offset
	l.recoveryPoint = min(l.recoveryPoint, offset)
	if l.round != nil {
		l.round.target = min(l.round.target, offset)
	}
	l.producers = newProducerTable()
	l.epochs = epochCache{}
	if err := l.writeEpochs(); err != nil {
		l.fail(err) // as after a cut (afterTruncation)
		return err
	}
	l.truncated()
	return nil
}
