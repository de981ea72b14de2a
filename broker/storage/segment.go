package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// batchInfo is what the log keeps of a batch header: enough to index it,
// track producers and epochs, and find the next batch.
type batchInfo struct {
	pos           int64
	size          int
	base, last    int64
	leaderEpoch   int32
	maxTimestamp  int64
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	lastSequence  int32
	records       int32
}

func infoOf(b record.Batch, pos int64) batchInfo {
	return batchInfo{
		pos: pos, size: int(b.Size()), base: b.BaseOffset(), last: b.LastOffset(),
		leaderEpoch: b.PartitionLeaderEpoch(), maxTimestamp: b.MaxTimestamp(),
		producerID: b.ProducerID(), producerEpoch: b.ProducerEpoch(),
		baseSequence: b.BaseSequence(), lastSequence: b.LastSequence(), records: b.RecordCount(),
	}
}

// Damage is a byte range of a segment that holds corrupt data recovery
// or a read found below the recovery point. Its offsets are never served:
// reads of them fail with ErrCorruptLog.
type Damage struct {
	Segment     string
	Position    int64
	EndPosition int64
	// FirstOffset..LastOffset are the offsets the range stands for, as
	// far as the batches around it tell (empty when LastOffset <
	// FirstOffset).
	FirstOffset int64
	LastOffset  int64
	Reason      string
}

// String names the segment, the bytes and the offsets.
func (d Damage) String() string {
	return fmt.Sprintf("%s bytes %d..%d (offsets %d..%d): %s", d.Segment, d.Position, d.EndPosition, d.FirstOffset, d.LastOffset, d.Reason)
}

// segment is one <base>.log file and its in-memory indexes.
type segment struct {
	base      int64
	name      string
	file      sim.File
	sizeBytes int64
	// next is the offset after the segment's last batch (base when
	// empty).
	next                 int64
	idx                  segmentIndex
	maxTimestamp         int64
	offsetOfMaxTimestamp int64
	last                 batchInfo
	hasLast              bool
	// createdMono is when the segment got its first batch (or was
	// opened), for SegmentAge.
	createdMono time.Duration
	// damage lists corrupt ranges, sorted by position.
	damage []Damage
	// closed segments have rolled: their index files exist.
	closed bool
	// logDirty: bytes written since the last flush round began.
	logDirty bool
	// indexFiles are index files written and not yet synced.
	indexFiles []sim.File
	// syncing counts syncs in flight on the segment's files; a deleted
	// segment keeps its handles until they complete.
	syncing         int
	closeWhenSynced bool
	// headerBuf receives batch headers: a header read through the File
	// interface escapes, and a fresh one per read was a seventh of the
	// simulator's allocations. Reads run one at a time on the loop.
	headerBuf [record.HeaderBytes]byte
}

func newSegment(dir string, base int64, file sim.File, sizeBytes int64, now time.Duration) *segment {
	return &segment{
		base: base, name: segmentFile(dir, base, suffixLog), file: file, sizeBytes: sizeBytes, next: base,
		maxTimestamp: -1, offsetOfMaxTimestamp: base, createdMono: now,
	}
}

// account updates the segment's bookkeeping for a batch written at h.pos.
func (s *segment) account(h batchInfo, intervalBytes int) {
	if h.maxTimestamp > s.maxTimestamp {
		s.maxTimestamp = h.maxTimestamp
		s.offsetOfMaxTimestamp = h.last
	}
	s.idx.add(s.base, h, s.maxTimestamp, s.offsetOfMaxTimestamp, intervalBytes)
	s.next = h.last + 1
	s.last, s.hasLast = h, true
	s.sizeBytes = max(s.sizeBytes, h.pos+int64(h.size))
}

// resetBookkeeping forgets everything learnt from the segment's batches,
// before a rescan.
func (s *segment) resetBookkeeping() {
	s.idx = segmentIndex{}
	s.next = s.base
	s.maxTimestamp, s.offsetOfMaxTimestamp = -1, s.base
	s.last, s.hasLast = batchInfo{}, false
}

// damageAt returns the damaged range holding position, if any.
func (s *segment) damageAt(position int64) *Damage {
	i := sort.Search(len(s.damage), func(i int) bool { return s.damage[i].EndPosition > position })
	if i < len(s.damage) && s.damage[i].Position <= position {
		return &s.damage[i]
	}
	return nil
}

// firstDamageFrom returns the first damaged range that ends after
// position, if any.
func (s *segment) firstDamageFrom(position int64) *Damage {
	i := sort.Search(len(s.damage), func(i int) bool { return s.damage[i].EndPosition > position })
	if i < len(s.damage) {
		return &s.damage[i]
	}
	return nil
}

func (s *segment) addDamage(d Damage) {
	i := sort.Search(len(s.damage), func(i int) bool { return s.damage[i].Position >= d.Position })
	if i < len(s.damage) && s.damage[i].Position == d.Position {
		s.damage[i] = d
		return
	}
	s.damage = append(s.damage, Damage{})
	copy(s.damage[i+1:], s.damage[i:])
	s.damage[i] = d
}

