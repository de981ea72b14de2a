package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// CreateTopics: v0-7.
//
// Creates topics with a partition count (-1: num.partitions), a
// replication factor (-1: default.replication.factor; a single broker
// has no second replica) and the topic configs in topicConfigKeys. The
// answer waits until the topics are durably recorded: in topics.json, or
// in a cluster in the controller's log and this broker's image.
// validate_only checks without creating.
func init() { serve(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, req *request) {
	r := req.kreq.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	pending := 1 // released after the loop, so an answer waits for every topic
	finish := func() {
		pending--
		if pending == 0 {
			req.respond(resp)
		}
	}
	seen := map[string]bool{}
	for _, rt := range r.Topics {
		i := len(resp.Topics)
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
		resp.Topics = append(resp.Topics, st)
		fail := func(e *kerr.Error, msg string) {
			resp.Topics[i].ErrorCode = e.Code
			resp.Topics[i].ErrorMessage = &msg
		}
		partitions, configs, kerrv, msg := b.checkNewTopic(rt, seen)
		seen[rt.Topic] = true
		if kerrv != nil {
			fail(kerrv, msg)
			continue
		}
		rf := int16(1)
		if b.cluster != nil {
			rf = rt.ReplicationFactor
			if rf == -1 {
				rf = b.cfg.Cluster.DefaultReplicationFactor
			}
		}
		resp.Topics[i].NumPartitions, resp.Topics[i].ReplicationFactor = partitions, rf
		if r.ValidateOnly {
			continue
		}
		pending++
		if b.cluster != nil {
			b.cluster.createTopic(rt.Topic, partitions, rf, configs, func(code metadata.Code) {
				if code != metadata.CodeNone {
					fail(controllerError(code), "the controller refused: "+code.String())
				} else if t := b.cluster.member.Image().State().Topics[rt.Topic]; t != nil {
					resp.Topics[i].TopicID, _ = parseTopicID(t.ID)
				}
				finish()
			})
			continue
		}
		b.createTopic(rt.Topic, partitions, configs, func(err error) {
			if err != nil {
				fail(kerr.KafkaStorageError, err.Error())
			} else {
				resp.Topics[i].TopicID = b.topics.get(rt.Topic).id
			}
			finish()
		})
	}
	finish()
}

// checkNewTopic validates one requested topic.
func (b *Broker) checkNewTopic(rt kmsg.CreateTopicsRequestTopic, seen map[string]bool) (int32, map[string]string, *kerr.Error, string) {
	if seen[rt.Topic] {
		return 0, nil, kerr.InvalidRequest, "topic named twice in one request"
	}
	if err := validateTopicName(rt.Topic); err != nil {
		return 0, nil, kerr.InvalidTopicException, err.Error()
	}
	if b.topicExists(rt.Topic) {
		return 0, nil, kerr.TopicAlreadyExists, fmt.Sprintf("topic %s already exists", rt.Topic)
	}
	if len(rt.ReplicaAssignment) > 0 {
		return 0, nil, kerr.InvalidReplicaAssignment, "manual replica assignment is not supported"
	}
	partitions := rt.NumPartitions
	if partitions == -1 {
		partitions = b.cfg.NumPartitions
	}
	if partitions < 1 || partitions > partitionsMax {
		return 0, nil, kerr.InvalidPartitions, fmt.Sprintf("%d partitions, want 1 to %d", partitions, partitionsMax)
	}
	if b.cluster != nil {
		if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			return 0, nil, kerr.InvalidReplicationFactor, fmt.Sprintf("replication factor %d", rt.ReplicationFactor)
		}
	} else if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
		return 0, nil, kerr.InvalidReplicationFactor,
			fmt.Sprintf("replication factor %d is larger than the 1 available broker", rt.ReplicationFactor)
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if !isTopicConfigKey(c.Name) {
			return 0, nil, kerr.InvalidConfig, fmt.Sprintf("unknown topic config %q", c.Name)
		}
		if c.Value == nil {
			return 0, nil, kerr.InvalidConfig, fmt.Sprintf("topic config %s has no value", c.Name)
		}
		configs[c.Name] = *c.Value
	}
	if _, err := topicLogConfig(b.cfg.Log, configs); err != nil {
		return 0, nil, kerr.InvalidConfig, err.Error()
	}
	return partitions, configs, nil, ""
}

// createTopic creates a topic that passed validation (or an auto-created
// one) and calls done once it is durably recorded.
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string, done func(error)) {
	if b.topics.byName[name] != nil {
		done(nil) // created meanwhile, e.g. by a concurrent auto-creation
		return
	}
	rec := topicRecord{Name: name, ID: newTopicID(b), Partitions: partitions, Configs: configs}
	logged := func(err error) {
		if err != nil {
			b.env.Log.Logf("create topic %s: %v", name, err)
		}
		done(err)
	}
	if err := b.topics.create(rec, logged); err != nil {
		logged(err)
	}
}

// topicExists reports whether a topic of that name exists (in a cluster,
// in the image).
func (b *Broker) topicExists(name string) bool {
	if b.cluster != nil {
		return b.cluster.member != nil && b.cluster.member.Image().State().Topics[name] != nil
	}
	return b.topics.byName[name] != nil
}

// controllerError is the Kafka error of a controller's refusal (the codes
// are Kafka's).
func controllerError(code metadata.Code) *kerr.Error {
	if e, ok := kerr.ErrorForCode(int16(code)).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}
