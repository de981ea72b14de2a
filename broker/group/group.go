package group

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a group's state in the classic protocol.
type State int8

const (
	// Empty: no members (offsets may be committed).
	Empty State = iota
	// PreparingRebalance: waiting for members to (re)join.
	PreparingRebalance
	// CompletingRebalance: joined; waiting for the leader's assignment.
	CompletingRebalance
	// Stable: assigned; members heartbeat.
	Stable
)

// String is the state's name as DescribeGroups and ListGroups give it.
func (s State) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[s]
}

type topicPartition struct {
	topic     string
	partition int32
}

// Offset is one committed offset.
type Offset struct {
	Offset            int64
	LeaderEpoch       int32
	Metadata          string
	CommitTimestampMs int64
}

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []protocol
	assignment       []byte
	// expires is when the member's session ends without a heartbeat.
	expires time.Duration
	// join and sync are the member's JoinGroup or SyncGroup waiting for
	// the rebalance to move on.
	join *waitingJoin
	sync *waitingSync
}

type waitingJoin struct {
	to   ReplyTo
	resp *kmsg.JoinGroupResponse
}

type waitingSync struct {
	to   ReplyTo
	resp *kmsg.SyncGroupResponse
}

func (m *member) protocolMetadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p protocol) bool { return p.name == name })
}

func sameProtocols(a, b []protocol) bool {
	return slices.EqualFunc(a, b, func(x, y protocol) bool { return x.name == y.name && bytes.Equal(x.metadata, y.metadata) })
}

// answerWaiting answers the member's waiting join or sync with an error.
func (m *member) answerWaiting(e *kerr.Error) []Reply {
	var replies []Reply
	if m.join != nil {
		m.join.resp.ErrorCode = e.Code
		m.join.resp.MemberID = m.id
		replies = append(replies, Reply{To: m.join.to, Response: m.join.resp})
		m.join = nil
	}
	if m.sync != nil {
		m.sync.resp.ErrorCode = e.Code
		replies = append(replies, Reply{To: m.sync.to, Response: m.sync.resp})
		m.sync = nil
	}
	return replies
}

type group struct {
	id           string
	partition    int32
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	// members in the order they joined: the first is leader when the
	// leader leaves, and every walk over them is deterministic.
	members []*member
	// pending are member ids handed out with MEMBER_ID_REQUIRED, with the
	// time by which they must join with it.
	pending map[string]time.Duration
	offsets map[topicPartition]Offset
	// joinDeadline ends a PreparingRebalance whatever members are missing
	// (the rebalance timeout); joinDelayEnd is the earliest it may end
	// (the initial rebalance delay); rebalanceStart is when it began.
	joinDeadline   time.Duration
	joinDelayEnd   time.Duration
	rebalanceStart time.Duration
	initialJoin    bool
	// syncDeadline ends a CompletingRebalance whose leader did not sync.
	syncDeadline time.Duration
	// storing is set from the leader's SyncGroup until the generation's
	// record is appended (in a cluster, replicated): a member's SyncGroup
	// meanwhile waits, so that no member is told a generation that a
	// new coordinator, loading the log, would hand out again.
	storing          bool
	stateTimestampMs int64
	// idleSince is when the group last emptied or committed: an empty
	// group's offsets expire OffsetsRetention after it.
	idleSince time.Duration
	// retention is the coordinator's OffsetsRetention, for nextDeadline.
	retention time.Duration
	// deadlineSeq names the group's current entry in the coordinator's
	// deadline heap; touched says it is listed to be brought up to date.
	deadlineSeq uint64
	touched     bool
}

func newGroup(id string, partition int32, now Now, retention time.Duration) *group {
	return &group{id: id, partition: partition, pending: map[string]time.Duration{},
		offsets: map[topicPartition]Offset{}, stateTimestampMs: now.WallMs, idleSince: now.Mono, retention: retention}
}

func (g *group) member(id string) *member {
	i := slices.IndexFunc(g.members, func(m *member) bool { return m.id == id })
	if i < 0 {
		return nil
	}
	return g.members[i]
}