// dropDamageFrom forgets damaged ranges at or after position (truncated).
func (s *segment) dropDamageFrom(position int64) {
	i := sort.Search(len(s.damage), func(i int) bool { return s.damage[i].Position >= position })
	s.damage = s.damage[:i]
}

// readAt fills p from position off, which must lie inside the segment.
func (s *segment) readAt(p []byte, off int64) error {
	n, err := s.file.ReadAt(p, off)
	if n == len(p) && (err == nil || errors.Is(err, io.EOF)) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s at %d: %d of %d bytes: %w", s.name, off, n, len(p), io.ErrUnexpectedEOF)
	}
	return storageError(fmt.Sprintf("read %s at %d", s.name, off), err)
}

// isIOError reports a read that failed for the disk's sake rather than the
// data's: such a failure is reported, not recorded as damage.
func isIOError(err error) bool { return errors.Is(err, ErrStorage) }

// header reads and checks the header of the batch at position: a frame
// that fits the segment and sane fields. It does not read the records or
// check the CRC.
func (s *segment) header(position int64) (batchInfo, error) {
	if position+record.HeaderBytes > s.sizeBytes {
		return batchInfo{}, fmt.Errorf("%w: %d bytes at %d cannot hold a batch header", record.ErrPartial, s.sizeBytes-position, position)
	}
	h := s.headerBuf[:]
	if err := s.readAt(h, position); err != nil {
		return batchInfo{}, err
	}
	b := record.Batch(h)
	if err := b.CheckHeader(); err != nil {
		return batchInfo{}, err
	}
	if position+b.Size() > s.sizeBytes {
		return batchInfo{}, fmt.Errorf("%w: a %d-byte batch at %d overruns the segment's %d bytes", record.ErrPartial, b.Size(), position, s.sizeBytes)
	}
	return infoOf(b, position), nil
}

// checkPlacement checks a batch against its place in the segment: offsets
// at or after expected and below limit (the next segment's base),
// relative offsets that fit the index.
func (s *segment) checkPlacement(h batchInfo, expected, limit int64) error {
	if h.base < expected {
		return fmt.Errorf("%w: batch at %d starts at offset %d, before %d", record.ErrCorrupt, h.pos, h.base, expected)
	}
	if h.last >= limit {
		return fmt.Errorf("%w: batch at %d ends at offset %d, in the next segment's range from %d", record.ErrCorrupt, h.pos, h.last, limit)
	}
	if h.last-s.base > math.MaxUint32 {
		return fmt.Errorf("%w: batch at %d ends at offset %d, too far from the segment base %d", record.ErrCorrupt, h.pos, h.last, s.base)
	}
	return nil
}

// checkJump looks at the batch after h when h's base offset or leader
// epoch jumps ahead of the batches before it (expected, lastEpoch): a new
// leader's epoch, or a compacted gap, is followed by batches further on,
// while a bit flipped in those fields, which the CRC does not cover, is
// followed by a batch that falls back to where the log was. Blaming h,
// rather than the batch after it, fences the batch that is wrong and
// lets a replica cut its log where the bad batch starts.
func (s *segment) checkJump(h batchInfo, expected int64, lastEpoch int32) error {
	jumpsOffset := h.base > expected
	jumpsEpoch := lastEpoch >= 0 && h.leaderEpoch > lastEpoch
	if !jumpsOffset && !jumpsEpoch {
		return nil
	}
	next, err := s.header(h.pos + int64(h.size))
	if err != nil {
		return nil // the segment's end, or damage the scan comes to next
	}
	if jumpsOffset && expected <= next.base && next.base <= h.last {
		return fmt.Errorf("%w: batch at %d holds offsets %d..%d after %d, and the next batch falls back to %d",
			record.ErrCorrupt, h.pos, h.base, h.last, expected-1, next.base)
	}
	if jumpsEpoch && lastEpoch <= next.leaderEpoch && next.leaderEpoch < h.leaderEpoch {
		return fmt.Errorf("%w: batch at %d has leader epoch %d after %d, and the next batch falls back to %d",
			record.ErrCorrupt, h.pos, h.leaderEpoch, lastEpoch, next.leaderEpoch)
	}
	return nil
}

// scanner reads a segment's batches in order through a read-ahead buffer,
// for recovery and compaction.
type scanner struct {
	s       *segment
	buf     []byte
	bufFrom int64
	// verifyCRC is off only under the planted bug faults.BugSkipCRC.
	verifyCRC bool
}

const scanChunkBytes = 256 << 10

// batch returns the whole, checked batch at position. The bytes alias the
// scanner's buffer until the next call.
func (sc *scanner) batch(position int64) (record.Batch, error) {
	h, err := sc.s.header(position)
	if err != nil {
		return nil, err
	}
	raw, err := sc.bytes(position, h.size)
	if err != nil {
		return nil, err
	}
	b := record.Batch(raw)
	if sc.verifyCRC {
		err = b.Verify()
	} else {
		err = b.CheckStructure()
	}
	return b, err
}

