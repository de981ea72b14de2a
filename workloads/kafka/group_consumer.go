package kafka

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group error codes the member acts on.
const (
	codeIllegalGeneration    int16 = 22
	codeUnknownMemberID      int16 = 25
	codeRebalanceInProgress  int16 = 27
	codeMemberIDRequired     int16 = 79
	codeFencedInstanceID     int16 = 82
	codeUnstableOffsetCommit int16 = 88
)

// GroupConsumerConfig configures a group member. Zero fields take the
// defaults named on each.
type GroupConsumerConfig struct {
	// Consumer configures the fetching (Bootstrap, ClientID, fetch
	// sizes and waits). Its Process and Recorder are the member's: the
	// member records its polls itself, when it has processed them.
	Consumer ConsumerConfig
	Group    string
	Topics   []string
	// Assignor is the protocol the member offers (Assignors).
	Assignor string
	// SessionTimeout is session.timeout.ms; default 10 s.
	SessionTimeout time.Duration
	// RebalanceTimeout is max.poll.interval.ms, how long the coordinator
	// waits for members to rejoin; default 10 s.
	RebalanceTimeout time.Duration
	// HeartbeatInterval is heartbeat.interval.ms; default a third of the
	// session timeout.
	HeartbeatInterval time.Duration
	// ProcessTimeMax bounds the simulated time the application takes to
	// process a poll's records, drawn per poll from [0, ProcessTimeMax].
	ProcessTimeMax time.Duration
	// Bugs switches on planted client bugs (faults.BugCommitBeforeProcess).
	Bugs faults.Bugs
	// Handle, when set, is the application: each poll's records go to it
	// instead of a simulated processing time, and the member commits
	// their positions only once it calls done(nil). done(err) moves the
	// positions back to the poll's first records and commits nothing, so
	// the next poll reads them again (the collector's kafka source puts
	// them into its channels first).
	Handle func(records []Record, done func(error))
}

func (cfg *GroupConsumerConfig) withDefaults() (GroupConsumerConfig, error) {
	c := *cfg
	if c.Group == "" || len(c.Topics) == 0 {
		return c, errors.New("group consumer config: a group and topics are needed")
	}
	if !slices.Contains(Assignors, c.Assignor) {
		return c, fmt.Errorf("group consumer config: unknown assignor %q (known: %v)", c.Assignor, Assignors)
	}
	setDefault(&c.SessionTimeout, 10*time.Second)
	setDefault(&c.RebalanceTimeout, 10*time.Second)
	setDefault(&c.HeartbeatInterval, c.SessionTimeout/3)
	c.Topics = slices.Sorted(slices.Values(c.Topics))
	return c, nil
}

// GroupStats count what a member did.
type GroupStats struct {
	Polls, Records         int
	Commits, CommitsOK     int
	Joins, Syncs, Lost     int
	CoordinatorLookups     int
	HeartbeatsRebalancing  int
	CooperativeRevocations int
}

// GroupConsumer is a member of a consumer group (Kafka's classic
// protocol): it finds the coordinator, joins, and when it leads computes
// the assignment; it heartbeats on a timer and rejoins or looks for the
// coordinator again on the errors that ask for it. It reads its partitions
// with a Consumer, hands each poll's records to the application (a
// simulated processing time), and only then commits their offsets: at
// least once. One step of that sequence runs at a time; heartbeats run
// beside it. Its methods and callbacks run on the node's loop.
type GroupConsumer struct {
	env sim.Env
	cfg GroupConsumerConfig
	co  *Consumer
	// historyValue is how the member's recorder keeps values
	// (historyValueFor), bound once: the inner consumer records nothing.
	historyValue historyValue

	coord     *brokerConn
	coordConf connConfig

	memberID   string
	generation int32
	protocol   string
	// owned is the assignment this member holds, sorted.
	owned []TopicPartition
	// committed is the offset this member last committed or fetched per
	// owned partition, so that unchanged offsets are not committed again.
	committed map[TopicPartition]int64
	// needOffsets are owned partitions whose committed offsets are not yet
	// fetched: nothing is polled until they are.
	needOffsets []TopicPartition
	// rejoin: the group rebalances, or this member lost its place.
	rejoin bool
	// synced: a member of the current generation, heartbeating.
	synced bool
	// lost: the generation is gone; the next step drops the assignment.
	lost bool

	busy      bool
	failures  int
	retryAt   time.Duration
	wake      deadline
	heartbeat sim.Timer
	beating   bool
	closing   func()
	closed    bool
	stats     GroupStats
}

