package controller

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// TestTopicConfigsAndPartitionsThroughTheController: an admin replaces a
// topic's configs and raises its partition count through the protocol;
// the controllers' state holds both; requests the state would refuse are
// answered with Kafka's codes and leave nothing in the state.
func TestTopicConfigsAndPartitionsThroughTheController(t *testing.T) {
	c := newCluster(t, 21)
	c.w.At(time.Second, func() { c.createTopic("orders", 3, 3) })
	c.run(3 * time.Second)
	if got := len(c.state().Topics["orders"].Partitions); got != 3 {
		t.Fatalf("orders has %d partitions, want 3", got)
	}
	ask := func(req Request) metadata.Code {
		t.Helper()
		var code metadata.Code
		answered := false
		c.admin.Do(req, func(r Response, err error) {
			if err != nil {
				t.Errorf("%s: %v", req.Op, err)
			}
			code, answered = r.Code, true
		})
		c.run(c.w.Now() + time.Second)
		if !answered {
			t.Fatalf("%s not answered", req.Op)
		}
		return code
	}
	cases := []struct {
		name string
		req  Request
		want metadata.Code
	}{
		{"alter configs", Request{Op: OpAlterTopicConfigs, Topic: "orders", Configs: map[string]string{"retention.ms": "60000"}}, metadata.CodeNone},
		{"alter an unknown topic", Request{Op: OpAlterTopicConfigs, Topic: "nope", Configs: map[string]string{}}, metadata.CodeUnknownTopicOrPartition},
		{"raise to 5", Request{Op: OpCreatePartitions, Topic: "orders", Partitions: 5}, metadata.CodeNone},
		{"lower to 4", Request{Op: OpCreatePartitions, Topic: "orders", Partitions: 4}, metadata.CodeInvalidPartitions},
		{"raise an unknown topic", Request{Op: OpCreatePartitions, Topic: "nope", Partitions: 2}, metadata.CodeUnknownTopicOrPartition},
	}
	for _, tc := range cases {
		if got := ask(tc.req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	topic := c.state().Topics["orders"]
	if len(topic.Partitions) != 5 || len(topic.Configs) != 1 || topic.Configs["retention.ms"] != "60000" {
		t.Fatalf("orders in the state: %d partitions, configs %v", len(topic.Partitions), topic.Configs)
	}
	for i, p := range topic.Partitions[3:] {
		if len(p.Replicas) != 3 || p.Leader != p.Replicas[0] || len(p.ISR) != 3 {
			t.Fatalf("new partition %d: %+v", 3+i, p)
		}
	}
	if c.state().Topics["nope"] != nil {
		t.Fatal("a refused request created a topic")
	}
}
