package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
)

// findCoordinator asks for a group's coordinator until it is available.
func (r *rig) findCoordinator(groupID string) kmsg.FindCoordinatorResponseCoordinator {
	r.t.Helper()
	for range 50 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = 4
		req.CoordinatorKeys = []string{groupID}
		c := r.roundTrip(req).(*kmsg.FindCoordinatorResponse).Coordinators[0]
		if c.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			return c
		}
		r.runFor(100 * time.Millisecond)
	}
	r.t.Fatalf("no coordinator for %s", groupID)
	return kmsg.FindCoordinatorResponseCoordinator{}
}

func fewGroupPartitions(cfg *broker.Config) {
	groupCommit(cfg)
	cfg.Groups.Partitions = 5
	cfg.Groups.InitialRebalanceDelay = 0
}

// joinAndSync makes a one-member group and returns its member id and
// generation.
func (r *rig) joinAndSync(groupID string) (string, int32) {
	r.t.Helper()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 9
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = groupID, 10_000, 10_000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	first := r.roundTrip(join).(*kmsg.JoinGroupResponse)
	expectCode(r.t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	join.MemberID = first.MemberID
	joined := r.roundTrip(join).(*kmsg.JoinGroupResponse)
	expectCode(r.t, "join", joined.ErrorCode, nil)
	if joined.LeaderID != first.MemberID || joined.Generation != 1 || len(joined.Members) != 1 {
		r.t.Fatalf("join answer: %+v", joined)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = groupID, joined.MemberID, joined.Generation
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: joined.MemberID, MemberAssignment: []byte("all")}}
	synced := r.roundTrip(sync).(*kmsg.SyncGroupResponse)
	expectCode(r.t, "sync", synced.ErrorCode, nil)
	if string(synced.MemberAssignment) != "all" {
		r.t.Fatalf("assignment %q", synced.MemberAssignment)
	}
	return joined.MemberID, joined.Generation
}

func (r *rig) commitOffset(groupID, memberID string, generation int32, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = groupID, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{rp}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return r.roundTrip(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (r *rig) committedOffset(groupID, topic string, partition int32) (int64, int16) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 5
	req.Group = groupID
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	resp := r.roundTrip(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].Offset, 0
}

func (r *rig) heartbeat(groupID, memberID string, generation int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = groupID, memberID, generation
	return r.roundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
}

// TestGroupCoordinatorSurvivesRestart: the first FindCoordinator creates
// __consumer_offsets; a group's membership and committed offsets are in
// its log, and a restarted broker serves them again.
func TestGroupCoordinatorSurvivesRestart(t *testing.T) {
	r := newRig(t, 90, fewGroupPartitions)
	r.createTopic("orders", 2)
	c := r.findCoordinator("readers")
	expectCode(t, "find coordinator", c.ErrorCode, nil)
	if c.NodeID != 1 || c.Key != "readers" {
		t.Fatalf("coordinator %+v", c)
	}
	if md := r.metadata("__consumer_offsets")["__consumer_offsets"]; len(md.Partitions) != 5 {
		t.Fatalf("__consumer_offsets has %d partitions, want 5", len(md.Partitions))
	}
	member, generation := r.joinAndSync("readers")
	expectCode(t, "commit", r.commitOffset("readers", member, generation, "orders", 1, 42), nil)
	expectCode(t, "commit to a missing partition", r.commitOffset("readers", member, generation, "orders", 7, 1), kerr.UnknownTopicOrPartition)
	expectCode(t, "stale commit", r.commitOffset("readers", member, generation-1, "orders", 1, 50), kerr.IllegalGeneration)
	if off, code := r.committedOffset("readers", "orders", 1); off != 42 || code != 0 {
		t.Fatalf("committed %d (%s), want 42", off, errName(code))
	}

	r.killCycle()
	// The partitions load one chunk per loop turn, once what recovery
	// read is on disk; until then the group's partition is not served.
	if _, code := r.committedOffset("readers", "orders", 1); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("fetch right after a restart: %s, want COORDINATOR_LOAD_IN_PROGRESS", errName(code))
	}
	r.runFor(100 * time.Millisecond)
	if off, code := r.committedOffset("readers", "orders", 1); off != 42 || code != 0 {
		t.Fatalf("after a restart: committed %d (%s), want 42", off, errName(code))
	}
	expectCode(t, "heartbeat after a restart", r.heartbeat("readers", member, generation), nil)
	// Silent past its session, the member is gone and the group empty.
	r.runFor(11 * time.Second)
	expectCode(t, "heartbeat after the session", r.heartbeat("readers", member, generation), kerr.UnknownMemberID)
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"readers"}
	if g := r.roundTrip(describe).(*kmsg.DescribeGroupsResponse).Groups[0]; g.State != "Empty" {
		t.Fatalf("group state %s, want Empty", g.State)
	}
}