// NewGroupConsumer starts a member on env; it joins at once.
func NewGroupConsumer(env sim.Env, cfg GroupConsumerConfig) (*GroupConsumer, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	inner := c.Consumer
	inner.Recorder = nil
	// A member fetches a committed position only from a leader at least
	// as new as the commit's epoch (KIP-320): a deposed leader fenced off
	// from the cluster may end before it, and its OFFSET_OUT_OF_RANGE
	// would reset the group's offset backwards.
	inner.SendLeaderEpoch = true
	co, err := NewConsumer(env, inner)
	if err != nil {
		return nil, fmt.Errorf("group consumer: %w", err)
	}
	g := &GroupConsumer{env: env, cfg: c, co: co, generation: -1, committed: map[TopicPartition]int64{},
		historyValue: historyValueFor(c.Consumer.Recorder)}
	g.coordConf = connConfig{clientID: co.cfg.ClientID, requestTimeout: co.cfg.RequestTimeout, inFlightMax: 4}
	g.wake.fire = g.step
	for _, t := range c.Topics {
		co.cl.want(t)
	}
	env.Clock.AfterFunc(0, g.step)
	return g, nil
}

// StartGroupConsumer returns a start function that runs a member and
// hands it to started. A configuration error is logged and nothing runs.
func StartGroupConsumer(cfg GroupConsumerConfig, started func(*GroupConsumer)) sim.Start {
	return func(env sim.Env) {
		g, err := NewGroupConsumer(env, cfg)
		if err != nil {
			env.Log.Logf("kafka group consumer: %v", err)
			return
		}
		if started != nil {
			started(g)
		}
	}
}

// Assignment is what the member owns, sorted.
func (g *GroupConsumer) Assignment() []TopicPartition { return slices.Clone(g.owned) }

// Generation is the member's generation, -1 outside one.
func (g *GroupConsumer) Generation() int32 { return g.generation }

// Stats returns the member's counters.
func (g *GroupConsumer) Stats() GroupStats { return g.stats }

// Closed reports whether the member has left.
func (g *GroupConsumer) Closed() bool { return g.closed }

// Close commits what was processed, leaves the group (LeaveGroup) and
// stops; done runs once it has. A poll in progress is processed first.
func (g *GroupConsumer) Close(done func()) {
	if g.closed || g.closing != nil {
		return
	}
	if done == nil {
		done = func() {}
	}
	g.closing = done
	g.wake.stop()
	g.env.Clock.AfterFunc(0, g.step)
}

// step starts the next step of the member's sequence, if none runs.
func (g *GroupConsumer) step() {
	if g.closed || g.busy {
		return
	}
	now := g.env.Clock.Mono()
	if now < g.retryAt && g.closing == nil {
		g.wake.arm(g.env.Clock, now, g.retryAt)
		return
	}
	if g.lost {
		g.dropLost()
	}
	switch {
	case g.closing != nil:
		g.leave()
	case !g.topicsKnown():
		g.co.cl.refresh()
		g.backoff(fmt.Errorf("no metadata yet for %v", g.cfg.Topics))
		g.step()
	case g.coord == nil:
		g.findCoordinator()
	case g.rejoin || g.generation < 0:
		if !assignorCooperative(g.cfg.Assignor) && len(g.owned) > 0 {
			g.revokeAll()
			return
		}
		g.join()
	case len(g.needOffsets) > 0:
		g.fetchOffsets()
	default:
		g.poll()
	}
}

