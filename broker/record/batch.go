// Package record reads, checks and builds Kafka RecordBatch v2 bytes: the
// unit that producers send, that the log stores unchanged, and that fetches
// return.
//
// A Batch is a view over bytes, not a decoded copy: the broker's produce path
// parses the 61-byte header, checks the CRC-32C and writes the bytes as they
// came. Only consumers of records (compaction, timestamp lookups, tests,
// clients) decode records, and decoding always verifies the CRC first.
//
// Layout of a batch (big-endian):
//
//	offset size field
//	     0    8 baseOffset
//	     8    4 batchLength (bytes after this field)
//	    12    4 partitionLeaderEpoch
//	    16    1 magic (2)
//	    17    4 crc (CRC-32C of bytes 21..end)
//	    21    2 attributes
//	    23    4 lastOffsetDelta
//	    27    8 baseTimestamp
//	    35    8 maxTimestamp
//	    43    8 producerId
//	    51    2 producerEpoch
//	    53    4 baseSequence
//	    57    4 recordCount
//	    61      records
//
// baseOffset and partitionLeaderEpoch lie before the CRC'd range, which is
// why a broker can assign them in place.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Field positions and sizes of the batch header.
const (
	offBaseOffset           = 0
	offBatchLength          = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21
	offLastOffsetDelta      = 23
	offBaseTimestamp        = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offRecordCount          = 57

	// HeaderBytes is the size of a v2 batch header; records follow it.
	HeaderBytes = 61
	// LengthFieldEnd is how many leading bytes are needed to know a
	// batch's size: baseOffset and batchLength.
	LengthFieldEnd = 12
	// Magic is the only batch format this package reads and writes.
	Magic = 2
	// recordBytesMin is the smallest encoded record: seven one-byte
	// fields (length, attributes, timestamp delta, offset delta, key
	// length, value length, header count).
	recordBytesMin = 7
)

// Attribute bits.
const (
	compressionMask   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	// attrDeleteHorizon marks a batch whose baseTimestamp holds a
	// compaction delete horizon (KIP-534); this package reads it as a
	// known bit but never sets it.
	attrDeleteHorizon   = 0x40
	attributesKnownMask = compressionMask | attrLogAppendTime | attrTransactional | attrControl | attrDeleteHorizon
	sequenceNone        = -1
	sequenceMax         = math.MaxInt32
)

// NoProducerID, NoProducerEpoch and NoSequence are the header values of a
// batch that is not from an idempotent producer.
const (
	NoProducerID    int64 = -1
	NoProducerEpoch int16 = -1
	NoSequence      int32 = sequenceNone
)

// Errors. Every error this package returns wraps ErrCorrupt, except
// ErrPartial, which marks bytes that end inside a batch.
var (
	// ErrCorrupt is any malformed batch; Kafka's CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrChecksum is a CRC-32C mismatch.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	// ErrMagic is a batch in a format other than v2.
	ErrMagic = fmt.Errorf("%w: unsupported magic", ErrCorrupt)
	// ErrPartial is bytes that end before the batch they begin does. A
	// fetch response may legitimately end with one.
	ErrPartial = errors.New("partial record batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is one RecordBatch v2, exactly: len(b) is the whole batch. The
// accessors read the header in place; they panic on a slice shorter than
// HeaderBytes, so call Verify or CheckStructure (or obtain the Batch from
// Next or Split) before using them on untrusted bytes.
type Batch []byte

// BaseOffset is the offset of the batch's first record.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// SetBaseOffset assigns the batch's offsets in place. The field is outside
// the CRC, so the checksum stays valid.
func (b Batch) SetBaseOffset(offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// Length is the batchLength field: the bytes after it.
func (b Batch) Length() int32 { return int32(binary.BigEndian.Uint32(b[offBatchLength:])) }

// PartitionLeaderEpoch is the epoch of the leader that appended the batch.
func (b Batch) PartitionLeaderEpoch() int32 {
	return int32(binary.BigEndian.Uint32(b[offPartitionLeaderEpoch:]))
}

// SetPartitionLeaderEpoch stamps the leader's epoch in place; the field is
// outside the CRC.
func (b Batch) SetPartitionLeaderEpoch(epoch int32) {
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], uint32(epoch))
}

// Magic is the format version byte.
func (b Batch) Magic() int8 { return int8(b[offMagic]) }

// CRC is the stored checksum.
func (b Batch) CRC() uint32 { return binary.BigEndian.Uint32(b[offCRC:]) }

// ComputeCRC is the CRC-32C of everything after the crc field.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// Attributes is the raw attributes field.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[offAttributes:])) }

// Compression is the codec of the records section.
func (b Batch) Compression() Compression { return Compression(b.Attributes() & compressionMask) }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time (maxTimestamp) rather than the producer's create times.
func (b Batch) LogAppendTime() bool { return b.Attributes()&attrLogAppendTime != 0 }

// Transactional reports the transactional bit.
func (b Batch) Transactional() bool { return b.Attributes()&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers).
func (b Batch) Control() bool { return b.Attributes()&attrControl != 0 }

// LastOffsetDelta is the last offset of the batch minus its base offset.
func (b Batch) LastOffsetDelta() int32 {
	return int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
}

// LastOffset is the offset of the batch's last record (or the last offset
// it reserved, for a batch that compaction emptied).
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// NextOffset is the offset after the batch.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// BaseTimestamp is the timestamp record timestamp deltas are relative to.
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])) }

// MaxTimestamp is the largest record timestamp, or the log append time.
func (b Batch) MaxTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])) }

// ProducerID is the idempotent producer's id, or NoProducerID.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[offProducerID:])) }

