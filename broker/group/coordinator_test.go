package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/faults"
)

func TestPartitionForIsJavaHashCodeModCount(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int32
		want  int32 // of 50 partitions
	}{
		{"", 0, 0},
		{"test", 3556498, 48},
		{"hello", 99162322, 22},
		{"é", 233, 33},
		{"😀", 1772899, 49}, // one code point, two UTF-16 units
		// Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
		{"polygenelubricants", -2147483648, 0},
	} {
		if got := javaStringHash(tc.group); got != tc.hash {
			t.Errorf("hash(%q) = %d, want %d", tc.group, got, tc.hash)
		}
		if got := PartitionFor(tc.group, 50); got != tc.want {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

// stableGroup makes a group of n members at generation 1, synced, with
// member i assigned "a<i>".
func stableGroup(t *testing.T, h *harness, group string, n int) []string {
	t.Helper()
	var ids []string
	var joins []ReplyTo
	for range n {
		id, to := h.newMember(group)
		ids, joins = append(ids, id), append(joins, to)
	}
	h.advance(time.Second) // the initial rebalance delay
	leader := ""
	for i, to := range joins {
		r := h.joinReply(to)
		if r.ErrorCode != 0 || r.MemberID != ids[i] {
			t.Fatalf("join %d: error %d member %q, want none and %q", i, r.ErrorCode, r.MemberID, ids[i])
		}
		leader = r.LeaderID
		if (r.LeaderID == r.MemberID) != (len(r.Members) == n) {
			t.Fatalf("join %d: leader %q, %d members listed: only the leader hears them all", i, r.LeaderID, len(r.Members))
		}
	}
	assign := map[string]string{}
	for i, id := range ids {
		assign[id] = "a" + string(rune('0'+i))
	}
	gen := h.joinReply(joins[0]).Generation
	var syncs []ReplyTo
	for _, id := range ids {
		if id != leader {
			syncs = append(syncs, h.sync(group, id, gen, nil))
		}
	}
	for _, to := range syncs {
		if h.answered(to) {
			t.Fatal("a follower's sync was answered before the leader's")
		}
	}
	syncs = append(syncs, h.sync(group, leader, gen, assign))
	for _, to := range syncs {
		if r := h.syncReply(to); r.ErrorCode != 0 {
			t.Fatalf("sync: error %d", r.ErrorCode)
		}
	}
	for _, id := range ids {
		if got := h.heartbeat(group, id, gen, nil); got != 0 {
			t.Fatalf("heartbeat of %s: %d", id, got)
		}
	}
	return ids
}

func TestJoinSyncHeartbeatAssignsEveryMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 3)
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 3 || d.Protocol != "range" {
		t.Fatalf("describe: %+v", d)
	}
	for i, m := range d.Members {
		if m.MemberID != ids[i] || string(m.MemberAssignment) != "a"+string(rune('0'+i)) {
			t.Errorf("member %d: %s assigned %q", i, m.MemberID, m.MemberAssignment)
		}
	}
}

func TestErrorsFenceStaleAndUnknownMembers(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 2)
	for _, tc := range []struct {
		name string
		got  int16
		want *kerr.Error
	}{
		{"heartbeat of an old generation", h.heartbeat("g", ids[0], 0, nil), kerr.IllegalGeneration},
		{"heartbeat of an unknown member", h.heartbeat("g", "nobody", 1, nil), kerr.UnknownMemberID},
		{"heartbeat to an unknown group", h.heartbeat("other", ids[0], 1, nil), kerr.UnknownMemberID},
		{"commit of an old generation", h.commit("g", ids[0], 0, "t", 0, 5), kerr.IllegalGeneration},
		{"commit of an unknown member", h.commit("g", "nobody", 1, "t", 0, 5), kerr.UnknownMemberID},
		{"simple commit to a group with members", h.commit("g", "", -1, "t", 0, 5), kerr.UnknownMemberID},
		{"commit of the generation", h.commit("g", ids[0], 1, "t", 0, 5), nil},
	} {
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if tc.got != want {
			t.Errorf("%s: error %d, want %d", tc.name, tc.got, want)
		}
	}
	if off, _ := h.fetched("g", "t", 0); off != 5 {
		t.Errorf("committed offset %d, want 5", off)
	}
	// A new member starts a rebalance: the others hear
	// REBALANCE_IN_PROGRESS, and a sync of the old generation is refused.
	_, join := h.newMember("g")
	if got := h.heartbeat("g", ids[0], 1, nil); got != kerr.RebalanceInProgress.Code {
		t.Errorf("heartbeat during rebalance: %d, want REBALANCE_IN_PROGRESS", got)
	}
	if got := h.syncReply(h.sync("g", ids[0], 1, nil)).ErrorCode; got != kerr.RebalanceInProgress.Code {
		t.Errorf("sync during rebalance: %d", got)
	}
	// Commits of the last generation are still taken while members rejoin.
	if got := h.commit("g", ids[1], 1, "t", 1, 7); got != 0 {
		t.Errorf("commit during PreparingRebalance: %d", got)
	}
	h.join(joinRequest("g", ids[0], nil))
	h.join(joinRequest("g", ids[1], nil))
	r := h.joinReply(join)
	if r.Generation != 2 {
		t.Fatalf("generation %d after the rejoin, want 2", r.Generation)
	}
	if got := h.commit("g", ids[0], 2, "t", 0, 9); got != kerr.RebalanceInProgress.Code {
		t.Errorf("commit while CompletingRebalance: %d, want REBALANCE_IN_PROGRESS", got)
	}
	if got := h.commit("g", ids[0], 1, "t", 0, 9); got != kerr.IllegalGeneration.Code {
		t.Errorf("commit of generation 1 in generation 2: %d", got)
	}
}

func TestSessionTimeoutRemovesSilentMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 2)
	for range 4 { // member 0 heartbeats every 3 s; member 1 is silent
		h.advance(3 * time.Second)
		h.heartbeat("g", ids[0], 1, nil)
	}
	if got := h.heartbeat("g", ids[0], 1, nil); got != kerr.RebalanceInProgress.Code {
		t.Fatalf("survivor's heartbeat: %d, want REBALANCE_IN_PROGRESS", got)
	}
	join := h.join(joinRequest("g", ids[0], nil))
	r := h.joinReply(join)
	if r.Generation != 2 || r.LeaderID != ids[0] || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
	if got := h.heartbeat("g", ids[1], 1, nil); got != kerr.UnknownMemberID.Code {
		t.Errorf("expired member's heartbeat: %d", got)
	}
}

func TestRebalanceTimeoutDropsMemberThatDoesNotRejoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 2)
	join := h.join(joinRequest("g", ids[0], nil)) // the leader rejoins: a rebalance
	for range 5 {                                 // member 1 keeps its session but never rejoins
		h.advance(5 * time.Second)
		if got := h.heartbeat("g", ids[1], 1, nil); got != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat: %d", got)
		}
	}
	h.advance(4 * time.Second)
	if h.answered(join) {
		t.Fatal("the join completed before the rebalance timeout with a member missing")
	}
	h.advance(time.Second)
	r := h.joinReply(join)
	if r.ErrorCode != 0 || r.Generation != 2 || len(r.Members) != 1 {
		t.Fatalf("join after the rebalance timeout: %+v", r)
	}
}

func TestLeaveHandsPartitionsToTheRest(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 2)
	if got := h.leave("g", ids[0]); got != 0 {
		t.Fatalf("leave: %d", got)
	}
	if got := h.leave("g", ids[0]); got != kerr.UnknownMemberID.Code {
		t.Errorf("second leave: %d", got)
	}
	if got := h.heartbeat("g", ids[1], 1, nil); got != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after a leave: %d", got)
	}
	r := h.joinReply(h.join(joinRequest("g", ids[1], nil)))
	if r.LeaderID != ids[1] || r.Generation != 2 {
		t.Fatalf("rejoin after leave: %+v", r)
	}
	h.syncReply(h.sync("g", ids[1], 2, map[string]string{ids[1]: "all"}))
	if got := h.leave("g", ids[1]); got != 0 {
		t.Fatal(got)
	}
	if d := h.describe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after the last leave: %+v", d)
	}
	// An empty group takes commits from outside any group (kcat -G does
	// not, but tools resetting offsets do).
	if got := h.commit("g", "", -1, "t", 0, 42); got != 0 {
		t.Errorf("simple commit to an empty group: %d", got)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	inst := "instance-1"
	leaderID, leaderJoin := h.newMember("g")
	staticJoin := h.join(joinRequest("g", "", &inst)) // static members get an id at once
	h.advance(time.Second)
	r := h.joinReply(staticJoin)
	staticID := r.MemberID
	if r.ErrorCode != 0 || r.Generation != 1 {
		t.Fatalf("static join: %+v", r)
	}
	if h.joinReply(leaderJoin).LeaderID != leaderID {
		t.Fatal("the first member is not the leader")
	}
	h.sync("g", leaderID, 1, map[string]string{leaderID: "x", staticID: "y"})
	// The instance restarts: a new member id, the same generation and
	// assignment, and the old id fenced.
	r2 := h.joinReply(h.join(joinRequest("g", "", &inst)))
	if r2.ErrorCode != 0 || r2.Generation != 1 || r2.MemberID == staticID {
		t.Fatalf("static rejoin: %+v", r2)
	}
	if got := h.syncReply(h.sync("g", r2.MemberID, 1, nil)); got.ErrorCode != 0 || string(got.MemberAssignment) != "y" {
		t.Fatalf("static member's sync: %+v", got)
	}
	if got := h.heartbeat("g", staticID, 1, &inst); got != kerr.FencedInstanceID.Code {
		t.Errorf("old instance's heartbeat: %d, want FENCED_INSTANCE_ID", got)
	}
	if got := h.heartbeat("g", leaderID, 1, nil); got != 0 {
		t.Errorf("the leader saw a rebalance: %d", got)
	}
	// The replacement survives a reload.
	h.reload()
	if got := h.heartbeat("g", r2.MemberID, 1, &inst); got != 0 {
		t.Errorf("static member after reload: %d", got)
	}
}