// topicsKnown: metadata gave every subscribed topic's partitions, which a
// leader needs to assign.
func (g *GroupConsumer) topicsKnown() bool {
	for _, t := range g.cfg.Topics {
		if g.co.cl.partitions(t) == 0 {
			return false
		}
	}
	return true
}

// backoff delays the next step after a failure.
func (g *GroupConsumer) backoff(cause error) {
	g.failures++
	g.retryAt = g.env.Clock.Mono() + jitteredBackoff(g.env, g.co.cfg.RetryBackoff, g.co.cfg.RetryBackoffMax, g.failures)
	g.env.Log.Logf("kafka group consumer %s: %v", g.co.cfg.ClientID, cause)
}

// done ends a step: the next one starts from a later callback.
func (g *GroupConsumer) done() {
	g.busy = false
	g.env.Clock.AfterFunc(0, g.step)
}

func (g *GroupConsumer) record(op history.Op) {
	if g.cfg.Consumer.Recorder == nil {
		return
	}
	op.Process, op.Node, op.Group = g.cfg.Consumer.Process, g.env.Node, g.cfg.Group
	g.cfg.Consumer.Recorder.Add(op)
}

// historyRecords is a poll's records as the history keeps them.
func (g *GroupConsumer) historyRecords(records []Record) []history.Record {
	recs := make([]history.Record, len(records))
	for i := range records {
		recs[i] = records[i].historyRecord(g.historyValue)
	}
	return recs
}

// recordAssign records the member's ownership in its generation.
func (g *GroupConsumer) recordAssign() {
	tps := slices.Clone(g.owned)
	g.record(history.Op{Type: history.Invoke, F: history.Assign, Assign: tps, Generation: g.generation})
	g.record(history.Op{Type: history.OK, F: history.Assign, Assign: tps, Generation: g.generation})
}

// coordCall sends req to the coordinator; done gets the answer or error.
func (g *GroupConsumer) coordCall(req kmsg.Request, extraTimeout time.Duration, done func(kmsg.Response, error)) {
	if g.coord == nil || g.coord.state == connDead {
		g.env.Clock.AfterFunc(0, func() { done(nil, fmt.Errorf("no coordinator: %w", errNotSent)) })
		return
	}
	g.coord.enqueue(&call{req: req, extraTimeout: extraTimeout, done: done})
}

// forgetCoordinator drops the coordinator connection; the next step looks
// for it again (NOT_COORDINATOR, a lost connection).
func (g *GroupConsumer) forgetCoordinator(cause error) {
	if g.coord != nil {
		g.coord.close(fmt.Errorf("coordinator forgotten: %w", cause))
		g.coord = nil
	}
}

func (g *GroupConsumer) onCoordDead(bc *brokerConn, _ error) {
	if g.coord == bc {
		g.coord = nil
	}
}

// codeErr turns a group answer's code into an error, handling the codes
// that move the member: they rejoin, forget the coordinator or lose the
// assignment.
func (g *GroupConsumer) codeErr(code int16) error {
	if code == codeNone {
		return nil
	}
	err := &CodeError{Code: code}
	switch code {
	case codeRebalanceInProgress:
		g.rejoin = true
	case codeIllegalGeneration, codeFencedInstanceID:
		g.lose()
	case codeUnknownMemberID:
		g.memberID = ""
		g.lose()
	case codeNotCoordinator, codeCoordinatorNotAvailable:
		g.forgetCoordinator(err)
	}
	return err
}

// lose marks the assignment lost, as Kafka's consumer does when its
// generation is gone: another member may own it already, so it is dropped
// without a commit. The drop waits for the step in progress (a poll may
// be running on the inner consumer); the generation ends at once, so
// nothing more is committed in it.
func (g *GroupConsumer) lose() {
	g.stats.Lost++
	g.lost = true
	g.generation, g.synced, g.rejoin = -1, false, true
}

