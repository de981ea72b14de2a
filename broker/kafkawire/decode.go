package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The decoders below read the messages a simulated second carries by the
// thousand (Fetch and Produce requests and responses) in their flexible
// versions into a message that is decoded into again and again, keeping
// the room of its nested slices (kmsg zeroes a nested slice before
// decoding into it, so every partition slice was a fresh allocation) and
// pointing strings into the frame, as kmsg's UnsafeReadFrom does. They
// take only messages without tagged fields and without the rare parts
// (aborted transactions, per-record errors, forgotten topics); anything
// else, malformed input included, is decoded again by kmsg from the
// start, so the result and any error are always kmsg's.

// ReadFetchRequest decodes src into r, whose Version is set, as
// r.UnsafeReadFrom does.
func ReadFetchRequest(r *kmsg.FetchRequest, src []byte) error {
	if r.Version == 12 && readFetchRequest12(r, src) {
		return nil
	}
	return r.UnsafeReadFrom(src)
}

// ReadProduceRequest decodes src into r, whose Version is set, as
// r.UnsafeReadFrom does.
func ReadProduceRequest(r *kmsg.ProduceRequest, src []byte) error {
	if r.Version >= 9 && r.Version <= 12 && readProduceRequestFlexible(r, src) {
		return nil
	}
	return r.UnsafeReadFrom(src)
}

// ReadFetchResponse decodes src into r, whose Version is set, as
// r.UnsafeReadFrom does.
func ReadFetchResponse(r *kmsg.FetchResponse, src []byte) error {
	if r.Version == 12 && readFetchResponse12(r, src) {
		return nil
	}
	return r.UnsafeReadFrom(src)
}

// ReadProduceResponse decodes src into r, whose Version is set, as
// r.UnsafeReadFrom does.
func ReadProduceResponse(r *kmsg.ProduceResponse, src []byte) error {
	if r.Version >= 9 && r.Version <= 12 && readProduceResponseFlexible(r, src) {
		return nil
	}
	return r.UnsafeReadFrom(src)
}

// resized is s at length n, keeping the elements between its length and
// its capacity, whose nested slices are reused.
func resized[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}

// noTags reads a tag buffer and reports whether it was empty.
func noTags(b *kbin.Reader) bool { return b.Uvarint() == 0 && b.Ok() }

