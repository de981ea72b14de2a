package storage

import (
	"fmt"
	"slices"
)

// The log start offset may lie inside the first segment: DeleteRecords
// (Kafka's deleteRecordsOnLocalLog) moves it to any offset up to the high
// watermark, and reads below it are refused at once, while the segments
// wholly below it go later (DeleteSegmentsBelowStart, retention), whole.
// The log itself does not persist it: the broker keeps it in its
// log-start-offset-checkpoint and hands it back with RestoreStartOffset.

// StartOffset is the log start offset: the first offset still served.
// It is never below the first segment's base nor above the log end (a
// log that lost its tail in a crash starts where it now ends).
func (l *Log) StartOffset() int64 {
	if len(l.segments) == 0 { // offline after a failed reopen
		return l.recoveryPoint
	}
	return min(max(l.startOffset, l.segments[0].base), l.EndOffset())
}

// RestoreStartOffset sets the log start offset read back from the
// broker's checkpoint after Open. An offset past the log end (a stale
// entry of a deleted topic's namesake, or a tail lost in a crash) is
// clamped to the log end: there is nothing above it to hide. The leader
// epochs are cut at the start, as Kafka's load does: the epoch checkpoint
// may still hold what a move of the start dropped, when that write failed
// (a full disk) or a crash came first, and a cache read back so would
// name an epoch's start below the log's. The file keeps them until the
// cache is written again; every load cuts them the same way.
func (l *Log) RestoreStartOffset(offset int64) {
	l.startOffset = max(l.startOffset, min(offset, l.EndOffset()))
	l.epochs.truncateFromStart(l.StartOffset())
}

// AdvanceStartOffset moves the log start offset up to offset (never back)
// and deletes the segments now wholly below it; the caller has checked
// offset against the high watermark. It reports whether the start moved.
func (l *Log) AdvanceStartOffset(offset int64) (bool, error) {
	if err := l.usable(); err != nil {
		return false, err
	}
	if offset > l.EndOffset() {
		return false, fmt.Errorf("move the start of %s to %d: %w: the log ends at %d", l.dir, offset, ErrOffsetOutOfRange, l.EndOffset())
	}
	if offset <= l.StartOffset() {
		return false, nil
	}
	l.startOffset = offset
	l.logf("log %s: log start moved to %d", l.dir, offset)
	if l.epochs.truncateFromStart(offset) {
		if err := l.writeEpochs(); err != nil {
			return true, fmt.Errorf("move the start of %s: %w", l.dir, err)
		}
	}
	_, err := l.DeleteSegmentsBelowStart()
	return true, err
}

// DeleteSegmentsBelowStart deletes the closed segments whose offsets all
// lie below the log start offset (Kafka's
// deleteLogStartOffsetBreachedSegments), whatever the cleanup policy. A
// segment whose end no durable producer snapshot covers stays until one
// does, as under retention.
func (l *Log) DeleteSegmentsBelowStart() (int, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	deleted := 0
	for len(l.segments) > 1 {
		s := l.segments[0]
		if s.next > l.startOffset || !l.durableSnapshotAt(s.next) {
			break
		}
		if err := l.dropFirstSegment(); err != nil {
			return deleted, err
		}
		deleted++
		l.logf("log %s: deleted %s below the log start %d (offsets %d..%d)", l.dir, baseName(s.name), l.startOffset, s.base, s.next-1)
	}
	if deleted > 0 {
		l.afterStartMoved()
	}
	return deleted, nil
}

// dropFirstSegment removes the oldest segment and its files.
func (l *Log) dropFirstSegment() error {
	s := l.segments[0]
	s.release()
	if err := removeSegmentFiles(l.fs, l.dir, s.base); err != nil {
		l.fail(err)
		return err
	}
	l.dirDirty = true
	l.segments = l.segments[1:]
	return nil
}

// afterStartMoved drops the producer snapshots below the new first
// segment, which no recovery will start from again.
func (l *Log) afterStartMoved() {
	base := l.segments[0].base
	for _, snap := range slices.Clone(l.snapshots) {
		if snap.offset < base {
			l.discardSnapshot(snap.offset, nil)
		}
	}
}