// dropLost gives up a lost assignment between steps.
func (g *GroupConsumer) dropLost() {
	g.lost = false
	if len(g.owned) > 0 {
		g.owned = nil
		g.needOffsets = nil
		g.committed = map[TopicPartition]int64{}
		g.assignInner()
		g.recordAssign()
	}
}

// assignInner gives the inner consumer the owned partitions; positions of
// kept partitions are kept.
func (g *GroupConsumer) assignInner() {
	err := g.co.Assign(g.owned)
	sim.Assert(err == nil, "group consumer assign between polls: %v", err)
	g.co.assignDirty = false
}

func (g *GroupConsumer) findCoordinator() {
	g.busy = true
	g.stats.CoordinatorLookups++
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = g.cfg.Group
	req.CoordinatorType = 0 // group
	g.co.cl.call(g.co.cl.metadataNode(), req, 0, false, func(resp kmsg.Response, err error) {
		if g.closed {
			return
		}
		if err == nil {
			fc := resp.(*kmsg.FindCoordinatorResponse)
			if fc.ErrorCode == codeNone {
				g.coord = dialBroker(g.env, &g.coordConf, fc.NodeID, brokerAddr(fc.Host, fc.Port), g.onCoordDead)
				g.failures = 0
				g.done()
				return
			}
			err = &CodeError{Code: fc.ErrorCode}
		}
		g.co.cl.refresh()
		g.backoff(fmt.Errorf("find coordinator: %w", err))
		g.done()
	})
}

// revokeAll gives up every partition before an eager rejoin: commit what
// was processed, then own nothing.
func (g *GroupConsumer) revokeAll() {
	g.busy = true
	g.commit(g.owned, func() {
		g.owned, g.needOffsets = nil, nil
		g.committed = map[TopicPartition]int64{}
		g.assignInner()
		g.recordAssign()
		g.done()
	})
}

func (g *GroupConsumer) join() {
	g.busy = true
	g.rejoin, g.synced = false, false
	g.stopHeartbeat()
	g.stats.Joins++
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 1
	meta.Topics = g.cfg.Topics
	meta.OwnedPartitions = ownedPartitions(g.owned)
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = g.cfg.Assignor
	proto.Metadata = meta.AppendTo(nil)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = g.cfg.Group
	req.SessionTimeoutMillis = int32(g.cfg.SessionTimeout / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(g.cfg.RebalanceTimeout / time.Millisecond)
	req.MemberID = g.memberID
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
	g.coordCall(req, g.cfg.RebalanceTimeout, func(resp kmsg.Response, err error) {
		if g.closed {
			return
		}
		g.rejoin = true // until a sync completes
		if err != nil {
			g.forgetCoordinator(err)
			g.backoff(fmt.Errorf("join: %w", err))
			g.done()
			return
		}
		jr := resp.(*kmsg.JoinGroupResponse)
		switch jr.ErrorCode {
		case codeNone:
			g.generation, g.memberID = jr.Generation, jr.MemberID
			g.protocol = g.cfg.Assignor
			if jr.Protocol != nil {
				g.protocol = *jr.Protocol
			}
			g.sync(jr)
			return
		case codeMemberIDRequired:
			// KIP-394: the coordinator names our id; join again with it.
			g.memberID = jr.MemberID
		default:
			g.backoff(fmt.Errorf("join: %w", g.codeErr(jr.ErrorCode)))
		}
		g.done()
	})
}

func ownedPartitions(tps []TopicPartition) []kmsg.ConsumerMemberMetadataOwnedPartition {
	var out []kmsg.ConsumerMemberMetadataOwnedPartition
	for _, tp := range tps {
		if n := len(out); n == 0 || out[n-1].Topic != tp.Topic {
			out = append(out, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: tp.Topic})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, tp.Partition)
	}
	return out
}

