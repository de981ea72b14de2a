package controller

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
)

// api serves brokers: it checks a request, proposes the record it calls
// for, and answers once the record is applied (or at once, for heartbeats
// and metadata fetches). It also keeps what only the active controller
// knows and the log does not: when each broker last heartbeat. Sessions
// are memory only, as in Kafka: a new active controller gives every broker
// a full session before fencing it.
type api struct {
	c        *Controller
	listener sim.Listener
	// conns are the accepted connections, by accept order, so that a
	// stopping controller closes them (and peers redial its successor).
	conns   map[sim.Conn]uint64
	connSeq uint64
	// reqPrefix makes this incarnation's proposal ids unique, so that a
	// record proposed by an earlier life is never answered to a new
	// request.
	reqPrefix string
	reqSeq    uint64
	pending   map[string]pendingRequest
	// lastHeartbeat is when each broker last heartbeat (active only).
	lastHeartbeat map[int32]time.Duration
	// proposedFence and proposedUnfence remember the fences and unfences
	// proposed and not yet applied, so a slow commit is not proposed again
	// (until a session timeout later, in case it was lost).
	proposedFence   map[int32]proposal
	proposedUnfence map[int32]proposal
	lastPreferred   time.Duration
	// wasActive is whether the controller served at the last tick.
	wasActive bool
}

type pendingRequest struct {
	conn sim.Conn
	req  Request
	at   time.Duration
}

// proposal is a fence or unfence proposed for a broker epoch at a time.
type proposal struct {
	epoch int64
	at    time.Duration
}

// pendingTimeout answers a request whose record was not applied in time
// (a leader cut off from its quorum never commits it).
const pendingTimeout = 5 * time.Second

func newAPI(c *Controller) *api {
	return &api{c: c, conns: map[sim.Conn]uint64{},
		reqPrefix: fmt.Sprintf("%d.%x", c.cfg.ID, c.env.Rand.Uint64()),
		pending:   map[string]pendingRequest{}, lastHeartbeat: map[int32]time.Duration{},
		proposedFence: map[int32]proposal{}, proposedUnfence: map[int32]proposal{}}
}

func (a *api) listen() error {
	l, err := a.c.env.Net.Listen(a.c.cfg.Listen, sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return (*apiConn)(a) })
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.c.cfg.Listen, err)
	}
	a.listener = l
	return nil
}

func (a *api) close() {
	if a.listener != nil {
		a.listener.Close()
	}
	conns := make([]sim.Conn, 0, len(a.conns))
	for conn := range a.conns {
		conns = append(conns, conn)
	}
	slices.SortFunc(conns, func(x, y sim.Conn) int { return cmp.Compare(a.conns[x], a.conns[y]) })
	for _, conn := range conns {
		conn.Close()
	}
	a.conns = map[sim.Conn]uint64{}
	a.pending = map[string]pendingRequest{}
}

// apiConn is the api seen as the handler of accepted connections.
type apiConn api

func (h *apiConn) OnOpen(c sim.Conn) {
	a := (*api)(h)
	a.connSeq++
	a.conns[c] = a.connSeq
}

func (h *apiConn) OnClose(c sim.Conn, err error) { delete((*api)(h).conns, c) }

func (h *apiConn) OnFrame(conn sim.Conn, frame []byte) {
	a := (*api)(h)
	if len(frame) == 0 {
		conn.Close()
		return
	}
	switch frame[0] {
	case frameRaftMessage:
		var m pb.Message
		if err := m.Unmarshal(frame[1:]); err != nil {
			a.c.env.Log.Logf("controller %d: closing %s: raft message: %v", a.c.cfg.ID, conn.RemoteAddr(), err)
			conn.Close()
			return
		}
		a.c.step(m)
	case frameRequest:
		req, err := decodeRequest(frame[1:])
		if err != nil {
			a.c.env.Log.Logf("controller %d: closing %s: %v", a.c.cfg.ID, conn.RemoteAddr(), err)
			conn.Close()
			return
		}
		a.serve(conn, req)
	default:
		a.c.env.Log.Logf("controller %d: closing %s: frame kind %d", a.c.cfg.ID, conn.RemoteAddr(), frame[0])
		conn.Close()
	}
}