func TestProtocolSelectionAndInconsistentProtocol(t *testing.T) {
	h := newHarness(t, testConfig())
	a := h.join(joinRequest("g", "", nil, "roundrobin", "range"))
	idA := h.joinReply(a).MemberID
	b := h.join(joinRequest("g", "", nil, "range", "roundrobin"))
	idB := h.joinReply(b).MemberID
	c := h.join(joinRequest("g", "", nil, "range"))
	idC := h.joinReply(c).MemberID
	ja, jb, jc := h.join(joinRequest("g", idA, nil, "roundrobin", "range")), h.join(joinRequest("g", idB, nil, "range", "roundrobin")), h.join(joinRequest("g", idC, nil, "range"))
	h.advance(time.Second)
	for _, to := range []ReplyTo{ja, jb, jc} {
		if p := h.joinReply(to).Protocol; p == nil || *p != "range" {
			t.Fatalf("protocol %v, want range (the only one all support)", p)
		}
	}
	if got := h.joinReply(h.join(joinRequest("g", "", nil, "sticky"))).ErrorCode; got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("join with no common protocol: %d", got)
	}
	bad := joinRequest("g", "", nil)
	bad.SessionTimeoutMillis = 1000
	if got := h.joinReply(h.join(bad)).ErrorCode; got != kerr.InvalidSessionTimeout.Code {
		t.Errorf("session timeout below the minimum: %d", got)
	}
}

func TestInitialRebalanceDelayWaitsForMoreMembers(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, cfg)
	_, j1 := h.newMember("g")
	h.advance(2 * time.Second)
	_, j2 := h.newMember("g")
	h.advance(2 * time.Second)
	if h.answered(j1) || h.answered(j2) {
		t.Fatal("the first rebalance ended before the delay after the last newcomer")
	}
	h.advance(time.Second)
	if h.joinReply(j1).Generation != 1 || h.joinReply(j2).Generation != 1 {
		t.Fatal("both members should be in generation 1")
	}
}

func TestReloadRestoresGroupsAndOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 2)
	h.commit("g", ids[0], 1, "t", 0, 10)
	h.commit("g", ids[1], 1, "t", 1, 20)
	h.commit("g", ids[1], 1, "t", 1, 21)
	h.commit("solo", "", -1, "t", 0, 3)

	p := h.c.Partition("g")
	h.c.BeginLoad(p)
	if _, code := h.fetched("g", "t", 0); code != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("fetch while loading: %d, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	if r := h.joinReply(h.join(joinRequest("g", "", nil))); r.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("join while loading: %d", r.ErrorCode)
	}
	h.reload()
	for _, tc := range []struct {
		group     string
		partition int32
		want      int64
	}{{"g", 0, 10}, {"g", 1, 21}, {"solo", 0, 3}, {"g", 2, -1}} {
		if got, code := h.fetched(tc.group, "t", tc.partition); got != tc.want || code != 0 {
			t.Errorf("%s t-%d after reload: %d (error %d), want %d", tc.group, tc.partition, got, code, tc.want)
		}
	}
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 || string(d.Members[1].MemberAssignment) != "a1" {
		t.Fatalf("group after reload: %+v", d)
	}
	if got := h.heartbeat("g", ids[1], 1, nil); got != 0 {
		t.Errorf("heartbeat after reload: %d", got)
	}
	// The members' sessions start again at the reload; silent, they go.
	h.advance(11 * time.Second)
	if d := h.describe("g"); d.State != "Empty" {
		t.Errorf("after silent sessions: %s", d.State)
	}
}