func (g *group) staticMember(instanceID string) *member {
	i := slices.IndexFunc(g.members, func(m *member) bool { return m.instanceID != nil && *m.instanceID == instanceID })
	if i < 0 {
		return nil
	}
	return g.members[i]
}

// fenced says whether a request naming an instance id comes from a member
// the instance has since replaced: FENCED_INSTANCE_ID (KIP-345).
func (g *group) fenced(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	m := g.staticMember(*instanceID)
	return m != nil && m.id != memberID
}

// supportsProtocols says whether a joining member can be in the group: the
// same protocol type, and a protocol every member supports.
func (g *group) supportsProtocols(protocolType string, protocols []protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	return slices.ContainsFunc(protocols, func(p protocol) bool { return g.allSupport(p.name, nil) })
}

// allSupport says whether every member but skip supports a protocol.
func (g *group) allSupport(name string, skip *member) bool {
	for _, m := range g.members {
		if m != skip && !m.supports(name) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol for a generation as Kafka does: among
// those every member supports, each member votes for the first of its own
// list; most votes wins, ties going to the earliest in the leader's list.
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.allSupport(p.name, nil) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, p := range g.members[0].protocols {
		if v := votes[p.name]; v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	return best
}

func (g *group) rebalanceTimeout() time.Duration {
	var t time.Duration
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeout)
	}
	return t
}

func (g *group) nextDeadline() (time.Duration, bool) {
	var next time.Duration
	found := false
	consider := func(d time.Duration) {
		if !found || d < next {
			next, found = d, true
		}
	}
	for _, d := range g.pending {
		consider(d)
	}
	for _, m := range g.members {
		if m.join == nil && m.sync == nil {
			consider(m.expires)
		}
	}
	if g.state == Empty && g.retention > 0 {
		consider(g.idleSince + g.retention)
	}
	switch g.state {
	case PreparingRebalance:
		consider(g.joinDeadline)
		if g.allJoined() {
			consider(g.joinDelayEnd)
		}
	case CompletingRebalance:
		consider(g.syncDeadline)
	}
	return next, found
}

// allJoined says whether every member has sent its JoinGroup and no
// handed-out member id is still to come.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func (g *group) setState(s State, now Now) {
	g.state = s
	g.stateTimestampMs = now.WallMs
	if s == Empty {
		g.idleSince = now.Mono
	}
}

// expired says whether an empty group's offsets have outlived their
// retention.
func (g *group) expired(now Now, retention time.Duration) bool {
	return g.state == Empty && retention > 0 && now.Mono >= g.idleSince+retention
}

// restore rebuilds a group from its metadata record: a group with members
// is Stable at its generation, their sessions starting now.
func (g *group) restore(v *kmsg.GroupMetadataValue, now Now) {
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	g.protocol, g.leader = deref(v.Protocol), deref(v.Leader)
	g.stateTimestampMs = v.CurrentStateTimestamp
	g.members, g.pending = nil, map[string]time.Duration{}
	for _, vm := range v.Members {
		m := &member{id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocolType:     v.ProtocolType, assignment: vm.Assignment,
			protocols: []protocol{{name: g.protocol, metadata: vm.Subscription}}}
		m.expires = now.Mono + m.sessionTimeout
		g.members = append(g.members, m)
	}
	g.state = Empty
	if len(g.members) > 0 {
		g.state = Stable
	}
	g.idleSince = now.Mono // retention counts again from a load
}

// restoreEmpty applies a group tombstone: the group's metadata is gone.
func (g *group) restoreEmpty() {
	g.members, g.pending = nil, map[string]time.Duration{}
	g.state, g.protocolType, g.protocol, g.leader, g.generation = Empty, "", "", "", 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// metadataRecord is the group's metadata as a record.
func (g *group) metadataRecord() Record {
	return Record{Partition: g.partition, Key: groupKey(g.id), Value: groupValue(g)}
}
