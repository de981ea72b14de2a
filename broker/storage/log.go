// Package storage is a Kafka partition's log on disk: a directory of
// segments holding RecordBatch v2 bytes, sparse offset and time indexes,
// producer-state snapshots and a leader-epoch checkpoint, laid out and
// named as Kafka lays them out.
//
// A Log is used from one actor's loop. Every method runs synchronously
// except Flush and Compact, whose callbacks run later on the same loop,
// after the disk's syncs complete. All I/O goes through sim.FS and all time
// through sim.Clock, so the log runs unchanged on the simulated disk and on
// real files.
//
// # Durability
//
// Appends reach the page cache at once and the disk only when a flush round
// syncs them. The recovery point is the offset below which everything is
// known durable; it advances when a round completes. The broker stores it
// in its recovery-point checkpoint (it must rewrite that checkpoint after
// TruncateTo or TruncateFullyAndStartAt, before appending more, as Kafka's
// LogManager does) and passes it back to Open.
//
// # Recovery
//
// Open scans every segment from the one holding the recovery point,
// checking each batch's structure, CRC-32C, offsets (increasing, inside
// the segment's range: segments roll at the log end, so each starts where
// the previous ends) and leader epochs (never decreasing). A bad batch
// that holds offsets at or past the recovery point was never durable: the
// log is cut there, and everything after it, including any valid batches
// beyond (which the report flags) is dropped; replicas fetch it again,
// producers retry it. A bad batch below the recovery point was durable and
// is now corrupt: it is kept, reported as Damage, and never served.
// Segments below the recovery point are checked too unless
// Config.TrustFlushed. Bytes after a segment's last offset (left by a
// truncation that never became durable) are cut. Indexes are rebuilt
// where missing or wrong, leftovers of interrupted work removed, producer
// state reloaded from the newest snapshot that matches the log and the
// batches after it, and the leader epoch cache reloaded and completed from
// the batches. What recovery found and repaired is flushed at once, and
// appends wait for that flush: after a process crash the page cache may
// hold a truncation the disk never got.
//
// Until a flush makes a truncation durable, a crash may bring back what
// it cut (a batch of an older leader epoch, above the recovery point), as
// in Kafka; the follower's epoch check (KIP-101) removes it again.
//
// After a failed sync the disk may have dropped unsynced pages, so the
// log's view is no longer the disk's: the log reopens itself from disk,
// drops what this incarnation appended above its recovery point, and
// fails the flush callers with ErrStorage. If the reload fails too (no
// file handles left, reads failing), the log is offline (Err) and tries
// again after 100 ms, doubling to 10 s, logging each attempt, until it
// comes back or is closed.
//
// The rule: nothing counts as durable that no successful sync covered
// since it was written. Linux (since 4.13) marks the pages of a failed
// writeback clean and keeps them in the page cache: reads, and a process
// started after a kill -9, still see them, but no later fsync writes them,
// and the next fsync succeeds. So what recovery (Open, or the reopen after
// a failed sync) reads back above the recovery point may be bytes the disk
// does not hold, and syncing them proves nothing. Recovery therefore
// writes those bytes (and the producer snapshots it keeps) again as read:
// they are dirty, the flush recovery starts really writes them, and only
// its success moves the recovery point, the high watermark and duplicate
// answers over them. Bytes that were durable are rewritten unchanged.
package storage

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Log is one partition's log.
type Log struct {
	fs    sim.FS
	clock sim.Clock
	dir   string
	cfg   Config
	logf  func(string, ...any)

	skipCRC       bool
	indexOffByOne bool
	dedupeOff     bool
	// trustPageCache (a planted bug) skips writing again what recovery
	// read back above the recovery point.
	trustPageCache bool
	// onDamage hears of each damaged range found after Open (OnDamage).
	onDamage func(Damage)
	// onOffline hears of the log going offline for good (OnOffline).
	onOffline func(error)

	// readEnds are where the last reads stopped, so that a reader going
	// on from there skips the walk from the index entry (up to an index
	// interval of batch headers). A leader is read by its followers and
	// its consumers in turn, each at its own position: one remembered end
	// would be the last reader's, and every other reader would walk.
	readEnds [readEndsMax]readEnd
	// readEndNext is the slot a read from an unremembered position takes.
	readEndNext int

	// segments are ordered by base offset; the last is the active one.
	// An open log always has at least one.
	segments      []*segment
	recoveryPoint int64
	// startOffset is the log start offset when DeleteRecords moved it
	// past the first segment's base (see log_start.go).
	startOffset int64
	// loadedEnd is the end of what Open found on disk and verified. A
	// reopen after a failed sync keeps it: the recovery point read at
	// Open may lag what was durable before a crash, and cutting back to
	// it would drop writes that were acknowledged.
	loadedEnd int64
	epochs    epochCache
	producers *producerTable
	// snapshots are the producer snapshots on disk, by offset.
	snapshots []snapshotFile
	// leftovers are files a remove failed on, removed again at each Tick
	// (leftovers.go).
	leftovers []string

	// Durability bookkeeping: see flush.go.
	dirDirty          bool
	parentDirty       bool
	pendingFiles      []pendingFile
	round             *flushRound
	flushWaiters      []func(error)
	flushWanted       bool
	lastFlushMono     time.Duration
	unflushedMessages int64

	// truncations counts truncations; durableTruncations is the count
	// the last completed flush round covered. Appends wait while they
	// differ.
	truncations        uint64
	durableTruncations uint64

	compaction         *compaction
	lastCompactionMono time.Duration
	recordsCompacted   int64

	// gen counts reopens; a callback of an older generation is void.
	gen          uint64
	reopens      int
	lastRecovery RecoveryReport
	failed       error
	closed       bool
}