// sync sends SyncGroup; the leader carries the assignment it computed.
func (g *GroupConsumer) sync(jr *kmsg.JoinGroupResponse) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = g.cfg.Group, g.generation, g.memberID
	req.ProtocolType = kmsg.StringPtr("consumer")
	req.Protocol = kmsg.StringPtr(g.protocol)
	if jr.LeaderID == g.memberID {
		plan, err := g.plan(jr.Members)
		if err != nil {
			g.env.Log.Logf("kafka group consumer %s: assign: %v", g.co.cfg.ClientID, err)
		}
		req.GroupAssignment = plan
	}
	g.coordCall(req, 0, func(resp kmsg.Response, err error) {
		if g.closed {
			return
		}
		if err != nil {
			g.forgetCoordinator(err)
			g.backoff(fmt.Errorf("sync: %w", err))
			g.done()
			return
		}
		sr := resp.(*kmsg.SyncGroupResponse)
		if sr.ErrorCode != codeNone {
			g.backoff(fmt.Errorf("sync: %w", g.codeErr(sr.ErrorCode)))
			g.done()
			return
		}
		var a kmsg.ConsumerMemberAssignment
		var tps []TopicPartition
		if len(sr.MemberAssignment) > 0 {
			if err := a.ReadFrom(sr.MemberAssignment); err != nil {
				g.backoff(fmt.Errorf("sync: assignment: %w", err))
				g.done()
				return
			}
		}
		for _, t := range a.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		g.onAssigned(tps)
	})
}

// plan runs the assignor over the members' subscriptions.
func (g *GroupConsumer) plan(members []kmsg.JoinGroupResponseMember) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	subs := make([]memberSubscription, 0, len(members))
	counts := map[string]int32{}
	for _, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			return nil, fmt.Errorf("member %s metadata: %w", m.MemberID, err)
		}
		s := memberSubscription{id: m.MemberID, topics: meta.Topics}
		for _, op := range meta.OwnedPartitions {
			for _, p := range op.Partitions {
				s.owned = append(s.owned, TopicPartition{Topic: op.Topic, Partition: p})
			}
		}
		for _, t := range meta.Topics {
			g.co.cl.want(t)
			counts[t] = int32(g.co.cl.partitions(t))
		}
		subs = append(subs, s)
	}
	plan, err := assign(g.protocol, subs, counts)
	if err != nil {
		return nil, err
	}
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(subs))
	for _, s := range subs {
		a := kmsg.NewConsumerMemberAssignment()
		for _, tp := range plan[s.id] {
			if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != tp.Topic {
				a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: tp.Topic})
			}
			a.Topics[len(a.Topics)-1].Partitions = append(a.Topics[len(a.Topics)-1].Partitions, tp.Partition)
		}
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: s.id, MemberAssignment: a.AppendTo(nil)})
	}
	return out, nil
}

// onAssigned takes a generation's assignment. Eagerly the member owns
// nothing by now; cooperatively it first commits and gives up what was
// taken from it, and rejoins so that the next generation hands it on.
func (g *GroupConsumer) onAssigned(assigned []TopicPartition) {
	slices.SortFunc(assigned, compareTP)
	assigned = slices.Compact(assigned)
	g.stats.Syncs++
	g.failures = 0
	var revoked, added []TopicPartition
	for _, tp := range g.owned {
		if !slices.Contains(assigned, tp) {
			revoked = append(revoked, tp)
		}
	}
	for _, tp := range assigned {
		if !slices.Contains(g.owned, tp) {
			added = append(added, tp)
		}
	}
	g.commit(revoked, func() {
		if g.generation < 0 {
			g.done() // the commit found the generation gone
			return
		}
		for _, tp := range revoked {
			delete(g.committed, tp)
		}
		if len(revoked) > 0 {
			g.stats.CooperativeRevocations++
			g.rejoin = true
		} else {
			g.rejoin = false
		}
		g.owned = assigned
		g.needOffsets = append(g.needOffsets[:0], added...)
		g.assignInner()
		g.recordAssign()
		g.synced = true
		g.armHeartbeat()
		g.done()
	})
}

