// Package controller is the controller quorum: controllers replicate the
// metadata log with etcd's raft (RawNode, driven from the node's loop like
// every actor), persist it through the sim.FS seam, apply it to a
// metadata.State, and serve brokers over sim.Net frames. A controller is a
// component a process hosts (Start), so a process may run a broker and a
// controller side by side, as Kafka's combined mode does.
package controller

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// BugRaftAckBeforeSync sends raft's messages and advances past a Ready
// before its entries are durable.
var BugRaftAckBeforeSync = faults.BugRaftAckBeforeSync

// Probes of the controller's rare paths.
var (
	probeTornTail = sim.DeclareProbe("controller/torn-tail-cut",
		"a controller's log recovery cut a torn or corrupt tail")
	probeSnapshotInstalled = sim.DeclareProbe("controller/snapshot-installed",
		"a follower replaced its state with a snapshot sent by the leader")
	probeSyncFailedRestart = sim.DeclareProbe("controller/sync-failed-restart",
		"a controller whose log write or sync failed restarted from its disk")
	probeLostQuorum = sim.DeclareProbe("controller/leader-lost-quorum",
		"a leader that heard from no quorum for an election timeout stopped serving and sending")
)

// Controller is one member of the controller quorum.
type Controller struct {
	env   sim.Env
	cfg   Config
	rn    *raft.RawNode
	store *raftStore
	tr    *transport
	elect *electionTimer
	state *metadata.State
	conf  pb.ConfState
	// applied is the index of the last entry applied.
	applied uint64
	// writing is true while a Ready is being made durable or the log is
	// being snapshotted: raft's next Ready waits for it.
	writing  bool
	leader   bool
	leaderAt time.Duration
	// lostQuorumNoted is whether this spell of leading without a quorum
	// has been counted.
	lostQuorumNoted bool
	stopped         bool
	timers          []sim.Timer
	api             *api
	// restarted sees the controller that replaces this one after a
	// disk failure.
	restarted func(*Controller)
	// LostLog, once set, says why raft found this controller's log
	// damaged; the controller has stopped.
	LostLog string
	// onSnapshotInstalled, when set, is told when a snapshot from the
	// leader replaced the state (tests count them).
	onSnapshotInstalled func()
}

// Start starts a controller on the process's environment. The caller hosts
// it: it listens on cfg.Listen and runs until Stop or the process ends.
func Start(env sim.Env, cfg Config) (*Controller, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	bootstrap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: voterIDs(cfg.Voters)}},
		Data: metadata.NewState().Encode()}
	store, err := openStore(env.FS, cfg.Dir, bootstrap)
	if err != nil {
		return nil, fmt.Errorf("controller %d: open log: %w", cfg.ID, err)
	}
	r := store.recovery
	if r.TornBytes > 0 || r.CorruptFrames > 0 {
		env.Hit(probeTornTail)
		env.Log.Logf("controller %d: log recovery cut %d bytes (%d corrupt frames) after %d entries", cfg.ID, r.TornBytes, r.CorruptFrames, r.Entries)
	}
	c := &Controller{env: env, cfg: cfg, store: store}
	snap, _ := store.Snapshot()
	if c.state, err = metadata.DecodeState(snap.Data); err != nil {
		return nil, fmt.Errorf("controller %d: snapshot at %d: %w", cfg.ID, snap.Metadata.Index, err)
	}
	c.conf, c.applied = snap.Metadata.ConfState, snap.Metadata.Index
	c.rn, err = raft.NewRawNode(c.raftConfig())
	if err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.ID, err)
	}
	c.tr = newTransport(env, cfg.ID, cfg.Voters)
	c.tr.unreachable = func(id uint64) { c.rn.ReportUnreachable(id) }
	c.tr.snapshotSent = func(id uint64, ok bool) {
		status := raft.SnapshotFinish
		if !ok {
			status = raft.SnapshotFailure
		}
		c.rn.ReportSnapshot(id, status)
	}
	c.api = newAPI(c)
	if err := c.api.listen(); err != nil {
		store.close()
		return nil, fmt.Errorf("controller %d: %w", cfg.ID, err)
	}
	c.elect = newElectionTimer(env, cfg.ElectionTimeout, c.campaign)
	c.tick()
	return c, nil
}