// Open opens (creating if needed) the log in directory dir and recovers
// it; recoveryPoint is the offset below which the log was known durable
// (0 when unknown: everything is scanned). logf receives diagnostic lines
// and may be nil.
func Open(fs sim.FS, clock sim.Clock, dir string, cfg Config, recoveryPoint int64, logf func(string, ...any)) (*Log, RecoveryReport, error) {
	cfg = cfg.resolved()
	if err := cfg.check(); err != nil {
		return nil, RecoveryReport{}, fmt.Errorf("open log %s: %w", dir, err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l := &Log{
		fs: fs, clock: clock, dir: path.Clean(dir), cfg: cfg, logf: logf,
		skipCRC:        cfg.Bugs.On(faults.BugSkipCRC),
		indexOffByOne:  cfg.Bugs.On(faults.BugIndexOffByOne),
		dedupeOff:      cfg.Bugs.On(faults.BugDedupeOff),
		trustPageCache: cfg.Bugs.On(faults.BugTrustPageCache),
		lastFlushMono:  clock.Mono(),
	}
	l.lastCompactionMono = l.lastFlushMono
	report, err := l.load(max(recoveryPoint, 0))
	if err != nil {
		l.closeFiles()
		return nil, report, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.loadedEnd = l.EndOffset()
	return l, report, nil
}

// segmentFor returns the index of the segment holding offset: the last
// one whose base is at most offset (the first one for offsets below it).
func (l *Log) segmentFor(offset int64) int {
	i, _ := slices.BinarySearchFunc(l.segments, offset, func(s *segment, off int64) int { return cmp.Compare(s.base, off) })
	if i < len(l.segments) && l.segments[i].base == offset {
		return i
	}
	return max(i-1, 0)
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// truncated notes a truncation and starts the flush that makes it
// durable.
func (l *Log) truncated() {
	l.truncations++
	l.Flush(nil)
}

// appendable returns why the log takes no appends now, if it does not.
func (l *Log) appendable() error {
	if err := l.usable(); err != nil {
		return err
	}
	if l.truncations != l.durableTruncations {
		l.Flush(nil)
		return fmt.Errorf("append to %s: %w", l.dir, ErrTruncating)
	}
	return nil
}

// usable returns why the log cannot serve a call, if it cannot.
func (l *Log) usable() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("log %s is offline: %w", l.dir, l.failed)
	}
	return nil
}

// EndOffset is the log end offset: the offset the next append gets.
func (l *Log) EndOffset() int64 {
	if len(l.segments) == 0 { // offline after a failed reopen
		return l.recoveryPoint
	}
	return l.active().next
}

// RecoveryPoint is the offset below which everything is durable; the
// broker checkpoints it.
func (l *Log) RecoveryPoint() int64 { return l.recoveryPoint }

// FlushedOffset is what is known durable: the recovery point. With
// FlushGroupCommit, the broker acknowledges produce requests up to it.
func (l *Log) FlushedOffset() int64 { return l.recoveryPoint }

// SizeBytes is the size of all segments.
func (l *Log) SizeBytes() int64 {
	var n int64
	for _, s := range l.segments {
		n += s.sizeBytes
	}
	return n
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Err is why the log is offline, or nil. A log offline because the reload
// after a failed sync failed retries it with backoff.
func (l *Log) Err() error { return l.failed }

// Reopens counts the times the log reopened itself after a failed sync
// (each may have moved EndOffset back to the recovery point) or a failed
// compaction swap (which keeps EndOffset).
func (l *Log) Reopens() int { return l.reopens }

// SegmentInfo describes one segment.
type SegmentInfo struct {
	BaseOffset int64
	NextOffset int64
	SizeBytes  int64
	Closed     bool
	// IndexEntries counts the offset index's entries, and
	// IndexGapBytesMin is the least distance in log bytes from one to the
	// next (the first from the segment's start): more than the index
	// interval, as entries are added.
	IndexEntries     int
	IndexGapBytesMin int64
}

// Segments describes the segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	out := make([]SegmentInfo, len(l.segments))
	for i, s := range l.segments {
		out[i] = SegmentInfo{BaseOffset: s.base, NextOffset: s.next, SizeBytes: s.sizeBytes, Closed: s.closed,
			IndexEntries: len(s.idx.offsets), IndexGapBytesMin: s.idx.gapBytesMin()}
	}
	return out
}

// Damage lists the corrupt ranges known, oldest first.
func (l *Log) Damage() []Damage {
	var out []Damage
	for _, s := range l.segments {
		out = append(out, s.damage...)
	}
	return out
}

// FirstDamage is the oldest corrupt range known; ok is false when the log
// holds none. A replica that has another copy to fetch cuts its log at
// FirstOffset (TruncateTo) and fetches again from there.
func (l *Log) FirstDamage() (d Damage, ok bool) {
	for _, s := range l.segments {
		if len(s.damage) > 0 {
			return s.damage[0], true
		}
	}
	return Damage{}, false
}

// OnDamage sets fn to hear of every damaged range a read or scan finds
// after Open (Open's report lists what recovery found), and of the range
// each read refused for damage meets, however long known. It is called
// inside the read, before that read fails with ErrCorruptLog: fn must
// not use the log, only note what to do.
func (l *Log) OnDamage(fn func(Damage)) { l.onDamage = fn }

// OnOffline sets fn to hear, once, that the log went offline on a disk
// error it could not undo (a partial append it could not cut off, a
// segment it could not create or remove): its state no longer matches
// the disk, and only a reload from disk, a restart's recovery, can
// serve it again. It is called inside the call that failed: fn must not
// use the log. A log offline while a reload after a failed sync retries
// is not reported: it comes back by itself.
func (l *Log) OnOffline(fn func(error)) { l.onOffline = fn }

// Epochs lists the leader epoch cache.
func (l *Log) Epochs() []EpochEntry { return slices.Clone(l.epochs.entries) }

// LatestEpoch is the newest leader epoch in the cache, or UndefinedEpoch.
func (l *Log) LatestEpoch() int32 { return l.epochs.latestEpoch() }

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101/279): for the
// latest epoch, the log end; for an older one, the start offset of the
// first later epoch, with the largest epoch not above the one asked.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return l.epochs.endOffsetFor(epoch, l.EndOffset())
}

