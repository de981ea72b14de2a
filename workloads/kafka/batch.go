package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 (Kafka's message format 2), written and read here because
// the client needs only the two directions of one fixed layout:
//
//	baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 |
//	crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
//	maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 |
//	recordCount i32 | records
//
// batchLength counts the bytes after itself; the CRC-32C covers everything
// after the crc field, so a broker may rewrite baseOffset and the leader
// epoch without recomputing it.
const (
	batchOffsetLength      = 8
	batchOffsetLeaderEpoch = 12
	batchOffsetMagic       = 16
	batchOffsetCRC         = 17
	batchOffsetAttributes  = 21
	batchHeaderBytes       = 61
	// batchLogOverheadBytes is the baseOffset and batchLength prefix.
	batchLogOverheadBytes = 12
)

// Batch attribute bits beyond the codec.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// recordOverheadMaxBytes bounds a record's encoding beyond its key, value
// and headers: five varints of at most 5 or 10 bytes and the attributes
// byte. It sizes batches before they are encoded.
const recordOverheadMaxBytes = 1 + 10 + 5 + 5 + 5 + 5 + 5

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// batchRecord is one record of a batch being built.
type batchRecord struct {
	key, value  []byte
	headers     []Header
	timestampMs int64
}

// batchSpec is what the producer decides about a batch.
type batchSpec struct {
	codec         Codec
	producerID    int64
	producerEpoch int16
	baseSequence  int32
}

// encodedRecordBytes is the exact size of r's encoding after its length
// varint.
func encodedRecordBytes(r *batchRecord, timestampDelta int64, offsetDelta int32) int {
	n := 1 + varlongBytes(timestampDelta) + varlongBytes(int64(offsetDelta))
	n += bytesFieldBytes(r.key) + bytesFieldBytes(r.value)
	n += varlongBytes(int64(len(r.headers)))
	for _, h := range r.headers {
		n += varlongBytes(int64(len(h.Key))) + len(h.Key) + bytesFieldBytes(h.Value)
	}
	return n
}

func varlongBytes(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

// bytesFieldBytes sizes a nullable varint-prefixed byte string.
func bytesFieldBytes(b []byte) int {
	if b == nil {
		return varlongBytes(-1)
	}
	return varlongBytes(int64(len(b))) + len(b)
}

func appendBytesField(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// appendRecords appends the records section (uncompressed).
func appendRecords(dst []byte, recs []batchRecord, baseTimestampMs int64) []byte {
	for i := range recs {
		r := &recs[i]
		tsDelta := r.timestampMs - baseTimestampMs
		dst = binary.AppendVarint(dst, int64(encodedRecordBytes(r, tsDelta, int32(i))))
		dst = append(dst, 0) // record attributes: unused
		dst = binary.AppendVarint(dst, tsDelta)
		dst = binary.AppendVarint(dst, int64(i))
		dst = appendBytesField(dst, r.key)
		dst = appendBytesField(dst, r.value)
		dst = binary.AppendVarint(dst, int64(len(r.headers)))
		for _, h := range r.headers {
			dst = binary.AppendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendBytesField(dst, h.Value)
		}
	}
	return dst
}

// appendBatch appends one RecordBatch v2 holding recs to dst. The base
// offset is 0 and the leader epoch -1: the broker assigns both.
func appendBatch(dst []byte, recs []batchRecord, spec batchSpec, comp *compressor) ([]byte, error) {
	if len(recs) == 0 {
		panic("kafka: an empty record batch")
	}
	baseTs, maxTs := recs[0].timestampMs, recs[0].timestampMs
	for i := range recs {
		baseTs = min(baseTs, recs[i].timestampMs)
		maxTs = max(maxTs, recs[i].timestampMs)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, 0)                            // baseOffset
	dst = binary.BigEndian.AppendUint32(dst, 0)                            // batchLength, below
	dst = binary.BigEndian.AppendUint32(dst, uint32(0xffffffff))           // partitionLeaderEpoch -1
	dst = append(dst, 2)                                                   // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)                            // crc, below
	dst = binary.BigEndian.AppendUint16(dst, uint16(spec.codec&codecMask)) // attributes
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)-1))          // lastOffsetDelta
	dst = binary.BigEndian.AppendUint64(dst, uint64(baseTs))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTs))
	dst = binary.BigEndian.AppendUint64(dst, uint64(spec.producerID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(spec.producerEpoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(spec.baseSequence))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)))
	if spec.codec == CodecNone {
		dst = appendRecords(dst, recs, baseTs)
	} else {
		raw := appendRecords(nil, recs, baseTs)
		var err error
		if dst, err = comp.compress(dst, raw, spec.codec); err != nil {
			return nil, fmt.Errorf("compress record batch: %w", err)
		}
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[batchOffsetLength:], uint32(len(b)-batchLogOverheadBytes))
	binary.BigEndian.PutUint32(b[batchOffsetCRC:], crc32.Checksum(b[batchOffsetAttributes:], crc32c))
	return dst, nil
}

// errCorruptBatch marks a batch that fails its CRC or does not parse.
var errCorruptBatch = errors.New("corrupt record batch")

// decodedBatch is one batch read from a fetch response.
type decodedBatch struct {
	baseOffset      int64
	lastOffsetDelta int32
	attributes      int16
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	records         []decodedRecord
}

