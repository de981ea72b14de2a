package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The hop protocol carries batches of events from an avro-style sink to
// an avro-style source on another agent, in frames of sim.FrameLength32
// (Flume's own hop speaks Avro RPC; sluice agents only talk to each
// other, so they use this simpler framing):
//
//	batch: 'B' id:u64 count:u32 { headers:u32 { key:str value:str } body:bytes }
//	ack:   'A' id:u64 ok:u8 message:str
//
// where str and bytes are a u32 length and the bytes. The source answers
// a batch's ack only after every event of it is committed to its
// channels; ok 0 carries why not, and the sink rolls the batch back.
const (
	hopBatchTag = 'B'
	hopAckTag   = 'A'
	// hopFrameBytesMax bounds a frame either way.
	hopFrameBytesMax = 64 << 20
	// hopHeadersMax bounds one event's headers.
	hopHeadersMax = 1 << 10
)

var errHopFrame = errors.New("malformed hop frame")

func appendHopBytes(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// encodeHopBatch frames a batch.
func encodeHopBatch(id uint64, events []Event) ([]byte, error) {
	size := 13
	for _, e := range events {
		size += 8 + len(e.Body)
		for k, v := range e.Headers {
			size += 8 + len(k) + len(v)
		}
	}
	if size > hopFrameBytesMax {
		return nil, fmt.Errorf("batch of %d events is %d bytes, over the hop frame limit %d", len(events), size, hopFrameBytesMax)
	}
	b := make([]byte, 0, size)
	b = append(b, hopBatchTag)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(events)))
	for _, e := range events {
		if len(e.Headers) > hopHeadersMax {
			return nil, fmt.Errorf("event with %d headers, over the hop limit %d", len(e.Headers), hopHeadersMax)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Headers)))
		for _, k := range sortedHeaderKeys(e.Headers) {
			b = appendHopBytes(b, []byte(k))
			b = appendHopBytes(b, []byte(e.Headers[k]))
		}
		b = appendHopBytes(b, e.Body)
	}
	return b, nil
}

type hopReader struct {
	b   []byte
	err error
}

func (r *hopReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errHopFrame
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *hopReader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errHopFrame
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *hopReader) bytes() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.err = errHopFrame
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeHopBatch reads a batch frame.
func decodeHopBatch(frame []byte) (uint64, []Event, error) {
	if len(frame) == 0 || frame[0] != hopBatchTag {
		return 0, nil, errHopFrame
	}
	r := &hopReader{b: frame[1:]}
	id := r.u64()
	n := r.u32()
	// Every event takes at least 8 bytes, which bounds n by the frame.
	if r.err != nil || uint64(n)*8 > uint64(len(r.b)) {
		return 0, nil, errHopFrame
	}
	events := make([]Event, n)
	for i := range events {
		nh := r.u32()
		if nh > hopHeadersMax {
			return 0, nil, fmt.Errorf("%w: %d headers", errHopFrame, nh)
		}
		if nh > 0 {
			events[i].Headers = make(map[string]string, nh)
		}
		for j := uint32(0); j < nh && r.err == nil; j++ {
			k := r.bytes()
			events[i].Headers[string(k)] = string(r.bytes())
		}
		events[i].Body = r.bytes()
		if r.err != nil {
			return 0, nil, r.err
		}
	}
	if len(r.b) != 0 {
		return 0, nil, fmt.Errorf("%w: %d bytes after the last event", errHopFrame, len(r.b))
	}
	return id, events, nil
}

func encodeHopAck(id uint64, err error) []byte {
	b := []byte{hopAckTag}
	b = binary.BigEndian.AppendUint64(b, id)
	if err == nil {
		return append(append(b, 1), 0, 0, 0, 0)
	}
	msg := err.Error()
	if len(msg) > math.MaxUint16 {
		msg = msg[:math.MaxUint16]
	}
	return appendHopBytes(append(b, 0), []byte(msg))
}

// decodeHopAck reads an ack: its batch id and, when the batch was not
// committed, why.
func decodeHopAck(frame []byte) (uint64, error, error) {
	if len(frame) < 10 || frame[0] != hopAckTag {
		return 0, nil, errHopFrame
	}
	r := &hopReader{b: frame[1:]}
	id := r.u64()
	ok := r.b[0] == 1
	r.b = r.b[1:]
	msg := r.bytes()
	if r.err != nil {
		return 0, nil, r.err
	}
	if ok {
		return id, nil, nil
	}
	return id, fmt.Errorf("next hop refused the batch: %s", msg), nil
}
