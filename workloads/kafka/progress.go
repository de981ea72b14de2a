package kafka

import (
	"fmt"
	"strings"
)

// What the clients report of their progress, for a watchdog that fails a
// run whose clients stop getting anywhere while they still have work: it
// names the stuck operation from these reports rather than from the
// history after the fact.

// partStall is what a consumed partition did since its consumer last read
// past what it had read: the trail a no-progress verdict shows.
type partStall struct {
	// resets counts OFFSET_OUT_OF_RANGE answers; resetOffset is where the
	// last reset put the position, -1 before one.
	resets      int
	resetOffset int64
	// rereadLow and rereadHigh span the offsets returned again, -1 while
	// none was.
	rereadLow, rereadHigh int64
	// failures counts failed fetches and lookups; lastFailure says why the
	// last one failed.
	failures    int
	lastFailure string
}

var noStall = partStall{resetOffset: -1, rereadLow: -1, rereadHigh: -1}

// noteRead records that the record at offset was taken: progress when it
// lies past everything read since the last seek, a re-read otherwise.
func (cp *consumedPart) noteRead(offset int64) {
	if offset >= cp.readMax {
		cp.readMax = offset + 1
		cp.stall = noStall
		return
	}
	if cp.stall.rereadLow < 0 || offset < cp.stall.rereadLow {
		cp.stall.rereadLow = offset
	}
	cp.stall.rereadHigh = max(cp.stall.rereadHigh, offset)
}

// PartitionProgress is what a consumer reports of one partition.
type PartitionProgress struct {
	TP TopicPartition
	// ReadMax is one past the highest offset returned since the last seek:
	// it grows only when the consumer reads something new.
	ReadMax int64
	// Behind: the partition has work left: its position is not at the
	// high watermark the broker last reported, or a reset or error holds
	// it.
	Behind bool
	// Attempts counts resets and failed fetches or lookups since ReadMax
	// last grew: a consumer in a loop piles them up fast.
	Attempts int
}

// ClientID is the name the consumer gives the brokers.
func (co *Consumer) ClientID() string { return co.cfg.ClientID }

// Progress reports each assigned partition's progress.
func (co *Consumer) Progress() []PartitionProgress {
	return co.AppendProgress(make([]PartitionProgress, 0, len(co.parts)))
}

// AppendProgress is Progress appending to dst, for a caller that asks
// often and keeps its slice.
func (co *Consumer) AppendProgress(dst []PartitionProgress) []PartitionProgress {
	for _, cp := range co.parts {
		behind := cp.err != nil || cp.reset != resetNothing || cp.highWater < 0 || cp.position != cp.highWater
		dst = append(dst, PartitionProgress{TP: cp.tp, ReadMax: cp.readMax, Behind: behind, Attempts: cp.stall.resets + cp.stall.failures})
	}
	return dst
}

// DescribeStall says what the consumer did on tp since it last read past
// what it had read: resets, re-reads, failures, where it stands. A
// watchdog asks only once it judges the partition stuck.
func (co *Consumer) DescribeStall(tp TopicPartition) string {
	cp := co.byTP[tp]
	if cp == nil {
		return tp.String() + " not assigned"
	}
	return cp.describeStall()
}

func (cp *consumedPart) describeStall() string {
	var parts []string
	st := cp.stall
	if st.resets > 0 {
		reset := fmt.Sprintf("reset after OFFSET_OUT_OF_RANGE %d times", st.resets)
		if st.resetOffset >= 0 {
			reset = fmt.Sprintf("reset to offset %d after OFFSET_OUT_OF_RANGE %d times", st.resetOffset, st.resets)
		}
		parts = append(parts, reset)
	}
	if st.rereadLow >= 0 {
		parts = append(parts, fmt.Sprintf("re-read offsets %d..%d without reading past %d", st.rereadLow, st.rereadHigh, cp.readMax-1))
	}
	if st.failures > 0 {
		parts = append(parts, fmt.Sprintf("failed %d times (last: %s)", st.failures, st.lastFailure))
	}
	if cp.err != nil {
		parts = append(parts, "stopped: "+cp.err.Error())
	}
	parts = append(parts, fmt.Sprintf("position %d, high watermark %d", cp.position, cp.highWater))
	return strings.Join(parts, "; ")
}

// ProducerProgress is what a producer reports.
type ProducerProgress struct {
	// Written counts records the broker took: acknowledged ones, and with
	// acks=0 those sent. It grows only with progress.
	Written int
	// Pending counts records handed to Send and without an outcome.
	Pending int
	// FailedSinceWritten counts records that ended without being written
	// since the last one written: a producer whose sends all fail has
	// work it cannot do, even at a moment with none pending.
	FailedSinceWritten int
	// Attempts counts the requests that carried the oldest pending batch.
	Attempts int
}

// Progress reports the producer's progress.
func (p *Producer) Progress() ProducerProgress {
	pr := ProducerProgress{Written: p.written, Pending: p.Buffered(), FailedSinceWritten: p.failedSinceWritten}
	if b := p.oldestBatch(); b != nil {
		pr.Attempts = b.attempts
	}
	return pr
}

func (p *Producer) oldestBatch() *batch {
	var oldest *batch
	for _, ps := range p.parts {
		if len(ps.batches) > 0 && (oldest == nil || ps.batches[0].createdMono < oldest.createdMono) {
			oldest = ps.batches[0]
		}
	}
	return oldest
}

// DescribeStall says what the producer did since it last wrote a record:
// what holds up its oldest pending send, or how its sends failed. A
// watchdog asks only once it judges the producer stuck.
func (p *Producer) DescribeStall() string {
	pending := p.Buffered()
	if pending == 0 {
		if p.failedSinceWritten == 0 {
			return "nothing pending"
		}
		return fmt.Sprintf("no send pending; %d failed since the last written (last: %v)", p.failedSinceWritten, p.lastFailure)
	}
	return fmt.Sprintf("%d sends pending, %d failed since the last written; the oldest: %s",
		pending, p.failedSinceWritten, p.describeOldest())
}

// describeOldest says what holds up the oldest pending record.
func (p *Producer) describeOldest() string {
	oldest := p.oldestBatch()
	var why string
	switch {
	case len(p.parked) > 0 && (oldest == nil || p.parked[0].createdMono <= oldest.createdMono):
		why = fmt.Sprintf("send of value %s waits for a partition of %s (no metadata or no leader)",
			p.parked[0].rec.Value, p.parked[0].rec.Topic)
	case oldest == nil:
		return "none"
	case oldest.attempts == 0:
		why = fmt.Sprintf("send of value %s to %s not sent yet", oldest.records[0].rec.Value, oldest.tp)
	default:
		why = fmt.Sprintf("send of value %s to %s retried %d times", oldest.records[0].rec.Value, oldest.tp, oldest.attempts-1)
		if oldest.lastErr != nil {
			why += fmt.Sprintf(" (%v)", oldest.lastErr)
		}
	}
	switch {
	case p.resetPending:
		why += "; waiting for a new producer epoch"
	case p.idempotent && p.identity != identityReady:
		why += "; waiting for a producer id"
	}
	return why
}

// BufferedBytes is the size of the records the producer holds, parked or
// batched, for a memory estimate.
func (p *Producer) BufferedBytes() int { return p.bufferedBytes }
