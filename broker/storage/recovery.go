package storage

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// RecoveryReport says what Open (or a reopen after a failed sync) found
// and did.
type RecoveryReport struct {
	Dir string
	// RecoveryPoint is the one Open was given.
	RecoveryPoint   int64
	StartOffset     int64
	EndOffset       int64
	SegmentsScanned int
	BatchesScanned  int64
	BytesScanned    int64
	Truncations     []Truncation
	Damage          []Damage
	// RotFenced counts the damaged batches above the recovery point that
	// recovery fenced instead of cutting, each one bit off (rottedBatch).
	RotFenced    int
	RemovedFiles []string
	// CompletedSwaps names the compaction swaps (<base>.log.swap) a crash
	// interrupted and recovery completed.
	CompletedSwaps       []string
	RebuiltIndexes       []string
	DiscardedSnapshots   []string
	ProducerSnapshot     int64
	EpochCheckpointError string
	// Producers counts the producers whose state recovery loaded;
	// ProducerBatchesReplayed the batches it read to rebuild their state
	// after the snapshot it started from (ProducerSnapshot, -1 for none).
	Producers               int
	ProducerBatchesReplayed int64
	// RewrittenBytes counts the bytes above the recovery point that
	// recovery read back and wrote again, so that the next sync writes
	// them even where the page cache shows data a failed sync lost.
	RewrittenBytes int64
	// FlushedLost: the recovered log ends before the recovery point, so
	// data that had been made durable is gone (a lying or failed disk).
	FlushedLost bool
}

// Truncation is a cut recovery made at the first bad batch holding
// offsets at or past the recovery point.
type Truncation struct {
	Segment  string
	Position int64
	// Offset is the first offset lost.
	Offset       int64
	DroppedBytes int64
	// GoodDataAfter: valid batches followed the bad one and were dropped
	// with it (corruption in the middle of unflushed data rather than a
	// torn tail).
	GoodDataAfter bool
	// Stale: the bytes cut lay after a segment's last offset, where a
	// truncation that never became durable left them; no offset of the
	// log was lost.
	Stale  bool
	Reason string
}

// String describes the cut for logs and reports.
func (t Truncation) String() string {
	after := ""
	if t.GoodDataAfter {
		after = " (valid batches followed and were dropped)"
	}
	return fmt.Sprintf("%s cut at byte %d, offsets from %d, %d bytes dropped%s: %s", t.Segment, t.Position, t.Offset, t.DroppedBytes, after, t.Reason)
}

// Clean reports whether recovery lost or found damaged no data (cutting
// stale bytes that held no offsets does not count).
func (r RecoveryReport) Clean() bool {
	for _, t := range r.Truncations {
		if !t.Stale {
			return false
		}
	}
	return len(r.Damage) == 0 && !r.FlushedLost
}

// Repaired reports whether recovery had anything to mend: a cut (stale
// bytes included), damage, lost flushed data, rebuilt indexes, leftover
// files, discarded snapshots or a rebuilt epoch checkpoint.
func (r RecoveryReport) Repaired() bool {
	return len(r.Truncations) > 0 || len(r.Damage) > 0 || r.FlushedLost || len(r.RebuiltIndexes) > 0 ||
		len(r.RemovedFiles) > 0 || len(r.DiscardedSnapshots) > 0 || r.EpochCheckpointError != "" || len(r.CompletedSwaps) > 0
}

// TruncatedBytes is what recovery's cuts dropped.
func (r RecoveryReport) TruncatedBytes() int64 {
	var n int64
	for _, t := range r.Truncations {
		n += t.DroppedBytes
	}
	return n
}

// Summary says in one line what recovery did: what it scanned, cut,
// rebuilt and found damaged, and where producer state came from.
func (r RecoveryReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d segments scanned (%d batches, %d bytes), %d bytes truncated (%d cuts), %d indexes rebuilt",
		r.SegmentsScanned, r.BatchesScanned, r.BytesScanned, r.TruncatedBytes(), len(r.Truncations), len(r.RebuiltIndexes))
	from := "from the log"
	if r.ProducerSnapshot >= 0 {
		from = fmt.Sprintf("from snapshot %d", r.ProducerSnapshot)
	}
	fmt.Fprintf(&b, ", producer state rebuilt %s + %d batches (%d producers)", from, r.ProducerBatchesReplayed, r.Producers)
	if len(r.Damage) > 0 {
		fmt.Fprintf(&b, ", %d damaged ranges kept and never served", len(r.Damage))
	}
	if len(r.RemovedFiles) > 0 {
		fmt.Fprintf(&b, ", %d leftover files removed", len(r.RemovedFiles))
	}
	if len(r.CompletedSwaps) > 0 {
		fmt.Fprintf(&b, ", %d compaction swaps completed", len(r.CompletedSwaps))
	}
	if len(r.DiscardedSnapshots) > 0 {
		fmt.Fprintf(&b, ", %d snapshots discarded", len(r.DiscardedSnapshots))
	}
	if r.EpochCheckpointError != "" {
		b.WriteString(", leader epoch checkpoint rebuilt")
	}
	if r.RewrittenBytes > 0 {
		fmt.Fprintf(&b, ", %d bytes above the recovery point written again", r.RewrittenBytes)
	}
	if r.FlushedLost {
		fmt.Fprintf(&b, ", FLUSHED DATA LOST (the log ends at %d, before its recovery point %d)", r.EndOffset, r.RecoveryPoint)
	}
	return b.String()
}