func (a *api) respond(conn sim.Conn, resp Response) {
	conn.Send(encodeMessage(frameResponse, resp))
}

// serve answers a request or proposes what it asks for.
func (a *api) serve(conn sim.Conn, req Request) {
	if !a.c.Active() {
		a.respond(conn, Response{ID: req.ID, Code: metadata.CodeNotController, LeaderHint: a.leaderHint()})
		return
	}
	switch req.Op {
	case OpFetchMetadata:
		a.respond(conn, a.fetch(req))
	case OpHeartbeat:
		a.respond(conn, a.heartbeat(req))
	case OpRegister:
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindRegisterBroker, BrokerID: req.BrokerID,
			Addr: req.Addr, Incarnation: req.Incarnation})
	case OpControlledShutdown:
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindControlledShutdown, BrokerID: req.BrokerID,
			BrokerEpoch: req.BrokerEpoch})
	case OpAlterPartition:
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindAlterPartition, BrokerID: req.BrokerID,
			BrokerEpoch: req.BrokerEpoch, TopicID: req.TopicID, Partition: req.Partition,
			LeaderEpoch: req.LeaderEpoch, PartitionEpoch: req.PartitionEpoch, ISR: req.ISR})
	case OpCreateTopic:
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindCreateTopic, Topic: req.Topic,
			TopicID: a.newTopicID(), Partitions: req.Partitions, ReplicationFactor: req.ReplicationFactor,
			Unclean: req.Unclean, Configs: req.Configs})
	case OpDeleteTopic:
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindDeleteTopic, Topic: req.Topic, TopicID: req.TopicID})
	case OpAlterTopicConfigs:
		if code := a.checkTopicChange(req); code != metadata.CodeNone {
			a.respond(conn, Response{ID: req.ID, Code: code})
			return
		}
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindAlterTopicConfigs, Topic: req.Topic,
			TopicID: req.TopicID, Configs: req.Configs, Unclean: req.Unclean})
	case OpCreatePartitions:
		if code := a.checkTopicChange(req); code != metadata.CodeNone {
			a.respond(conn, Response{ID: req.ID, Code: code})
			return
		}
		a.proposeFor(conn, req, metadata.Record{Kind: metadata.KindCreatePartitions, Topic: req.Topic,
			TopicID: req.TopicID, Partitions: req.Partitions})
	default:
		a.respond(conn, Response{ID: req.ID, Code: metadata.CodeInvalidRequest})
	}
}

// topicConfigsMax bounds the configs one request may set on a topic.
const topicConfigsMax = 1_000

// checkTopicChange refuses, before proposing, a config change or partition
// increase the state would refuse: a record for it would only fill the log.
// The state machine checks again when it applies the record, since the
// topic may change between the two.
func (a *api) checkTopicChange(req Request) metadata.Code {
	t := a.c.state.Topics[req.Topic]
	if req.TopicID != "" {
		t = a.c.state.TopicByID(req.TopicID)
	}
	switch {
	case t == nil:
		return metadata.CodeUnknownTopicOrPartition
	case req.Op == OpAlterTopicConfigs && len(req.Configs) > topicConfigsMax:
		return metadata.CodeInvalidRequest
	case req.Op == OpCreatePartitions && int(req.Partitions) <= len(t.Partitions):
		return metadata.CodeInvalidPartitions
	}
	return metadata.CodeNone
}

// leaderHint is the leader's address, if another controller leads.
func (a *api) leaderHint() string {
	lead := a.c.rn.BasicStatus().Lead
	if lead == a.c.cfg.ID {
		return ""
	}
	for _, v := range a.c.cfg.Voters {
		if v.ID == lead {
			return v.Addr
		}
	}
	return ""
}

