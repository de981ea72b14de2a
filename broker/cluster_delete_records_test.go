package broker_test

import (
	"fmt"
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
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.SetVersion(2)
	req.TimeoutMillis = 5000
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
// answers, a restarted follower is back at it (from its checkpoint or
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
	c.runUntil("followers at the new log start", 5*time.Second, func() bool {
		for _, id := range followers {
			if c.brokers[id].LogStart(clusterTopic, 0) != 5 {
				return false
			}
		}
		return true
	})

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
