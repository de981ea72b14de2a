package kafka

import (
	"maps"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec is a topic a driver creates through CreateTopics as it starts,
// as an application's admin client does before producing: its partition
// count and Kafka's topic configs ("cleanup.policy", "segment.bytes",
// ...), which the broker parses and applies to the topic's logs.
type TopicSpec struct {
	Partitions int32
	Configs    map[string]string
}

// codeTopicAlreadyExists answers a CreateTopics for a topic that exists:
// another client created it first, or this one before a crash.
const codeTopicAlreadyExists int16 = 36

const (
	// topicCreateRetry is the pause between CreateTopics attempts.
	topicCreateRetry = 200 * time.Millisecond
	// topicCreateAttemptsMax bounds the attempts: a minute of a broker
	// that never answers.
	topicCreateAttemptsMax = 300
)

// topicCreator sends CreateTopics for one topic until a broker says it
// was created or already exists. The producer and consumers meanwhile
// ask metadata for the topic and wait (they do not create topics
// themselves), so its configs are the topic's from the start.
type topicCreator struct {
	env      sim.Env
	cl       *cluster
	topic    string
	spec     TopicSpec
	attempts int
	done     bool
	timer    sim.Timer
}

// startTopicCreator starts creating topic on the bootstrap brokers.
func startTopicCreator(env sim.Env, bootstrap []string, clientID, topic string, spec TopicSpec) *topicCreator {
	tc := &topicCreator{env: env, topic: topic, spec: spec}
	tc.cl = newCluster(env, adminClusterConfig(bootstrap, clientID), func() {})
	tc.attempt()
	return tc
}

// attempt sends one CreateTopics, to the bootstrap brokers in turn.
func (tc *topicCreator) attempt() {
	if tc.done {
		return
	}
	if tc.attempts >= topicCreateAttemptsMax {
		tc.env.Log.Logf("kafka driver: topic %s not created after %d attempts", tc.topic, tc.attempts)
		tc.close()
		return
	}
	node := bootstrapNode(tc.attempts % len(tc.cl.cfg.bootstrap))
	tc.attempts++
	tc.cl.call(node, tc.request(), 0, false, tc.answered)
}

// request is the CreateTopics request for the topic, its configs in name
// order.
func (tc *topicCreator) request() *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tc.topic, tc.spec.Partitions, 1
	for _, name := range slices.Sorted(maps.Keys(tc.spec.Configs)) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		value := tc.spec.Configs[name]
		c.Name, c.Value = name, &value
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// answered retries after a failed attempt and stops after a created or
// existing topic.
func (tc *topicCreator) answered(resp kmsg.Response, err error) {
	if tc.done {
		return
	}
	if err == nil {
		r := resp.(*kmsg.CreateTopicsResponse)
		if len(r.Topics) == 1 {
			switch code := r.Topics[0].ErrorCode; code {
			case codeNone, codeTopicAlreadyExists:
				tc.close()
				return
			default:
				tc.env.Log.Logf("kafka driver: create topic %s: error code %d", tc.topic, code)
			}
		}
	}
	tc.timer = tc.env.Clock.AfterFunc(topicCreateRetry, tc.attempt)
}

// close stops creating and closes the creator's connections.
func (tc *topicCreator) close() {
	if tc.done {
		return
	}
	tc.done = true
	if tc.timer != nil {
		tc.timer.Stop()
	}
	tc.cl.close()
}
