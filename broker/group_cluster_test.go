package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/metadata"
)

// Consumer groups in cluster mode: the coordinator of a group is the
// leader of its __consumer_offsets partition, its records count once the
// ISR has them, and a new leader reloads the partition before it answers.

const offsetsTopicPartitions = 5

func clusterGroups(cfg *broker.Config) {
	cfg.Groups.Partitions = offsetsTopicPartitions
	cfg.Groups.InitialRebalanceDelay = 0
}

// talkTo points the rig's request helpers (roundTrip and those built on
// it) at the broker with id.
func (c *clusterRig) talkTo(id int32) {
	if c.admin != nil && !c.admin.closed {
		c.admin.c.Close()
	}
	c.admin = c.dialTo(brokerName(id) + ":9092")
}

// offsetsPartition is a group's __consumer_offsets partition in the image.
func (c *clusterRig) offsetsPartition(groupID string) (int32, metadata.Partition) {
	t := c.image().Topics[group.OffsetsTopic]
	if t == nil {
		return -1, metadata.Partition{Leader: metadata.NoLeader}
	}
	index := group.PartitionFor(groupID, int32(len(t.Partitions)))
	return index, t.Partitions[index]
}

// committedWhenLoaded fetches a group's committed offset from the broker
// talked to, asking again while it answers COORDINATOR_LOAD_IN_PROGRESS;
// it returns whether that answer came at least once.
func (c *clusterRig) committedWhenLoaded(groupID, topic string, partition int32) (int64, int16, bool) {
	c.t.Helper()
	sawLoading := false
	for range 100 {
		offset, code := c.committedOffset(groupID, topic, partition)
		if code != kerr.CoordinatorLoadInProgress.Code {
			return offset, code, sawLoading
		}
		sawLoading = true
		c.runFor(50 * time.Millisecond)
	}
	c.t.Fatalf("%s: still loading after 5s", groupID)
	return -1, 0, sawLoading
}

func (c *clusterRig) listGroups() []string {
	var ids []string
	for _, g := range c.roundTrip(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse).Groups {
		ids = append(ids, g.Group)
	}
	return ids
}

