package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"slices"
	"strings"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// The raft log on disk. raft reads its log through a MemoryStorage; this
// file keeps that memory and the disk in step. The directory holds
//
//	snapshot            the latest snapshot, sealed (CRC-32C), replaced atomically
//	log-<first index>   log segments: frames of entries and hard states
//
// A frame is crc32c(4) length(4) kind(1) payload, the CRC covering length,
// kind and payload. Frames are only ever appended, so replaying a segment
// in order through MemoryStorage (whose Append drops the entries a later
// append overwrites) rebuilds what raft last asked to store. A snapshot
// starts a new segment holding the entries after it; older segments are
// removed once the new one is durable.
const (
	snapshotName  = "snapshot"
	segmentPrefix = "log-"
	// segmentTmpSuffix marks a segment being rolled; recovery ignores it.
	segmentTmpSuffix = ".tmp"
	frameHeaderSize  = 9
	frameBytesMax    = 64 << 20
	// segmentsMax bounds the segments a recovery replays.
	segmentsMax = 1024
	// segmentFramesMax bounds the frames a recovery reads from a segment.
	segmentFramesMax = 1 << 24
	// corruptScanBytesMax bounds how far past a bad frame recovery looks
	// for valid frames, to tell a torn tail from damage in the middle.
	corruptScanBytesMax = 1 << 20
)

const (
	frameEntry     byte = 1
	frameHardState byte = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks a snapshot or log that fails its checksum where a torn
// write cannot explain it.
var ErrCorrupt = errors.New("corrupt controller log")

// Recovery says what opening the log found.
type Recovery struct {
	SnapshotIndex uint64
	Segments      int
	Entries       int
	// TornBytes were cut from segment tails: writes a power loss tore.
	TornBytes int64
	// CorruptFrames counts bad frames followed by valid ones: damage a
	// torn tail does not explain. The log is cut at the first, as a torn
	// tail is, and the cut is reported.
	CorruptFrames int
}

// raftStore is raft's Storage: a MemoryStorage mirrored to files.
type raftStore struct {
	*raft.MemoryStorage
	fs  sim.FS
	dir string
	// segment is the segment being appended to.
	segment     sim.File
	segmentName string
	snapIndex   uint64
	hardState   pb.HardState
	recovery    Recovery
	// nameUnsynced is set when the segment (or its directory) was created
	// and its name is not yet durable: a synced file whose name a power
	// loss forgets is lost all the same.
	nameUnsynced bool
	// replayUnsynced is set from the open until the first sync: what
	// recovery read may be an earlier process's writes that no sync
	// covered (a killed process's page cache survives it), and the log
	// and the directory entries may not be durable either. Nothing may be
	// acknowledged on it until a sync has covered it.
	replayUnsynced bool
}

// openStore replays the directory into memory. bootstrap is the snapshot
// every controller of a new cluster starts from (its voters).
func openStore(fs sim.FS, dir string, bootstrap pb.Snapshot) (*raftStore, error) {
	s := &raftStore{MemoryStorage: raft.NewMemoryStorage(), fs: fs, dir: dir, nameUnsynced: true, replayUnsynced: true}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := s.ApplySnapshot(bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap snapshot: %w", err)
	}
	s.snapIndex = bootstrap.Metadata.Index
	if err := s.readSnapshot(); err != nil {
		return nil, err
	}
	names, err := s.segmentNames()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := s.replaySegment(name); err != nil {
			return nil, err
		}
	}
	s.recovery.Segments = len(names)
	s.recovery.SnapshotIndex = s.snapIndex
	last, _ := s.LastIndex()
	if s.hardState.Commit > last {
		// Frames are written entries first, so a surviving hard state
		// has its entries; this only guards the invariant raft asserts.
		s.hardState.Commit = last
	}
	if s.hardState.Commit < s.snapIndex {
		s.hardState.Commit = s.snapIndex
	}
	if err := s.SetHardState(s.hardState); err != nil {
		return nil, err
	}
	if len(names) > 0 {
		return s, s.openSegment(names[len(names)-1])
	}
	return s, s.openSegment(segmentName(s.snapIndex + 1))
}

