package kafkawire

import (
	"math"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The decoders read what the encoders write: a Fetch request or response
// of version 12 with no tagged field, the only kind a simulated second
// carries by the thousand (a follower's and a consumer's fetch for every
// batch a leader appends). They fill the message as kmsg's ReadFrom does,
// but reuse the room of its topic and partition slices, keep a topic name
// the earlier message in that place had instead of copying it again, and
// do not allocate the tag sets kmsg reads per partition. Anything else (a
// tag, forgotten topics, a rack, aborted transactions, another version,
// a truncated message) is read by kmsg, from defaults, so the result is
// always kmsg's.

// ReadFetchRequest decodes a fetch request's body into r, whose version
// is set, as r.UnsafeReadFrom does into a new request (topic names may
// point into body). r may hold an earlier request: every field is
// replaced, and the room of its slices reused.
func ReadFetchRequest(r *kmsg.FetchRequest, body []byte) error {
	if r.Version == 12 && readFetchRequest12(r, body) {
		return nil
	}
	version := r.Version
	ResetFetchRequest(r)
	r.Version = version
	return r.UnsafeReadFrom(body)
}

// ReadFetchResponse decodes a fetch response's body into r, whose version
// is set, as r.ReadFrom does into a new response (record batches point
// into body). r may hold an earlier response, as for ReadFetchRequest.
func ReadFetchResponse(r *kmsg.FetchResponse, body []byte) error {
	if r.Version == 12 && readFetchResponse12(r, body) {
		return nil
	}
	version := r.Version
	ResetFetchResponse(r)
	r.Version = version
	return r.ReadFrom(body)
}

// readFetchRequest12 reports whether body was a plain version 12 request,
// read into r; when not, r is left for kmsg to read again.
func readFetchRequest12(r *kmsg.FetchRequest, body []byte) bool {
	b := kbin.Reader{Src: body}
	r.ReplicaID = b.Int32()
	r.MaxWaitMillis = b.Int32()
	r.MinBytes = b.Int32()
	r.MaxBytes = b.Int32()
	r.IsolationLevel = b.Int8()
	r.SessionID = b.Int32()
	r.SessionEpoch = b.Int32()
	n := b.CompactArrayLen()
	if !b.Ok() || n < 0 {
		return false
	}
	topics := r.Topics[:0]
	for range n {
		name := keptName(b.Span(int(b.Uvarint())-1), topics)
		topics = AppendFetchTopic(topics, name, 0)
		t := &topics[len(topics)-1]
		parts := b.CompactArrayLen()
		if !b.Ok() || parts < 0 {
			return false
		}
		for range parts {
			t.Partitions = append(t.Partitions, kmsg.FetchRequestTopicPartition{
				Partition:          b.Int32(),
				CurrentLeaderEpoch: b.Int32(),
				FetchOffset:        b.Int64(),
				LastFetchedEpoch:   b.Int32(),
				LogStartOffset:     b.Int64(),
				PartitionMaxBytes:  b.Int32(),
				HighWatermark:      math.MaxInt64,
			})
			if !noTags(&b) {
				return false
			}
		}
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	forgotten := b.CompactArrayLen()
	rack := b.Uvarint()
	if !b.Ok() || forgotten != 0 || rack != 1 || !noTags(&b) {
		return false
	}
	r.ForgottenTopics = r.ForgottenTopics[:0]
	r.Rack = ""
	r.ClusterID = nil
	r.ReplicaState = kmsg.FetchRequestReplicaState{ID: -1, Epoch: -1}
	r.UnknownTags = kmsg.Tags{}
	return true
}

// readFetchResponse12 is readFetchRequest12 for an answer.
func readFetchResponse12(r *kmsg.FetchResponse, body []byte) bool {
	b := kbin.Reader{Src: body}
	r.ThrottleMillis = b.Int32()
	r.ErrorCode = b.Int16()
	r.SessionID = b.Int32()
	n := b.CompactArrayLen()
	if !b.Ok() || n < 0 {
		return false
	}
	topics := r.Topics[:0]
	for range n {
		name := keptResponseName(b.Span(int(b.Uvarint())-1), topics)
		var parts []kmsg.FetchResponseTopicPartition
		if len(topics) < cap(topics) {
			parts = topics[:len(topics)+1][len(topics)].Partitions[:0]
		}
		topics = append(topics, kmsg.FetchResponseTopic{Topic: name})
		count := b.CompactArrayLen()
		if !b.Ok() || count < 0 {
			return false
		}
		for range count {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = b.Int32()
			p.ErrorCode = b.Int16()
			p.HighWatermark = b.Int64()
			p.LastStableOffset = b.Int64()
			p.LogStartOffset = b.Int64()
			if b.CompactArrayLen() != -1 { // aborted transactions: kmsg's
				return false
			}
			p.PreferredReadReplica = b.Int32()
			if size := int(b.Uvarint()) - 1; size >= 0 {
				p.RecordBatches = b.Span(size)
			}
			if !noTags(&b) {
				return false
			}
			parts = append(parts, p)
		}
		topics[len(topics)-1].Partitions = parts
		if !noTags(&b) {
			return false
		}
	}
	r.Topics = topics
	if !noTags(&b) {
		return false
	}
	r.Brokers = r.Brokers[:0]
	r.UnknownTags = kmsg.Tags{}
	return true
}

// noTags reads a tag count and reports whether it was a well-formed zero.
func noTags(b *kbin.Reader) bool {
	return b.Uvarint() == 0 && b.Ok()
}

// keptName returns name as a string: the name the topic about to be
// appended to topics had in the earlier request decoded into them when
// it is the same, so that a fetch names its topics without copying them.
func keptName(name []byte, topics []kmsg.FetchRequestTopic) string {
	if n := len(topics); n < cap(topics) {
		if earlier := topics[:n+1][n].Topic; earlier == string(name) {
			return earlier
		}
	}
	return string(name)
}

// keptResponseName is keptName for an answer's topics.
func keptResponseName(name []byte, topics []kmsg.FetchResponseTopic) string {
	if n := len(topics); n < cap(topics) {
		if earlier := topics[:n+1][n].Topic; earlier == string(name) {
			return earlier
		}
	}
	return string(name)
}
