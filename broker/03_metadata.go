package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-12.
//
// One broker leads every partition, with itself as the only replica and
// in-sync replica. Topics the client names that do not exist are created
// when auto-creation is on and the request allows it (v4+; always before
// v4, as Kafka did), with NumPartitions partitions.
func init() { serve(3, 0, 12, handleMetadata) }

func handleMetadata(b *Broker, req *request) {
	r := req.kreq.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: b.cfg.NodeID, Host: b.host, Port: b.port}}

	// v0: an empty list means every topic; v1+: null means every topic.
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		for _, name := range b.topics.sortedNames() {
			resp.Topics = append(resp.Topics, b.topicMetadata(name))
		}
		req.respond(resp)
		return
	}
	autoCreate := b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	pending := 1 // released after the loop, so the answer waits for every creation
	finish := func(error) {
		pending--
		if pending == 0 {
			b.answerMetadata(req, resp, r)
		}
	}
	for _, rt := range r.Topics {
		if rt.Topic == nil {
			continue // a request by topic id; ids are not served yet
		}
		name := *rt.Topic
		if b.topics.byName[name] == nil && autoCreate && validateTopicName(name) == nil {
			pending++
			b.createTopic(name, b.cfg.NumPartitions, nil, finish)
		}
	}
	finish(nil)
}

func (b *Broker) answerMetadata(req *request, resp *kmsg.MetadataResponse, r *kmsg.MetadataRequest) {
	for _, rt := range r.Topics {
		if rt.Topic != nil {
			resp.Topics = append(resp.Topics, b.topicMetadata(*rt.Topic))
		}
	}
	req.respond(resp)
}

func (b *Broker) topicMetadata(name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &name
	t := b.topics.get(name)
	if t == nil {
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if validateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.TopicID = t.id
	nodes := []int32{b.cfg.NodeID}
	for i, p := range t.partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = p.leaderEpoch
		mp.Replicas = nodes
		mp.ISR = nodes
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