// Stop stops the controller: timers, connections and the listener.
func (c *Controller) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	for _, t := range c.timers {
		t.Stop()
	}
	c.elect.stop()
	c.tr.close()
	c.api.close()
	c.store.close()
}

func (c *Controller) after(d time.Duration, f func()) {
	var t sim.Timer
	t = c.env.Clock.AfterFunc(d, func() {
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				break
			}
		}
		if !c.stopped {
			f()
		}
	})
	c.timers = append(c.timers, t)
}

func (c *Controller) tick() {
	if c.leader {
		// A leader hears itself: should it step down, its election
		// timer starts from its last act as leader.
		c.elect.leaderHeard()
	}
	c.rn.Tick()
	c.api.onTick()
	c.drive()
	c.after(c.cfg.TickInterval, c.tick)
}

func (c *Controller) campaign() {
	if c.stopped || c.rn.BasicStatus().RaftState == raft.StateLeader {
		return
	}
	if err := c.rn.Campaign(); err != nil {
		c.env.Log.Logf("controller %d: campaign: %v", c.cfg.ID, err)
	}
	c.drive()
}

// step hands raft a message from a peer.
func (c *Controller) step(m pb.Message) {
	if c.stopped {
		return
	}
	c.elect.peerHeard(m.From)
	switch m.Type {
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap:
		if m.Term >= c.rn.BasicStatus().Term {
			c.elect.leaderHeard()
		}
	}
	if err := c.stepRaft(m); err != nil {
		c.env.Log.Logf("controller %d: step %s from %d: %v", c.cfg.ID, m.Type, m.From, err)
	}
	c.drive()
}

// stepRaft steps raft, turning its panic at a leader's claim on entries
// this controller no longer has (a log lost to a disk that lied, or a bug)
// into a stop: the controller cannot take part safely any more, and one
// broken node must not take down its process.
func (c *Controller) stepRaft(m pb.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.LostLog = fmt.Sprint(r)
			c.env.Log.Logf("controller %d: stopped: raft found its log damaged: %s", c.cfg.ID, c.LostLog)
			c.Stop()
			err = fmt.Errorf("log damaged: %s", c.LostLog)
		}
	}()
	return c.rn.Step(m)
}

// propose appends a record to the log if this controller leads.
func (c *Controller) propose(r metadata.Record) error {
	if c.stopped {
		return fmt.Errorf("controller stopped")
	}
	if err := c.rn.Propose(r.Encode()); err != nil {
		return err
	}
	c.drive()
	return nil
}

// drive takes raft's next Ready, if any, and makes it durable before
// anything depending on it happens: messages go out, committed entries are
// applied and raft is advanced only once the entries and hard state are
// synced (raft's Ready contract). The planted bug does all that at once.
func (c *Controller) drive() {
	if c.stopped || c.writing || !c.rn.HasReady() {
		return
	}
	rd := c.rn.Ready()
	c.noteRole(rd.SoftState)
	c.writing = true
	// The bug leaves snapshot installs alone: they rewrite the log's
	// files, and overlapping them with the next Ready's writes would
	// break the files rather than the guarantee the bug is about.
	if c.cfg.Bugs.On(BugRaftAckBeforeSync) && raft.IsEmptySnap(rd.Snapshot) {
		c.persist(rd, func(error) {})
		c.afterDurable(rd)
		return
	}
	c.persist(rd, func(err error) {
		if err != nil {
			c.fail(err)
			return
		}
		c.afterDurable(rd)
	})
}

