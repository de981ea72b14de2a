package storage

import (
	"errors"
	"fmt"

	"github.com/sluice-sim/sluice/broker/record"
)

// ReadResult is what a read returns.
type ReadResult struct {
	// Data holds whole batches, concatenated, each verified. It is the
	// scratch buffer ReadInto was given when that was large enough, and
	// otherwise a new buffer; the caller owns it.
	Data []byte
	// Batches is how many batches Data holds.
	Batches int
	// NextOffset is the offset after the last batch returned, or the
	// offset asked for when nothing was.
	NextOffset     int64
	LogStartOffset int64
	LogEndOffset   int64
}

// Read returns whole batches from the one holding offset (or the first
// after it, in a compacted log), up to maxBytes, but at least one batch
// however large (Kafka's rule, KIP-74), and none holding offsets at or past
// maxOffset (a consumer's high watermark; pass EndOffset for a follower).
// Batches come from one segment. Reading at the log end or at maxOffset
// returns nothing; below the log start or past its end is
// ErrOffsetOutOfRange. Every batch returned has passed its CRC check: a
// damaged range is ErrCorruptLog, never bytes.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64) (ReadResult, error) {
	return l.ReadInto(nil, offset, maxBytes, maxOffset)
}

// ReadInto is Read reading into scratch when its capacity holds what is
// read, so that a caller reusing its buffers reads without allocating (or
// zeroing) a buffer per read.
func (l *Log) ReadInto(scratch []byte, offset int64, maxBytes int, maxOffset int64) (ReadResult, error) {
	if err := l.usable(); err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{NextOffset: offset, LogStartOffset: l.StartOffset(), LogEndOffset: l.EndOffset()}
	if offset < l.StartOffset() || offset > l.EndOffset() {
		return res, fmt.Errorf("read %s at %d: %w: the log holds %d..%d", l.dir, offset, ErrOffsetOutOfRange, l.StartOffset(), l.EndOffset())
	}
	maxOffset = min(maxOffset, l.EndOffset())
	i := l.segmentFor(offset)
	for i < len(l.segments) && offset >= l.segments[i].next {
		i++ // offset lies in a gap after segment i
	}
	if offset >= maxOffset || i == len(l.segments) {
		return res, nil
	}
	s := l.segments[i]
	h, err := l.seek(s, offset)
	if err != nil || h.size == 0 {
		return res, err
	}
	if h.last >= maxOffset {
		return res, nil
	}
	return l.collect(scratch, s, h, maxBytes, maxOffset, res)
}

// seek finds the first batch of s whose last offset is at least offset,
// starting from the offset index. It fails with ErrCorruptLog if offset
// lies in a damaged range; a zero-size result means s holds no such batch.
func (l *Log) seek(s *segment, offset int64) (batchInfo, error) {
	var found batchInfo
	var corrupt error
	var corruptAt Damage
	err := l.walk(s, l.seekStart(s, offset),
		func(d Damage) bool {
			if offset <= d.LastOffset {
				corrupt, corruptAt = corruptRead(offset, d), d
				return false
			}
			return true
		},
		func(h batchInfo) bool {
			if h.last >= offset {
				found = h
				return false
			}
			return true
		})
	if err != nil {
		return batchInfo{}, fmt.Errorf("read %s at %d: %w", l.dir, offset, err)
	}
	if corrupt != nil && l.onDamage != nil {
		l.onDamage(corruptAt)
	}
	return found, corrupt
}

// readEnd is the position after the last batch a read served and the
// offset that batch ended at.
type readEnd struct {
	s      *segment
	offset int64
	pos    int64
}

// readEndsMax bounds the read positions a log remembers: a partition's
// followers and a few consumers.
const readEndsMax = 8

// seekStart is where a walk to offset begins: the index's entry, or where
// a recent read stopped when offset lies at or past it (the nearest such
// end). The remembered position is trusted only if a batch header starting
// exactly at the remembered offset sits there: offsets grow through a
// segment, so no earlier batch holds offset, whatever truncation,
// compaction or reloading did since.
func (l *Log) seekStart(s *segment, offset int64) int64 {
	start := s.idx.lookup(s.base, offset, l.indexOffByOne)
	best := -1
	for i := range l.readEnds {
		e := &l.readEnds[i]
		if e.s != s || e.offset > offset || e.pos <= start || e.pos >= s.sizeBytes {
			continue
		}
		if best < 0 || e.offset > l.readEnds[best].offset {
			best = i
		}
	}
	if best < 0 {
		return start
	}
	e := l.readEnds[best]
	if s.damageAt(e.pos) != nil {
		return start
	}
	if h, err := s.header(e.pos); err != nil || h.base != e.offset {
		return start
	}
	return e.pos
}

// noteReadEnd remembers where a read that began at from stopped: it
// replaces the end the read began at, so a reader going on keeps one slot,
// or else the oldest slot taken.
func (l *Log) noteReadEnd(from int64, end readEnd) {
	for i := range l.readEnds {
		if e := &l.readEnds[i]; e.s == end.s && e.offset == from {
			*e = end
			return
		}
	}
	l.readEnds[l.readEndNext] = end
	l.readEndNext = (l.readEndNext + 1) % readEndsMax
}

