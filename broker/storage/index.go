package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// The sparse indexes of a segment, as Kafka lays them out: the offset
// index maps the last offset of a batch (relative to the segment's base,
// u32) to the batch's position (u32); the time index maps the largest
// timestamp seen so far (i64) to the last offset of the batch that first
// reached it (relative, u32). An entry is added when more than
// IndexIntervalBytes of log lie since the previous one.
//
// The active segment's indexes live in memory only and are rebuilt from
// the log at recovery (the active segment always lies at or after the
// recovery point's segment); a segment's index files are written when it
// rolls and synced with it.
const (
	offsetEntryBytes = 8
	timeEntryBytes   = 12
)

type offsetEntry struct {
	relativeOffset uint32
	position       uint32
}

type timeEntry struct {
	timestamp      int64
	relativeOffset uint32
}

// segmentIndex is both indexes of one segment.
type segmentIndex struct {
	offsets []offsetEntry
	times   []timeEntry
	// bytesSinceEntry counts log bytes since the last offset entry.
	bytesSinceEntry int64
}

// add accounts for a batch appended at position; it follows Kafka's
// LogSegment.append, so the first batch of a segment is never indexed.
func (x *segmentIndex) add(base int64, h batchInfo, maxTimestampSoFar, offsetOfMaxTimestamp int64, intervalBytes int) {
	if x.bytesSinceEntry > int64(intervalBytes) {
		x.offsets = append(x.offsets, offsetEntry{relativeOffset: relative(base, h.last), position: uint32(h.pos)})
		x.maybeAddTime(base, maxTimestampSoFar, offsetOfMaxTimestamp)
		x.bytesSinceEntry = 0
	}
	x.bytesSinceEntry += int64(h.size)
}

// gapBytesMin is the least distance in log bytes between consecutive
// offset entries, the first counted from the segment's start; 0 when there
// is none.
func (x *segmentIndex) gapBytesMin() int64 {
	gapMin, previous := int64(0), int64(0)
	for i, e := range x.offsets {
		if gap := int64(e.position) - previous; i == 0 || gap < gapMin {
			gapMin = gap
		}
		previous = int64(e.position)
	}
	return gapMin
}

// maybeAddTime appends a time entry if the timestamp is new.
func (x *segmentIndex) maybeAddTime(base, timestamp, offset int64) {
	if timestamp < 0 {
		return
	}
	if n := len(x.times); n > 0 && x.times[n-1].timestamp >= timestamp {
		return
	}
	x.times = append(x.times, timeEntry{timestamp: timestamp, relativeOffset: relative(base, offset)})
}

func relative(base, offset int64) uint32 {
	d := offset - base
	if d < 0 || d > math.MaxUint32 {
		panic(fmt.Sprintf("storage: offset %d not relative to segment base %d", offset, base))
	}
	return uint32(d)
}

// lookup returns the position to scan from for target: that of the
// largest entry whose offset is at most target, or 0. The planted bug
// faults.BugIndexOffByOne takes the entry after it, so the scan starts one
// batch too far and skips records.
func (x *segmentIndex) lookup(base, target int64, offByOne bool) int64 {
	i := sort.Search(len(x.offsets), func(i int) bool { return base+int64(x.offsets[i].relativeOffset) > target })
	// offsets[i-1] is the largest entry <= target.
	if offByOne && i < len(x.offsets) {
		i++
	}
	if i == 0 {
		return 0
	}
	return int64(x.offsets[i-1].position)
}

// timeLookup returns the offset to start a timestamp search from: that
// of the largest time entry not above timestamp, or base.
func (x *segmentIndex) timeLookup(base, timestamp int64) int64 {
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].timestamp > timestamp })
	if i == 0 {
		return base
	}
	return base + int64(x.times[i-1].relativeOffset)
}

// truncateTo drops the entries of batches at or after position.
func (x *segmentIndex) truncateTo(base int64, position int64, firstDroppedOffset int64) {
	n := sort.Search(len(x.offsets), func(i int) bool { return int64(x.offsets[i].position) >= position })
	x.offsets = x.offsets[:n]
	m := sort.Search(len(x.times), func(i int) bool { return base+int64(x.times[i].relativeOffset) >= firstDroppedOffset })
	x.times = x.times[:m]
}

func encodeOffsetIndex(entries []offsetEntry) []byte {
	buf := make([]byte, 0, len(entries)*offsetEntryBytes)
	for _, e := range entries {
		buf = binary.BigEndian.AppendUint32(buf, e.relativeOffset)
		buf = binary.BigEndian.AppendUint32(buf, e.position)
	}
	return buf
}

func encodeTimeIndex(entries []timeEntry) []byte {
	buf := make([]byte, 0, len(entries)*timeEntryBytes)
	for _, e := range entries {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.timestamp))
		buf = binary.BigEndian.AppendUint32(buf, e.relativeOffset)
	}
	return buf
}

// decodeOffsetIndex reads an offset index file and checks what can be
// checked without the log: whole entries, strictly increasing offsets and
// positions, positions inside the log.
func decodeOffsetIndex(data []byte, logBytes int64) ([]offsetEntry, error) {
	if len(data)%offsetEntryBytes != 0 {
		return nil, fmt.Errorf("offset index of %d bytes is not whole entries", len(data))
	}
	entries := make([]offsetEntry, len(data)/offsetEntryBytes)
	for i := range entries {
		e := offsetEntry{relativeOffset: binary.BigEndian.Uint32(data[i*offsetEntryBytes:]), position: binary.BigEndian.Uint32(data[i*offsetEntryBytes+4:])}
		if i > 0 && (e.relativeOffset <= entries[i-1].relativeOffset || e.position <= entries[i-1].position) {
			return nil, fmt.Errorf("offset index entry %d (%d at %d) does not follow (%d at %d)", i, e.relativeOffset, e.position, entries[i-1].relativeOffset, entries[i-1].position)
		}
		if int64(e.position) >= logBytes {
			return nil, fmt.Errorf("offset index entry %d points at %d, past the log's %d bytes", i, e.position, logBytes)
		}
		entries[i] = e
	}
	return entries, nil
}

func decodeTimeIndex(data []byte) ([]timeEntry, error) {
	if len(data)%timeEntryBytes != 0 {
		return nil, fmt.Errorf("time index of %d bytes is not whole entries", len(data))
	}
	entries := make([]timeEntry, len(data)/timeEntryBytes)
	for i := range entries {
		e := timeEntry{timestamp: int64(binary.BigEndian.Uint64(data[i*timeEntryBytes:])), relativeOffset: binary.BigEndian.Uint32(data[i*timeEntryBytes+8:])}
		if i > 0 && (e.timestamp <= entries[i-1].timestamp || e.relativeOffset < entries[i-1].relativeOffset) {
			return nil, fmt.Errorf("time index entry %d (%d at %d) does not follow (%d at %d)", i, e.timestamp, e.relativeOffset, entries[i-1].timestamp, entries[i-1].relativeOffset)
		}
		entries[i] = e
	}
	return entries, nil
}
