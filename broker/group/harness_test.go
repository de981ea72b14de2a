package group

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// harness drives a coordinator as the broker does: it appends each
// output's records to an in-memory log, calls Done, and keeps the replies
// by the request they answer.
// fataler is what the harness needs of a test: *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type harness struct {
	t          fataler
	c          *Coordinator
	now        Now
	next       ReplyTo
	replies    map[ReplyTo]kmsg.Response
	log        map[int32][]Record
	failAppend bool
	suffix     int
	// hold keeps the next outputs unappended in held until release, as
	// a cluster's coordinator waits for the ISR.
	hold bool
	held []Output
}

func newHarness(t fataler, cfg Config) *harness {
	h := &harness{t: t, replies: map[ReplyTo]kmsg.Response{}, log: map[int32][]Record{}, now: Now{Mono: time.Hour, WallMs: 1_700_000_000_000}}
	cfg.MemberSuffix = func() string { h.suffix++; return fmt.Sprintf("m%d", h.suffix) }
	h.c = New(cfg)
	for p := range cfg.Partitions {
		h.c.BeginLoad(p)
		h.c.EndLoad(p)
	}
	return h
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Partitions = 4
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	cfg.MembersMax = 16
	return cfg
}

func (h *harness) apply(out Output) {
	if h.hold && len(out.Records) > 0 {
		h.held = append(h.held, out)
		return
	}
	h.complete(out, !h.failAppend)
}

// release completes the held outputs: appended, or their appends failed.
func (h *harness) release(appended bool) {
	held := h.held
	h.held = nil
	for _, out := range held {
		h.complete(out, appended)
	}
}

func (h *harness) complete(out Output, appended bool) {
	if appended {
		for _, r := range out.Records {
			h.log[r.Partition] = append(h.log[r.Partition], r)
		}
	}
	if out.Done != nil {
		out.Done(appended)
	}
	for _, r := range append(out.Replies, h.c.TakeReplies()...) {
		if _, dup := h.replies[r.To]; dup {
			h.t.Fatalf("request %d answered twice", r.To)
		}
		h.replies[r.To] = r.Response
	}
}

func (h *harness) to() ReplyTo { h.next++; return h.next }

// advance moves time forward by d, ticking at every deadline on the way.
func (h *harness) advance(d time.Duration) {
	end := h.now.Mono + d
	for i := 0; ; i++ {
		if i > 10_000 {
			h.t.Fatal("ticks do not converge")
		}
		next, ok := h.c.NextDeadline()
		if !ok || next > end {
			break
		}
		h.setNow(max(next, h.now.Mono))
		for _, out := range h.c.Tick(h.now) {
			h.apply(out)
		}
	}
	h.setNow(end)
}

func (h *harness) setNow(mono time.Duration) {
	h.now.WallMs += (mono - h.now.Mono).Milliseconds()
	h.now.Mono = mono
}

func joinRequest(group, memberID string, instance *string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.InstanceID = group, memberID, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 30_000
	req.ProtocolType = "consumer"
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return req
}

// join sends a JoinGroup and returns the request's reply id.
func (h *harness) join(req *kmsg.JoinGroupRequest) ReplyTo {
	to := h.to()
	h.apply(h.c.JoinGroup(h.now, to, Client{ID: "client", Host: "/127.0.0.1"}, req))
	return to
}

// newMember joins with the two steps of v4+: the member id, then the join
// that waits for the rebalance. It returns the member id and the join's
// reply id.
func (h *harness) newMember(group string) (string, ReplyTo) {
	first := h.joinReply(h.join(joinRequest(group, "", nil)))
	if first.ErrorCode != 79 { // MEMBER_ID_REQUIRED
		h.t.Fatalf("first join: error %d, want MEMBER_ID_REQUIRED", first.ErrorCode)
	}
	return first.MemberID, h.join(joinRequest(group, first.MemberID, nil))
}

func (h *harness) joinReply(to ReplyTo) *kmsg.JoinGroupResponse {
	h.t.Helper()
	r, ok := h.replies[to]
	if !ok {
		h.t.Fatalf("join %d not answered", to)
	}
	return r.(*kmsg.JoinGroupResponse)
}

func (h *harness) answered(to ReplyTo) bool { _, ok := h.replies[to]; return ok }

func (h *harness) sync(group, memberID string, generation int32, assignments map[string]string) ReplyTo {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	for _, id := range sortedKeys(assignments) {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(assignments[id])})
	}
	to := h.to()
	h.apply(h.c.SyncGroup(h.now, to, req))
	return to
}

func (h *harness) syncReply(to ReplyTo) *kmsg.SyncGroupResponse {
	h.t.Helper()
	r, ok := h.replies[to]
	if !ok {
		h.t.Fatalf("sync %d not answered", to)
	}
	return r.(*kmsg.SyncGroupResponse)
}

func (h *harness) heartbeat(group, memberID string, generation int32, instance *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, memberID, generation, instance
	to := h.to()
	h.apply(h.c.Heartbeat(h.now, to, req))
	return h.replies[to].(*kmsg.HeartbeatResponse).ErrorCode
}

func (h *harness) leave(group, memberID string) int16 { return h.leaveAs(group, memberID, nil) }

// leaveAs leaves as a member id, or as a static member's instance id.
func (h *harness) leaveAs(group, memberID string, instance *string) int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Group = group
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: memberID, InstanceID: instance}}
	to := h.to()
	h.apply(h.c.LeaveGroup(h.now, to, req))
	return h.replies[to].(*kmsg.LeaveGroupResponse).Members[0].ErrorCode
}

func (h *harness) commit(group, memberID string, generation int32, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 7
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = partition, offset, 3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	to := h.to()
	h.apply(h.c.OffsetCommit(h.now, to, req))
	return h.replies[to].(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// fetched is a group's committed offset of one partition through
// OffsetFetch (v8, the batched form), -1 when none.
func (h *harness) fetched(group, topic string, partition int32) (int64, int16) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{partition}}}}}
	to := h.to()
	h.apply(h.c.OffsetFetch(h.now, to, req))
	rg := h.replies[to].(*kmsg.OffsetFetchResponse).Groups[0]
	if rg.ErrorCode != 0 {
		return -1, rg.ErrorCode
	}
	return rg.Topics[0].Partitions[0].Offset, 0
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 4
	req.Groups = []string{group}
	to := h.to()
	h.apply(h.c.DescribeGroups(h.now, to, req))
	return h.replies[to].(*kmsg.DescribeGroupsResponse).Groups[0]
}

// reload starts a new coordinator on the records appended so far, as a
// broker restart does.
func (h *harness) reload() {
	cfg := h.c.cfg
	h.c = New(cfg)
	for p := range cfg.Partitions {
		h.c.BeginLoad(p)
		for _, r := range h.log[p] {
			h.c.Load(p, r.Key, r.Value, h.now)
		}
		h.c.EndLoad(p)
	}
}