func corruptRead(offset int64, d Damage) error {
	return fmt.Errorf("read at %d: %w: %s", offset, ErrCorruptLog, d)
}

// collect reads batches from first on, in one read, and verifies each:
// the check costs a CRC32C pass over bytes just read, a few percent of a
// consume (DESIGN.md, "Corruption on the read path").
func (l *Log) collect(scratch []byte, s *segment, first batchInfo, maxBytes int, maxOffset int64, res ReadResult) (ReadResult, error) {
	want := max(int64(maxBytes), int64(first.size))
	want = min(want, s.sizeBytes-first.pos)
	if d := s.firstDamageFrom(first.pos); d != nil {
		want = min(want, d.Position-first.pos)
	}
	var buf []byte
	if int64(cap(scratch)) >= want {
		buf = scratch[:want]
	} else {
		buf = make([]byte, want)
	}
	if err := s.readAt(buf, first.pos); err != nil {
		return res, fmt.Errorf("read %s at %d: %w", l.dir, res.NextOffset, err)
	}
	n := 0
	prev := batchInfo{last: res.NextOffset - 1, leaderEpoch: -1}
	for n < len(buf) {
		b, _, err := record.Next(buf[n:])
		if errors.Is(err, record.ErrPartial) && n > 0 {
			break
		}
		var h batchInfo
		if err == nil {
			h = infoOf(b, first.pos+int64(n))
			if !l.skipCRC {
				err = b.VerifyChecksum()
				if err == nil {
					err = l.checkUnsummed(s, h, prev)
				}
			}
		}
		if err != nil {
			d, derr := l.noteDamage(s, first.pos+int64(n), err.Error())
			if derr != nil {
				return res, derr
			}
			if n == 0 {
				return res, corruptRead(res.NextOffset, d)
			}
			break
		}
		if b.LastOffset() >= maxOffset || (n > 0 && n+len(b) > maxBytes) {
			break
		}
		n += len(b)
		res.Batches++
		res.NextOffset = b.NextOffset()
		prev = h
	}
	res.Data = buf[:n] // the capacity stays, for a caller reusing the buffer
	if n > 0 {
		l.noteReadEnd(first.base, readEnd{s: s, offset: res.NextOffset, pos: first.pos + int64(n)})
	}
	return res, nil
}

// checkUnsummed checks the header fields a batch's CRC does not cover
// (Kafka's checksum starts at the attributes): the base offset and the
// leader epoch. A flipped bit there passes the CRC, and a replica that
// served it would hand out records at offsets or under an epoch they
// never had. Offsets grow through a segment and stay below its end, and
// epochs never fall along a log nor pass the newest one the log knows;
// a batch that jumps ahead of the one before it must not be followed by
// one that falls back (checkJump). prev is the batch read before this
// one; for the first, its last offset is the one before the offset asked
// for, and its epoch -1.
func (l *Log) checkUnsummed(s *segment, h batchInfo, prev batchInfo) error {
	switch latest := l.epochs.latestEpoch(); {
	case h.base < s.base || h.last >= s.next || (prev.leaderEpoch >= 0 && h.base <= prev.last):
		return fmt.Errorf("%w: batch at %d holds offsets %d..%d, outside %d..%d after %d",
			record.ErrCorrupt, h.pos, h.base, h.last, s.base, s.next-1, prev.last)
	case h.leaderEpoch < prev.leaderEpoch || (latest >= 0 && h.leaderEpoch > latest):
		return fmt.Errorf("%w: batch at %d has leader epoch %d after %d, the log's newest being %d",
			record.ErrCorrupt, h.pos, h.leaderEpoch, prev.leaderEpoch, latest)
	}
	return s.checkJump(h, prev.last+1, prev.leaderEpoch)
}

// OffsetForTime answers ListOffsets by timestamp: the offset and
// timestamp of the first record whose timestamp is at least ts. found is
// false when no record is that recent.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, found bool, err error) {
	if err := l.usable(); err != nil {
		return 0, 0, false, err
	}
	for _, s := range l.segments {
		if s.maxTimestamp < ts {
			continue
		}
		h, err := l.seek(s, s.idx.timeLookup(s.base, ts))
		for err == nil && h.size > 0 {
			if h.maxTimestamp >= ts {
				var b record.Batch
				if b, err = l.readBatch(s, h); err != nil {
					break
				}
				records, rerr := b.Records()
				if rerr != nil {
					d, derr := l.noteDamage(s, h.pos, rerr.Error())
					if derr != nil {
						return 0, 0, false, derr
					}
					return 0, 0, false, corruptRead(h.base, d)
				}
				for _, r := range records {
					if r.Timestamp >= ts {
						return r.Offset, r.Timestamp, true, nil
					}
				}
			}
			h, err = l.seek(s, h.last+1)
		}
		if err != nil {
			return 0, 0, false, err
		}
	}
	return 0, 0, false, nil
}

// readBatch reads the whole batch h describes.
func (l *Log) readBatch(s *segment, h batchInfo) (record.Batch, error) {
	buf := make([]byte, h.size)
	if err := s.readAt(buf, h.pos); err != nil {
		return nil, err
	}
	return record.Batch(buf), nil
}
