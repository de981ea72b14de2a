package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup serves a JoinGroup. The answer waits, parked on the member,
// until the rebalance completes, unless the join is refused or answered
// with the current generation.
func (c *Coordinator) JoinGroup(now Now, to ReplyTo, client Client, req *kmsg.JoinGroupRequest) Output {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.MemberID = -1, req.MemberID
	fail := func(e *kerr.Error) Output {
		resp.ErrorCode = e.Code
		return replyNow(to, resp)
	}
	g, e := c.group(req.Group, req.MemberID == "", now)
	switch {
	case e != nil:
		return fail(e)
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case g == nil:
		return fail(kerr.UnknownMemberID)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.SessionTimeoutMin || session > c.cfg.SessionTimeoutMax {
		return fail(kerr.InvalidSessionTimeout)
	}
	rebalance := session // v0 has no rebalance timeout: it is the session timeout
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	protocols := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		protocols[i] = protocol{name: p.Name, metadata: p.Metadata}
	}
	if !g.supportsProtocols(req.ProtocolType, protocols) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	m := &member{instanceID: req.InstanceID, clientID: client.ID, clientHost: client.Host,
		sessionTimeout: session, rebalanceTimeout: rebalance, protocolType: req.ProtocolType, protocols: protocols,
		join: &waitingJoin{to: to, resp: resp}}
	if req.MemberID == "" {
		return c.joinUnknown(g, now, m, req.Version)
	}
	return c.joinKnown(g, now, m, req.MemberID)
}

// joinUnknown serves a join without a member id: a new member, a member
// id handed out first (v4+, KIP-394), or a static member coming back.
func (c *Coordinator) joinUnknown(g *group, now Now, m *member, version int16) Output {
	// Kafka's member ids: the client id, or a static member's instance id
	// (which clients use to tell a restarted leader, KIP-345), then a
	// random part.
	prefix := m.clientID
	if m.instanceID != nil {
		prefix = *m.instanceID
	}
	m.id = prefix + "-" + c.cfg.MemberSuffix()
	if m.instanceID != nil {
		if old := g.staticMember(*m.instanceID); old != nil {
			return c.replaceStatic(g, now, old, m)
		}
	} else if version >= 4 {
		if len(g.pending) >= c.cfg.MembersMax {
			return c.refuseJoin(m, kerr.GroupMaxSizeReached)
		}
		g.pending[m.id] = now.Mono + m.sessionTimeout
		return c.refuseJoin(m, kerr.MemberIDRequired)
	}
	return c.addMember(g, now, m)
}

func (c *Coordinator) refuseJoin(m *member, e *kerr.Error) Output {
	m.join.resp.ErrorCode, m.join.resp.MemberID = e.Code, m.id
	return replyNow(m.join.to, m.join.resp)
}

func (c *Coordinator) addMember(g *group, now Now, m *member) Output {
	if len(g.members) >= c.cfg.MembersMax {
		return c.refuseJoin(m, kerr.GroupMaxSizeReached)
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	m.expires = now.Mono + m.sessionTimeout
	g.members = append(g.members, m)
	if g.state == PreparingRebalance {
		if g.initialJoin {
			// Each newcomer to an empty group's first rebalance waits the
			// delay again, within the rebalance timeout.
			g.joinDelayEnd = min(now.Mono+c.cfg.InitialRebalanceDelay, g.rebalanceStart+g.rebalanceTimeout())
		}
		g.joinDeadline = max(g.joinDeadline, g.rebalanceStart+m.rebalanceTimeout)
		return c.maybeCompleteJoin(g, now)
	}
	return c.prepareRebalance(g, now)
}

// joinKnown serves a join from a member id the group handed out.
func (c *Coordinator) joinKnown(g *group, now Now, m *member, memberID string) Output {
	m.id = memberID
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		return c.addMember(g, now, m)
	}
	if g.fenced(m.instanceID, memberID) {
		return c.refuseJoin(m, kerr.FencedInstanceID)
	}
	old := g.member(memberID)
	if old == nil || g.state == Empty {
		return c.refuseJoin(m, kerr.UnknownMemberID)
	}
	changed := !sameProtocols(old.protocols, m.protocols)
	out := Output{}
	if old.join != nil {
		// A second join while the first waits replaces it: the first
		// connection may be gone.
		out.Replies = append(out.Replies, old.answerWaiting(kerr.RebalanceInProgress)...)
	}
	old.protocols, old.sessionTimeout, old.rebalanceTimeout = m.protocols, m.sessionTimeout, m.rebalanceTimeout
	old.clientID, old.clientHost = m.clientID, m.clientHost
	old.expires = now.Mono + old.sessionTimeout
	switch {
	case g.state == PreparingRebalance:
		old.join = m.join
		out = merge(out, c.maybeCompleteJoin(g, now))
	case !changed && (g.state == CompletingRebalance || old.id != g.leader):
		// Nothing to rebalance for: the member hears its generation again.
		out.Replies = append(out.Replies, Reply{To: m.join.to, Response: g.joinAnswer(old, m.join.resp)})
	default:
		old.join = m.join
		out = merge(out, c.prepareRebalance(g, now))
	}
	return out
}

