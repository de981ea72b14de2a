package kafkawire

import "github.com/twmb/franz-go/pkg/kmsg"

// Spares is a bounded free list of messages that have been answered (or
// whose callbacks have returned) and can be decoded or built into again:
// the broker, its replica fetchers and the simulated consumers handle a
// fetch for every batch a leader appends, and a fresh struct each time
// was a good share of a simulation's allocations.
type Spares[T any] struct {
	free []*T
}

// Take returns a spare, or nil when there is none.
func (s *Spares[T]) Take() *T {
	last := len(s.free) - 1
	if last < 0 {
		return nil
	}
	v := s.free[last]
	s.free[last] = nil
	s.free = s.free[:last]
	return v
}

// Put keeps v for a later Take, unless countMax spares are kept already.
func (s *Spares[T]) Put(v *T, countMax int) {
	if len(s.free) < countMax {
		s.free = append(s.free, v)
	}
}

// ResetFetchRequest gives r kmsg's defaults again, keeping the room of
// its topic slice (and of the partition slices behind it) for the next
// request built in it.
func ResetFetchRequest(r *kmsg.FetchRequest) {
	topics := r.Topics[:0]
	*r = kmsg.NewFetchRequest()
	r.Topics = topics
}

// ResetFetchResponse is ResetFetchRequest for an answer.
func ResetFetchResponse(r *kmsg.FetchResponse) {
	topics := r.Topics[:0]
	*r = kmsg.NewFetchResponse()
	r.Topics = topics
}

// AppendFetchTopic appends a request topic named topic, reusing the
// partition slice a topic of an earlier request left in that place, with
// room for at least partsMin partitions (0: whatever is there).
func AppendFetchTopic(topics []kmsg.FetchRequestTopic, topic string, partsMin int) []kmsg.FetchRequestTopic {
	var parts []kmsg.FetchRequestTopicPartition
	if n := len(topics); n < cap(topics) {
		parts = topics[:n+1][n].Partitions[:0]
	}
	if cap(parts) < partsMin {
		// Room for the rest: one allocation, not one per doubling.
		parts = make([]kmsg.FetchRequestTopicPartition, 0, partsMin)
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	return append(topics, rt)
}

// ResetProduceRequest gives r kmsg's defaults again, keeping the room of
// its topic slice and of the partition slices behind it (kmsg decodes
// into the room a slice has).
func ResetProduceRequest(r *kmsg.ProduceRequest) {
	topics := r.Topics[:0]
	*r = kmsg.NewProduceRequest()
	r.Topics = topics
}

// ResetProduceResponse is ResetProduceRequest for an answer.
func ResetProduceResponse(r *kmsg.ProduceResponse) {
	topics := r.Topics[:0]
	*r = kmsg.NewProduceResponse()
	r.Topics = topics
}

// GrowProduceResponseTopics returns topics resized to n topics, each with
// kmsg's defaults and an empty partition slice that keeps the room an
// earlier answer's topic left in that place.
func GrowProduceResponseTopics(topics []kmsg.ProduceResponseTopic, n int) []kmsg.ProduceResponseTopic {
	if cap(topics) < n {
		topics = append(topics[:cap(topics)], make([]kmsg.ProduceResponseTopic, n-cap(topics))...)
	}
	topics = topics[:n]
	for i := range topics {
		parts := topics[i].Partitions[:0]
		topics[i] = kmsg.NewProduceResponseTopic()
		topics[i].Partitions = parts
	}
	return topics
}

// GrowProduceResponsePartitions returns parts resized to n partitions,
// each with kmsg's defaults.
func GrowProduceResponsePartitions(parts []kmsg.ProduceResponseTopicPartition, n int) []kmsg.ProduceResponseTopicPartition {
	if cap(parts) < n {
		parts = make([]kmsg.ProduceResponseTopicPartition, n)
	}
	parts = parts[:n]
	for i := range parts {
		parts[i] = kmsg.NewProduceResponseTopicPartition()
	}
	return parts
}

// AppendProduceTopic appends a request topic named topic, reusing the
// partition slice a topic of an earlier request left in that place.
func AppendProduceTopic(topics []kmsg.ProduceRequestTopic, topic string) []kmsg.ProduceRequestTopic {
	var parts []kmsg.ProduceRequestTopicPartition
	if n := len(topics); n < cap(topics) {
		parts = topics[:n+1][n].Partitions[:0]
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	return append(topics, rt)
}
