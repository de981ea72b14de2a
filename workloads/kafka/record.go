package kafka

import (
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/checkers/history"
)

// Header is a record header. It is the broker's own type, so that records
// pass between the actors and record batches without a copy.
type Header = record.Header

// recordOverheadMaxBytes bounds a record's encoding beyond its key, value
// and headers: the attributes byte, the timestamp delta (a varlong of at
// most 10 bytes) and five varints of at most 5 bytes (length, offset delta,
// key and value lengths, header count). It sizes batches before they are
// encoded.
const recordOverheadMaxBytes = 1 + 10 + 5 + 5 + 5 + 5 + 5

// Record is one Kafka record as the actors hand it over.
type Record struct {
	Topic string
	// Partition is where the record goes or came from. The producer uses
	// it only with ProducerConfig.ManualPartition; otherwise its
	// partitioner fills it in.
	Partition int32
	// Key is nil for a record without a key.
	Key     []byte
	Value   []byte
	Headers []Header
	// Offset is the record's offset, -1 when unknown (a write not
	// acknowledged).
	Offset int64
	// TimestampMs is the record's timestamp in Unix milliseconds.
	TimestampMs int64
}

// historyRecord is r as a history line carries it.
func (r *Record) historyRecord(value historyValue) history.Record {
	return history.Record{
		Topic:     r.Topic,
		Partition: r.Partition,
		Key:       string(r.Key),
		Value:     value(r.Value),
		Offset:    r.Offset,
	}
}

// historyValue turns a record's value into the history's string.
type historyValue func([]byte) string

// historyValueFor is how the history behind rec keeps values: a
// paddingRecorder keeps only a padded value's prefix.
func historyValueFor(rec history.Recorder) historyValue {
	if p, ok := rec.(paddingRecorder); ok {
		return p.historyValue
	}
	return func(value []byte) string { return string(value) }
}

// sizeBytes bounds r's size inside a batch.
func (r *Record) sizeBytes() int {
	n := len(r.Key) + len(r.Value) + recordOverheadMaxBytes
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// TopicPartition names a partition.
type TopicPartition = history.TopicPartition

// compareTP orders partitions by topic, then number.
func compareTP(a, b TopicPartition) int {
	switch {
	case a.Topic < b.Topic:
		return -1
	case a.Topic > b.Topic:
		return 1
	case a.Partition < b.Partition:
		return -1
	case a.Partition > b.Partition:
		return 1
	}
	return 0
}