func segmentName(first uint64) string { return fmt.Sprintf("%s%020d", segmentPrefix, first) }

func (s *raftStore) segmentNames() ([]string, error) {
	all, err := s.fs.List(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var names []string
	for _, name := range all {
		if strings.HasPrefix(name, segmentPrefix) && len(name) == len(segmentPrefix)+20 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) > segmentsMax {
		return nil, fmt.Errorf("%s: %d log segments, more than %d", s.dir, len(names), segmentsMax)
	}
	return names, nil
}

func (s *raftStore) readSnapshot() error {
	name := path.Join(s.dir, snapshotName)
	sealed, err := storage.ReadCheckpointFile(s.fs, name)
	if errors.Is(err, sim.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	data, err := storage.Unseal(name, sealed)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	var snap pb.Snapshot
	if err := snap.Unmarshal(data); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	if snap.Metadata.Index <= s.snapIndex {
		return nil
	}
	if err := s.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("apply %s: %w", name, err)
	}
	s.snapIndex = snap.Metadata.Index
	return nil
}

// replaySegment applies a segment's frames and cuts it after the last
// valid one.
func (s *raftStore) replaySegment(name string) error {
	full := path.Join(s.dir, name)
	f, err := s.fs.Open(full)
	if err != nil {
		return fmt.Errorf("open %s: %w", full, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("size of %s: %w", full, err)
	}
	off := int64(0)
	for frames := 0; off < size; frames++ {
		if frames >= segmentFramesMax {
			return fmt.Errorf("%s: more than %d frames", full, segmentFramesMax)
		}
		kind, payload, ok, err := readFrame(f, off, size)
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", full, off, err)
		}
		if !ok {
			break
		}
		if err := s.replayFrame(full, kind, payload); err != nil {
			return err
		}
		off += frameHeaderSize + int64(len(payload))
	}
	if off == size {
		return nil
	}
	corrupt, err := validFrameAfter(f, off, size)
	if err != nil {
		return fmt.Errorf("read %s after %d: %w", full, off, err)
	}
	if corrupt {
		s.recovery.CorruptFrames++
	}
	s.recovery.TornBytes += size - off
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", full, off, err)
	}
	return nil
}

func (s *raftStore) replayFrame(name string, kind byte, payload []byte) error {
	switch kind {
	case frameEntry:
		var e pb.Entry
		if err := e.Unmarshal(payload); err != nil {
			return fmt.Errorf("%w: %s: entry: %w", ErrCorrupt, name, err)
		}
		last, _ := s.LastIndex()
		if e.Index > last+1 {
			return fmt.Errorf("%w: %s: entry %d after last index %d", ErrCorrupt, name, e.Index, last)
		}
		s.recovery.Entries++
		return s.Append([]pb.Entry{e})
	case frameHardState:
		var hs pb.HardState
		if err := hs.Unmarshal(payload); err != nil {
			return fmt.Errorf("%w: %s: hard state: %w", ErrCorrupt, name, err)
		}
		s.hardState = hs
		return nil
	}
	return fmt.Errorf("%w: %s: frame kind %d", ErrCorrupt, name, kind)
}

// readFrame reads the frame at off; ok is false for a frame that is cut
// short or fails its checksum. A read that fails is an error, not a bad
// frame: the bytes may be intact on the platter, and cutting the log there
// would throw away entries this controller acknowledged.
func readFrame(f sim.File, off, size int64) (kind byte, payload []byte, ok bool, err error) {
	if size-off < frameHeaderSize {
		return 0, nil, false, nil
	}
	header := make([]byte, frameHeaderSize)
	if _, err := f.ReadAt(header, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, false, err
	}
	length := int64(binary.BigEndian.Uint32(header[4:]))
	if length > frameBytesMax || off+frameHeaderSize+length > size {
		return 0, nil, false, nil
	}
	body := make([]byte, 5+length)
	copy(body, header[4:])
	if _, err := f.ReadAt(body[5:], off+frameHeaderSize); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, false, err
	}
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(header) {
		return 0, nil, false, nil
	}
	return header[8], body[5:], true, nil
}