// ProducerEpoch is the producer's epoch, or NoProducerEpoch.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[offProducerEpoch:])) }

// BaseSequence is the producer sequence of the first record, or NoSequence.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[offBaseSequence:])) }

// LastSequence is the sequence of the last record; sequences wrap from
// MaxInt32 to 0, as Kafka's do.
func (b Batch) LastSequence() int32 {
	if b.BaseSequence() == sequenceNone {
		return sequenceNone
	}
	return IncrementSequence(b.BaseSequence(), b.LastOffsetDelta())
}

// RecordCount is the number of records the batch holds.
func (b Batch) RecordCount() int32 { return int32(binary.BigEndian.Uint32(b[offRecordCount:])) }

// HasProducer reports whether the batch carries idempotent producer state.
func (b Batch) HasProducer() bool { return b.ProducerID() >= 0 }

// IncrementSequence adds delta to a producer sequence, wrapping past
// MaxInt32 to 0.
func IncrementSequence(seq, delta int32) int32 {
	if int64(seq)+int64(delta) > sequenceMax {
		return int32(int64(seq) + int64(delta) - sequenceMax - 1)
	}
	return seq + delta
}

// CheckStructure checks everything about the batch but its CRC: the length
// field against len(b), and CheckHeader. It is what recovery and the
// scanner use to find where a batch ends.
func (b Batch) CheckStructure() error {
	if len(b) < HeaderBytes {
		return fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrCorrupt, len(b), HeaderBytes)
	}
	if int64(b.Length())+LengthFieldEnd != int64(len(b)) {
		return fmt.Errorf("%w: length field %d does not match the %d bytes held", ErrCorrupt, b.Length(), len(b))
	}
	return b.CheckHeader()
}

// CheckHeader checks the header fields of b, which needs to hold only the
// header: a length that covers a header, the magic, known attributes, and
// an offset range, record count and size that agree. It lets a scanner
// vet a batch before reading all of it.
func (b Batch) CheckHeader() error {
	if len(b) < HeaderBytes {
		return fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrCorrupt, len(b), HeaderBytes)
	}
	size := int64(b.Length()) + LengthFieldEnd
	if size < HeaderBytes {
		return fmt.Errorf("%w: length field %d is shorter than a header", ErrCorrupt, b.Length())
	}
	if b.Magic() != Magic {
		return fmt.Errorf("%w %d", ErrMagic, b.Magic())
	}
	if b.Attributes() & ^int16(attributesKnownMask) != 0 {
		return fmt.Errorf("%w: unknown attribute bits %#x", ErrCorrupt, b.Attributes())
	}
	if c := b.Compression(); !c.valid() {
		return fmt.Errorf("%w: unknown compression %d", ErrCorrupt, c)
	}
	base, delta, count := b.BaseOffset(), b.LastOffsetDelta(), b.RecordCount()
	if base < 0 {
		return fmt.Errorf("%w: negative base offset %d", ErrCorrupt, base)
	}
	if delta < 0 || base > math.MaxInt64-int64(delta)-1 {
		return fmt.Errorf("%w: last offset delta %d from base %d", ErrCorrupt, delta, base)
	}
	if count < 0 || int64(count) > int64(delta)+1 {
		return fmt.Errorf("%w: %d records in an offset range of %d", ErrCorrupt, count, int64(delta)+1)
	}
	if b.Compression() == CompressionNone && int64(count)*recordBytesMin > size-HeaderBytes {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, count, size-HeaderBytes)
	}
	return nil
}

// Size is the whole batch's size according to its length field.
func (b Batch) Size() int64 { return int64(b.Length()) + LengthFieldEnd }

// Verify checks the structure and the CRC-32C.
func (b Batch) Verify() error {
	if err := b.CheckStructure(); err != nil {
		return err
	}
	return b.VerifyChecksum()
}

// VerifyChecksum checks the CRC-32C of a batch whose structure has passed
// its check (Next returned it): Verify without checking that again.
func (b Batch) VerifyChecksum() error {
	if stored, computed := b.CRC(), b.ComputeCRC(); stored != computed {
		return fmt.Errorf("%w: stored %#08x, computed %#08x", ErrChecksum, stored, computed)
	}
	return nil
}

// VerifyProduced is Verify plus the rules for a batch a producer sends:
// at least one record, and exactly one record per offset (only compaction
// leaves holes), and no control records (only the broker writes those).
func (b Batch) VerifyProduced() error {
	if err := b.Verify(); err != nil {
		return err
	}
	if b.RecordCount() == 0 || int64(b.RecordCount()) != int64(b.LastOffsetDelta())+1 {
		return fmt.Errorf("%w: a produced batch holds %d records for %d offsets", ErrCorrupt, b.RecordCount(), int64(b.LastOffsetDelta())+1)
	}
	if b.Control() {
		return fmt.Errorf("%w: producers may not write control batches", ErrCorrupt)
	}
	if b.HasProducer() && (b.ProducerEpoch() < 0 || b.BaseSequence() < 0) {
		return fmt.Errorf("%w: producer id %d with epoch %d and sequence %d", ErrCorrupt, b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
	}
	return nil
}

// String describes the header for logs and test failures.
func (b Batch) String() string {
	if len(b) < HeaderBytes {
		return fmt.Sprintf("batch(%d bytes, truncated header)", len(b))
	}
	return fmt.Sprintf("batch(offsets %d..%d, %d records, %d bytes, epoch %d, producer %d/%d seq %d, %s)",
		b.BaseOffset(), b.LastOffset(), b.RecordCount(), len(b), b.PartitionLeaderEpoch(),
		b.ProducerID(), b.ProducerEpoch(), b.BaseSequence(), b.Compression())
}
