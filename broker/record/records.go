package record

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Record is one decoded record. Key and Value are nil for a null key or
// value (a null value in a compacted topic is a tombstone). Decoded
// records alias the batch's bytes (or its decompressed records), so they
// stay valid only as long as those bytes are not changed.
type Record struct {
	// Offset and Timestamp are absolute: the batch's base plus the
	// record's delta. For a LogAppendTime batch, Timestamp is the batch's
	// maxTimestamp.
	Offset     int64
	Timestamp  int64
	Attributes int8
	Key        []byte
	Value      []byte
	Headers    []Header
}

// Header is a record header; Kafka header keys are never null.
type Header struct {
	Key   string
	Value []byte
}

// Records verifies the batch (structure and CRC) and decodes its records,
// decompressing them if needed. It never returns records of a batch whose
// CRC does not match.
func (b Batch) Records() ([]Record, error) {
	return b.AppendRecords(nil)
}

// AppendRecords is Records appending to dst, for a reader that decodes
// batch after batch into one kept slice: a fresh slice per batch was a
// simulated consumer's largest allocation. On an error it returns nil.
func (b Batch) AppendRecords(dst []Record) ([]Record, error) {
	if err := b.Verify(); err != nil {
		return nil, err
	}
	return b.appendVerifiedRecords(dst)
}

// AppendNextRecords is AppendRecords for a batch Next returned, whose
// structure has passed its check: it verifies only the checksum.
func (b Batch) AppendNextRecords(dst []Record) ([]Record, error) {
	if err := b.VerifyChecksum(); err != nil {
		return nil, err
	}
	return b.appendVerifiedRecords(dst)
}

// appendVerifiedRecords decodes the records of a verified batch.
func (b Batch) appendVerifiedRecords(dst []Record) ([]Record, error) {
	body, err := decompress(b.Compression(), b[HeaderBytes:])
	if err != nil {
		return nil, err
	}
	count := int(b.RecordCount())
	if int64(count)*recordBytesMin > int64(len(body)) {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, count, len(body))
	}
	records := slices.Grow(dst, count)
	if records == nil {
		records = []Record{} // Records never returned nil without an error
	}
	rd := reader{buf: body}
	previousDelta := int64(-1)
	for i := 0; i < count; i++ {
		r, offsetDelta, err := rd.record()
		if err != nil {
			return nil, fmt.Errorf("record %d of %s: %w", i, b, err)
		}
		if offsetDelta <= previousDelta || offsetDelta > int64(b.LastOffsetDelta()) {
			return nil, fmt.Errorf("%w: record %d has offset delta %d after %d (last %d)", ErrCorrupt, i, offsetDelta, previousDelta, b.LastOffsetDelta())
		}
		previousDelta = offsetDelta
		r.Offset = b.BaseOffset() + offsetDelta
		if b.LogAppendTime() {
			r.Timestamp = b.MaxTimestamp()
		} else {
			r.Timestamp += b.BaseTimestamp()
		}
		records = append(records, r)
	}
	if rd.pos != len(rd.buf) {
		return nil, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(rd.buf)-rd.pos, count)
	}
	return records, nil
}

// reader decodes Kafka's zigzag varints and length-prefixed bytes.
type reader struct {
	buf []byte
	pos int
}

func (r *reader) varlong() (int64, error) {
	v, n := binary.Varint(r.buf[r.pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint at byte %d", ErrCorrupt, r.pos)
	}
	r.pos += n
	return v, nil
}

func (r *reader) varint() (int64, error) {
	v, err := r.varlong()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%w: varint %d out of int32 range", ErrCorrupt, v)
	}
	return v, nil
}

// bytes reads a varint length and that many bytes; length -1 is null.
func (r *reader) bytes(nullable bool) ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n == -1 && nullable {
		return nil, nil
	}
	if n < 0 || n > int64(len(r.buf)-r.pos) {
		return nil, fmt.Errorf("%w: %d-byte field with %d bytes left", ErrCorrupt, n, len(r.buf)-r.pos)
	}
	out := r.buf[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return out, nil
}

// record decodes one record; Timestamp holds the delta.
func (r *reader) record() (Record, int64, error) {
	length, err := r.varint()
	if err != nil {
		return Record{}, 0, err
	}
	if length < recordBytesMin-1 || length > int64(len(r.buf)-r.pos) {
		return Record{}, 0, fmt.Errorf("%w: record length %d with %d bytes left", ErrCorrupt, length, len(r.buf)-r.pos)
	}
	end := r.pos + int(length)
	body := reader{buf: r.buf[:end], pos: r.pos}
	rec, offsetDelta, err := body.recordBody()
	if err != nil {
		return Record{}, 0, err
	}
	if body.pos != end {
		return Record{}, 0, fmt.Errorf("%w: record length %d but fields take %d", ErrCorrupt, length, body.pos-r.pos)
	}
	r.pos = end
	return rec, offsetDelta, nil
}

func (r *reader) recordBody() (Record, int64, error) {
	var rec Record
	if r.pos >= len(r.buf) {
		return rec, 0, fmt.Errorf("%w: record cut short", ErrCorrupt)
	}
	rec.Attributes = int8(r.buf[r.pos])
	r.pos++
	var err error
	if rec.Timestamp, err = r.varlong(); err != nil {
		return rec, 0, err
	}
	offsetDelta, err := r.varint()
	if err != nil {
		return rec, 0, err
	}
	if rec.Key, err = r.bytes(true); err != nil {
		return rec, 0, err
	}
	if rec.Value, err = r.bytes(true); err != nil {
		return rec, 0, err
	}
	count, err := r.varint()
	if err != nil {
		return rec, 0, err
	}
	// A header takes at least two bytes, which bounds the allocation.
	if count < 0 || count > int64(len(r.buf)-r.pos)/2 {
		return rec, 0, fmt.Errorf("%w: %d headers with %d bytes left", ErrCorrupt, count, len(r.buf)-r.pos)
	}
	if count > 0 {
		rec.Headers = make([]Header, 0, count)
	}
	for i := int64(0); i < count; i++ {
		key, err := r.bytes(false)
		if err != nil {
			return rec, 0, err
		}
		value, err := r.bytes(true)
		if err != nil {
			return rec, 0, err
		}
		rec.Headers = append(rec.Headers, Header{Key: string(key), Value: value})
	}
	return rec, offsetDelta, nil
}

// appendRecord encodes one record with the given deltas.
func appendRecord(dst []byte, r *Record, offsetDelta int32, timestampDelta int64) []byte {
	bodyBytes := recordBodyBytes(r, offsetDelta, timestampDelta)
	dst = binary.AppendVarint(dst, int64(bodyBytes))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, timestampDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendNullableBytes(dst, r.Key)
	dst = appendNullableBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendNullableBytes(dst, r.Headers[i].Value)
	}
	return dst
}

// recordBodyBytes is the size of r's encoding after its length prefix.
func recordBodyBytes(r *Record, offsetDelta int32, timestampDelta int64) int {
	bodyBytes := 1 + varlongBytes(timestampDelta) + varlongBytes(int64(offsetDelta)) +
		nullableBytesSize(r.Key) + nullableBytesSize(r.Value) + varlongBytes(int64(len(r.Headers)))
	for i := range r.Headers {
		bodyBytes += varlongBytes(int64(len(r.Headers[i].Key))) + len(r.Headers[i].Key) + nullableBytesSize(r.Headers[i].Value)
	}
	return bodyBytes
}

func varlongBytes(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func nullableBytesSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varlongBytes(int64(len(b))) + len(b)
}

func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
