package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/metadata"
)

// Metadata: v0-12.
//
// A single broker leads every partition, with itself as the only replica
// and in-sync replica. In a cluster the answer is the broker's metadata
// image: every live (unfenced) broker, and each partition's leader (none:
// LEADER_NOT_AVAILABLE), leader epoch, replicas, ISR and offline replicas.
// Topics the client names that do not exist are created when
// auto-creation is on and the request allows it (v4+; always before v4,
// as Kafka did), with NumPartitions partitions (in a cluster through the
// controller, with default.replication.factor replicas).
func init() { serve(3, 0, 12, handleMetadata) }

func handleMetadata(b *Broker, req *request) {
	r := req.kreq.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: b.cfg.NodeID, Host: b.host, Port: b.port}}
	if b.cluster != nil {
		b.cluster.answerMetadata(req, r, resp)
		return
	}

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
		if b.topics.byName[name] == nil && autoCreate && b.createsInternal(name) {
			continue
		}
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
	mt.IsInternal = name == group.OffsetsTopic
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

// answerMetadata answers from the image, creating missing topics through
// the controller first when the request allows it.
func (m *clusterMember) answerMetadata(req *request, r *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	b := m.b
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	autoCreate := b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	pending := 1
	finish := func(metadata.Code) {
		pending--
		if pending > 0 {
			return
		}
		m.fillMetadata(resp, r, all)
		req.respond(resp)
	}
	if !all && autoCreate && m.member != nil {
		s := m.member.Image().State()
		for _, rt := range r.Topics {
			if rt.Topic == nil || s.Topics[*rt.Topic] != nil || validateTopicName(*rt.Topic) != nil {
				continue
			}
			if b.createsInternal(*rt.Topic) {
				continue
			}
			pending++
			m.createTopic(*rt.Topic, b.cfg.NumPartitions, b.cfg.Cluster.DefaultReplicationFactor, nil, finish)
		}
	}
	finish(metadata.CodeNone)
}

// fillMetadata writes the image's brokers and the topics asked for.
func (m *clusterMember) fillMetadata(resp *kmsg.MetadataResponse, r *kmsg.MetadataRequest, all bool) {
	if m.member == nil {
		resp.Brokers = nil
		return
	}
	s := m.member.Image().State()
	resp.Brokers = nil
	for _, id := range s.BrokerIDs() {
		br := s.Brokers[id]
		host, port, ok := splitAddr(br.Addr)
		if br.Fenced || !ok {
			continue
		}
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: id, Host: host, Port: port})
	}
	var names []string
	if all {
		for name := range s.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
	} else {
		for _, rt := range r.Topics {
			if rt.Topic != nil {
				names = append(names, *rt.Topic)
			}
		}
	}
	for _, name := range names {
		resp.Topics = append(resp.Topics, imageTopicMetadata(s, name))
	}
}

func imageTopicMetadata(s *metadata.State, name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(name)
	t := s.Topics[name]
	if t == nil {
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if validateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.IsInternal = name == group.OffsetsTopic
	if id, err := parseTopicID(t.ID); err == nil {
		mt.TopicID = id
	}
	for i, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader, mp.LeaderEpoch = p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
		for _, id := range p.Replicas {
			if br := s.Brokers[id]; br == nil || br.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, id)
			}
		}
		if p.Leader == metadata.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// createsInternal hands an auto-creation of __consumer_offsets to the group
// coordinator, which makes it with its own partition count, replication
// factor and compacted configs, as Kafka creates internal topics; an
// ordinary auto-creation would make it with the defaults of user topics.
// It reports whether the name was the internal topic's.
func (b *Broker) createsInternal(name string) bool {
	if name != group.OffsetsTopic {
		return false
	}
	if b.groups != nil {
		b.groups.ensure()
	}
	return true
}
