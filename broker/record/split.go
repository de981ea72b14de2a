package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// FrameBytes reads the size of the batch that b begins with from its first
// LengthFieldEnd bytes. It returns ErrPartial when b is too short to say,
// and ErrCorrupt when the length field cannot belong to a v2 batch.
func FrameBytes(b []byte) (int, error) {
	if len(b) < LengthFieldEnd {
		return 0, fmt.Errorf("%w: %d bytes cannot hold a length field", ErrPartial, len(b))
	}
	length := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
	if length < HeaderBytes-LengthFieldEnd {
		return 0, fmt.Errorf("%w: length field %d is shorter than a header", ErrCorrupt, length)
	}
	if length > math.MaxInt32-LengthFieldEnd {
		return 0, fmt.Errorf("%w: length field %d", ErrCorrupt, length)
	}
	return int(length) + LengthFieldEnd, nil
}

// Next cuts the batch that b begins with and returns it and the bytes after
// it. It checks the framing and CheckStructure, not the CRC. When b ends
// inside the batch the error wraps ErrPartial.
func Next(b []byte) (batch Batch, rest []byte, err error) {
	size, err := FrameBytes(b)
	if err != nil {
		return nil, b, err
	}
	if size > len(b) {
		return nil, b, fmt.Errorf("%w: a %d-byte batch with %d bytes present", ErrPartial, size, len(b))
	}
	batch = Batch(b[:size:size])
	if err := batch.CheckStructure(); err != nil {
		return nil, b, err
	}
	return batch, b[size:], nil
}

// Split cuts b, several concatenated batches as in a produce request or a
// fetch response, into batches, checking each one's structure but not its
// CRC. It stops at batchesMax batches with an error if bytes remain. If b
// ends inside a batch, Split returns the whole batches before it and an
// error wrapping ErrPartial that says how many bytes were left over; a
// fetch response may end so, a produce request may not.
func Split(b []byte, batchesMax int) ([]Batch, error) {
	return SplitInto(nil, b, batchesMax)
}

// SplitInto is Split appending the batches to dst, so that a caller
// splitting often reuses one slice's room.
func SplitInto(dst []Batch, b []byte, batchesMax int) ([]Batch, error) {
	_, err := walk(b, batchesMax, func(batch Batch) { dst = append(dst, batch) })
	return dst, err
}

// SplitFirst is Split for data that should hold exactly one batch (a
// produced partition's): it returns the first batch and how many Split
// would have returned, with Split's error, without a slice.
func SplitFirst(b []byte, batchesMax int) (Batch, int, error) {
	var first Batch
	count, err := walk(b, batchesMax, func(batch Batch) {
		if first == nil {
			first = batch
		}
	})
	return first, count, err
}

// walk calls each with the batches of b in order, at most batchesMax, and
// returns how many there were.
func walk(b []byte, batchesMax int, each func(Batch)) (int, error) {
	if batchesMax <= 0 {
		panic(fmt.Sprintf("record: Split with batchesMax %d", batchesMax))
	}
	count := 0
	position := 0
	for len(b) > 0 {
		if count == batchesMax {
			return count, fmt.Errorf("%w: more than %d batches", ErrCorrupt, batchesMax)
		}
		batch, rest, err := Next(b)
		if err != nil {
			return count, fmt.Errorf("batch %d at byte %d: %w", count, position, err)
		}
		each(batch)
		count++
		position += len(batch)
		b = rest
	}
	return count, nil
}