// AssignEpoch records that leader epoch epoch begins at startOffset; a
// new leader calls it when it takes over. Appends assign epochs too.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if l.epochs.assign(epoch, startOffset) {
		return l.writeEpochs()
	}
	return nil
}

// Producer returns a copy of what the log remembers of an idempotent
// producer.
func (l *Log) Producer(id int64) (ProducerState, bool) {
	p := l.producers.byID[id]
	if p == nil {
		return ProducerState{}, false
	}
	c := *p
	c.Batches = slices.Clone(p.Batches)
	return c, true
}

// Producers lists every remembered producer, by id.
func (l *Log) Producers() []ProducerState {
	var out []ProducerState
	for _, p := range l.producers.sorted() {
		c := *p
		c.Batches = slices.Clone(p.Batches)
		out = append(out, c)
	}
	return out
}

// writeEpochs replaces the leader epoch checkpoint; the next flush round
// syncs it.
func (l *Log) writeEpochs() error {
	return l.writeSmallFile(path.Join(l.dir, EpochCheckpointName), encodeEpochs(l.epochs.entries))
}

// writeSmallFile replaces name by writing name.tmp and renaming it; the
// handle waits for the next flush round, which syncs it and the
// directory. Until then a crash may leave the old file or a torn new one,
// which readers detect (checksums, the checkpoint's count line).
func (l *Log) writeSmallFile(name string, data []byte) error {
	tmp := name + suffixTmp
	f, err := l.createFile(tmp)
	if err != nil {
		return storageError("create "+tmp, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		l.removeOrRemember(tmp)
		return storageError("write "+tmp, err)
	}
	if err := l.fs.Rename(tmp, name); err != nil {
		f.Close()
		l.removeOrRemember(tmp)
		return storageError("rename "+tmp, err)
	}
	l.forgetLeftover(name) // written again: live
	l.dirDirty = true
	l.pendingFiles = append(l.pendingFiles, pendingFile{file: f, snapshot: -1})
	if len(l.pendingFiles) > pendingFilesMax {
		l.Flush(nil)
	}
	return nil
}

// pendingFile is a small file written and not yet synced; snapshot is the
// offset of the producer snapshot it holds, or -1.
type pendingFile struct {
	file     sim.File
	snapshot int64
}

// snapshotFile is a producer snapshot on disk. Only a durable one may
// stand in for the segments retention deletes.
type snapshotFile struct {
	offset  int64
	durable bool
}

// durableSnapshotAt reports whether a durable snapshot exists at off.
func (l *Log) durableSnapshotAt(off int64) bool {
	for _, s := range l.snapshots {
		if s.offset == off {
			return s.durable
		}
	}
	return false
}

// pendingFilesMax bounds the small files waiting for a sync.
const pendingFilesMax = 64

// closeFiles releases every handle.
func (l *Log) closeFiles() {
	for _, s := range l.segments {
		s.closeFiles()
	}
	for _, f := range l.pendingFiles {
		f.file.Close()
	}
	l.pendingFiles = nil
}

// Close writes a producer snapshot at the log end and releases the log's
// files. It does not sync: a clean shutdown calls Flush first, and
// checkpoints RecoveryPoint when that completes. Flush callbacks still
// pending get ErrClosed.
func (l *Log) Close() error {
	if l.closed {
		return nil
	}
	var err error
	if l.failed == nil {
		err = l.writeSnapshot(l.EndOffset())
	}
	l.closed = true
	l.abortCompaction()
	l.closeFiles()
	l.failWaiters(ErrClosed)
	return err
}