// String summarises the report in one line per finding.
func (r RecoveryReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: offsets %d..%d, recovery point %d, scanned %d segments, %d batches, %d bytes",
		r.Dir, r.StartOffset, r.EndOffset, r.RecoveryPoint, r.SegmentsScanned, r.BatchesScanned, r.BytesScanned)
	for _, t := range r.Truncations {
		fmt.Fprintf(&b, "\n  truncated: %s", t)
	}
	for _, d := range r.Damage {
		fmt.Fprintf(&b, "\n  damaged (kept, never served): %s", d)
	}
	if r.FlushedLost {
		fmt.Fprintf(&b, "\n  FLUSHED DATA LOST: the log ends at %d, before its recovery point %d", r.EndOffset, r.RecoveryPoint)
	}
	for _, f := range r.CompletedSwaps {
		fmt.Fprintf(&b, "\n  completed compaction swap %s", f)
	}
	for _, f := range r.RemovedFiles {
		fmt.Fprintf(&b, "\n  removed %s", f)
	}
	for _, f := range r.RebuiltIndexes {
		fmt.Fprintf(&b, "\n  rebuilt index of %s", f)
	}
	for _, f := range r.DiscardedSnapshots {
		fmt.Fprintf(&b, "\n  discarded snapshot %s", f)
	}
	if r.EpochCheckpointError != "" {
		fmt.Fprintf(&b, "\n  leader epoch checkpoint rebuilt: %s", r.EpochCheckpointError)
	}
	return b.String()
}

// load builds the log's state from the directory: see the package
// comment.
func (l *Log) load(recoveryPoint int64) (RecoveryReport, error) {
	// Recovery removes the temporary files and reads every snapshot
	// file: no leftover is left to remove again.
	l.segments, l.snapshots, l.leftovers = nil, nil, nil
	l.epochs = epochCache{}
	l.producers = newProducerTable()
	report := RecoveryReport{Dir: l.dir, RecoveryPoint: recoveryPoint, ProducerSnapshot: -1}
	if _, err := l.fs.Stat(l.dir); errors.Is(err, sim.ErrNotExist) {
		if err := l.fs.MkdirAll(l.dir); err != nil {
			return report, storageError("create directory", err)
		}
		l.parentDirty, l.dirDirty = true, true
	} else if err != nil {
		return report, storageError("stat directory", err)
	}
	names, err := l.fs.List(l.dir)
	if err != nil {
		return report, storageError("list directory", err)
	}
	if completed, err := l.completeSwaps(names, &report); err != nil {
		return report, err
	} else if completed {
		if names, err = l.fs.List(l.dir); err != nil {
			return report, storageError("list directory", err)
		}
	}
	bases, err := l.sortDirectory(names, &report)
	if err != nil {
		return report, err
	}
	if len(bases) == 0 {
		return report, l.loadEmpty(recoveryPoint, &report)
	}
	for _, base := range bases {
		name := segmentFile(l.dir, base, suffixLog)
		f, err := l.fs.Open(name)
		if err != nil {
			return report, storageError("open "+name, err)
		}
		size, err := f.Size()
		if err != nil {
			f.Close()
			return report, storageError("size of "+name, err)
		}
		l.segments = append(l.segments, newSegment(l.dir, base, f, size, l.clock.Mono()))
	}
	scanFrom := 0
	for i, s := range l.segments {
		if s.base <= recoveryPoint {
			scanFrom = i
		}
	}
	var seenEpochs epochCache
	for i := 0; i < len(l.segments); i++ {
		s := l.segments[i]
		if i > 0 {
			// Segments roll at the log end, so each starts where the
			// previous one ends. An overlap is a segment a truncation
			// deleted, back because the deletion was not durable; a gap
			// is a segment whose predecessor lost its unsynced tail.
			if prev := l.segments[i-1]; s.base != prev.next {
				reason := fmt.Sprintf("segment base %d does not follow the previous segment, which ends at %d", s.base, prev.next)
				if err := l.cutAt(i, 0, prev.next, reason, false, &report); err != nil {
					return report, err
				}
				break
			}
		}
		cut, err := l.recoverSegment(i, i < scanFrom, recoveryPoint, &seenEpochs, &report)
		if err != nil {
			return report, err
		}
		if cut {
			break
		}
	}
	for _, s := range l.segments[:len(l.segments)-1] {
		if err := l.closeRecovered(s, &report); err != nil {
			return report, err
		}
	}
	l.recoveryPoint = min(recoveryPoint, l.EndOffset())
	if recoveryPoint > l.EndOffset() {
		report.FlushedLost = true
	}
	// A rolled segment that is last again (its successor never became
	// durable) takes appends: its index files would go stale.
	active := l.active()
	for _, suffix := range []string{suffixIndex, suffixTimeIndex} {
		if _, err := l.fs.Stat(segmentFile(l.dir, active.base, suffix)); err == nil {
			if err := l.removeFile(segmentFile(l.dir, active.base, suffix), &report); err != nil {
				return report, err
			}
		}
	}
	if err := l.loadEpochs(&seenEpochs, &report); err != nil {
		return report, err
	}
	if err := l.loadProducers(&report); err != nil {
		return report, err
	}
	l.resyncLoaded(&report)
	report.StartOffset, report.EndOffset = l.StartOffset(), l.EndOffset()
	if !report.Clean() {
		l.logf("log recovery: %s", report)
	}
	// What recovery found may live in the page cache only: its own cuts,
	// and after a process crash a truncation the disk never got, whose
	// durable file is longer and holds batches of an older lineage where
	// the log now ends. Until all of it is durable a power loss could
	// bring those batches back under new ones, so appends wait for it as
	// they wait for a truncation.
	l.truncated()
	return report, nil
}

