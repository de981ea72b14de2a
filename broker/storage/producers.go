package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/sluice-sim/sluice/broker/record"
)

// producerBatchesMax is how many recent batches per producer the log
// remembers to answer replays: Kafka's 5, which is also the most in-flight
// requests an idempotent producer may have.
const producerBatchesMax = 5

// ProducerBatch is a remembered batch of an idempotent producer.
type ProducerBatch struct {
	FirstSequence, LastSequence int32
	FirstOffset, LastOffset     int64
}

// ProducerState is what the log remembers of one idempotent producer.
type ProducerState struct {
	ProducerID int64
	Epoch      int16
	// Batches are the most recent batches, oldest first.
	Batches []ProducerBatch
	// LastTimestampMs is the wall time of the producer's last append, for
	// expiration.
	LastTimestampMs int64
}

// LastSequence is the sequence of the producer's last record, or
// record.NoSequence.
func (p *ProducerState) LastSequence() int32 {
	if len(p.Batches) == 0 {
		return record.NoSequence
	}
	return p.Batches[len(p.Batches)-1].LastSequence
}

// producerTable is the idempotent producer state of a partition.
type producerTable struct {
	byID map[int64]*ProducerState
}

func newProducerTable() *producerTable { return &producerTable{byID: make(map[int64]*ProducerState)} }

