package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Builder holds the header fields of a batch to build. Producers, tests and
// compaction build batches; the broker's produce path never does.
type Builder struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Compression          Compression
	// LogAppendTime marks the timestamps as the broker's append time:
	// MaxTimestamp then holds it.
	LogAppendTime bool
	Transactional bool
	Control       bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// LastOffsetDelta keeps an offset range larger than the records
	// need: compaction rewrites a batch with the range it had, so that
	// producer sequences and the segment's next offset stay as they were.
	// Zero (or anything smaller than the last record's delta) means the
	// last record's delta.
	LastOffsetDelta int32
	// BaseTimestamp and MaxTimestamp are used for a batch without
	// records; MaxTimestamp is also the append time of a LogAppendTime
	// batch. Otherwise they come from the records.
	BaseTimestamp int64
	MaxTimestamp  int64
}

// NewBuilder returns a builder for a batch without producer state.
func NewBuilder() Builder {
	return Builder{ProducerID: NoProducerID, ProducerEpoch: NoProducerEpoch, BaseSequence: NoSequence, BaseTimestamp: -1, MaxTimestamp: -1}
}

// BuildableBytesMax bounds the size of a built batch.
const BuildableBytesMax = math.MaxInt32 - LengthFieldEnd

// Build encodes records, whose Offset fields must increase strictly and lie
// within BaseOffset..BaseOffset+MaxInt32, into a batch with a valid CRC.
func (bl Builder) Build(records []Record) (Batch, error) {
	if !bl.Compression.valid() {
		return nil, fmt.Errorf("build batch: unknown compression %d", bl.Compression)
	}
	if bl.BaseOffset < 0 {
		return nil, fmt.Errorf("build batch: negative base offset %d", bl.BaseOffset)
	}
	lastDelta := bl.LastOffsetDelta
	baseTimestamp, maxTimestamp := bl.BaseTimestamp, bl.MaxTimestamp
	if len(records) > 0 {
		baseTimestamp = records[0].Timestamp
		if !bl.LogAppendTime {
			maxTimestamp = records[0].Timestamp
		}
	}
	// Uncompressed records are written in place after the header, into
	// a batch of their exact size: a body grown record by record and
	// then copied was two or three allocations per batch a producer
	// sends.
	var body []byte
	inPlace := bl.Compression == CompressionNone
	if inPlace {
		body = make([]byte, HeaderBytes, HeaderBytes+recordsBytes(records, bl.BaseOffset, baseTimestamp))
	}
	previous := bl.BaseOffset - 1
	for i := range records {
		r := &records[i]
		if r.Offset <= previous || r.Offset-bl.BaseOffset > math.MaxInt32 {
			return nil, fmt.Errorf("build batch: record %d has offset %d after %d (base %d)", i, r.Offset, previous, bl.BaseOffset)
		}
		previous = r.Offset
		delta := int32(r.Offset - bl.BaseOffset)
		lastDelta = max(lastDelta, delta)
		if !bl.LogAppendTime {
			maxTimestamp = max(maxTimestamp, r.Timestamp)
		}
		body = appendRecord(body, r, delta, r.Timestamp-baseTimestamp)
	}
	if len(records) == 0 && lastDelta < 0 {
		return nil, fmt.Errorf("build batch: negative last offset delta %d", lastDelta)
	}
	var b Batch
	if inPlace {
		if len(body)-HeaderBytes > BuildableBytesMax-HeaderBytes {
			return nil, fmt.Errorf("build batch: %d bytes of records", len(body)-HeaderBytes)
		}
		b = body
	} else {
		compressed, err := compress(bl.Compression, body)
		if err != nil {
			return nil, fmt.Errorf("build batch: %w", err)
		}
		if len(compressed) > BuildableBytesMax-HeaderBytes {
			return nil, fmt.Errorf("build batch: %d bytes of records", len(compressed))
		}
		b = make(Batch, HeaderBytes, HeaderBytes+len(compressed))
		b = append(b, compressed...)
	}
	attributes := int16(bl.Compression)
	if bl.LogAppendTime {
		attributes |= attrLogAppendTime
	}
	if bl.Transactional {
		attributes |= attrTransactional
	}
	if bl.Control {
		attributes |= attrControl
	}
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(bl.BaseOffset))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-LengthFieldEnd))
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], uint32(bl.PartitionLeaderEpoch))
	b[offMagic] = Magic
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attributes))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(baseTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(bl.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(bl.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(bl.BaseSequence))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(len(records)))
	binary.BigEndian.PutUint32(b[offCRC:], b.ComputeCRC())
	if err := b.CheckStructure(); err != nil {
		panic(fmt.Sprintf("record: built an invalid batch: %v", err))
	}
	return b, nil
}

// BuilderFor returns a builder that reproduces batch's header: compaction
// uses it to rewrite a batch with fewer records.
func BuilderFor(b Batch) Builder {
	return Builder{
		BaseOffset:           b.BaseOffset(),
		PartitionLeaderEpoch: b.PartitionLeaderEpoch(),
		Compression:          b.Compression(),
		LogAppendTime:        b.LogAppendTime(),
		Transactional:        b.Transactional(),
		Control:              b.Control(),
		ProducerID:           b.ProducerID(),
		ProducerEpoch:        b.ProducerEpoch(),
		BaseSequence:         b.BaseSequence(),
		LastOffsetDelta:      b.LastOffsetDelta(),
		BaseTimestamp:        b.BaseTimestamp(),
		MaxTimestamp:         b.MaxTimestamp(),
	}
}

// recordsBytes is the encoded size of records (as appendRecord writes
// them) in a batch of base offset and timestamp base and baseTimestamp;
// records out of order make it a guess, which Build then refuses anyway.
func recordsBytes(records []Record, base, baseTimestamp int64) int {
	n := 0
	for i := range records {
		r := &records[i]
		size := recordBodyBytes(r, int32(r.Offset-base), r.Timestamp-baseTimestamp)
		n += varlongBytes(int64(size)) + size
	}
	return n
}
