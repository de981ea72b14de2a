package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Admin requests in a cluster go through the controller: a topic's new
// configs and partitions are records of the metadata log, applied by every
// broker from its image, and kept across restarts by the log.

func incrementalAlterRequest(topic string, kv ...string) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.SetVersion(1)
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = kv[i], kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(kv[i+1])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	return req
}

func alterConfigsRequest(topic string, kv ...string) *kmsg.AlterConfigsRequest {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.SetVersion(2)
	res := kmsg.NewAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	return req
}

// ask sends a request to the broker with id and waits for the answer.
func (c *clusterRig) ask(id int32, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	return c.wait(tc.send(req))
}

// describedTopicConfig is a topic config as the broker with id describes it.
func (c *clusterRig) describedTopicConfig(id int32, topic, name string) kmsg.DescribeConfigsResponseResourceConfig {
	c.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(4)
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{name}
	req.Resources = append(req.Resources, rr)
	resp := c.ask(id, req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 {
		c.t.Fatalf("broker %d described %s of %s as %+v", id, name, topic, resp.Resources)
	}
	expectCode(c.t, fmt.Sprintf("describe %s at broker %d", topic, id), resp.Resources[0].ErrorCode, nil)
	return resp.Resources[0].Configs[0]
}

// restartBroker kills the broker with id, restarts it and waits until
// every broker is unfenced again and the cluster topic's ISR is whole.
func (c *clusterRig) restartBroker(id int32) {
	c.t.Helper()
	starts := c.starts[id]
	if err := c.w.Kill(brokerName(id)); err != nil {
		c.t.Fatal(err)
	}
	c.runFor(time.Second)
	if err := c.w.Restart(brokerName(id)); err != nil {
		c.t.Fatal(err)
	}
	c.runUntil(fmt.Sprintf("broker %d restarted and unfenced", id), 30*time.Second, func() bool {
		return c.starts[id] > starts && c.unfenced() == 3
	})
}

// TestClusterAlterConfigsReachEveryBroker: IncrementalAlterConfigs at one
// broker sets retention.ms on every broker's log of the topic (the
// answering broker's before it answers), every broker describes it, a
// config a log would refuse is refused with nothing changed, AlterConfigs
// replaces the whole set through the controller too, and a restarted
// broker gets the configs back from the metadata log.
func TestClusterAlterConfigsReachEveryBroker(t *testing.T) {
	c := newClusterRig(t, 23, nil, nil)
	c.createReplicated()
	const retention = 123_456 * time.Millisecond
	c.runUntil("every broker's replica open", 5*time.Second, func() bool {
		for id := int32(1); id <= 3; id++ {
			if _, ok := c.brokers[id].PartitionRetention(clusterTopic, 0); !ok {
				return false
			}
		}
		return true
	})
	for id := int32(1); id <= 3; id++ {
		if got, ok := c.brokers[id].PartitionRetention(clusterTopic, 0); !ok || got == retention {
			t.Fatalf("broker %d: retention %v (replica %v) before the change", id, got, ok)
		}
	}
	resp := c.ask(2, incrementalAlterRequest(clusterTopic, "retention.ms", "123456")).(*kmsg.IncrementalAlterConfigsResponse)
	expectCode(t, "IncrementalAlterConfigs at broker 2", resp.Resources[0].ErrorCode, nil)
	if got, _ := c.brokers[2].PartitionRetention(clusterTopic, 0); got != retention {
		t.Fatalf("broker 2 answered with its log's retention at %v, want %v", got, retention)
	}
	c.runUntil("every broker's log with the new retention", 2*time.Second, func() bool {
		for id := int32(1); id <= 3; id++ {
			if got, _ := c.brokers[id].PartitionRetention(clusterTopic, 0); got != retention {
				return false
			}
		}
		return true
	})
	for id := int32(1); id <= 3; id++ {
		rc := c.describedTopicConfig(id, clusterTopic, "retention.ms")
		if rc.Value == nil || *rc.Value != "123456" || rc.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("broker %d describes retention.ms as %v from source %v", id, rc.Value, rc.Source)
		}
		// The topic's other config, from its creation, is kept.
		if rc := c.describedTopicConfig(id, clusterTopic, "min.insync.replicas"); rc.Value == nil || *rc.Value != "2" {
			t.Fatalf("broker %d describes min.insync.replicas as %v after the change", id, rc.Value)
		}
	}
	bad := c.ask(3, incrementalAlterRequest(clusterTopic, "retention.ms", "soon")).(*kmsg.IncrementalAlterConfigsResponse)
	expectCode(t, "a retention that is not a number", bad.Resources[0].ErrorCode, kerr.InvalidConfig)
	missing := c.ask(3, incrementalAlterRequest("nope", "retention.ms", "1000")).(*kmsg.IncrementalAlterConfigsResponse)
	expectCode(t, "an unknown topic", missing.Resources[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if got := c.image().Topics[clusterTopic].Configs["retention.ms"]; got != "123456" {
		t.Fatalf("the image's retention.ms is %q after refused changes", got)
	}

	// AlterConfigs replaces the set: min.insync.replicas goes back to the
	// default on every broker.
	whole := c.ask(1, alterConfigsRequest(clusterTopic, "retention.ms", "123456")).(*kmsg.AlterConfigsResponse)
	expectCode(t, "AlterConfigs at broker 1", whole.Resources[0].ErrorCode, nil)
	c.runFor(time.Second)
	for id := int32(1); id <= 3; id++ {
		if rc := c.describedTopicConfig(id, clusterTopic, "min.insync.replicas"); rc.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("broker %d: min.insync.replicas from source %v after AlterConfigs dropped it", id, rc.Source)
		}
	}

	c.restartBroker(1)
	c.runUntil("the restarted broker's replica open", 10*time.Second, func() bool {
		_, ok := c.brokers[1].PartitionRetention(clusterTopic, 0)
		return ok
	})
	if got, _ := c.brokers[1].PartitionRetention(clusterTopic, 0); got != retention {
		t.Fatalf("restarted broker 1: retention %v, want %v from the metadata log", got, retention)
	}
}

// partitionsAt is the partitions of a topic in the Metadata answer of the
// broker with id.
func (c *clusterRig) partitionsAt(id int32, topic string) []kmsg.MetadataResponseTopicPartition {
	c.t.Helper()
	resp := c.ask(id, metadataRequest(metadataVersion, false, topic)).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 {
		c.t.Fatalf("broker %d: metadata for %s: %+v", id, topic, resp.Topics)
	}
	expectCode(c.t, fmt.Sprintf("metadata for %s at broker %d", topic, id), resp.Topics[0].ErrorCode, nil)
	return resp.Topics[0].Partitions
}

// checkPartitionsEverywhere asserts that every broker lists count
// partitions of topic, each led, with three replicas all in sync.
func (c *clusterRig) checkPartitionsEverywhere(topic string, count int) {
	c.t.Helper()
	c.runUntil("every partition with its whole ISR", 10*time.Second, func() bool {
		t := c.image().Topics[topic]
		if t == nil || len(t.Partitions) != count {
			return false
		}
		for _, p := range t.Partitions {
			if len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
	for id := int32(1); id <= 3; id++ {
		parts := c.partitionsAt(id, topic)
		if len(parts) != count {
			c.t.Fatalf("broker %d lists %d partitions of %s, want %d", id, len(parts), topic, count)
		}
		for _, p := range parts {
			if p.Leader < 1 || p.Leader > 3 || len(p.Replicas) != 3 || len(p.ISR) != 3 || !slices.Contains(p.ISR, p.Leader) {
				c.t.Fatalf("broker %d: partition %d: leader %d, replicas %v, ISR %v", id, p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
	}
}

// TestClusterCreatePartitionsReplicated: CreatePartitions 3 -> 5 at one
// broker gives every broker's Metadata five partitions with leaders and
// whole ISRs; an acks=all write to a new partition is acknowledged, read
// back from its leader and replicated to every replica; lowering the
// count is refused; a restarted broker keeps the new partitions.
func TestClusterCreatePartitionsReplicated(t *testing.T) {
	const topic = "grow"
	c := newClusterRig(t, 29, nil, nil)
	spec := newTopicSpec(topic, 3)
	spec.ReplicationFactor = 3
	expectCode(t, "create "+topic, c.createTopics(false, spec)[0].ErrorCode, nil)
	c.checkPartitionsEverywhere(topic, 3)

	req := kmsg.NewPtrCreatePartitionsRequest()
	req.SetVersion(3)
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, 5
	req.Topics = append(req.Topics, rt)
	resp := c.ask(3, req).(*kmsg.CreatePartitionsResponse)
	expectCode(t, "CreatePartitions 3 -> 5 at broker 3", resp.Topics[0].ErrorCode, nil)
	if got := len(c.partitionsAt(3, topic)); got != 5 {
		t.Fatalf("broker 3 answered and lists %d partitions", got)
	}
	c.checkPartitionsEverywhere(topic, 5)

	lower := req
	lower.Topics[0].Count = 4
	expectCode(t, "CreatePartitions 5 -> 4", c.ask(1, lower).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, kerr.InvalidPartitions)

	for _, partition := range []int32{3, 4} {
		leader := c.image().Topics[topic].Partitions[partition].Leader
		values := []string{fmt.Sprintf("p%d-a", partition), fmt.Sprintf("p%d-b", partition)}
		pr := produceRequest(topic, partition, -1, buildBatch(t, plain, c.now().Milliseconds(), values...))
		pr.TimeoutMillis = 5_000
		sp := producePartition(t, c.ask(leader, pr))
		expectCode(t, fmt.Sprintf("acks=all produce to new partition %d at its leader %d", partition, leader), sp.ErrorCode, nil)
		fp := fetchPartition(t, c.ask(leader, fetchRequest(topic, partition, 0, 0, 0)))
		expectCode(t, fmt.Sprintf("fetch new partition %d", partition), fp.ErrorCode, nil)
		recs := decodeRecords(t, fp.RecordBatches)
		if len(recs) != 2 || recs[0].value != values[0] || recs[1].value != values[1] {
			t.Fatalf("partition %d read back %+v, want %v", partition, recs, values)
		}
		c.runUntil("every replica of the new partition holds the write", 5*time.Second, func() bool {
			want := c.brokers[leader].ReplicaLog(topic, partition)
			for id := int32(1); id <= 3; id++ {
				if !slices.Equal(c.brokers[id].ReplicaLog(topic, partition), want) {
					return false
				}
			}
			return len(want) == 1
		})
	}

	c.restartBroker(2)
	c.checkPartitionsEverywhere(topic, 5)
	c.runUntil("the restarted broker's replicas of the new partitions", 10*time.Second, func() bool {
		for _, partition := range []int32{3, 4} {
			leader := c.image().Topics[topic].Partitions[partition].Leader
			want := c.brokers[leader].ReplicaLog(topic, partition)
			if len(want) != 1 || !slices.Equal(c.brokers[2].ReplicaLog(topic, partition), want) {
				return false
			}
		}
		return true
	})
}