// TestAdminAPIs: CreatePartitions raises a partition count durably,
// DescribeConfigs gives a topic's effective configs and the broker's,
// DescribeCluster names this broker.
func TestAdminAPIs(t *testing.T) {
	r := newRig(t, 91, groupCommit)
	r.createTopics(false, newTopicSpec("orders", 2, "retention.ms", "60000"))

	more := kmsg.NewPtrCreatePartitionsRequest()
	more.Version = 3
	more.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "orders", Count: 5}, {Topic: "nope", Count: 2}}
	answer := r.roundTrip(more).(*kmsg.CreatePartitionsResponse)
	expectCode(t, "create partitions", answer.Topics[0].ErrorCode, nil)
	expectCode(t, "create partitions of an unknown topic", answer.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)
	fewer := kmsg.NewPtrCreatePartitionsRequest()
	fewer.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "orders", Count: 3}}
	expectCode(t, "lower the count", r.roundTrip(fewer).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, kerr.InvalidPartitions)
	r.killCycle()
	if n := len(r.metadata("orders")["orders"].Partitions); n != 5 {
		t.Fatalf("%d partitions after a restart, want 5", n)
	}
	r.runFor(100 * time.Millisecond) // a restarted log syncs what recovery read before it takes writes
	expectCode(t, "produce to a new partition", r.produce("orders", 4, buildBatch(t, plain, 1000, "x")).ErrorCode, nil)

	describe := kmsg.NewPtrDescribeConfigsRequest()
	describe.Version = 4
	describe.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", ConfigNames: []string{"retention.ms", "cleanup.policy"}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1", ConfigNames: []string{"offsets.topic.num.partitions"}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "nope"},
	}
	res := r.roundTrip(describe).(*kmsg.DescribeConfigsResponse).Resources
	got := map[string]string{}
	for _, rc := range res[0].Configs {
		got[rc.Name] = *rc.Value + "/" + rc.Source.String()
	}
	if got["retention.ms"] != "60000/DYNAMIC_TOPIC_CONFIG" || got["cleanup.policy"] != "delete/DEFAULT_CONFIG" || len(got) != 2 {
		t.Fatalf("topic configs %v", got)
	}
	if c := res[1].Configs; len(c) != 1 || *c[0].Value != "50" || !c[0].ReadOnly {
		t.Fatalf("broker configs %+v", c)
	}
	expectCode(t, "configs of an unknown topic", res[2].ErrorCode, kerr.UnknownTopicOrPartition)

	cluster := kmsg.NewPtrDescribeClusterRequest()
	cluster.Version = 1
	cluster.EndpointType = 1
	c := r.roundTrip(cluster).(*kmsg.DescribeClusterResponse)
	if c.ErrorCode != 0 || len(c.Brokers) != 1 || c.Brokers[0].NodeID != 1 || c.ClusterID != "sluice" {
		t.Fatalf("describe cluster: %+v", c)
	}
}