// bytes returns n bytes at position, reading ahead.
func (sc *scanner) bytes(position int64, n int) ([]byte, error) {
	if position >= sc.bufFrom && position+int64(n) <= sc.bufFrom+int64(len(sc.buf)) {
		return sc.buf[position-sc.bufFrom:][:n], nil
	}
	want := int64(max(n, scanChunkBytes))
	want = min(want, sc.s.sizeBytes-position)
	if want < int64(n) {
		return nil, fmt.Errorf("%w: %d bytes at %d past the end of %s", record.ErrPartial, n, position, sc.s.name)
	}
	if int64(cap(sc.buf)) < want {
		sc.buf = make([]byte, want)
	}
	sc.buf = sc.buf[:want]
	if err := sc.s.readAt(sc.buf, position); err != nil {
		sc.buf = sc.buf[:0]
		return nil, err
	}
	sc.bufFrom = position
	return sc.buf[:n], nil
}

// resync looks for the first position after bad where a valid batch
// starts with an offset at or after expected: where good data resumes
// after a corrupt range. It reads the rest of the segment at most once.
func (sc *scanner) resync(bad, expected int64) (batchInfo, bool, error) {
	for p := bad + 1; p+record.HeaderBytes <= sc.s.sizeBytes; p++ {
		window, err := sc.bytes(p, record.HeaderBytes)
		if err != nil {
			return batchInfo{}, false, err
		}
		if window[16] != record.Magic {
			continue
		}
		hb := record.Batch(window)
		if hb.CheckHeader() != nil || hb.BaseOffset() < expected || p+hb.Size() > sc.s.sizeBytes {
			continue
		}
		b, err := sc.batch(p)
		if err != nil {
			if isIOError(err) {
				return batchInfo{}, false, err
			}
			continue
		}
		return infoOf(b, p), true, nil
	}
	return batchInfo{}, false, nil
}

// writeIndexFiles writes the segment's index files in full (on roll and
// after recovery rebuilt them) and keeps their handles until a flush round
// syncs them.
func (s *segment) writeIndexFiles(fs sim.FS, dir string) error {
	for _, f := range []struct {
		suffix string
		data   []byte
	}{
		{suffixIndex, encodeOffsetIndex(s.idx.offsets)},
		{suffixTimeIndex, encodeTimeIndex(s.idx.times)},
	} {
		name := segmentFile(dir, s.base, f.suffix)
		file, err := fs.Create(name)
		if err != nil {
			return storageError("create "+name, err)
		}
		if len(f.data) > 0 {
			if _, err := file.WriteAt(f.data, 0); err != nil {
				file.Close()
				return storageError("write "+name, err)
			}
		}
		s.indexFiles = append(s.indexFiles, file)
	}
	return nil
}

// closeIndexFilesFrom closes the index handles from the n-th on: those a
// failed roll made, which no sync has taken yet.
func (s *segment) closeIndexFilesFrom(n int) {
	for _, f := range s.indexFiles[n:] {
		f.Close()
	}
	clear(s.indexFiles[n:])
	s.indexFiles = s.indexFiles[:n]
}

// release closes the segment's handles once no sync needs them.
func (s *segment) release() {
	if s.syncing > 0 {
		s.closeWhenSynced = true
		return
	}
	s.closeFiles()
}

// closeFiles releases the segment's handles.
func (s *segment) closeFiles() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	for _, f := range s.indexFiles {
		f.Close()
	}
	s.indexFiles = nil
}

// removeFiles deletes the segment's files; missing ones are fine.
func removeSegmentFiles(fs sim.FS, dir string, base int64) error {
	for _, suffix := range []string{suffixLog, suffixIndex, suffixTimeIndex} {
		name := segmentFile(dir, base, suffix)
		if err := fs.Remove(name); err != nil && !errors.Is(err, sim.ErrNotExist) {
			return storageError("remove "+name, err)
		}
	}
	return nil
}

// loadIndexFiles reads the segment's index files, checking them against
// the log's size. Any problem is an error and the caller rebuilds.
func (s *segment) loadIndexFiles(fs sim.FS, dir string) error {
	offsets, err := readSmallFile(fs, segmentFile(dir, s.base, suffixIndex), s.sizeBytes)
	if err != nil {
		return err
	}
	times, err := readSmallFile(fs, segmentFile(dir, s.base, suffixTimeIndex), s.sizeBytes)
	if err != nil {
		return err
	}
	if s.idx.offsets, err = decodeOffsetIndex(offsets, s.sizeBytes); err != nil {
		return err
	}
	if s.idx.times, err = decodeTimeIndex(times); err != nil {
		return err
	}
	return nil
}

// readSmallFile reads a whole file of at most limit bytes.
func readSmallFile(fs sim.FS, name string, limit int64) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readWhole(f, limit)
}

func baseName(name string) string { return path.Base(name) }