// fetchOffsets reads the group's committed offsets of newly owned
// partitions and moves the positions there; partitions without one start
// per the reset policy.
func (g *GroupConsumer) fetchOffsets() {
	g.busy = true
	want := slices.Clone(g.needOffsets)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = g.cfg.Group
	for _, tp := range want {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.Topic {
			req.Topics = append(req.Topics, kmsg.OffsetFetchRequestTopic{Topic: tp.Topic})
		}
		req.Topics[len(req.Topics)-1].Partitions = append(req.Topics[len(req.Topics)-1].Partitions, tp.Partition)
	}
	gen := g.generation
	g.coordCall(req, 0, func(resp kmsg.Response, err error) {
		if g.closed {
			return
		}
		if err != nil {
			g.forgetCoordinator(err)
			g.backoff(fmt.Errorf("offset fetch: %w", err))
			g.done()
			return
		}
		if gen != g.generation {
			g.done()
			return
		}
		if err := g.applyOffsets(resp.(*kmsg.OffsetFetchResponse), want); err != nil {
			g.backoff(fmt.Errorf("offset fetch: %w", err))
		}
		g.done()
	})
}

func (g *GroupConsumer) applyOffsets(fr *kmsg.OffsetFetchResponse, want []TopicPartition) error {
	if fr.ErrorCode != codeNone {
		return g.codeErr(fr.ErrorCode)
	}
	got := map[TopicPartition]kmsg.OffsetFetchResponseTopicPartition{}
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != codeNone {
				return g.codeErr(p.ErrorCode)
			}
			got[TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p
		}
	}
	for _, tp := range want {
		if p, ok := got[tp]; ok && p.Offset >= 0 && slices.Contains(g.owned, tp) {
			off := p.Offset
			err := g.co.SeekEpoch(tp, off, p.LeaderEpoch)
			sim.Assert(err == nil, "group consumer seek between polls: %v", err)
			g.committed[tp] = off
		}
	}
	g.co.assignDirty = false // the positions are part of the assignment recorded
	g.needOffsets = nil
	g.failures = 0
	return nil
}

// poll reads, processes, then commits: at least once. With the planted
// bug commit-before-process it commits before processing.
func (g *GroupConsumer) poll() {
	g.busy = true
	if g.co.assignDirty {
		// The consumer moved a position itself (OFFSET_OUT_OF_RANGE).
		g.co.assignDirty = false
		g.recordAssign()
	}
	g.stats.Polls++
	g.record(history.Op{Type: history.Invoke, F: history.Poll})
	gen := g.generation
	err := g.co.Poll(func(res PollResult) {
		if g.closed {
			return
		}
		if g.cfg.Handle != nil {
			g.handOn(res, gen)
			return
		}
		processed := func(then func()) {
			g.env.Clock.AfterFunc(g.processTime(), func() {
				g.stats.Records += len(res.Records)
				g.record(history.Op{Type: history.OK, F: history.Poll, Records: g.historyRecords(res.Records), Generation: gen})
				then()
			})
		}
		if g.cfg.Bugs.On(faults.BugCommitBeforeProcess) {
			g.commit(g.owned, func() { processed(g.done) })
			return
		}
		processed(func() { g.commit(g.owned, g.done) })
	})
	sim.Assert(err == nil, "group consumer poll: %v", err)
}

// handOn gives a poll's records to the application and commits their
// positions once it has them; on its failure the positions go back to the
// poll's first records, uncommitted.
func (g *GroupConsumer) handOn(res PollResult, gen int32) {
	g.cfg.Handle(res.Records, func(err error) {
		if g.closed {
			return
		}
		if err != nil {
			g.rewind(res.Records)
			g.record(history.Op{Type: history.Fail, F: history.Poll, Error: err.Error(), Generation: gen})
			g.backoff(fmt.Errorf("handle %d records: %w", len(res.Records), err))
			g.done()
			return
		}
		g.stats.Records += len(res.Records)
		g.record(history.Op{Type: history.OK, F: history.Poll, Records: g.historyRecords(res.Records), Generation: gen})
		g.commit(g.owned, g.done)
	})
}