// check applies Kafka's idempotence rules to a batch a producer sends. It
// returns the remembered batch when this one is a replay of it.
func (t *producerTable) check(b record.Batch) (*ProducerBatch, error) {
	if !b.HasProducer() {
		return nil, nil
	}
	p := t.byID[b.ProducerID()]
	if p == nil {
		// Kafka accepts any sequence from a producer it does not know:
		// its state may have expired or been removed with old segments.
		return nil, nil
	}
	epoch, first, last := b.ProducerEpoch(), b.BaseSequence(), b.LastSequence()
	switch {
	case epoch < p.Epoch:
		return nil, fmt.Errorf("%w: producer %d sent epoch %d, current is %d", ErrInvalidProducerEpoch, b.ProducerID(), epoch, p.Epoch)
	case epoch > p.Epoch:
		if first != 0 {
			return nil, fmt.Errorf("%w: producer %d began epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, b.ProducerID(), epoch, first)
		}
		return nil, nil
	}
	for i := range p.Batches {
		if p.Batches[i].FirstSequence == first && p.Batches[i].LastSequence == last {
			return &p.Batches[i], nil
		}
	}
	if lastSeq := p.LastSequence(); lastSeq != record.NoSequence && first != record.IncrementSequence(lastSeq, 1) {
		return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d after %d", ErrOutOfOrderSequence, b.ProducerID(), epoch, first, lastSeq)
	}
	return nil, nil
}

// update records an appended batch (leader or replica) of a producer.
func (t *producerTable) update(h batchInfo, timestampMs int64, producersMax int) {
	if h.producerID < 0 {
		return
	}
	p := t.byID[h.producerID]
	if p == nil {
		if len(t.byID) >= producersMax {
			t.evictOldest()
		}
		p = &ProducerState{ProducerID: h.producerID}
		t.byID[h.producerID] = p
	}
	if h.producerEpoch != p.Epoch {
		p.Epoch = h.producerEpoch
		p.Batches = p.Batches[:0]
	}
	if len(p.Batches) == producerBatchesMax {
		copy(p.Batches, p.Batches[1:])
		p.Batches = p.Batches[:producerBatchesMax-1]
	}
	p.Batches = append(p.Batches, ProducerBatch{FirstSequence: h.baseSequence, LastSequence: h.lastSequence, FirstOffset: h.base, LastOffset: h.last})
	p.LastTimestampMs = max(p.LastTimestampMs, timestampMs)
}

// evictOldest forgets the least recently active producer (lowest id on a
// tie, so the choice does not depend on map order).
func (t *producerTable) evictOldest() {
	var victim *ProducerState
	for _, p := range t.byID { // a minimum over a total order: map order is irrelevant
		if victim == nil || p.LastTimestampMs < victim.LastTimestampMs ||
			(p.LastTimestampMs == victim.LastTimestampMs && p.ProducerID < victim.ProducerID) {
			victim = p
		}
	}
	if victim != nil {
		delete(t.byID, victim.ProducerID)
	}
}

// expire forgets producers idle since before cutoffMs and returns how many.
func (t *producerTable) expire(cutoffMs int64) int {
	var gone []int64
	for id, p := range t.byID { // collects ids, sorted below
		if p.LastTimestampMs < cutoffMs {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		delete(t.byID, id)
	}
	return len(gone)
}

// sorted lists the producers by id.
func (t *producerTable) sorted() []*ProducerState {
	out := make([]*ProducerState, 0, len(t.byID))
	for _, p := range t.byID { // sorted below
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// Producer snapshots. A snapshot named <offset>.snapshot holds the state
// after every batch below offset. It also holds the header of the batch
// that ended just below offset, so that recovery can tell a snapshot left
// over from a truncated history (its deletion was not durable) from one
// that describes the log as it is.
//
// Layout (big-endian): magic u32, version u16, offset i64, anchor (present
// u8, base offset i64, last offset delta i32, leader epoch i32, producer id
// i64, producer epoch i16, base sequence i32), count u32, then per producer:
// id i64, epoch i16, last timestamp i64, batch count u8, per batch: first
// sequence i32, last sequence i32, first offset i64, last offset i64; and
// a CRC-32C of everything before it.
const (
	snapshotMagic     = 0x534c5053 // "SLPS"
	snapshotVersion   = 1
	snapshotHeadBytes = 4 + 2 + 8 + 1 + 8 + 4 + 4 + 8 + 2 + 4 + 4
	snapshotEntryMin  = 8 + 2 + 8 + 1
	snapshotBatch     = 4 + 4 + 8 + 8
	// snapshotBytesMax bounds a snapshot file read at recovery.
	snapshotBytesMax = 256 << 20
)

// batchAnchor identifies a batch by header fields that compaction keeps.
type batchAnchor struct {
	present         bool
	base            int64
	lastOffsetDelta int32
	leaderEpoch     int32
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
}

func anchorOf(h batchInfo) batchAnchor {
	return batchAnchor{present: true, base: h.base, lastOffsetDelta: int32(h.last - h.base), leaderEpoch: h.leaderEpoch,
		producerID: h.producerID, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeSnapshot(offset int64, anchor batchAnchor, producers []*ProducerState) []byte {
	be := binary.BigEndian
	buf := make([]byte, 0, snapshotHeadBytes+len(producers)*(snapshotEntryMin+producerBatchesMax*snapshotBatch)+4)
	buf = be.AppendUint32(buf, snapshotMagic)
	buf = be.AppendUint16(buf, snapshotVersion)
	buf = be.AppendUint64(buf, uint64(offset))
	present := byte(0)
	if anchor.present {
		present = 1
	}
	buf = append(buf, present)
	buf = be.AppendUint64(buf, uint64(anchor.base))
	buf = be.AppendUint32(buf, uint32(anchor.lastOffsetDelta))
	buf = be.AppendUint32(buf, uint32(anchor.leaderEpoch))
	buf = be.AppendUint64(buf, uint64(anchor.producerID))
	buf = be.AppendUint16(buf, uint16(anchor.producerEpoch))
	buf = be.AppendUint32(buf, uint32(anchor.baseSequence))
	buf = be.AppendUint32(buf, uint32(len(producers)))
	for _, p := range producers {
		buf = be.AppendUint64(buf, uint64(p.ProducerID))
		buf = be.AppendUint16(buf, uint16(p.Epoch))
		buf = be.AppendUint64(buf, uint64(p.LastTimestampMs))
		buf = append(buf, byte(len(p.Batches)))
		for _, b := range p.Batches {
			buf = be.AppendUint32(buf, uint32(b.FirstSequence))
			buf = be.AppendUint32(buf, uint32(b.LastSequence))
			buf = be.AppendUint64(buf, uint64(b.FirstOffset))
			buf = be.AppendUint64(buf, uint64(b.LastOffset))
		}
	}
	return be.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

var errSnapshot = errors.New("bad producer snapshot")

func decodeSnapshot(data []byte) (offset int64, anchor batchAnchor, producers []*ProducerState, err error) {
	be := binary.BigEndian
	if len(data) < snapshotHeadBytes+4 {
		return 0, anchor, nil, fmt.Errorf("%w: %d bytes", errSnapshot, len(data))
	}
	body, sum := data[:len(data)-4], be.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, anchor, nil, fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	if be.Uint32(body) != snapshotMagic || be.Uint16(body[4:]) != snapshotVersion {
		return 0, anchor, nil, fmt.Errorf("%w: magic %#x version %d", errSnapshot, be.Uint32(body), be.Uint16(body[4:]))
	}
	offset = int64(be.Uint64(body[6:]))
	anchor = batchAnchor{
		present:         body[14] == 1,
		base:            int64(be.Uint64(body[15:])),
		lastOffsetDelta: int32(be.Uint32(body[23:])),
		leaderEpoch:     int32(be.Uint32(body[27:])),
		producerID:      int64(be.Uint64(body[31:])),
		producerEpoch:   int16(be.Uint16(body[39:])),
		baseSequence:    int32(be.Uint32(body[41:])),
	}
	count := int(be.Uint32(body[45:]))
	rest := body[snapshotHeadBytes:]
	if count > len(rest)/snapshotEntryMin {
		return 0, anchor, nil, fmt.Errorf("%w: %d producers in %d bytes", errSnapshot, count, len(rest))
	}
	producers = make([]*ProducerState, 0, count)
	for i := 0; i < count; i++ {
		if len(rest) < snapshotEntryMin {
			return 0, anchor, nil, fmt.Errorf("%w: producer %d cut short", errSnapshot, i)
		}
		p := &ProducerState{ProducerID: int64(be.Uint64(rest)), Epoch: int16(be.Uint16(rest[8:])), LastTimestampMs: int64(be.Uint64(rest[10:]))}
		n := int(rest[18])
		rest = rest[snapshotEntryMin:]
		if n > producerBatchesMax || len(rest) < n*snapshotBatch {
			return 0, anchor, nil, fmt.Errorf("%w: producer %d has %d batches", errSnapshot, p.ProducerID, n)
		}
		for j := 0; j < n; j++ {
			p.Batches = append(p.Batches, ProducerBatch{
				FirstSequence: int32(be.Uint32(rest)), LastSequence: int32(be.Uint32(rest[4:])),
				FirstOffset: int64(be.Uint64(rest[8:])), LastOffset: int64(be.Uint64(rest[16:])),
			})
			rest = rest[snapshotBatch:]
		}
		producers = append(producers, p)
	}
	if len(rest) != 0 {
		return 0, anchor, nil, fmt.Errorf("%w: %d bytes after the producers", errSnapshot, len(rest))
	}
	return offset, anchor, producers, nil
}