// resyncLoaded queues for the next flush round what recovery cannot
// know to be durable (after a process crash the page cache survives):
// directory entries and snapshots, which it writes again for the reason
// rewriteUnflushed gives. Segments above the recovery point are marked
// and written again by recoverSegment.
func (l *Log) resyncLoaded(report *RecoveryReport) {
	l.dirDirty = true
	for _, snap := range l.snapshots {
		name := segmentFile(l.dir, snap.offset, suffixSnapshot)
		f, err := l.fs.Open(name)
		if err != nil {
			l.logf("log %s: open %s: %v", l.dir, name, err)
			continue
		}
		size, err := f.Size()
		if err == nil {
			err = l.rewriteUnflushed(f, name, 0, size, report)
		}
		if err != nil {
			// Not durable, then: retention will not rely on it.
			l.logf("log %s: write %s again: %v", l.dir, name, err)
			f.Close()
			continue
		}
		l.pendingFiles = append(l.pendingFiles, pendingFile{file: f, snapshot: snap.offset})
	}
}

// sortDirectory classifies the directory's entries: it removes leftovers
// and orphaned indexes, notes snapshots, and returns the segment bases in
// order.
func (l *Log) sortDirectory(names []string, report *RecoveryReport) ([]int64, error) {
	logs := map[int64]bool{}
	type indexFile struct {
		base int64
		name string
	}
	var indexes []indexFile
	for _, n := range names {
		offset, kind := parseName(n)
		switch kind {
		case kindLog:
			logs[offset] = true
		case kindIndex, kindTimeIndex:
			indexes = append(indexes, indexFile{offset, n})
		case kindSnapshot:
			l.snapshots = append(l.snapshots, snapshotFile{offset: offset})
		case kindLeftover, kindSwap: // completeSwaps dealt with every swap
			if err := l.removeFile(path.Join(l.dir, n), report); err != nil {
				return nil, err
			}
		case kindUnknown:
			l.logf("log %s: ignoring unknown file %s", l.dir, n)
		}
	}
	for _, x := range indexes {
		if !logs[x.base] {
			if err := l.removeFile(path.Join(l.dir, x.name), report); err != nil {
				return nil, err
			}
		}
	}
	bases := make([]int64, 0, len(logs))
	for b := range logs { // sorted below
		bases = append(bases, b)
	}
	slices.Sort(bases)
	slices.SortFunc(l.snapshots, func(a, b snapshotFile) int { return cmp.Compare(a.offset, b.offset) })
	return bases, nil
}

// completeSwaps finishes the compaction swaps a crash interrupted (see
// Log.swap): each <base>.log.swap replaces the segments whose bases fall
// within its offsets, as in Kafka. It reports whether it found any.
func (l *Log) completeSwaps(names []string, report *RecoveryReport) (bool, error) {
	var swaps, logs []int64
	for _, n := range names {
		switch offset, kind := parseName(n); kind {
		case kindSwap:
			swaps = append(swaps, offset)
		case kindLog:
			logs = append(logs, offset)
		}
	}
	slices.Sort(swaps)
	for _, base := range swaps {
		if err := l.completeSwap(base, logs, report); err != nil {
			return true, err
		}
	}
	return len(swaps) > 0, nil
}