// TestCommittedLeaderEpochKeptAndReloaded (KIP-320): OffsetCommit v6+
// carries the leader epoch of the record before the offset; OffsetFetch
// v5+ returns it, also after a reload from the records (offset value v3),
// and an OffsetCommit before v6 stores none.
func TestCommittedLeaderEpochKeptAndReloaded(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit("solo", "", -1, "t", 0, 30) // epoch 3
	epochOf := func(partition int32) (int64, int32) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = "solo"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{partition}}}
		to := h.to()
		h.apply(h.c.OffsetFetch(h.now, to, req))
		p := h.replies[to].(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		return p.Offset, p.LeaderEpoch
	}
	old := kmsg.NewPtrOffsetCommitRequest()
	old.Version = 5
	old.Group, old.Generation = "solo", -1
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 1, 40, 9
	old.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{rp}}}
	h.apply(h.c.OffsetCommit(h.now, h.to(), old))
	for _, when := range []string{"committed", "reloaded"} {
		if off, epoch := epochOf(0); off != 30 || epoch != 3 {
			t.Errorf("%s: t-0 at %d epoch %d, want 30 epoch 3", when, off, epoch)
		}
		if off, epoch := epochOf(1); off != 40 || epoch != -1 {
			t.Errorf("%s by v5: t-1 at %d epoch %d, want 40 epoch -1", when, off, epoch)
		}
		h.reload()
	}
}

func TestFailedAppendLeavesCommitUnmade(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "g", 1)
	h.commit("g", ids[0], 1, "t", 0, 10)
	h.failAppend = true
	if got := h.commit("g", ids[0], 1, "t", 0, 11); got != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("commit whose append failed: %d", got)
	}
	h.failAppend = false
	if got, _ := h.fetched("g", "t", 0); got != 10 {
		t.Errorf("offset %d after a failed commit, want 10", got)
	}
}

func TestDeleteGroups(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "busy", 1)
	h.commit("idle", "", -1, "t", 0, 3)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{"busy", "idle", "none"}
	to := h.to()
	h.apply(h.c.DeleteGroups(h.now, to, req))
	want := []int16{kerr.NonEmptyGroup.Code, 0, kerr.GroupIDNotFound.Code}
	for i, g := range h.replies[to].(*kmsg.DeleteGroupsResponse).Groups {
		if g.ErrorCode != want[i] {
			t.Errorf("delete %s: %d, want %d", g.Group, g.ErrorCode, want[i])
		}
	}
	h.reload()
	if got, _ := h.fetched("idle", "t", 0); got != -1 {
		t.Errorf("a deleted group's offset came back: %d", got)
	}
	if got := h.heartbeat("busy", ids[0], 1, nil); got != 0 {
		t.Errorf("the busy group: %d", got)
	}
}

func TestEmptyGroupOffsetsExpireAfterRetention(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetsRetention = time.Hour
	h := newHarness(t, cfg)
	ids := stableGroup(t, h, "busy", 1)
	h.commit("busy", ids[0], 1, "t", 0, 9)
	h.commit("idle", "", -1, "t", 0, 3)
	for i := range 2 * 60 * 60 / 5 { // two hours of heartbeats every 5 s
		h.advance(5 * time.Second)
		if got := h.heartbeat("busy", ids[0], 1, nil); got != 0 {
			t.Fatalf("heartbeat: %d", got)
		}
		switch i {
		case 59 * 60 / 5:
			h.commit("idle", "", -1, "t", 1, 4) // a commit restarts the clock
		case 118 * 60 / 5: // 59 min after that commit, 118 after the first
			if got, _ := h.fetched("idle", "t", 0); got != 3 {
				t.Fatalf("the idle group's offset expired an hour after its first commit, not its last: %d", got)
			}
		}
	}
	if got, _ := h.fetched("busy", "t", 0); got != 9 {
		t.Errorf("a group with members lost its offset: %d", got)
	}
	if got, _ := h.fetched("idle", "t", 0); got != -1 {
		t.Errorf("an empty group's offset outlived its retention: %d", got)
	}
	h.reload() // the expiry is in the log: tombstones
	if got, _ := h.fetched("idle", "t", 1); got != -1 {
		t.Errorf("an expired offset came back after a reload: %d", got)
	}
	if got, _ := h.fetched("busy", "t", 0); got != 9 {
		t.Errorf("busy group after a reload: %d", got)
	}
}