// TestAlterConfigs: IncrementalAlterConfigs sets, appends to and deletes
// topic configs, AlterConfigs replaces them; both survive a restart and
// bad values are refused naming the config.
func TestAlterConfigs(t *testing.T) {
	r := newRig(t, 92, groupCommit)
	r.createTopics(false, newTopicSpec("orders", 1, "retention.ms", "60000"))
	topicConfigs := func() map[string]string {
		describe := kmsg.NewPtrDescribeConfigsRequest()
		describe.Version = 4
		describe.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders"}}
		set := map[string]string{}
		for _, c := range r.roundTrip(describe).(*kmsg.DescribeConfigsResponse).Resources[0].Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				set[c.Name] = *c.Value
			}
		}
		return set
	}
	str := func(s string) *string { return &s }
	incremental := func(configs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = 1
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", Configs: configs}}
		return r.roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	}
	res := incremental(
		kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "segment.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("10485760")},
		kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("compact")},
		kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete})
	expectCode(t, "incremental alter", res.ErrorCode, nil)
	want := map[string]string{"segment.bytes": "10485760", "cleanup.policy": "delete,compact"}
	if got := topicConfigs(); len(got) != 2 || got["segment.bytes"] != want["segment.bytes"] || got["cleanup.policy"] != want["cleanup.policy"] {
		t.Fatalf("configs %v, want %v", got, want)
	}
	for _, c := range []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("soon")},
		{Name: "segment.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1000")}, // smaller than a batch may be
		{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("1")},
	} {
		bad := incremental(c)
		expectCode(t, "a bad value of "+c.Name, bad.ErrorCode, kerr.InvalidConfig)
		if bad.ErrorMessage == nil || !strings.Contains(*bad.ErrorMessage, c.Name) && !strings.Contains(*bad.ErrorMessage, "segment bytes") {
			t.Fatalf("error message %v does not name the config", bad.ErrorMessage)
		}
	}

	replace := kmsg.NewPtrAlterConfigsRequest()
	replace.Resources = []kmsg.AlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: str("1000")}}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "nope"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
	}
	answer := r.roundTrip(replace).(*kmsg.AlterConfigsResponse).Resources
	expectCode(t, "alter", answer[0].ErrorCode, nil)
	expectCode(t, "alter an unknown topic", answer[1].ErrorCode, kerr.UnknownTopicOrPartition)
	expectCode(t, "alter broker configs", answer[2].ErrorCode, kerr.InvalidRequest)
	r.killCycle()
	if got := topicConfigs(); len(got) != 1 || got["retention.ms"] != "1000" {
		t.Fatalf("configs after a restart %v, want only retention.ms=1000", got)
	}
}