// lastOffset is the offset of the batch's last record, even when compaction
// removed it.
func (b *decodedBatch) lastOffset() int64 { return b.baseOffset + int64(b.lastOffsetDelta) }

func (b *decodedBatch) control() bool { return b.attributes&attrControl != 0 }

// decodedRecord is one record of a decoded batch.
type decodedRecord struct {
	offset      int64
	timestampMs int64
	key, value  []byte
	headers     []Header
}

// decodeBatches reads the RecordBatch v2 batches in data, calling fn for
// each. A truncated batch at the end is normal (a broker cuts a fetch at
// its byte limit) and ends the walk silently; anything else malformed is an
// error wrapping errCorruptBatch. batchesMax bounds the walk.
func decodeBatches(data []byte, dec *decompressor, batchesMax int, fn func(*decodedBatch)) error {
	for count := 0; len(data) >= batchLogOverheadBytes; count++ {
		if count >= batchesMax {
			return fmt.Errorf("more than %d batches in one partition response: %w", batchesMax, errCorruptBatch)
		}
		length := int32(binary.BigEndian.Uint32(data[batchOffsetLength:]))
		if length < batchHeaderBytes-batchLogOverheadBytes {
			return fmt.Errorf("batch length %d: %w", length, errCorruptBatch)
		}
		total := batchLogOverheadBytes + int(length)
		if total > len(data) {
			return nil // truncated by the fetch byte limit
		}
		b, err := decodeBatch(data[:total], dec)
		if err != nil {
			return err
		}
		fn(b)
		data = data[total:]
	}
	return nil
}

func decodeBatch(raw []byte, dec *decompressor) (*decodedBatch, error) {
	baseOffset := int64(binary.BigEndian.Uint64(raw))
	if magic := raw[batchOffsetMagic]; magic != 2 {
		return nil, fmt.Errorf("batch at offset %d has magic %d, only 2 is read: %w", baseOffset, magic, errCorruptBatch)
	}
	wantCRC := binary.BigEndian.Uint32(raw[batchOffsetCRC:])
	if got := crc32.Checksum(raw[batchOffsetAttributes:], crc32c); got != wantCRC {
		return nil, fmt.Errorf("batch at offset %d: crc %08x, header says %08x: %w", baseOffset, got, wantCRC, errCorruptBatch)
	}
	b := &decodedBatch{
		baseOffset:      baseOffset,
		attributes:      int16(binary.BigEndian.Uint16(raw[batchOffsetAttributes:])),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(raw[23:])),
		producerID:      int64(binary.BigEndian.Uint64(raw[43:])),
		producerEpoch:   int16(binary.BigEndian.Uint16(raw[51:])),
		baseSequence:    int32(binary.BigEndian.Uint32(raw[53:])),
	}
	baseTs := int64(binary.BigEndian.Uint64(raw[27:]))
	count := int32(binary.BigEndian.Uint32(raw[57:]))
	payload := raw[batchHeaderBytes:]
	if b.control() {
		return b, nil // markers carry no application records
	}
	records, err := dec.decompress(payload, Codec(b.attributes&codecMask))
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w: %w", baseOffset, errCorruptBatch, err)
	}
	// The smallest record takes 7 bytes, which bounds a lying count.
	if count < 0 || int(count) > len(records)/7+1 {
		return nil, fmt.Errorf("batch at offset %d claims %d records in %d bytes: %w", baseOffset, count, len(records), errCorruptBatch)
	}
	b.records = make([]decodedRecord, 0, count)
	for i := range count {
		var rec decodedRecord
		var err error
		if records, err = readRecord(records, &rec); err != nil {
			return nil, fmt.Errorf("batch at offset %d record %d: %w: %w", baseOffset, i, errCorruptBatch, err)
		}
		rec.timestampMs += baseTs
		rec.offset += baseOffset
		b.records = append(b.records, rec)
	}
	return b, nil
}

// headersMax bounds the headers of one record.
const headersMax = 1 << 12

// recordReader reads the fields of one record, remembering the first error.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(nullable bool) []byte {
	n := r.varint()
	switch {
	case r.err != nil:
		return nil
	case n == -1 && nullable:
		return nil
	case n < 0 || n > int64(len(r.b)):
		r.err = fmt.Errorf("field of %d bytes with %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// readRecord parses one record; offset and timestamp are left as deltas.
func readRecord(b []byte, rec *decodedRecord) ([]byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return nil, fmt.Errorf("record length %d with %d bytes left", length, len(b))
	}
	r := recordReader{b: b[n : n+int(length)]}
	rest := b[n+int(length):]
	if len(r.b) < 1 {
		return nil, errors.New("empty record")
	}
	r.b = r.b[1:] // attributes
	rec.timestampMs = r.varint()
	rec.offset = r.varint()
	rec.key = r.bytes(true)
	rec.value = r.bytes(true)
	headers := r.varint()
	if r.err == nil && (headers < 0 || headers > headersMax) {
		r.err = fmt.Errorf("%d headers", headers)
	}
	for i := int64(0); i < headers && r.err == nil; i++ {
		key := r.bytes(false)
		value := r.bytes(true)
		rec.headers = append(rec.headers, Header{Key: string(key), Value: value})
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes left inside the record", len(r.b))
	}
	return rest, nil
}