func TestStaticLeaderRejoinsWithoutRebalance(t *testing.T) {
	for _, version := range []int16{5, 9} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			h := newHarness(t, testConfig())
			inst := "leader"
			leaderJoin := h.join(joinRequest("g", "", &inst))
			followerID, followerJoin := h.newMember("g")
			h.advance(time.Second)
			leaderID := h.joinReply(leaderJoin).MemberID
			if h.joinReply(followerJoin).LeaderID != leaderID {
				t.Fatal("the static member is not the leader")
			}
			h.sync("g", leaderID, 1, map[string]string{leaderID: "x", followerID: "y"})
			h.sync("g", followerID, 1, nil)

			rejoin := joinRequest("g", "", &inst)
			rejoin.Version = version
			r := h.joinReply(h.join(rejoin))
			switch {
			case r.ErrorCode != 0 || r.Generation != 1 || r.MemberID == leaderID:
				t.Fatalf("rejoin: %+v", r)
			case version >= 9 && (!r.SkipAssignment || r.LeaderID != r.MemberID || len(r.Members) != 2):
				t.Fatalf("v9 rejoin of the leader: skip %v, leader %s, %d members", r.SkipAssignment, r.LeaderID, len(r.Members))
			case version < 9 && (r.LeaderID != leaderID || len(r.Members) != 0):
				t.Fatalf("v%d rejoin of the leader: leader %s (want the old id %s), %d members", version, r.LeaderID, leaderID, len(r.Members))
			}
			if got := h.syncReply(h.sync("g", r.MemberID, 1, nil)); got.ErrorCode != 0 || string(got.MemberAssignment) != "x" {
				t.Fatalf("the leader's sync: %+v", got)
			}
			if got := h.heartbeat("g", followerID, 1, nil); got != 0 {
				t.Fatalf("the follower saw a rebalance: %d", got)
			}
		})
	}
}

// TestLateSyncWaitsForTheGenerationRecord: a follower whose SyncGroup
// comes after the leader's, while the generation's record is still being
// appended (in a cluster, replicated), is answered only once the record
// counts, and with an error if it does not: otherwise a coordinator that
// dies before the record reaches the followers leaves a member owning
// partitions in a generation the next coordinator hands out again.
func TestLateSyncWaitsForTheGenerationRecord(t *testing.T) {
	for _, appended := range []bool{true, false} {
		h := newHarness(t, testConfig())
		id1, j1 := h.newMember("g")
		id2, _ := h.newMember("g")
		h.advance(time.Second) // the initial rebalance delay
		r := h.joinReply(j1)
		leader, follower := r.LeaderID, id2
		if leader == id2 {
			follower = id1
		}
		h.hold = true
		lead := h.sync("g", leader, r.Generation, map[string]string{leader: "mine", follower: "yours"})
		h.hold = false
		late := h.sync("g", follower, r.Generation, nil)
		if h.answered(lead) || h.answered(late) {
			t.Fatalf("appended=%v: a sync answered before the generation's record counted", appended)
		}
		h.release(appended)
		got := h.syncReply(late)
		switch {
		case appended && (got.ErrorCode != 0 || string(got.MemberAssignment) != "yours"):
			t.Fatalf("late sync: error %d, assignment %q; want none and \"yours\"", got.ErrorCode, got.MemberAssignment)
		case !appended && got.ErrorCode != kerr.CoordinatorNotAvailable.Code:
			t.Fatalf("late sync after a failed append: error %d, want COORDINATOR_NOT_AVAILABLE", got.ErrorCode)
		}
	}
}

// TestStaleGenerationCommitBugAcceptsOldGenerations: with the planted bug
// stale-generation-commit the coordinator takes a commit of an older
// generation, even from a member it no longer knows; without it, not.
func TestStaleGenerationCommitBugAcceptsOldGenerations(t *testing.T) {
	for _, bug := range []bool{false, true} {
		cfg := testConfig()
		if bug {
			cfg.Bugs = faults.Bugs{faults.BugStaleGenerationCommit: true}
		}
		h := newHarness(t, cfg)
		stableGroup(t, h, "g", 2)
		h.newMember("g") // a rebalance the old members miss: they are dropped
		h.advance(time.Minute)
		if g := h.c.groups["g"]; g == nil || g.generation < 2 {
			t.Fatalf("bug=%v: the group did not move past generation 1", bug)
		}
		want := kerr.UnknownMemberID.Code
		if bug {
			want = 0
		}
		if got := h.commit("g", "gone", 1, "t", 0, 5); got != want {
			t.Fatalf("bug=%v: commit of generation 1 by an unknown member: error %d, want %d", bug, got, want)
		}
	}
}