// replaceStatic gives a returning static member (KIP-345) a new member id
// and fences the old one. In a stable group whose protocol would not
// change it gets the current generation and assignment without a
// rebalance, as Kafka does; a returning leader is told to skip the
// assignment (v9, KIP-814) or, before v9, is given the old leader id so
// that it does not assign.
func (c *Coordinator) replaceStatic(g *group, now Now, old, m *member) Output {
	out := Output{Replies: old.answerWaiting(kerr.FencedInstanceID)}
	oldID, wasLeader := old.id, g.leader == old.id
	old.id, old.clientID, old.clientHost = m.id, m.clientID, m.clientHost
	old.protocols, old.sessionTimeout, old.rebalanceTimeout = m.protocols, m.sessionTimeout, m.rebalanceTimeout
	old.expires = now.Mono + old.sessionTimeout
	old.join = m.join
	if wasLeader {
		g.leader = old.id
	}
	switch {
	case g.state == PreparingRebalance:
		return merge(out, c.maybeCompleteJoin(g, now))
	case g.state == Stable && g.selectProtocol() == g.protocol:
		old.join = nil
		resp := g.joinAnswer(old, m.join.resp)
		if wasLeader && resp.Version >= 9 {
			resp.SkipAssignment = true
		} else if wasLeader {
			resp.LeaderID, resp.Members = oldID, nil
		}
		out.Replies = append(out.Replies, Reply{To: m.join.to, Response: resp})
		// The new member id must survive a coordinator restart.
		out.Records = append(out.Records, g.metadataRecord())
		return out
	}
	return merge(out, c.prepareRebalance(g, now))
}