// rewind moves each owned partition's position back to its first record
// in records.
func (g *GroupConsumer) rewind(records []Record) {
	first := map[TopicPartition]int64{}
	for _, r := range records {
		tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if off, ok := first[tp]; !ok || r.Offset < off {
			first[tp] = r.Offset
		}
	}
	for _, tp := range g.owned {
		if off, ok := first[tp]; ok {
			// What the application committed as it went is not read again.
			if c, ok := g.committed[tp]; ok && c > off {
				off = c
			}
			err := g.co.Seek(tp, off)
			sim.Assert(err == nil, "group consumer rewind between polls: %v", err)
		}
	}
	g.co.assignDirty = false // a rewind is the member's own move, not a reset
}

func (g *GroupConsumer) processTime() time.Duration {
	if g.cfg.ProcessTimeMax <= 0 {
		return 0
	}
	return time.Duration(g.env.Rand.Int64N(int64(g.cfg.ProcessTimeMax) + 1))
}

// commit commits the positions of tps that moved since the last commit,
// in the member's generation, then calls then. Outside a generation, or
// with nothing new, there is nothing to commit.
func (g *GroupConsumer) commit(tps []TopicPartition, then func()) {
	var offsets []history.Offset
	var epochs []int32
	for _, tp := range tps {
		pos, ok := g.co.Position(tp)
		if ok && !slices.Contains(g.needOffsets, tp) && pos != g.committed[tp] {
			offsets = append(offsets, history.Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: pos})
			epochs = append(epochs, g.co.PositionEpoch(tp))
		}
	}
	if len(offsets) == 0 || g.generation < 0 || g.coord == nil {
		then()
		return
	}
	g.sendCommit(offsets, epochs, func(error) { then() })
}

// CommitOffsets commits offsets (each partition's next offset to read) in
// the member's generation, for an application that commits as it goes
// rather than per poll (the collector's kafka channel, at each take
// commit); done(nil) once the coordinator took them. It may run while a
// poll is handed on; outside a generation it fails.
func (g *GroupConsumer) CommitOffsets(offsets []history.Offset, done func(error)) {
	switch {
	case g.closed:
		g.env.Clock.AfterFunc(0, func() { done(ErrClosed) })
	case g.generation < 0 || g.coord == nil || g.lost:
		g.env.Clock.AfterFunc(0, func() { done(fmt.Errorf("commit offsets of group %s: %w", g.cfg.Group, errNoGeneration)) })
	case len(offsets) == 0:
		g.env.Clock.AfterFunc(0, func() { done(nil) })
	default:
		g.sendCommit(offsets, g.positionEpochs(offsets), done)
	}
}

// errNoGeneration is a commit asked for while the member is in no
// generation (joining, or its generation lost).
var errNoGeneration = errors.New("not a member of the current generation")

// positionEpochs are the leader epochs of offsets the application commits:
// the epoch of the consumer's position where it is the offset, else -1
// (unknown, as Kafka commits an offset given without one).
func (g *GroupConsumer) positionEpochs(offsets []history.Offset) []int32 {
	epochs := make([]int32, len(offsets))
	for i, o := range offsets {
		epochs[i] = -1
		if pos, ok := g.co.Position(o.TP()); ok && pos == o.Offset {
			epochs[i] = g.co.PositionEpoch(o.TP())
		}
	}
	return epochs
}