func readFetchRequest12(r *kmsg.FetchRequest, src []byte) bool {
	topics, forgotten := r.Topics[:0], r.ForgottenTopics[:0]
	*r = kmsg.NewFetchRequest()
	r.Version = 12
	b := kbin.Reader{Src: src}
	r.ReplicaID = b.Int32()
	r.MaxWaitMillis = b.Int32()
	r.MinBytes = b.Int32()
	r.MaxBytes = b.Int32()
	r.IsolationLevel = b.Int8()
	r.SessionID = b.Int32()
	r.SessionEpoch = b.Int32()
	n := b.CompactArrayLen()
	if !b.Ok() {
		return false
	}
	topics = resized(topics, max(int(n), 0))
	for i := range topics {
		t := &topics[i]
		parts := t.Partitions[:0]
		*t = kmsg.NewFetchRequestTopic()
		t.Topic = b.UnsafeCompactString()
		m := b.CompactArrayLen()
		if !b.Ok() {
			return false
		}
		parts = resized(parts, max(int(m), 0))
		for j := range parts {
			p := &parts[j]
			*p = kmsg.NewFetchRequestTopicPartition()
			p.Partition = b.Int32()
			p.CurrentLeaderEpoch = b.Int32()
			p.FetchOffset = b.Int64()
			p.LastFetchedEpoch = b.Int32()
			p.LogStartOffset = b.Int64()
			p.PartitionMaxBytes = b.Int32()
			if !noTags(&b) {
				return false
			}
		}
		t.Partitions = parts
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	if n := b.CompactArrayLen(); n > 0 || !b.Ok() {
		return false
	}
	r.ForgottenTopics = forgotten
	r.Rack = b.UnsafeCompactString()
	return noTags(&b)
}

func readProduceRequestFlexible(r *kmsg.ProduceRequest, src []byte) bool {
	version, topics := r.Version, r.Topics[:0]
	*r = kmsg.NewProduceRequest()
	r.Version = version
	b := kbin.Reader{Src: src}
	r.TransactionID = b.UnsafeCompactNullableString()
	r.Acks = b.Int16()
	r.TimeoutMillis = b.Int32()
	n := b.CompactArrayLen()
	if !b.Ok() {
		return false
	}
	topics = resized(topics, max(int(n), 0))
	for i := range topics {
		t := &topics[i]
		parts := t.Partitions[:0]
		*t = kmsg.NewProduceRequestTopic()
		t.Topic = b.UnsafeCompactString()
		m := b.CompactArrayLen()
		if !b.Ok() {
			return false
		}
		parts = resized(parts, max(int(m), 0))
		for j := range parts {
			p := &parts[j]
			*p = kmsg.NewProduceRequestTopicPartition()
			p.Partition = b.Int32()
			p.Records = b.CompactNullableBytes()
			if !noTags(&b) {
				return false
			}
		}
		t.Partitions = parts
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	return noTags(&b)
}

func readFetchResponse12(r *kmsg.FetchResponse, src []byte) bool {
	topics := r.Topics[:0]
	*r = kmsg.NewFetchResponse()
	r.Version = 12
	b := kbin.Reader{Src: src}
	r.ThrottleMillis = b.Int32()
	r.ErrorCode = b.Int16()
	r.SessionID = b.Int32()
	n := b.CompactArrayLen()
	if !b.Ok() {
		return false
	}
	topics = resized(topics, max(int(n), 0))
	for i := range topics {
		t := &topics[i]
		parts := t.Partitions[:0]
		*t = kmsg.NewFetchResponseTopic()
		t.Topic = b.UnsafeCompactString()
		m := b.CompactArrayLen()
		if !b.Ok() {
			return false
		}
		parts = resized(parts, max(int(m), 0))
		for j := range parts {
			p := &parts[j]
			*p = kmsg.NewFetchResponseTopicPartition()
			p.Partition = b.Int32()
			p.ErrorCode = b.Int16()
			p.HighWatermark = b.Int64()
			p.LastStableOffset = b.Int64()
			p.LogStartOffset = b.Int64()
			switch aborted := b.CompactArrayLen(); {
			case !b.Ok() || aborted > 0:
				return false
			case aborted == 0:
				// kmsg's: an empty array is empty, a null one nil.
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			p.PreferredReadReplica = b.Int32()
			p.RecordBatches = b.CompactNullableBytes()
			if !noTags(&b) {
				return false
			}
		}
		t.Partitions = parts
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	return noTags(&b)
}

func readProduceResponseFlexible(r *kmsg.ProduceResponse, src []byte) bool {
	version, topics := r.Version, r.Topics[:0]
	*r = kmsg.NewProduceResponse()
	r.Version = version
	b := kbin.Reader{Src: src}
	n := b.CompactArrayLen()
	if !b.Ok() {
		return false
	}
	topics = resized(topics, max(int(n), 0))
	for i := range topics {
		t := &topics[i]
		parts := t.Partitions[:0]
		*t = kmsg.NewProduceResponseTopic()
		t.Topic = b.UnsafeCompactString()
		m := b.CompactArrayLen()
		if !b.Ok() {
			return false
		}
		parts = resized(parts, max(int(m), 0))
		for j := range parts {
			p := &parts[j]
			*p = kmsg.NewProduceResponseTopicPartition()
			p.Partition = b.Int32()
			p.ErrorCode = b.Int16()
			p.BaseOffset = b.Int64()
			p.LogAppendTime = b.Int64()
			p.LogStartOffset = b.Int64()
			if records := b.CompactArrayLen(); records > 0 || !b.Ok() {
				return false
			}
			p.ErrorMessage = b.UnsafeCompactNullableString()
			if !noTags(&b) {
				return false
			}
		}
		t.Partitions = parts
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	r.ThrottleMillis = b.Int32()
	return noTags(&b)
}