// joinAnswer fills a join answer with the current generation; the leader
// gets every member's metadata.
func (g *group) joinAnswer(m *member, resp *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
	resp.ErrorCode = 0
	resp.Generation, resp.LeaderID, resp.MemberID = g.generation, g.leader, m.id
	protocolType, protocol := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &protocolType, &protocol
	resp.Members = nil
	if m.id == g.leader {
		for _, o := range g.members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = o.id, o.instanceID, o.protocolMetadata(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// prepareRebalance starts a rebalance: waiting syncs are told to rejoin,
// and the join phase ends when every member has rejoined or at the
// rebalance timeout.
func (c *Coordinator) prepareRebalance(g *group, now Now) Output {
	var out Output
	if g.state == CompletingRebalance || g.storing {
		for _, m := range g.members {
			if m.sync != nil {
				out.Replies = append(out.Replies, m.answerWaiting(kerr.RebalanceInProgress)...)
			}
		}
	}
	g.initialJoin = g.state == Empty
	g.rebalanceStart = now.Mono
	g.joinDeadline = now.Mono + g.rebalanceTimeout()
	g.joinDelayEnd = now.Mono
	if g.initialJoin {
		g.joinDelayEnd = min(now.Mono+c.cfg.InitialRebalanceDelay, g.joinDeadline)
	}
	g.setState(PreparingRebalance, now)
	return merge(out, c.maybeCompleteJoin(g, now))
}

// maybeCompleteJoin ends the join phase once every member has rejoined
// and any initial delay has passed.
func (c *Coordinator) maybeCompleteJoin(g *group, now Now) Output {
	if g.state != PreparingRebalance || !g.allJoined() || now.Mono < g.joinDelayEnd {
		return Output{}
	}
	return c.completeJoin(g, now)
}

// completeJoin starts the next generation with the members that rejoined.
func (c *Coordinator) completeJoin(g *group, now Now) Output {
	var out Output
	for _, m := range append([]*member(nil), g.members...) {
		if m.join == nil {
			out = merge(out, c.removeMember(g, now, m, kerr.UnknownMemberID, false))
		}
	}
	clear(g.pending)
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		out.Records = append(out.Records, g.metadataRecord())
		return out
	}
	g.protocol = g.selectProtocol()
	if g.member(g.leader) == nil {
		g.leader = g.members[0].id
	}
	g.setState(CompletingRebalance, now)
	g.syncDeadline = now.Mono + g.rebalanceTimeout()
	for _, m := range g.members {
		m.assignment = nil
		m.expires = now.Mono + m.sessionTimeout
		out.Replies = append(out.Replies, Reply{To: m.join.to, Response: g.joinAnswer(m, m.join.resp)})
		m.join = nil
	}
	return out
}

// removeMember drops a member (it left, its session expired, it missed a
// rebalance), answering what it had waiting with e. rebalance says whether
// the group should rebalance for it (not when the join phase itself is
// dropping it).
func (c *Coordinator) removeMember(g *group, now Now, m *member, e *kerr.Error, rebalance bool) Output {
	out := Output{Replies: m.answerWaiting(e)}
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	if g.leader == m.id {
		g.leader = ""
	}
	if !rebalance {
		return out
	}
	switch g.state {
	case Stable, CompletingRebalance:
		return merge(out, c.prepareRebalance(g, now))
	case PreparingRebalance:
		return merge(out, c.maybeCompleteJoin(g, now))
	}
	return out
}

// SyncGroup serves a SyncGroup: the leader's carries the assignment, which
// completes the rebalance; the others wait for it.
func (c *Coordinator) SyncGroup(now Now, to ReplyTo, req *kmsg.SyncGroupRequest) Output {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(e *kerr.Error) Output {
		resp.ErrorCode = e.Code
		return replyNow(to, resp)
	}
	g, e := c.group(req.Group, false, now)
	if e != nil {
		return fail(e)
	}
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	if g.fenced(req.InstanceID, req.MemberID) {
		return fail(kerr.FencedInstanceID)
	}
	m := g.member(req.MemberID)
	switch {
	case m == nil:
		return fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration)
	case (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol):
		return fail(kerr.InconsistentGroupProtocol)
	case g.state == PreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case g.state == Stable && !g.storing:
		m.expires = now.Mono + m.sessionTimeout
		return replyNow(to, g.syncAnswer(m, resp))
	case g.state == Stable:
		// Answered when the generation's record counts (completeSync).
		var out Output
		if m.sync != nil {
			out.Replies = m.answerWaiting(kerr.RebalanceInProgress)
		}
		m.sync = &waitingSync{to: to, resp: resp}
		m.expires = now.Mono + m.sessionTimeout
		return out
	}
	// CompletingRebalance.
	var out Output
	if m.sync != nil {
		out.Replies = m.answerWaiting(kerr.RebalanceInProgress)
	}
	m.sync = &waitingSync{to: to, resp: resp}
	m.expires = now.Mono + m.sessionTimeout
	if m.id != g.leader {
		return out
	}
	return merge(out, c.completeSync(g, now, req.GroupAssignment))
}

// completeSync applies the leader's assignment (members it left out get
// none), makes the group Stable and records it; the waiting syncs are
// answered once the record is appended.
func (c *Coordinator) completeSync(g *group, now Now, assignments []kmsg.SyncGroupRequestGroupAssignment) Output {
	for _, m := range g.members {
		m.assignment = []byte{}
	}
	for _, a := range assignments {
		if m := g.member(a.MemberID); m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	g.setState(Stable, now)
	out := Output{Records: []Record{g.metadataRecord()}}
	var waiting []*waitingSync
	for _, m := range g.members {
		if m.sync != nil {
			out.Replies = append(out.Replies, Reply{To: m.sync.to, Response: g.syncAnswer(m, m.sync.resp)})
			waiting = append(waiting, m.sync)
			m.sync = nil
		}
	}
	generation := g.generation
	g.storing = true
	out.Done = func(appended bool) {
		if g.generation == generation && g.storing {
			g.storing = false
			c.answerLateSyncs(g, appended)
		}
		if appended {
			return
		}
		for _, w := range waiting {
			w.resp.ErrorCode, w.resp.MemberAssignment = kerr.CoordinatorNotAvailable.Code, nil
		}
		if g.generation == generation && g.state == Stable {
			// The assignment is not in the log: rebalance rather than
			// serve a generation a restart would not know. Its replies go
			// out when members rejoin.
			c.prepareRebalance(g, now)
			c.touch(g)
		}
	}
	return out
}

// answerLateSyncs answers the SyncGroups that arrived while the
// generation's record was being stored: with the assignment once it is
// in the log, or COORDINATOR_NOT_AVAILABLE when it is not. The replies
// wait in TakeReplies, as they answer requests of earlier steps.
func (c *Coordinator) answerLateSyncs(g *group, appended bool) {
	for _, m := range g.members {
		if m.sync == nil || g.state != Stable {
			continue
		}
		w := m.sync
		m.sync = nil
		if appended {
			c.late = append(c.late, Reply{To: w.to, Response: g.syncAnswer(m, w.resp)})
			continue
		}
		w.resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		c.late = append(c.late, Reply{To: w.to, Response: w.resp})
	}
}

// TakeReplies returns, and forgets, the answers an Output's Done produced
// for requests of earlier steps: the caller sends them after Done.
func (c *Coordinator) TakeReplies() []Reply {
	late := c.late
	c.late = nil
	return late
}

func (g *group) syncAnswer(m *member, resp *kmsg.SyncGroupResponse) *kmsg.SyncGroupResponse {
	protocolType, protocol := g.protocolType, g.protocol
	resp.ErrorCode, resp.ProtocolType, resp.Protocol = 0, &protocolType, &protocol
	resp.MemberAssignment = m.assignment
	return resp
}

// Heartbeat serves a Heartbeat: it keeps the member's session and tells it
// when a rebalance needs it to rejoin.
func (c *Coordinator) Heartbeat(now Now, to ReplyTo, req *kmsg.HeartbeatRequest) Output {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeat(now, req).Code
	return replyNow(to, resp)
}

var errNone = &kerr.Error{Message: "NONE", Code: 0}

func (c *Coordinator) heartbeat(now Now, req *kmsg.HeartbeatRequest) *kerr.Error {
	g, e := c.group(req.Group, false, now)
	switch {
	case e != nil:
		return e
	case g == nil:
		return kerr.UnknownMemberID
	case g.fenced(req.InstanceID, req.MemberID):
		return kerr.FencedInstanceID
	}
	m := g.member(req.MemberID)
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	}
	m.expires = now.Mono + m.sessionTimeout
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return errNone
}

// LeaveGroup serves a LeaveGroup: v0-2 one member by id, v3+ a batch by
// member id or instance id.
func (c *Coordinator) LeaveGroup(now Now, to ReplyTo, req *kmsg.LeaveGroupRequest) Output {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	g, e := c.group(req.Group, false, now)
	if e != nil {
		resp.ErrorCode = e.Code
		return replyNow(to, resp)
	}
	if req.Version < 3 {
		resp.ErrorCode = errNone.Code
		out := Output{}
		if g == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			var code int16
			code, out = c.leave(g, now, req.MemberID, nil)
			resp.ErrorCode = code
		}
		out.Replies = append(out.Replies, Reply{To: to, Response: resp})
		return out
	}
	var out Output
	for _, lm := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.ErrorCode = kerr.UnknownMemberID.Code
		if g != nil {
			var o Output
			rm.ErrorCode, o = c.leave(g, now, lm.MemberID, lm.InstanceID)
			out = merge(out, o)
		}
		resp.Members = append(resp.Members, rm)
	}
	out.Replies = append(out.Replies, Reply{To: to, Response: resp})
	return out
}