// persist writes a Ready's snapshot, entries and hard state, then syncs.
func (c *Controller) persist(rd raft.Ready, done func(error)) {
	write := func() {
		if err := c.store.appendFrames(rd.Entries, rd.HardState); err != nil {
			done(err)
			return
		}
		if len(rd.Entries) == 0 && raft.IsEmptyHardState(rd.HardState) && !c.store.mustSync() {
			done(nil)
			return
		}
		c.store.sync(done)
	}
	if raft.IsEmptySnap(rd.Snapshot) {
		write()
		return
	}
	c.store.installSnapshot(rd.Snapshot, true, func(err error) {
		if err != nil {
			done(err)
			return
		}
		write()
	})
}

func (c *Controller) afterDurable(rd raft.Ready) {
	if c.stopped {
		return
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if c.restore(rd.Snapshot); c.stopped {
			return
		}
	}
	silenced := c.silenced()
	if silenced && !c.lostQuorumNoted {
		c.lostQuorumNoted = true
		c.env.Hit(probeLostQuorum)
	} else if !silenced {
		c.lostQuorumNoted = false
	}
	for _, m := range rd.Messages {
		if silenced && m.Type != pb.MsgSnap {
			// Dropped as if lost: raft resends once the leader hears
			// its quorum again.
			continue
		}
		c.tr.send(m)
	}
	c.applyEntries(rd.CommittedEntries)
	c.rn.Advance(rd)
	c.writing = false
	if c.applied >= c.store.snapIndex+c.cfg.SnapshotEntries {
		c.snapshot()
		return
	}
	c.drive()
}

// restore replaces the state with a snapshot from the leader.
func (c *Controller) restore(snap pb.Snapshot) {
	if snap.Metadata.Index <= c.applied {
		return // raft hands over only newer snapshots; nothing to undo
	}
	s, err := metadata.DecodeState(snap.Data)
	if err != nil {
		c.fail(fmt.Errorf("snapshot at %d from the leader: %w", snap.Metadata.Index, err))
		return
	}
	c.state, c.conf, c.applied = s, snap.Metadata.ConfState, snap.Metadata.Index
	c.env.Hit(probeSnapshotInstalled)
	if c.onSnapshotInstalled != nil {
		c.onSnapshotInstalled()
	}
}

func (c *Controller) applyEntries(entries []pb.Entry) {
	for _, e := range entries {
		if e.Index <= c.applied {
			continue
		}
		c.applied = e.Index
		switch e.Type {
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			c.applyConfChange(e)
		case pb.EntryNormal:
			if len(e.Data) > 0 {
				c.applyRecord(e)
			}
		}
		if c.cfg.OnApply != nil {
			c.cfg.OnApply(e.Index, e.Term, e.Data)
		}
	}
}

func (c *Controller) applyConfChange(e pb.Entry) {
	var cc pb.ConfChangeV2
	if e.Type == pb.EntryConfChange {
		var v1 pb.ConfChange
		if err := v1.Unmarshal(e.Data); err != nil {
			c.fail(fmt.Errorf("conf change at %d: %w", e.Index, err))
			return
		}
		cc = v1.AsV2()
	} else if err := cc.Unmarshal(e.Data); err != nil {
		c.fail(fmt.Errorf("conf change at %d: %w", e.Index, err))
		return
	}
	c.conf = *c.rn.ApplyConfChange(cc)
}

func (c *Controller) applyRecord(e pb.Entry) {
	r, err := metadata.DecodeRecord(e.Data)
	if err != nil {
		// Every controller decodes the same bytes the same way, so
		// skipping it keeps them in agreement; it is still a bug to log.
		c.env.Log.Logf("controller %d: entry %d: %v", c.cfg.ID, e.Index, err)
		return
	}
	result := c.state.Apply(int64(e.Index), r)
	c.api.applied(r, result)
}

// snapshot writes the state at the applied index and compacts the log.
func (c *Controller) snapshot() {
	c.writing = true
	c.store.createSnapshot(c.applied, c.conf, c.state.Encode(), func(err error) {
		if err != nil {
			c.fail(err)
			return
		}
		c.writing = false
		c.drive()
	})
}