// TestClusterGroupCoordinatorFailover: __consumer_offsets is made through
// the controller with three compacted replicas; the coordinator is the
// leader of the group's partition and the other brokers answer
// NOT_COORDINATOR; a commit is answered only once the followers hold it.
// When the coordinator's broker is killed, the new leader of the partition
// loads it and serves the committed offset and the group's member.
func TestClusterGroupCoordinatorFailover(t *testing.T) {
	c := newClusterRig(t, 23, nil, clusterGroups)
	const groupID = "readers"
	coord, index, member, generation := c.setUpGroup(groupID)
	// acks=all: the commit was answered once every ISR member had it.
	_, part := c.offsetsPartition(groupID)
	_, _, _, leaderEnd := c.brokers[coord].ReplicaRole(group.OffsetsTopic, index)
	for _, id := range part.Replicas {
		if _, _, _, end := c.brokers[id].ReplicaRole(group.OffsetsTopic, index); end < leaderEnd {
			t.Fatalf("the commit was answered while broker %d held %s-%d to %d, the leader to %d", id, group.OffsetsTopic, index, end, leaderEnd)
		}
	}
	ot := c.image().Topics[group.OffsetsTopic]
	if len(ot.Partitions) != offsetsTopicPartitions || len(part.Replicas) != 3 || ot.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("%s in the image: %d partitions, replicas %v, configs %v", group.OffsetsTopic, len(ot.Partitions), part.Replicas, ot.Configs)
	}
	found := c.findCoordinator(groupID)
	if found.ErrorCode != 0 || found.NodeID != coord || found.Host != brokerName(coord) || found.Port != 9092 {
		t.Fatalf("FindCoordinator named %d at %s:%d (%s); the leader of %s-%d is %d",
			found.NodeID, found.Host, found.Port, errName(found.ErrorCode), group.OffsetsTopic, index, coord)
	}
	if off, code := c.committedOffset(groupID, "orders", 1); off != 42 || code != 0 {
		t.Fatalf("committed %d (%s), want 42", off, errName(code))
	}
	if got := c.listGroups(); !slices.Equal(got, []string{groupID}) {
		t.Fatalf("the coordinator lists %v", got)
	}

	other := coord%3 + 1
	c.talkTo(other)
	if _, code := c.committedOffset(groupID, "orders", 1); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch at broker %d, not the coordinator: %s, want NOT_COORDINATOR", other, errName(code))
	}
	expectCode(t, "heartbeat at a broker that does not coordinate", c.heartbeat(groupID, member, generation), kerr.NotCoordinator)
	c.expectNotCoordinator(groupID, member, generation)
	if got := c.listGroups(); len(got) != 0 {
		t.Fatalf("broker %d lists %v, groups it does not coordinate", other, got)
	}

	killedAt := c.now()
	if err := c.w.Kill(brokerName(coord)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("a new leader of the group's partition", 20*time.Second, func() bool {
		_, p := c.offsetsPartition(groupID)
		return p.Leader != coord && p.Leader != metadata.NoLeader
	})
	_, part = c.offsetsPartition(groupID)
	next := part.Leader
	c.talkTo(next)
	found = c.findCoordinator(groupID)
	if found.ErrorCode != 0 || found.NodeID != next {
		t.Fatalf("after the failover FindCoordinator named %d (%s), want the new leader %d", found.NodeID, errName(found.ErrorCode), next)
	}
	off, code, sawLoading := c.committedWhenLoaded(groupID, "orders", 1)
	if off != 42 || code != 0 {
		t.Fatalf("the new coordinator %d: committed %d (%s), want 42", next, off, errName(code))
	}
	servedAfter := c.now() - killedAt
	if !c.logged(fmt.Sprintf("group coordinator: loading %s-%d as its leader", group.OffsetsTopic, index)) {
		t.Fatalf("broker %d did not log loading %s-%d", next, group.OffsetsTopic, index)
	}
	if n := c.w.Probes()["broker/offsets-loaded"]; n == 0 {
		t.Fatalf("the offsets-loaded probe was not hit")
	}
	// The member came back with the group, its session starting at the load.
	expectCode(t, "heartbeat at the new coordinator", c.heartbeat(groupID, member, generation), nil)
	expectCode(t, "commit at the new coordinator", c.commitOffset(groupID, member, generation, "orders", 1, 50), nil)
	if off, code := c.committedOffset(groupID, "orders", 1); off != 50 || code != 0 {
		t.Fatalf("after a commit at the new coordinator: %d (%s), want 50", off, errName(code))
	}
	t.Logf("%s-%d moved from broker %d to %d, which served the committed offset %v (simulated) after the kill; load-in-progress answered: %v",
		group.OffsetsTopic, index, coord, next, servedAfter, sawLoading)
}

// setUpGroup creates the topic the group commits to, finds the group's
// coordinator, joins a member there and commits offset 42; it returns the
// coordinator, the group's __consumer_offsets partition, the member and
// its generation.
func (c *clusterRig) setUpGroup(groupID string) (int32, int32, string, int32) {
	c.t.Helper()
	spec := newTopicSpec("orders", 2)
	spec.ReplicationFactor = 3
	expectCode(c.t, "create orders", c.createTopics(false, spec)[0].ErrorCode, nil)
	expectCode(c.t, "find coordinator", c.findCoordinator(groupID).ErrorCode, nil)
	c.runUntil("every replica of the group's partition in the ISR", 10*time.Second, func() bool {
		_, p := c.offsetsPartition(groupID)
		return len(p.ISR) == 3
	})
	index, part := c.offsetsPartition(groupID)
	c.talkTo(part.Leader)
	member, generation := c.joinAndSync(groupID)
	expectCode(c.t, "commit", c.commitOffset(groupID, member, generation, "orders", 1, 42), nil)
	return part.Leader, index, member, generation
}