// sendCommit sends OffsetCommit for offsets in the member's generation,
// each with the leader epoch of the record before it (epochs, one per
// offset), and records it; done gets nil when it took effect.
func (g *GroupConsumer) sendCommit(offsets []history.Offset, epochs []int32, done func(error)) {
	sim.Assert(len(epochs) == len(offsets), "commit of %d offsets with %d epochs", len(offsets), len(epochs))
	g.stats.Commits++
	gen := g.generation
	g.record(history.Op{Type: history.Invoke, F: history.Commit, Offsets: offsets, Generation: gen})
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = g.cfg.Group, gen, g.memberID
	req.RetentionTimeMillis = -1
	for i, o := range offsets {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != o.Topic {
			req.Topics = append(req.Topics, kmsg.OffsetCommitRequestTopic{Topic: o.Topic})
		}
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = o.Partition, o.Offset, epochs[i]
		req.Topics[len(req.Topics)-1].Partitions = append(req.Topics[len(req.Topics)-1].Partitions, p)
	}
	g.coordCall(req, 0, func(resp kmsg.Response, err error) {
		if g.closed {
			return
		}
		end := history.Op{Type: history.OK, F: history.Commit, Offsets: offsets, Generation: gen}
		switch {
		case err != nil && errors.Is(err, errNotSent):
			end.Type, end.Error = history.Fail, err.Error()
		case err != nil:
			end.Type, end.Error = history.Info, err.Error()
			g.forgetCoordinator(err)
		default:
			if code := commitCode(resp.(*kmsg.OffsetCommitResponse)); code != codeNone {
				end.Type, end.Error = history.Fail, errorName(code)
				if code == codeRequestTimedOut {
					end.Type = history.Info
				}
				err = g.codeErr(code)
			}
		}
		g.record(end)
		if end.Type == history.OK {
			g.stats.CommitsOK++
			for _, o := range offsets {
				g.committed[o.TP()] = o.Offset
			}
			done(nil)
			return
		}
		if err == nil {
			err = errors.New(end.Error)
		}
		done(fmt.Errorf("commit offsets of group %s: %w", g.cfg.Group, err))
	})
}

// commitCode is the first partition error of a commit answer.
func commitCode(resp *kmsg.OffsetCommitResponse) int16 {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != codeNone {
				return p.ErrorCode
			}
		}
	}
	return codeNone
}

func (g *GroupConsumer) armHeartbeat() {
	g.stopHeartbeat()
	g.heartbeat = g.env.Clock.AfterFunc(g.cfg.HeartbeatInterval, g.sendHeartbeat)
}

func (g *GroupConsumer) stopHeartbeat() {
	if g.heartbeat != nil {
		g.heartbeat.Stop()
		g.heartbeat = nil
	}
}

func (g *GroupConsumer) sendHeartbeat() {
	g.heartbeat = nil
	if g.closed || !g.synced || g.beating {
		return
	}
	g.armHeartbeat()
	if g.coord == nil {
		return
	}
	g.beating = true
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = g.cfg.Group, g.generation, g.memberID
	gen := g.generation
	g.coordCall(req, 0, func(resp kmsg.Response, err error) {
		g.beating = false
		if g.closed || gen != g.generation || !g.synced {
			return
		}
		if err != nil {
			g.forgetCoordinator(err)
			return
		}
		if code := resp.(*kmsg.HeartbeatResponse).ErrorCode; code != codeNone {
			if code == codeRebalanceInProgress {
				g.stats.HeartbeatsRebalancing++
			}
			g.codeErr(code)
			if !g.busy {
				g.step()
			}
		}
	})
}

// leave commits what was processed, gives up the assignment and leaves
// the group, whatever the coordinator answers, then stops.
func (g *GroupConsumer) leave() {
	g.busy = true
	g.commit(g.owned, func() {
		if len(g.owned) > 0 {
			g.owned = nil
			g.recordAssign()
		}
		finish := func() {
			g.closed = true
			g.stopHeartbeat()
			g.wake.stop()
			g.co.Close()
			g.forgetCoordinator(ErrClosed)
			g.closing()
		}
		if g.memberID == "" || g.coord == nil {
			finish()
			return
		}
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = g.cfg.Group, g.memberID
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = g.memberID
		req.Members = []kmsg.LeaveGroupRequestMember{m}
		g.coordCall(req, 0, func(kmsg.Response, error) { finish() })
	})
}