// completeSwap deletes the segments <base>.log.swap replaces and renames
// it to <base>.log. A swap that does not read back whole (damaged after
// its sync) is dropped instead while the old segments are all there,
// which they are as long as the first one is: it goes first.
func (l *Log) completeSwap(base int64, logs []int64, report *RecoveryReport) error {
	logName := segmentFile(l.dir, base, suffixLog)
	swapName := logName + suffixSwap
	end, whole, err := l.swapEnd(swapName, base)
	if err != nil {
		return err
	}
	if !whole && slices.Contains(logs, base) {
		l.logf("log %s: %s does not read back whole: keeping the segments it was to replace", l.dir, baseName(swapName))
		return l.removeFile(swapName, report)
	}
	for _, b := range logs {
		if b < base || b >= end {
			continue
		}
		for _, suffix := range []string{suffixLog, suffixIndex, suffixTimeIndex} {
			name := segmentFile(l.dir, b, suffix)
			if _, err := l.fs.Stat(name); err == nil {
				if err := l.removeFile(name, report); err != nil {
					return err
				}
			}
		}
	}
	if err := l.fs.Rename(swapName, logName); err != nil {
		return storageError("rename "+swapName, err)
	}
	l.dirDirty = true
	report.CompletedSwaps = append(report.CompletedSwaps, baseName(swapName))
	l.logf("log %s: completed the compaction swap of %s (offsets %d..%d)", l.dir, baseName(swapName), base, end-1)
	return nil
}