// validFrameAfter reports whether a valid frame starts anywhere in the
// bytes after a bad one (within a bound).
func validFrameAfter(f sim.File, bad, size int64) (bool, error) {
	end := min(size, bad+corruptScanBytesMax)
	for off := bad + 1; off+frameHeaderSize <= end; off++ {
		kind, _, ok, err := readFrame(f, off, size)
		if err != nil {
			return false, err
		}
		if ok && (kind == frameEntry || kind == frameHardState) {
			return true, nil
		}
	}
	return false, nil
}

func encodeFrame(kind byte, payload []byte) []byte {
	b := make([]byte, frameHeaderSize+len(payload))
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	b[8] = kind
	copy(b[frameHeaderSize:], payload)
	binary.BigEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
	return b
}

func (s *raftStore) openSegment(name string) error {
	full := path.Join(s.dir, name)
	f, err := s.fs.Open(full)
	if errors.Is(err, sim.ErrNotExist) {
		f, err = s.fs.Create(full)
		s.nameUnsynced = true
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", full, err)
	}
	if s.segment != nil {
		s.segment.Close()
	}
	s.segment, s.segmentName = f, name
	return nil
}

// appendFrames writes entries and a hard state to the current segment and
// to memory. The caller syncs.
func (s *raftStore) appendFrames(entries []pb.Entry, hs pb.HardState) error {
	if err := s.writeOnly(entries, hs); err != nil {
		return err
	}
	if err := s.Append(entries); err != nil {
		return fmt.Errorf("append entries: %w", err)
	}
	if !raft.IsEmptyHardState(hs) {
		s.hardState = hs
		return s.SetHardState(hs)
	}
	return nil
}

// mustSync reports whether a sync is due though nothing new was written:
// the log as recovered was never synced by this process.
func (s *raftStore) mustSync() bool { return s.replayUnsynced || s.nameUnsynced }

// sync makes the current segment durable, and its name if it is new.
// Only the current segment can hold unsynced frames: a segment is rolled
// only after its entries were synced and applied.
func (s *raftStore) sync(done func(error)) {
	name := s.segmentName
	s.segment.Sync(func(err error) {
		if err != nil {
			done(fmt.Errorf("sync %s: %w", name, err))
			return
		}
		s.replayUnsynced = false
		if !s.nameUnsynced {
			done(nil)
			return
		}
		s.fs.SyncDir(s.dir, func(err error) {
			if err != nil {
				done(fmt.Errorf("sync %s: %w", s.dir, err))
				return
			}
			s.nameUnsynced = false
			done(nil)
		})
	})
}

// installSnapshot makes snap the log's base: the snapshot file is written
// durably, then a new segment holding the hard state and the entries after
// the snapshot replaces the old segments. Memory changes at once; done is
// called when the disk has caught up. Nothing else may write meanwhile.
func (s *raftStore) installSnapshot(snap pb.Snapshot, fromLeader bool, done func(error)) {
	if fromLeader {
		err := s.ApplySnapshot(snap)
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			done(nil) // what it holds is already here
			return
		}
		if err != nil {
			done(fmt.Errorf("apply snapshot at %d: %w", snap.Metadata.Index, err))
			return
		}
	}
	data, err := snap.Marshal()
	sim.Assert(err == nil, "marshal snapshot: %v", err)
	name := path.Join(s.dir, snapshotName)
	storage.ReplaceFile(s.fs, name, storage.Seal(data), func(err error) {
		if err != nil {
			done(err)
			return
		}
		s.snapIndex = snap.Metadata.Index
		s.rollSegment(done)
	})
}