// TestOffsetDeleteAndDeleteGroups: a group's offsets of a topic its
// members subscribe to stay; of another topic they go; an empty group is
// deleted with its offsets, and none of it comes back after a restart.
func TestOffsetDeleteAndDeleteGroups(t *testing.T) {
	r := newRig(t, 93, fewGroupPartitions)
	r.createTopic("orders", 1)
	r.createTopic("old", 1)
	r.findCoordinator("g")
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 3 // before KIP-394: a member at once, without a second join
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "g", 10_000, 10_000, "consumer"
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{"orders"}}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	joined := r.roundTrip(join).(*kmsg.JoinGroupResponse)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", joined.MemberID, joined.Generation
	expectCode(t, "sync", r.roundTrip(sync).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	expectCode(t, "commit orders", r.commitOffset("g", joined.MemberID, joined.Generation, "orders", 0, 5), nil)
	expectCode(t, "commit old", r.commitOffset("g", joined.MemberID, joined.Generation, "old", 0, 7), nil)

	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "old", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	answer := r.roundTrip(del).(*kmsg.OffsetDeleteResponse)
	expectCode(t, "offset delete", answer.ErrorCode, nil)
	expectCode(t, "delete a subscribed topic's offset", answer.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	expectCode(t, "delete another topic's offset", answer.Topics[1].Partitions[0].ErrorCode, nil)
	if off, _ := r.committedOffset("g", "old", 0); off != -1 {
		t.Fatalf("deleted offset is %d", off)
	}

	deleteGroups := kmsg.NewPtrDeleteGroupsRequest()
	deleteGroups.Groups = []string{"g"}
	expectCode(t, "delete a group with a member", r.roundTrip(deleteGroups).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.NonEmptyGroup)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g", joined.MemberID
	expectCode(t, "leave", r.roundTrip(leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	expectCode(t, "delete the empty group", r.roundTrip(deleteGroups).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nil)
	r.killCycle()
	r.runFor(100 * time.Millisecond)
	if off, code := r.committedOffset("g", "orders", 0); off != -1 || code != 0 {
		t.Fatalf("a deleted group's offset after a restart: %d (%s)", off, errName(code))
	}
	list := kmsg.NewPtrListGroupsRequest()
	if groups := r.roundTrip(list).(*kmsg.ListGroupsResponse).Groups; len(groups) != 0 {
		t.Fatalf("groups after deleting the only one: %+v", groups)
	}
}

// TestAcknowledgedCommitsSurvivePowerLoss: with group commit, a group's
// committed offset after a power loss is at least the last commit the
// broker acknowledged (it never goes back) and one a member sent. Each
// seed cuts the power at a different moment of a stream of commits.
func TestAcknowledgedCommitsSurvivePowerLoss(t *testing.T) {
	const seeds = 12
	lostInFlight := 0
	for seed := uint64(500); seed < 500+seeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := newRig(t, seed, fewGroupPartitions)
			r.createTopic("orders", 1)
			r.findCoordinator("g")
			member, generation := r.joinAndSync("g")
			if err := r.w.SlowDisk(brokerNode, 10); err != nil {
				t.Fatal(err)
			}
			tc := r.dial()
			var sent []*call
			acked, next := int64(-1), int64(1)
			cutAt := r.now() + time.Duration(2+seed*7%30)*time.Millisecond
			r.runUntil("the moment of the cut", time.Second, func() bool {
				for len(tc.pending) < 2 {
					req := kmsg.NewPtrOffsetCommitRequest()
					req.Version = 8
					req.Group, req.MemberID, req.Generation = "g", member, generation
					req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders",
						Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: next, LeaderEpoch: -1}}}}
					sent = append(sent, tc.send(req))
					next++
				}
				return r.now() >= cutAt
			})
			for _, c := range sent {
				if !c.done {
					continue
				}
				resp := c.resp.(*kmsg.OffsetCommitResponse)
				if resp.Topics[0].Partitions[0].ErrorCode == 0 {
					acked = max(acked, c.req.(*kmsg.OffsetCommitRequest).Topics[0].Partitions[0].Offset)
				}
			}
			if acked < 1 {
				t.Fatalf("no commit acknowledged before the cut")
			}
			r.powerCycle()
			r.runFor(100 * time.Millisecond)
			got, code := r.committedOffset("g", "orders", 0)
			expectCode(t, "fetch after the power loss", code, nil)
			if got < acked || got >= next {
				t.Fatalf("committed offset %d after the power loss; acknowledged up to %d, sent up to %d", got, acked, next-1)
			}
			if got < next-1 {
				lostInFlight++
			}
		})
	}
	// Some cut must have taken commits that were sent but not yet
	// acknowledged, or the runs prove little.
	if lostInFlight == 0 {
		t.Fatal("no run lost an unacknowledged commit")
	}
}

// TestDeletedOffsetsTopicIsMadeAgain: deleting __consumer_offsets (Kafka
// refuses to) drops every group and offset; the next FindCoordinator
// makes the topic again and groups work on it.
func TestDeletedOffsetsTopicIsMadeAgain(t *testing.T) {
	r := newRig(t, 94, fewGroupPartitions)
	r.createTopic("orders", 1)
	r.findCoordinator("g")
	member, generation := r.joinAndSync("g")
	expectCode(t, "commit", r.commitOffset("g", member, generation, "orders", 0, 3), nil)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"__consumer_offsets"}
	expectCode(t, "delete __consumer_offsets", r.roundTrip(del).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, nil)
	list := kmsg.NewPtrListGroupsRequest()
	if groups := r.roundTrip(list).(*kmsg.ListGroupsResponse).Groups; len(groups) != 0 {
		t.Fatalf("groups listed after their topic was deleted: %+v", groups)
	}
	expectCode(t, "coordinator found again", r.findCoordinator("g").ErrorCode, nil)
	if off, code := r.committedOffset("g", "orders", 0); off != -1 || code != 0 {
		t.Fatalf("offset %d (%s) after the topic was made again, want none", off, errName(code))
	}
	expectCode(t, "heartbeat of a member of the deleted state", r.heartbeat("g", member, generation), kerr.UnknownMemberID)
	member, generation = r.joinAndSync("g")
	expectCode(t, "commit to the new topic", r.commitOffset("g", member, generation, "orders", 0, 4), nil)
	if off, _ := r.committedOffset("g", "orders", 0); off != 4 {
		t.Fatalf("offset %d, want 4", off)
	}
}