// TestClusterGroupCoordinatorCutOff: a coordinator cut off from the other
// brokers and the controllers still believes it leads, but a commit there
// is not acknowledged, since no follower can replicate it; the rest of
// the cluster elects a new leader of the partition, which serves the last
// acknowledged offset. Once the network heals, the deposed coordinator
// learns it no longer leads, unloads the partition and answers
// NOT_COORDINATOR.
func TestClusterGroupCoordinatorCutOff(t *testing.T) {
	c := newClusterRig(t, 29, nil, clusterGroups)
	const groupID = "readers"
	coord, index, member, generation := c.setUpGroup(groupID)

	c.blockBroker(coord)
	code := c.commitOffset(groupID, member, generation, "orders", 1, 43)
	if code == 0 {
		t.Fatalf("a coordinator cut off from its followers acknowledged a commit")
	}
	c.runUntil("a new leader of the group's partition", 20*time.Second, func() bool {
		_, p := c.offsetsPartition(groupID)
		return p.Leader != coord && p.Leader != metadata.NoLeader
	})
	_, part := c.offsetsPartition(groupID)
	c.talkTo(part.Leader)
	if off, code, _ := c.committedWhenLoaded(groupID, "orders", 1); off != 42 || code != 0 {
		t.Fatalf("the new coordinator %d: committed %d (%s), want 42", part.Leader, off, errName(code))
	}

	if err := c.w.Heal(); err != nil {
		t.Fatal(err)
	}
	c.runUntil("the deposed coordinator following", 20*time.Second, func() bool {
		role, _, _, _ := c.brokers[coord].ReplicaRole(group.OffsetsTopic, index)
		return role == "follower"
	})
	if !c.logged(brokerName(coord), fmt.Sprintf("group coordinator: unloading %s-%d: no longer its leader", group.OffsetsTopic, index)) {
		t.Fatalf("broker %d follows %s-%d but did not unload it", coord, group.OffsetsTopic, index)
	}
	c.talkTo(coord)
	if _, code := c.committedOffset(groupID, "orders", 1); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch at the deposed coordinator: %s, want NOT_COORDINATOR", errName(code))
	}
	expectCode(t, "heartbeat at the deposed coordinator", c.heartbeat(groupID, member, generation), kerr.NotCoordinator)
	t.Logf("the cut-off coordinator %d answered the commit %s; broker %d took over", coord, errName(code), part.Leader)
}

// expectNotCoordinator sends every other group request for groupID to the
// broker talked to and expects NOT_COORDINATOR from each.
func (c *clusterRig) expectNotCoordinator(groupID, member string, generation int32) {
	c.t.Helper()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.MemberID, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = groupID, member, 10_000, 10_000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = groupID, member, generation
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group, leave.Members = groupID, []kmsg.LeaveGroupRequestMember{{MemberID: member}}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{groupID}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{groupID}
	offsetDelete := kmsg.NewPtrOffsetDeleteRequest()
	offsetDelete.Group = groupID
	offsetDelete.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
	codes := map[string]int16{
		"JoinGroup":      c.roundTrip(join).(*kmsg.JoinGroupResponse).ErrorCode,
		"SyncGroup":      c.roundTrip(sync).(*kmsg.SyncGroupResponse).ErrorCode,
		"LeaveGroup":     c.roundTrip(leave).(*kmsg.LeaveGroupResponse).ErrorCode,
		"OffsetCommit":   c.commitOffset(groupID, member, generation, "orders", 1, 7),
		"DescribeGroups": c.roundTrip(describe).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode,
		"DeleteGroups":   c.roundTrip(del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode,
		"OffsetDelete":   c.roundTrip(offsetDelete).(*kmsg.OffsetDeleteResponse).ErrorCode,
	}
	for _, name := range []string{"JoinGroup", "SyncGroup", "LeaveGroup", "OffsetCommit", "DescribeGroups", "DeleteGroups", "OffsetDelete"} {
		expectCode(c.t, name+" at a broker that does not coordinate", codes[name], kerr.NotCoordinator)
	}
}