// createSnapshot snapshots the state at applied index i and compacts the
// log below it.
func (s *raftStore) createSnapshot(i uint64, cs pb.ConfState, data []byte, done func(error)) {
	snap, err := s.CreateSnapshot(i, &cs, data)
	if err != nil {
		done(fmt.Errorf("create snapshot at %d: %w", i, err))
		return
	}
	if err := s.Compact(i); err != nil && !errors.Is(err, raft.ErrCompacted) {
		done(fmt.Errorf("compact at %d: %w", i, err))
		return
	}
	s.installSnapshot(snap, false, done)
}

// rollSegment starts a segment after the snapshot holding the entries
// memory still has past it and the hard state. It is written under a
// temporary name, synced and renamed into place (replacing a segment of
// that name an interrupted roll left), and only once that is durable are
// the older segments removed: at every point a crash leaves the synced
// entries on disk under some segment's name.
func (s *raftStore) rollSegment(done func(error)) {
	old, err := s.segmentNames()
	if err != nil {
		done(err)
		return
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	var entries []pb.Entry
	if last >= first {
		if entries, err = s.Entries(first, last+1, math.MaxUint64); err != nil {
			done(fmt.Errorf("read entries %d..%d: %w", first, last, err))
			return
		}
	}
	name := segmentName(first)
	full := path.Join(s.dir, name)
	tmp := full + segmentTmpSuffix
	f, err := s.fs.Create(tmp)
	if err == nil {
		_, err = f.Append(encodeFrames(entries, s.hardState))
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		done(fmt.Errorf("write %s: %w", tmp, err))
		return
	}
	f.Sync(func(err error) {
		f.Close()
		if err == nil {
			err = s.fs.Rename(tmp, full)
		}
		if err != nil {
			done(fmt.Errorf("roll to %s: %w", name, err))
			return
		}
		s.fs.SyncDir(s.dir, func(err error) {
			if err != nil {
				done(fmt.Errorf("sync %s: %w", s.dir, err))
				return
			}
			s.removeSegments(old, name, done)
		})
	})
}

// removeSegments removes the named segments but keep, makes that durable,
// and switches appends to keep.
func (s *raftStore) removeSegments(names []string, keep string, done func(error)) {
	for _, n := range names {
		if n == keep {
			continue
		}
		if err := s.fs.Remove(path.Join(s.dir, n)); err != nil {
			done(fmt.Errorf("remove %s: %w", n, err))
			return
		}
	}
	if err := s.openSegment(keep); err != nil {
		done(err)
		return
	}
	s.fs.SyncDir(s.dir, func(err error) {
		if err != nil {
			err = fmt.Errorf("sync %s: %w", s.dir, err)
		}
		done(err)
	})
}

// encodeFrames frames entries and, unless empty, a hard state.
func encodeFrames(entries []pb.Entry, hs pb.HardState) []byte {
	var buf []byte
	for i := range entries {
		data, err := entries[i].Marshal()
		sim.Assert(err == nil, "marshal entry: %v", err)
		buf = append(buf, encodeFrame(frameEntry, data)...)
	}
	if !raft.IsEmptyHardState(hs) {
		data, err := hs.Marshal()
		sim.Assert(err == nil, "marshal hard state: %v", err)
		buf = append(buf, encodeFrame(frameHardState, data)...)
	}
	return buf
}

// writeOnly appends frames to the segment without touching memory.
func (s *raftStore) writeOnly(entries []pb.Entry, hs pb.HardState) error {
	buf := encodeFrames(entries, hs)
	if len(buf) == 0 {
		return nil
	}
	if _, err := s.segment.Append(buf); err != nil {
		return fmt.Errorf("append to %s: %w", s.segmentName, err)
	}
	return nil
}

func (s *raftStore) close() {
	if s.segment != nil {
		s.segment.Close()
		s.segment = nil
	}
}