// newTopicID draws a topic id from the node's seeded stream.
func (a *api) newTopicID() string {
	var id [16]byte
	for i := range 2 {
		v := a.c.env.Rand.Uint64()
		for j := range 8 {
			id[i*8+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(id[:])
}

// proposeFor proposes a record and answers the request once it is applied.
func (a *api) proposeFor(conn sim.Conn, req Request, r metadata.Record) {
	if len(a.pending) >= pendingRequestsMax {
		a.respond(conn, Response{ID: req.ID, Code: metadata.CodeRequestTimedOut})
		return
	}
	a.reqSeq++
	r.Req = fmt.Sprintf("%s.%d", a.reqPrefix, a.reqSeq)
	if err := a.c.propose(r); err != nil {
		a.respond(conn, Response{ID: req.ID, Code: metadata.CodeNotController, LeaderHint: a.leaderHint()})
		return
	}
	a.pending[r.Req] = pendingRequest{conn: conn, req: req, at: a.c.env.Clock.Mono()}
}

// applied answers the request that proposed a record, if it came here.
func (a *api) applied(r metadata.Record, result metadata.Result) {
	switch r.Kind {
	case metadata.KindFenceBroker:
		delete(a.proposedFence, r.BrokerID)
	case metadata.KindUnfenceBroker:
		delete(a.proposedUnfence, r.BrokerID)
	case metadata.KindRegisterBroker:
		// A new registration starts a new session.
		a.lastHeartbeat[r.BrokerID] = a.c.env.Clock.Mono()
	}
	p, ok := a.pending[r.Req]
	if !ok || r.Req == "" {
		return
	}
	delete(a.pending, r.Req)
	resp := Response{ID: p.req.ID, Code: result.Code, BrokerEpoch: result.BrokerEpoch,
		TopicID: result.TopicID, Partition: result.Partition, Offset: a.c.state.Offset}
	a.respond(p.conn, resp)
}

// heartbeat renews a broker's session and asks for it to be unfenced once
// its image has caught up to its registration.
func (a *api) heartbeat(req Request) Response {
	b := a.c.state.Brokers[req.BrokerID]
	switch {
	case b == nil:
		return Response{ID: req.ID, Code: metadata.CodeBrokerIDNotRegistered}
	case b.Epoch != req.BrokerEpoch:
		return Response{ID: req.ID, Code: metadata.CodeStaleBrokerEpoch}
	}
	a.lastHeartbeat[b.ID] = a.c.env.Clock.Mono()
	if b.Fenced && !b.ShuttingDown && req.MetadataOffset >= b.Epoch && !a.alreadyProposed(a.proposedUnfence, b) {
		if a.c.propose(metadata.Record{Kind: metadata.KindUnfenceBroker, BrokerID: b.ID, BrokerEpoch: b.Epoch}) == nil {
			a.proposedUnfence[b.ID] = proposal{epoch: b.Epoch, at: a.c.env.Clock.Mono()}
		}
	}
	return Response{ID: req.ID, BrokerEpoch: b.Epoch, Fenced: b.Fenced}
}

// fetch serves the committed metadata log from an offset: records from the
// log, preceded by the snapshot when the log no longer reaches back there.
func (a *api) fetch(req Request) Response {
	from := max(req.FromOffset, 1)
	applied := a.c.applied
	d := &metadata.Delta{From: from, Through: int64(applied)}
	first, _ := a.c.store.FirstIndex()
	if uint64(from) < first {
		snap, _ := a.c.store.Snapshot()
		d.Snapshot, d.SnapshotOffset = snap.Data, int64(snap.Metadata.Index)
		from = int64(snap.Metadata.Index) + 1
		d.From = from
	}
	if uint64(from) <= applied {
		entries, err := a.c.store.Entries(uint64(from), applied+1, fetchResponseBytesMax)
		if err != nil {
			return Response{ID: req.ID, Code: metadata.CodeRequestTimedOut}
		}
		for _, e := range entries {
			if e.Type == pb.EntryNormal && len(e.Data) > 0 {
				d.Records = append(d.Records, metadata.OffsetEntry{Offset: int64(e.Index), Data: e.Data})
			}
		}
		if len(entries) > 0 {
			d.Through = int64(entries[len(entries)-1].Index)
		}
	}
	return Response{ID: req.ID, Delta: d, Committed: int64(applied)}
}

// becameLeader starts every broker's session afresh.
func (a *api) becameLeader() {
	now := a.c.env.Clock.Mono()
	for _, id := range a.c.state.BrokerIDs() {
		a.lastHeartbeat[id] = now
	}
	a.proposedFence = map[int32]proposal{}
	a.proposedUnfence = map[int32]proposal{}
	a.lastPreferred = now
}

// lostLeadership answers every request waiting on a proposal: the new
// leader may or may not commit it, so the broker must ask there.
func (a *api) lostLeadership() {
	for _, key := range sortedKeys(a.pending) {
		p := a.pending[key]
		a.respond(p.conn, Response{ID: p.req.ID, Code: metadata.CodeNotController, LeaderHint: a.leaderHint()})
	}
	a.pending = map[string]pendingRequest{}
}

// alreadyProposed reports whether a fence or unfence of this broker epoch
// was proposed less than a session timeout ago.
func (a *api) alreadyProposed(proposed map[int32]proposal, b *metadata.Broker) bool {
	p, ok := proposed[b.ID]
	return ok && p.epoch == b.Epoch && a.c.env.Clock.Mono()-p.at < a.c.cfg.SessionTimeout
}

// onTick fences brokers whose sessions ran out, answers requests that
// waited too long and, now and then, moves leaderships back to preferred
// replicas.
func (a *api) onTick() {
	a.expirePending()
	if !a.c.Active() {
		a.wasActive = false
		return
	}
	now := a.c.env.Clock.Mono()
	if !a.wasActive {
		// Brokers could not reach this controller while it was not
		// serving: their sessions start over now.
		a.wasActive = true
		for _, id := range a.c.state.BrokerIDs() {
			a.lastHeartbeat[id] = now
		}
	}
	for _, id := range a.c.state.BrokerIDs() {
		b := a.c.state.Brokers[id]
		last, ok := a.lastHeartbeat[id]
		if !ok {
			// Registered through a record this controller applied
			// before it led: its session starts now.
			a.lastHeartbeat[id] = now
			continue
		}
		if b.Fenced || now-last < a.c.cfg.SessionTimeout || a.alreadyProposed(a.proposedFence, b) {
			continue
		}
		a.c.env.Log.Logf("controller %d: broker %d silent for %v: fencing", a.c.cfg.ID, id, now-last)
		if a.c.propose(metadata.Record{Kind: metadata.KindFenceBroker, BrokerID: id, BrokerEpoch: b.Epoch}) == nil {
			a.proposedFence[id] = proposal{epoch: b.Epoch, at: now}
		}
	}
	if now-a.lastPreferred >= a.c.cfg.PreferredElectionInterval {
		a.lastPreferred = now
		if tps := a.c.state.Imbalanced(); len(tps) > 0 {
			a.c.propose(metadata.Record{Kind: metadata.KindElectPreferred, Elect: tps})
		}
	}
}

// expirePending answers REQUEST_TIMED_OUT to requests whose records were
// not applied within pendingTimeout.
func (a *api) expirePending() {
	now := a.c.env.Clock.Mono()
	for _, key := range sortedKeys(a.pending) {
		if p := a.pending[key]; now-p.at >= pendingTimeout {
			delete(a.pending, key)
			a.respond(p.conn, Response{ID: p.req.ID, Code: metadata.CodeRequestTimedOut})
		}
	}
}

func sortedKeys(m map[string]pendingRequest) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
