package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// deleteRecordsAt sends DeleteRecords for partition 0 of the cluster
// topic to the broker with id.
func (c *clusterRig) deleteRecordsAt(id int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	c.t.Helper()
	return c.deleteRecordsWithin(id, offset, 5*time.Second)
}

// deleteRecordsWithin is deleteRecordsAt with the request's timeout.
func (c *clusterRig) deleteRecordsWithin(id int32, offset int64, timeout time.Duration) kmsg.DeleteRecordsResponseTopicPartition {
	c.t.Helper()
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.SetVersion(2)
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = clusterTopic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{rp}
	req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
	resp := c.wait(tc.send(req)).(*kmsg.DeleteRecordsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		c.t.Fatalf("delete records answer: %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// TestClusterDeleteRecordsFollowersAdvance: only the leader serves
// DeleteRecords; followers take its new log start from their next fetch
// answers and the leader answers once every ISR member reported it
// (Kafka's DelayedDeleteRecords), a restarted follower is back at it (from its checkpoint or
// its first fetch; TestDeleteRecords proves the checkpoint alone), and a
// new leader after the old one crashes still refuses the deleted records.
func TestClusterDeleteRecordsFollowersAdvance(t *testing.T) {
	c := newClusterRig(t, 21, nil, nil)
	c.createReplicated()
	ps := c.partitionState()
	for i := range 10 {
		expectCode(t, "produce", c.produceTo(ps.Leader, -1, fmt.Sprint(2*i), fmt.Sprint(2*i+1)).ErrorCode, nil)
	}
	var followers []int32
	for _, id := range ps.Replicas {
		if id != ps.Leader {
			followers = append(followers, id)
		}
	}
	expectCode(t, "delete at a follower", c.deleteRecordsAt(followers[0], 5).ErrorCode, kerr.NotLeaderForPartition)
	if got := c.brokers[followers[0]].LogStart(clusterTopic, 0); got != 0 {
		t.Fatalf("a refused DeleteRecords moved follower %d's start to %d", followers[0], got)
	}
	dr := c.deleteRecordsAt(ps.Leader, 5)
	expectCode(t, "delete at the leader", dr.ErrorCode, nil)
	if dr.LowWatermark != 5 {
		t.Fatalf("low watermark %d, want 5", dr.LowWatermark)
	}
	// The answer waited until every ISR member reported the new start.
	for _, id := range followers {
		if got := c.brokers[id].LogStart(clusterTopic, 0); got != 5 {
			t.Fatalf("answered while follower %d's log start is %d, want 5", id, got)
		}
	}

	// A restarted follower is back at it.
	c.runFor(2 * time.Second)
	restarted := followers[0]
	if err := c.w.Kill(brokerName(restarted)); err != nil {
		t.Fatal(err)
	}
	if err := c.w.Restart(brokerName(restarted)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("the restarted follower open at the log start", 10*time.Second, func() bool {
		return c.brokers[restarted].LogStart(clusterTopic, 0) == 5
	})

	// The leader dies: whoever leads next refuses reads below 5.
	if err := c.w.Kill(brokerName(ps.Leader)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("a new leader", 10*time.Second, func() bool {
		now := c.partitionState()
		return now.Leader != ps.Leader && now.Leader != metadata.NoLeader
	})
	leader := c.partitionState().Leader
	c.runUntil("the new leader serving", 10*time.Second, func() bool {
		role, _, _, _ := c.brokers[leader].ReplicaRole(clusterTopic, 0)
		return role == "leader"
	})
	tc := c.dialTo(brokerName(leader) + ":9092")
	defer tc.c.Close()
	lo := listOffsetsPartition(t, c.wait(tc.send(listOffsetsRequest(clusterTopic, 0, -2))))
	expectCode(t, "earliest at the new leader", lo.ErrorCode, nil)
	if lo.Offset != 5 {
		t.Fatalf("the new leader %d's earliest offset is %d, want 5", leader, lo.Offset)
	}
	fp := fetchPartition(t, c.wait(tc.send(fetchRequest(clusterTopic, 0, 4, 0, 0))))
	expectCode(t, "fetch below the start at the new leader", fp.ErrorCode, kerr.OffsetOutOfRange)
}

// TestClusterDeleteRecordsWaitsForISR: a follower cut off from its
// leader but still in the ISR holds the answer until the request's
// timeout (REQUEST_TIMED_OUT); once the leader drops it from the ISR, a
// retry answers at once.
func TestClusterDeleteRecordsWaitsForISR(t *testing.T) {
	c := newClusterRig(t, 22, nil, nil)
	c.createReplicated()
	ps := c.partitionState()
	for i := range 5 {
		expectCode(t, "produce", c.produceTo(ps.Leader, -1, fmt.Sprint(i)).ErrorCode, nil)
	}
	lagger := ps.Replicas[0]
	if lagger == ps.Leader {
		lagger = ps.Replicas[1]
	}
	for _, pair := range [][2]string{{brokerName(ps.Leader), brokerName(lagger)}, {brokerName(lagger), brokerName(ps.Leader)}} {
		if err := c.w.Block(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	sent := c.now()
	expectCode(t, "delete with a cut-off ISR member", c.deleteRecordsWithin(ps.Leader, 3, 300*time.Millisecond).ErrorCode, kerr.RequestTimedOut)
	if waited := c.now() - sent; waited < 300*time.Millisecond {
		t.Fatalf("timed out after %v, before the request's 300ms", waited)
	}
	if got := c.brokers[ps.Leader].LogStart(clusterTopic, 0); got != 3 {
		t.Fatalf("the leader's start is %d after a timed-out delete, want 3 (Kafka keeps the move)", got)
	}
	c.runUntil("the cut-off follower out of the ISR", 10*time.Second, func() bool {
		return !slices.Contains(c.partitionState().ISR, lagger)
	})
	c.runFor(500 * time.Millisecond) // the leader's own ISR follows the image
	dr := c.deleteRecordsAt(ps.Leader, 3)
	expectCode(t, "delete once the ISR shrank", dr.ErrorCode, nil)
	if dr.LowWatermark != 3 {
		t.Fatalf("low watermark %d, want 3", dr.LowWatermark)
	}
}