// fail handles an error writing the log. After a failed sync the disk no
// longer says what memory does, so the controller stops and starts again
// from what the disk holds, as a supervisor would restart it.
func (c *Controller) fail(err error) {
	if c.stopped {
		return
	}
	c.env.Hit(probeSyncFailedRestart)
	c.env.Log.Logf("controller %d: %v; restarting from disk in %v", c.cfg.ID, err, retryAfterFailureDuration)
	c.Stop()
	env, cfg, onStart := c.env, c.cfg, c.restarted
	env.Clock.AfterFunc(retryAfterFailureDuration, func() { startRetrying(env, cfg, onStart) })
}

// startRetrying starts a controller, trying again after a pause for as
// long as it fails (a full or failing disk may recover), as a supervisor
// would; onStart (nil allowed) sees each controller started.
func startRetrying(env sim.Env, cfg Config, onStart func(*Controller)) {
	c, err := Start(env, cfg)
	if errors.Is(err, ErrCorrupt) {
		// Damage does not heal: an operator must look at it.
		env.Log.Logf("controller %d: not starting: %v", cfg.ID, err)
		return
	}
	if err != nil {
		env.Log.Logf("controller %d: start: %v; trying again in %v", cfg.ID, err, retryAfterFailureDuration)
		env.Clock.AfterFunc(retryAfterFailureDuration, func() { startRetrying(env, cfg, onStart) })
		return
	}
	c.restarted = onStart
	if onStart != nil {
		onStart(c)
	}
}

// noteRole tracks leadership changes.
func (c *Controller) noteRole(ss *raft.SoftState) {
	if ss == nil {
		return
	}
	isLeader := ss.RaftState == raft.StateLeader
	if isLeader && !c.leader {
		c.leaderAt = c.env.Clock.Mono()
		c.lostQuorumNoted = false
		c.api.becameLeader()
		if c.cfg.OnLead != nil {
			c.cfg.OnLead(c.rn.BasicStatus().Term)
		}
	}
	if !isLeader && c.leader {
		c.api.lostLeadership()
	}
	c.leader = isLeader
}

// Status is a controller's view of the quorum.
type Status struct {
	ID      uint64
	Term    uint64
	Lead    uint64
	Leader  bool
	Commit  uint64
	Applied uint64
	// SnapshotIndex is the index of the latest durable snapshot.
	SnapshotIndex uint64
	Recovery      Recovery
}

// Status reports the controller's raft state.
func (c *Controller) Status() Status {
	st := c.rn.BasicStatus()
	return Status{ID: c.cfg.ID, Term: st.Term, Lead: st.Lead, Leader: st.RaftState == raft.StateLeader,
		Commit: st.Commit, Applied: c.applied, SnapshotIndex: c.store.snapIndex, Recovery: c.store.recovery}
}

// Stopped reports whether the controller stopped: Stop was called, its log
// failed (a successor starts from disk) or raft found its log damaged.
func (c *Controller) Stopped() bool { return c.stopped }

// State is the applied metadata; callers must not change it.
func (c *Controller) State() *metadata.State { return c.state }

// silenced reports whether this controller leads but has not heard from a
// quorum for an election timeout. Such a leader stops sending: followers
// that still hear its heartbeats would never elect another, and with a
// link cut one way (it can send, not hear) no controller would serve. This
// is raft's CheckQuorum step-down, done here because raft's own counts
// ticks against the unreachable election timeout.
func (c *Controller) silenced() bool {
	return c.leader && c.env.Clock.Mono()-c.leaderAt > c.cfg.ElectionTimeout && !c.Active()
}

// Active reports whether this controller serves requests: it leads and has
// heard from a quorum within the election timeout.
func (c *Controller) Active() bool {
	return c.leader && !c.stopped && c.elect.quorumRecent(c.cfg.Voters, c.cfg.ID, c.leaderAt-c.cfg.ElectionTimeout)
}

// Process returns a start function running a controller as a whole
// process; onStart (nil allowed) sees every controller it starts,
// restarts after a disk failure included.
func Process(cfg Config, onStart func(*Controller)) sim.Start {
	return func(env sim.Env) { startRetrying(env, cfg, onStart) }
}