// swapEnd reads a swap file through and returns the offset after its
// last good batch, and whether every byte of it was good.
func (l *Log) swapEnd(name string, base int64) (int64, bool, error) {
	f, err := l.fs.Open(name)
	if err != nil {
		return 0, false, storageError("open "+name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, false, storageError("size of "+name, err)
	}
	sc := scanner{s: newSegment(l.dir, base, f, size, 0), verifyCRC: !l.skipCRC}
	end := base
	for pos := int64(0); pos < size; {
		b, err := sc.batch(pos)
		if err != nil {
			if isIOError(err) {
				return 0, false, err
			}
			return end, false, nil
		}
		end = max(end, b.LastOffset()+1)
		pos += b.Size()
	}
	return end, size > 0, nil
}

func (l *Log) removeFile(name string, report *RecoveryReport) error {
	if err := l.fs.Remove(name); err != nil && !errors.Is(err, sim.ErrNotExist) {
		return storageError("remove "+name, err)
	}
	l.dirDirty = true
	report.RemovedFiles = append(report.RemovedFiles, baseName(name))
	return nil
}

// loadEmpty starts a log with no segments. A new log starts at 0; a log
// whose segments are gone starts at its recovery point, so that offsets
// handed out before are never reused.
func (l *Log) loadEmpty(recoveryPoint int64, report *RecoveryReport) error {
	if recoveryPoint > 0 {
		report.FlushedLost = true
	}
	s, err := l.createSegment(recoveryPoint)
	if err != nil {
		return err
	}
	l.segments = []*segment{s}
	l.recoveryPoint = recoveryPoint
	for _, snap := range slices.Clone(l.snapshots) {
		l.discardSnapshot(snap.offset, report)
	}
	if err := l.loadEpochs(&epochCache{}, report); err != nil {
		return err
	}
	report.StartOffset, report.EndOffset = recoveryPoint, recoveryPoint
	if !report.Clean() {
		l.logf("log recovery: %s", report)
	}
	return nil
}

func (l *Log) createSegment(base int64) (*segment, error) {
	name := segmentFile(l.dir, base, suffixLog)
	f, err := l.fs.Create(name)
	if err != nil {
		return nil, storageError("create "+name, err)
	}
	l.dirDirty = true
	return newSegment(l.dir, base, f, 0, l.clock.Mono()), nil
}

// recoverSegment reads segment i. A flushed segment (wholly below the
// recovery point's segment) is trusted or verified per the config; any
// other is scanned batch by batch. It reports whether it cut the log.
func (l *Log) recoverSegment(i int, flushed bool, recoveryPoint int64, seen *epochCache, report *RecoveryReport) (bool, error) {
	s := l.segments[i]
	if flushed && l.cfg.TrustFlushed {
		if err := l.loadTrusted(s, l.nextBase(i)); err == nil {
			s.closed = true
			return false, nil
		} else if isIOError(err) {
			return false, err
		} else {
			l.logf("log %s: index of %s unusable (%v): rebuilding", l.dir, baseName(s.name), err)
			s.resetBookkeeping()
		}
	}
	report.SegmentsScanned++
	expected := s.base
	lastEpoch := int32(-1)
	if i > 0 {
		expected = max(expected, l.segments[i-1].next)
		if prev := l.segments[i-1]; prev.hasLast {
			lastEpoch = prev.last.leaderEpoch
		}
	}
	limit := l.nextBase(i)
	sc := scanner{s: s, verifyCRC: !l.skipCRC}
	// rewriteFrom is the position of the first good batch holding offsets
	// at or past the recovery point.
	rewriteFrom := int64(-1)
	for pos := int64(0); pos < s.sizeBytes; {
		if expected >= limit {
			// The segment is complete; what follows is left from a
			// truncation that never became durable.
			l.cutTail(s, pos, expected, report)
			break
		}
		b, err := sc.batch(pos)
		var h batchInfo
		if err == nil {
			h = infoOf(b, pos)
			err = s.checkPlacement(h, expected, limit)
			if err == nil && h.leaderEpoch < lastEpoch {
				err = fmt.Errorf("%w: batch at %d has leader epoch %d after %d", record.ErrCorrupt, pos, h.leaderEpoch, lastEpoch)
			}
			if err == nil && !l.skipCRC {
				err = s.checkJump(h, expected, lastEpoch)
			}
		}
		if err != nil {
			if isIOError(err) {
				return false, err
			}
			var d Damage
			rotted := false
			if expected < recoveryPoint || l.cfg.FenceRot {
				d, rotted = l.rottedBatch(s, b, pos, expected, limit, err)
			}
			if expected >= recoveryPoint && !rotted {
				if err := l.cutAt(i, pos, expected, err.Error(), true, report); err != nil {
					return true, err
				}
				return true, l.rewriteSegment(s, rewriteFrom, report)
			}
			if !rotted {
				if d, err = l.damageExtent(&sc, pos, expected, l.damageEndOffset(i, recoveryPoint), err.Error()); err != nil {
					return false, err
				}
			} else if expected >= recoveryPoint {
				report.RotFenced++
			}
			s.addDamage(d)
			report.Damage = append(report.Damage, d)
			pos = d.EndPosition
			expected = max(expected, d.LastOffset+1)
			continue
		}
		if rewriteFrom < 0 && h.last >= recoveryPoint {
			rewriteFrom = pos
		}
		s.account(h, l.cfg.IndexIntervalBytes)
		seen.assign(h.leaderEpoch, h.base)
		report.BatchesScanned++
		report.BytesScanned += int64(h.size)
		expected, lastEpoch = h.last+1, h.leaderEpoch
		pos += int64(h.size)
	}
	s.next = max(s.next, expected)
	if !flushed {
		// Above the recovery point nothing is known durable: after a
		// process crash these bytes may sit only in the page cache.
		s.logDirty = true
	}
	return false, l.rewriteSegment(s, rewriteFrom, report)
}

// rewriteSegment writes a segment's bytes from position from (-1: none)
// to its end again: see rewriteUnflushed.
func (l *Log) rewriteSegment(s *segment, from int64, report *RecoveryReport) error {
	if from < 0 || from >= s.sizeBytes {
		return nil
	}
	s.logDirty = true // the flush recovery starts must sync what it wrote
	return l.rewriteUnflushed(s.file, s.name, from, s.sizeBytes, report)
}

// rewriteChunkBytes bounds one read-and-write of rewriteUnflushed.
const rewriteChunkBytes = 1 << 20

// rewriteUnflushed writes bytes [from, to) of f again, as read back. What
// recovery reads above the recovery point may be what a failed sync left
// in the page cache: on Linux its pages are marked clean, so a later sync
// succeeds without writing them, and a power loss takes them. Writing them
// again makes them dirty, so the flush that follows recovery (which
// appends, the high watermark and duplicate answers wait for) really
// writes them. Bytes already durable are written with the same value.
func (l *Log) rewriteUnflushed(f sim.File, name string, from, to int64, report *RecoveryReport) error {
	if l.trustPageCache {
		return nil
	}
	buf := make([]byte, min(rewriteChunkBytes, to-from))
	for pos := from; pos < to; {
		chunk := buf[:min(int64(len(buf)), to-pos)]
		if n, err := f.ReadAt(chunk, pos); n < len(chunk) {
			return storageError(fmt.Sprintf("read %s at %d to write it again", name, pos), err)
		}
		if _, err := f.WriteAt(chunk, pos); err != nil {
			return storageError(fmt.Sprintf("write %s at %d again", name, pos), err)
		}
		pos += int64(len(chunk))
		report.RewrittenBytes += int64(len(chunk))
	}
	return nil
}

// closeRecovered marks a segment that has a successor as rolled and makes
// sure its index files match what recovery rebuilt.
func (l *Log) closeRecovered(s *segment, report *RecoveryReport) error {
	if s.closed { // loaded from trusted index files
		return nil
	}
	s.closed = true
	s.idx.maybeAddTime(s.base, s.maxTimestamp, s.offsetOfMaxTimestamp)
	return l.checkIndexFiles(s, report)
}

// damageEndOffset bounds the offsets a damaged range at the end of
// segment i can stand for.
func (l *Log) damageEndOffset(i int, recoveryPoint int64) int64 {
	if i+1 < len(l.segments) {
		return l.segments[i+1].base
	}
	return recoveryPoint
}

// rottedBatch reports whether the bad batch b at pos (nil when its header
// did not read) is whole but for one flipped bit, and if so the damage it
// is: exactly its bytes and offsets, which the bit flipped back tells. A
// torn write loses whole sectors, so a batch one bit off was written
// whole and rotted later, wherever the recovery point is, unless a torn
// sector's stale bytes happen to be one bit off its new ones. Above the
// recovery point a replica (Config.FenceRot) keeps it fenced as damage,
// as below it, instead of cutting the log there and the valid batches
// after it with it (which, on a partition's last in-sync replica, lost
// acknowledged writes other replicas held: cluster-swarm seed 308); a
// lone log cuts it as a torn tail (TestLogModelCompacted found a torn
// write one bit off).
func (l *Log) rottedBatch(s *segment, b record.Batch, pos, expected, limit int64, cause error) (Damage, bool) {
	bit, ok := b.FlippedBit()
	if !ok {
		return Damage{}, false
	}
	fixed := record.Batch(slices.Clone(b))
	fixed.FlipBit(bit)
	if fixed.Verify() != nil || fixed.BaseOffset() < expected || fixed.LastOffset() >= limit {
		return Damage{}, false
	}
	d := Damage{Segment: baseName(s.name), Position: pos, EndPosition: pos + int64(len(b)), FirstOffset: expected,
		LastOffset: fixed.LastOffset(), Reason: fmt.Sprintf("%v (one bit flipped, in byte %d of the batch)", cause, bit/8)}
	l.logf("log %s: a batch rotted after it was written, kept and never served: %s", l.dir, d)
	return d, true
}

// damageExtent finds where good data resumes after a bad batch at pos and
// describes the range between.
func (l *Log) damageExtent(sc *scanner, pos, expected, endOffset int64, reason string) (Damage, error) {
	d := Damage{Segment: baseName(sc.s.name), Position: pos, EndPosition: sc.s.sizeBytes, FirstOffset: expected, LastOffset: endOffset - 1, Reason: reason}
	good, found, err := sc.resync(pos, expected)
	if err != nil {
		return d, err
	}
	if found {
		d.EndPosition, d.LastOffset = good.pos, good.base-1
	}
	l.logf("log %s: corrupt data below the recovery point kept and never served: %s", l.dir, d)
	return d, nil
}

// cutAt truncates segment i at pos and deletes every later segment.
func (l *Log) cutAt(i int, pos, offset int64, reason string, checkAfter bool, report *RecoveryReport) error {
	s := l.segments[i]
	t := Truncation{Segment: baseName(s.name), Position: pos, Offset: offset, DroppedBytes: s.sizeBytes - pos, Reason: reason}
	if checkAfter {
		sc := scanner{s: s, verifyCRC: !l.skipCRC}
		_, found, err := sc.resync(pos, offset)
		if err != nil {
			return err
		}
		t.GoodDataAfter = found || i+1 < len(l.segments)
	}
	for _, later := range l.segments[i+1:] {
		t.DroppedBytes += later.sizeBytes
		later.closeFiles()
		if err := removeSegmentFiles(l.fs, l.dir, later.base); err != nil {
			return err
		}
		l.dirDirty = true
	}
	l.segments = l.segments[:i+1]
	if pos == 0 && i > 0 {
		s.closeFiles()
		if err := removeSegmentFiles(l.fs, l.dir, s.base); err != nil {
			return err
		}
		l.dirDirty = true
		l.segments = l.segments[:i]
	} else if pos < s.sizeBytes {
		if err := s.file.Truncate(pos); err != nil {
			return storageError("truncate "+s.name, err)
		}
		s.sizeBytes = pos
		s.logDirty = true
	}
	report.Truncations = append(report.Truncations, t)
	l.logf("log %s: cut unflushed data: %s", l.dir, t)
	return nil
}

// nextBase is the base of the segment after segment i, which bounds its
// offsets, or MaxInt64 for the last.
func (l *Log) nextBase(i int) int64 {
	if i+1 < len(l.segments) {
		return l.segments[i+1].base
	}
	return math.MaxInt64
}

// cutTail truncates the bytes of a segment after its last offset.
func (l *Log) cutTail(s *segment, pos, offset int64, report *RecoveryReport) {
	t := Truncation{Segment: baseName(s.name), Position: pos, Offset: offset, DroppedBytes: s.sizeBytes - pos, Stale: true,
		Reason: "bytes after the segment's last offset, left by a truncation that never became durable"}
	if err := s.file.Truncate(pos); err != nil {
		// Reads stop at the next segment's base anyway.
		l.logf("log %s: truncate %s: %v", l.dir, s.name, err)
	} else {
		s.sizeBytes = pos
		s.logDirty = true
	}
	report.Truncations = append(report.Truncations, t)
	l.logf("log %s: cut stale bytes: %s", l.dir, t)
}

// loadTrusted loads a flushed segment from its index files without
// reading its batches but the last few; limit is the next segment's base.
func (l *Log) loadTrusted(s *segment, limit int64) error {
	if err := s.loadIndexFiles(l.fs, l.dir); err != nil {
		return err
	}
	pos := int64(0)
	if n := len(s.idx.offsets); n > 0 {
		pos = int64(s.idx.offsets[n-1].position)
	}
	if n := len(s.idx.times); n > 0 {
		s.maxTimestamp = s.idx.times[n-1].timestamp
		s.offsetOfMaxTimestamp = s.base + int64(s.idx.times[n-1].relativeOffset)
	}
	for pos < s.sizeBytes {
		if s.next >= limit {
			return fmt.Errorf("%d bytes after the segment's last offset", s.sizeBytes-pos)
		}
		h, err := s.header(pos)
		if err != nil {
			return err
		}
		if h.base < s.next || h.last >= limit {
			return fmt.Errorf("batch at %d (offsets %d..%d) does not fit between offsets %d and %d", pos, h.base, h.last, s.next, limit)
		}
		if h.maxTimestamp > s.maxTimestamp {
			s.maxTimestamp, s.offsetOfMaxTimestamp = h.maxTimestamp, h.last
		}
		s.next, s.last, s.hasLast = h.last+1, h, true
		pos += int64(h.size)
	}
	if n := len(s.idx.offsets); n > 0 && s.base+int64(s.idx.offsets[n-1].relativeOffset) >= s.next {
		return fmt.Errorf("index ends at offset %d, past the log's %d", s.base+int64(s.idx.offsets[n-1].relativeOffset), s.next)
	}
	return nil
}

// checkIndexFiles compares a closed segment's index files with the
// indexes its scan rebuilt and rewrites them if they differ or are
// missing.
func (l *Log) checkIndexFiles(s *segment, report *RecoveryReport) error {
	want := segment{base: s.base, sizeBytes: s.sizeBytes}
	err := want.loadIndexFiles(l.fs, l.dir)
	if err == nil && slices.Equal(want.idx.offsets, s.idx.offsets) && slices.Equal(want.idx.times, s.idx.times) {
		return nil
	}
	if err := s.writeIndexFiles(l.fs, l.dir); err != nil {
		return err
	}
	l.dirDirty = true
	report.RebuiltIndexes = append(report.RebuiltIndexes, baseName(s.name))
	return nil
}

func (l *Log) removeIndexFiles(s *segment) error {
	for _, f := range s.indexFiles {
		f.Close()
	}
	s.indexFiles = nil
	for _, suffix := range []string{suffixIndex, suffixTimeIndex} {
		name := segmentFile(l.dir, s.base, suffix)
		if err := l.fs.Remove(name); err != nil && !errors.Is(err, sim.ErrNotExist) {
			return storageError("remove "+name, err)
		}
	}
	l.dirDirty = true
	return nil
}

// loadEpochs reads the leader epoch checkpoint (or, if it is unusable,
// rebuilds the cache from every batch header), drops epochs past the log
// end, and adds the epochs the scan saw.
func (l *Log) loadEpochs(seen *epochCache, report *RecoveryReport) error {
	name := path.Join(l.dir, EpochCheckpointName)
	data, err := ReadCheckpointFile(l.fs, name)
	var entries []EpochEntry
	if err == nil {
		entries, err = decodeEpochs(data)
	}
	rewrite := false
	switch {
	case err == nil:
		l.epochs.entries = entries
	case errors.Is(err, sim.ErrNotExist) && len(seen.entries) == 0 && l.EndOffset() == l.StartOffset():
		// A new log: nothing to rebuild.
		rewrite = true
	default:
		if errors.Is(err, ErrStorage) || errors.Is(err, sim.ErrIO) {
			return storageError("read "+name, err)
		}
		report.EpochCheckpointError = err.Error()
		rewrite = true
		if err := l.forEachHeader(l.StartOffset(), func(h batchInfo) bool {
			l.epochs.assign(h.leaderEpoch, h.base)
			return true
		}); err != nil {
			return err
		}
	}
	if l.epochs.truncateFromEnd(l.EndOffset()) {
		rewrite = true
	}
	for _, e := range seen.entries {
		if e.Epoch > l.epochs.latestEpoch() && l.epochs.assign(e.Epoch, e.StartOffset) {
			rewrite = true
		}
	}
	if l.epochs.truncateFromStart(l.StartOffset()) {
		rewrite = true
	}
	if rewrite {
		return l.writeEpochs()
	}
	return nil
}

// loadProducers rebuilds producer state from the newest snapshot that
// matches the log and the batches after it.
func (l *Log) loadProducers(report *RecoveryReport) error {
	from := l.StartOffset()
	for i := len(l.snapshots) - 1; i >= 0; i-- {
		off := l.snapshots[i].offset
		if off > l.EndOffset() {
			l.discardSnapshot(off, report)
			continue
		}
		producers, err := l.readSnapshot(off)
		if err != nil {
			if isIOError(err) {
				return err
			}
			l.logf("log %s: producer snapshot %d unusable: %v", l.dir, off, err)
			l.discardSnapshot(off, report)
			continue
		}
		for _, p := range producers {
			l.producers.byID[p.ProducerID] = p
		}
		report.ProducerSnapshot = off
		from = max(off, from)
		break
	}
	err := l.forEachHeader(from, func(h batchInfo) bool {
		if h.base >= from {
			l.producers.update(h, h.maxTimestamp, l.cfg.ProducersMax)
			report.ProducerBatchesReplayed++
		}
		return true
	})
	report.Producers = len(l.producers.byID)
	return err
}

// readSnapshot reads the snapshot at off and checks it describes this
// log: the batch it says ended just below off must be there.
func (l *Log) readSnapshot(off int64) ([]*ProducerState, error) {
	name := segmentFile(l.dir, off, suffixSnapshot)
	data, err := readSmallFile(l.fs, name, snapshotBytesMax)
	if err != nil {
		if errors.Is(err, sim.ErrIO) {
			return nil, storageError("read "+name, err)
		}
		return nil, err
	}
	got, anchor, producers, err := decodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	if got != off {
		return nil, fmt.Errorf("%w: file says offset %d", errSnapshot, got)
	}
	switch {
	case off < l.StartOffset():
		return nil, fmt.Errorf("%w: offset %d is below the log start %d", errSnapshot, off, l.StartOffset())
	case off == l.StartOffset():
		// The batches before it went with retention: nothing to check.
		return producers, nil
	case !anchor.present:
		return nil, fmt.Errorf("%w: it was taken of an empty log, and this one holds offsets below %d", errSnapshot, off)
	}
	anchorLast := anchor.base + int64(anchor.lastOffsetDelta)
	if anchorLast >= off {
		return nil, fmt.Errorf("%w: its last batch ends at %d, not below %d", errSnapshot, anchorLast, off)
	}
	h, found, err := l.batchEndingAt(anchorLast)
	if err != nil {
		return nil, err
	}
	if !found || anchorOf(h) != anchor {
		return nil, fmt.Errorf("%w: the batch ending at %d does not match it (left from a truncated history?)", errSnapshot, anchorLast)
	}
	return producers, nil
}

func (l *Log) discardSnapshot(off int64, report *RecoveryReport) {
	l.snapshots = slices.DeleteFunc(l.snapshots, func(s snapshotFile) bool { return s.offset == off })
	name := segmentFile(l.dir, off, suffixSnapshot)
	if !l.removeOrRemember(name) {
		return
	}
	l.dirDirty = true
	if report != nil {
		report.DiscardedSnapshots = append(report.DiscardedSnapshots, baseName(name))
	}
}

// batchEndingAt finds the header of the batch whose last offset is off.
func (l *Log) batchEndingAt(off int64) (batchInfo, bool, error) {
	var found batchInfo
	ok := false
	err := l.forEachHeader(off, func(h batchInfo) bool {
		if h.last == off {
			found, ok = h, true
		}
		return false
	})
	return found, ok, err
}

// forEachHeader calls fn with the header of every batch whose last offset
// is at least from, in order, until fn returns false. It skips damaged
// ranges and records any new damage it runs into.
func (l *Log) forEachHeader(from int64, fn func(h batchInfo) bool) error {
	stopped := false
	for i := l.segmentFor(from); i < len(l.segments) && !stopped; i++ {
		s := l.segments[i]
		err := l.walk(s, s.idx.lookup(s.base, from, false),
			func(Damage) bool { return true },
			func(h batchInfo) bool {
				if h.last < from {
					return true
				}
				stopped = !fn(h)
				return !stopped
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// walk visits the damaged ranges and batch headers of s from pos on, in
// order, until a visitor returns false. A header that does not parse is
// recorded as damage, then visited as such; only I/O errors end the walk
// with an error.
func (l *Log) walk(s *segment, pos int64, onDamage func(Damage) bool, onBatch func(batchInfo) bool) error {
	for pos < s.sizeBytes {
		if d := s.damageAt(pos); d != nil {
			if !onDamage(*d) {
				return nil
			}
			pos = d.EndPosition
			continue
		}
		h, err := s.header(pos)
		if err != nil {
			if isIOError(err) {
				return err
			}
			if _, err := l.noteDamage(s, pos, err.Error()); err != nil {
				return err
			}
			continue
		}
		if !onBatch(h) {
			return nil
		}
		pos += int64(h.size)
	}
	return nil
}

// noteDamage records corrupt data found at pos after recovery (by a read
// or a scan): it finds the offsets the range stands for from the batches
// around it.
func (l *Log) noteDamage(s *segment, pos int64, reason string) (Damage, error) {
	if d := s.damageAt(pos); d != nil {
		return *d, nil
	}
	expected := s.base
	i := slices.Index(l.segments, s)
	if i > 0 {
		expected = max(expected, l.segments[i-1].next)
	}
	// Walk from the nearest index entry before pos to learn the offset
	// the bad batch should start at.
	p := int64(0)
	for _, e := range s.idx.offsets {
		if int64(e.position) < pos {
			p, expected = int64(e.position), s.base+int64(e.relativeOffset)+1
		}
	}
	for p < pos {
		if d := s.damageAt(p); d != nil {
			p, expected = d.EndPosition, max(expected, d.LastOffset+1)
			continue
		}
		h, err := s.header(p)
		if err != nil || p+int64(h.size) > pos {
			break
		}
		expected, p = h.last+1, p+int64(h.size)
	}
	sc := scanner{s: s, verifyCRC: !l.skipCRC}
	d, err := l.damageExtent(&sc, pos, expected, s.next, reason)
	if err != nil {
		return d, err
	}
	s.addDamage(d)
	if l.onDamage != nil {
		l.onDamage(d)
	}
	return d, nil
}