func (c *Coordinator) leave(g *group, now Now, memberID string, instanceID *string) (int16, Output) {
	var m *member
	if instanceID != nil {
		m = g.staticMember(*instanceID)
		if m != nil && memberID != "" && m.id != memberID {
			return kerr.FencedInstanceID.Code, Output{}
		}
	} else {
		if _, ok := g.pending[memberID]; ok {
			delete(g.pending, memberID)
			return 0, c.maybeCompleteJoin(g, now)
		}
		m = g.member(memberID)
	}
	if m == nil {
		return kerr.UnknownMemberID.Code, Output{}
	}
	return 0, c.removeMember(g, now, m, kerr.UnknownMemberID, true)
}

// tickGroup does what a group's deadlines ask at now.
func (c *Coordinator) tickGroup(g *group, now Now) Output {
	var out Output
	for id, d := range g.pending {
		if d <= now.Mono {
			delete(g.pending, id)
		}
	}
	for _, m := range append([]*member(nil), g.members...) {
		if m.join == nil && m.sync == nil && m.expires <= now.Mono {
			out = merge(out, c.removeMember(g, now, m, kerr.UnknownMemberID, true))
		}
	}
	switch {
	case g.state == PreparingRebalance && now.Mono >= g.joinDeadline:
		out = merge(out, c.completeJoin(g, now))
	case g.state == PreparingRebalance:
		out = merge(out, c.maybeCompleteJoin(g, now))
	case g.state == CompletingRebalance && now.Mono >= g.syncDeadline:
		// The leader never synced: members that did not sync are out, and
		// the rest rejoin.
		for _, m := range append([]*member(nil), g.members...) {
			if m.sync == nil {
				out = merge(out, c.removeMember(g, now, m, kerr.UnknownMemberID, false))
			}
		}
		out = merge(out, c.prepareRebalance(g, now))
	}
	return out
}

// merge joins two outputs of one step; both Done functions run.
func merge(a, b Output) Output {
	a.Records = append(a.Records, b.Records...)
	a.Replies = append(a.Replies, b.Replies...)
	switch {
	case a.Done == nil:
		a.Done = b.Done
	case b.Done != nil:
		da, db := a.Done, b.Done
		a.Done = func(ok bool) { da(ok); db(ok) }
	}
	return a
}
