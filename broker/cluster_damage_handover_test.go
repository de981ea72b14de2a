package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestClusterFencedLeaderHandingOverCutsOnlyOutOfTheISR: a broker whose
// restart found damage in its log leads as its partition's only in-sync
// replica with the range fenced; once the preferred replica is back and
// in sync, the controller hands it the leadership. The damaged broker,
// now a follower, must not cut its log at the damage while the ISR still
// counts it as holding every acknowledged record: were the new leader to
// go, it would be elected without them.
func TestClusterFencedLeaderHandingOverCutsOnlyOutOfTheISR(t *testing.T) {
	c := newClusterRig(t, 37, nil, groupCommit)
	c.createReplicated()
	const batches = 20
	for i := range batches {
		sp := c.produceTo(c.partitionState().Leader, -1, fmt.Sprintf("v%d-a", i), fmt.Sprintf("v%d-b", i))
		expectCode(t, fmt.Sprintf("acks=all produce %d", i), sp.ErrorCode, nil)
	}
	const acked = 2 * batches
	c.runFor(3 * time.Second) // flushed, and the recovery points checkpointed
	part := c.partitionState()
	preferred, damaged, other := part.Replicas[0], part.Replicas[1], part.Replicas[2]
	for _, id := range []int32{preferred, other} {
		if err := c.w.Kill(brokerName(id)); err != nil {
			t.Fatal(err)
		}
	}
	c.runUntil(fmt.Sprintf("broker %d leads alone", damaged), 15*time.Second, func() bool {
		p := c.partitionState()
		return p.Leader == damaged && len(p.ISR) == 1
	})
	segment := fmt.Sprintf("%s/%s-0/%020d.log", dataDir, clusterTopic, 0)
	if flipped := c.w.Node(brokerName(damaged)).Disk().CorruptFile(segment, 1); len(flipped) == 0 {
		t.Fatalf("no bit flipped in %s", segment)
	}
	starts := c.starts[damaged]
	if err := c.w.Kill(brokerName(damaged)); err != nil {
		t.Fatal(err)
	}
	c.runFor(time.Second)
	if err := c.w.Restart(brokerName(damaged)); err != nil {
		t.Fatal(err)
	}
	c.runUntil(fmt.Sprintf("broker %d leads again with its damage fenced", damaged), 20*time.Second, func() bool {
		if c.starts[damaged] == starts {
			return false
		}
		role, _, _, _ := c.brokers[damaged].ReplicaRole(clusterTopic, 0)
		return role == "leader"
	})
	if !c.logged(brokerName(damaged), "damaged data found in recovery") {
		t.Fatalf("broker %d's recovery found no damage", damaged)
	}
	if err := c.w.Restart(brokerName(preferred)); err != nil {
		t.Fatal(err)
	}
	c.runUntil(fmt.Sprintf("preferred replica %d leads again", preferred), 30*time.Second, func() bool {
		return c.partitionState().Leader == preferred
	})
	for deadline := c.now() + 5*time.Second; c.now() < deadline; {
		c.step()
		b := c.brokers[damaged]
		if b == nil || !c.w.Node(brokerName(damaged)).Up() {
			continue
		}
		if _, _, _, end := b.ReplicaRole(clusterTopic, 0); end >= 0 && end < acked && slices.Contains(c.partitionState().ISR, damaged) {
			t.Fatalf("broker %d's log ends at %d, below the %d acknowledged records, while the ISR %v counts it",
				damaged, end, acked, c.partitionState().ISR)
		}
	}
	if !c.logged(brokerName(damaged), "follower cut its log") {
		t.Fatalf("broker %d never cut its log at the damage to fetch it again", damaged)
	}
}
