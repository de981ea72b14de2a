package broker

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Replication, the leader's side: it tracks each follower's log end
// offset from the follower's fetches, moves the high watermark to the
// smallest log end over the ISR, holds acks=all answers until the high
// watermark passes them, and asks the controller to shrink the ISR of
// followers that fell behind and to expand it with those that caught up.
// The ISR changes only when the controller says so (AlterPartition);
// while a change is in flight the high watermark counts the members of
// both the old and the new ISR, so that it never passes a write some
// member of either lacks.

// replicaRole is what this broker is to a partition.
type replicaRole uint8

const (
	// roleNone: the image has not yet given the partition a role here,
	// or names no leader.
	roleNone replicaRole = iota
	roleLeader
	roleFollower
)

func (r replicaRole) String() string {
	switch r {
	case roleLeader:
		return "leader"
	case roleFollower:
		return "follower"
	}
	return "none"
}

// ackWaitsMax bounds the acks=all answers one partition holds.
const ackWaitsMax = 10_000

// replicaState is a partition's replication state on this broker.
type replicaState struct {
	role           replicaRole
	leaderID       int32
	topicID        string
	replicas       []int32
	isr            []int32
	partitionEpoch int32
	// pendingISR is the ISR an AlterPartition in flight asks for.
	pendingISR []int32
	altering   bool
	// alterAfter delays the next AlterPartition after a refused one.
	alterAfter time.Duration
	// hw is the high watermark: a leader's own, a follower's as its
	// leader last told it.
	hw int64
	// minInsync is the topic's min.insync.replicas.
	minInsync int
	// leaderSince is when this leadership began; epochStart the log end
	// then (a follower joins the ISR only once past it).
	leaderSince time.Duration
	epochStart  int64
	followers   map[int32]*followerState
	acks        []*ackWait
	// freeAcks are answered ack waits kept for the next acks=all write,
	// with their timeout callbacks bound once (ackWaitsKeptMax at most).
	freeAcks []*ackWait
	// fetcher fetches for this follower from its leader; truncated is
	// set once the log has been cut to the leader's by leader epoch.
	fetcher   *replicaFetcher
	truncated bool
	// backoffUntil pauses fetching after an error the next image may
	// resolve (a leader that does not know it leads yet).
	backoffUntil time.Duration
	// damageNoted: this leader, the only in-sync replica, has logged
	// that it keeps leading with damage fenced (damage.go).
	damageNoted bool
	// reopens is the log's reopen count when the partition opened; a
	// reopen after a failed fsync may have dropped data the cluster
	// counts on (lostData).
	reopens int
}

// followerState is what a leader knows of one follower.
type followerState struct {
	leo int64
	// caughtUpAt is the last time the follower had everything the leader
	// had (Kafka's lastCaughtUpTime).
	caughtUpAt time.Duration
	// lastFetchAt and lastFetchLeaderEnd are the previous fetch's time
	// and the leader's log end then: a fetch reaching that end proves the
	// follower was caught up at that time.
	lastFetchAt        time.Duration
	lastFetchLeaderEnd int64
}

// ackWait is an acks=all answer held until the high watermark passes
// offset.
type ackWait struct {
	p      *partition
	offset int64
	done   func(*kerr.Error)
	timer  sim.Timer
	// expireFn is expire, bound once.
	expireFn func()
}

// ackWaitsKeptMax bounds the answered ack waits a partition keeps.
const ackWaitsKeptMax = 64

// expire answers w with a timeout if it is still held.
func (w *ackWait) expire() {
	r := &w.p.replica
	if i := slices.Index(r.acks, w); i >= 0 {
		r.acks = slices.Delete(r.acks, i, i+1)
		w.answer(kerr.RequestTimedOut)
	}
}

// answer calls w's done with code and keeps w for a later write: its
// timer is stopped or has fired, and no list holds it any more.
func (w *ackWait) answer(code *kerr.Error) {
	done := w.done
	w.done, w.timer = nil, nil
	if r := &w.p.replica; len(r.freeAcks) < ackWaitsKeptMax {
		r.freeAcks = append(r.freeAcks, w)
	}
	done(code)
}

func newReplicaState(t *topic, now time.Duration, reopens int) replicaState {
	return replicaState{leaderID: metadata.NoLeader, minInsync: t.minInsync, leaderSince: now, reopens: reopens}
}

// lostData reports whether the log reopened after a failed fsync. The
// reopen drops what was not on disk, and in a cluster that may be data the
// leader counted toward the high watermark or a follower reported having:
// serving on from the shorter log would let the others truncate
// acknowledged writes to match it. So, as Kafka takes a failed log
// directory offline, the broker stops and starts again (re-registering,
// which takes it out of every ISR and leadership), and until then the
// partition serves nobody.
func (p *partition) lostData() bool {
	if p.b.cluster == nil || p.log.Reopens() == p.replica.reopens {
		return false
	}
	if !p.b.cluster.restarting {
		p.b.cluster.restarting = true
		err := fmt.Errorf("partition %s-%d: the log reopened after a failed fsync and may have lost replicated data", p.topic, p.index)
		p.b.env.Clock.AfterFunc(0, func() { p.b.fatal(err) })
	}
	return true
}

// topicMinInsync is a topic's min.insync.replicas.
func topicMinInsync(configs map[string]string, brokerDefault int) int {
	if v, ok := configs["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return max(brokerDefault, 1)
}

// becomeLeader makes this broker the partition's leader at the image's
// leader epoch: the epoch starts at the log end, and the high watermark
// moves once every ISR member has fetched.
func (p *partition) becomeLeader(part metadata.Partition) {
	r := &p.replica
	p.stopFetching()
	p.failAcks(kerr.NotLeaderForPartition)
	now := p.b.env.Clock.Mono()
	r.role, r.leaderID = roleLeader, p.b.cfg.NodeID
	p.leaderEpoch = part.LeaderEpoch
	r.replicas, r.isr, r.partitionEpoch = slices.Clone(part.Replicas), slices.Clone(part.ISR), part.PartitionEpoch
	r.pendingISR, r.altering = nil, false
	r.followers = map[int32]*followerState{}
	r.leaderSince, r.epochStart = now, p.log.EndOffset()
	r.hw = min(r.hw, p.log.EndOffset())
	if err := p.log.AssignEpoch(part.LeaderEpoch, p.log.EndOffset()); err != nil {
		p.b.env.Log.Logf("partition %s-%d: record leader epoch %d: %v", p.topic, p.index, part.LeaderEpoch, err)
	}
	p.b.env.Log.Logf("partition %s-%d: leader at epoch %d from offset %d, ISR %v", p.topic, p.index, part.LeaderEpoch, r.epochStart, r.isr)
	p.dataArrived()
}

// becomeFollower makes this broker a follower of leader at the image's
// epoch: it stops serving, and fetches from the leader once its log is
// cut back to where it agrees with the leader's.
func (p *partition) becomeFollower(part metadata.Partition) {
	r := &p.replica
	p.stopFetching()
	if r.role == roleLeader && p.b.cfg.Bugs.On(faults.BugStaleLeaderAcks) {
		// The planted bug: the held writes are answered without checking
		// that the epoch they were appended in still leads.
		p.failAcks(nil)
	}
	p.failAcks(kerr.NotLeaderForPartition)
	r.role, r.leaderID = roleFollower, part.Leader
	p.leaderEpoch = part.LeaderEpoch
	r.replicas, r.isr, r.partitionEpoch = slices.Clone(part.Replicas), slices.Clone(part.ISR), part.PartitionEpoch
	r.pendingISR, r.altering, r.followers = nil, false, nil
	r.hw = min(r.hw, p.log.EndOffset())
	r.truncated = false
	if part.Leader == metadata.NoLeader {
		r.role = roleNone
	} else {
		p.b.cluster.follow(p, part.Leader)
	}
	p.wakeWaiters() // held consumer fetches learn they must go elsewhere
}

// Probes of the ISR's changes under one leader, seen by that leader.
var (
	probeISRShrunk = sim.DeclareProbe("broker/isr-shrunk",
		"a leader's ISR lost a member: a follower fell behind or went away, and the controller agreed")
	probeISRExpanded = sim.DeclareProbe("broker/isr-expanded",
		"a leader's ISR took a follower back once it caught up, and the controller agreed")
)

// updateISR takes a newer ISR from the image or an AlterPartition answer
// without a change of leadership.
func (p *partition) updateISR(part metadata.Partition) {
	r := &p.replica
	if part.PartitionEpoch <= r.partitionEpoch || part.LeaderEpoch != p.leaderEpoch {
		return
	}
	if r.role == roleLeader && len(part.ISR) < len(r.isr) {
		p.b.env.Hit(probeISRShrunk)
	}
	if r.role == roleLeader && len(part.ISR) > len(r.isr) {
		p.b.env.Hit(probeISRExpanded)
	}
	r.replicas, r.isr, r.partitionEpoch = slices.Clone(part.Replicas), slices.Clone(part.ISR), part.PartitionEpoch
	if r.role == roleLeader {
		r.pendingISR = nil
		p.dataArrived()
	}
}

// leaveReplication stops whatever replication the partition takes part
// in: it is closing.
func (p *partition) leaveReplication() {
	p.stopFetching()
	p.failAcks(kerr.NotLeaderForPartition)
	p.replica.role = roleNone
}

// leaderEnd is what the leader counts as its own log end: with group
// commit only what is on disk.
func (p *partition) leaderEnd() int64 {
	if p.groupCommit {
		return min(p.log.FlushedOffset(), p.log.EndOffset())
	}
	return p.log.EndOffset()
}

// hwMembers are the replicas the high watermark waits for: the ISR, and
// while a change is in flight the ISR it asks for too. each is called on
// each once, until it returns false. (A callback, not a slice: the high
// watermark is recomputed on every follower fetch.)
func (r *replicaState) hwMembers(each func(id int32) bool) {
	for _, id := range r.isr {
		if !each(id) {
			return
		}
	}
	for i, id := range r.pendingISR {
		if slices.Contains(r.isr, id) || slices.Contains(r.pendingISR[:i], id) {
			continue
		}
		if !each(id) {
			return
		}
	}
}

// advanceHighWatermark moves a leader's high watermark to the smallest
// log end over the ISR and releases the acks=all answers it passes. A
// follower that has not fetched since this leadership began holds it.
func (p *partition) advanceHighWatermark() {
	r := &p.replica
	if r.role != roleLeader || p.lostData() {
		return
	}
	hw := p.leaderEnd()
	if !p.b.cfg.Bugs.On(faults.BugHWFromLeaderOnly) {
		known := true
		r.hwMembers(func(id int32) bool {
			if id == p.b.cfg.NodeID {
				return true
			}
			f := r.followers[id]
			if f == nil {
				known = false
				return false
			}
			hw = min(hw, f.leo)
			return true
		})
		if !known {
			return
		}
	}
	if hw <= r.hw {
		return
	}
	r.hw = hw
	p.releaseAcks()
}

// awaitReplicated holds the answer to an acks=all append whose last
// offset is lastOffset: it wakes the followers waiting on the leader,
// counts the leader's own copy once on disk under group commit, and calls
// done once the high watermark passes the append (nil) or with the reason
// it will not (awaitISR). Produce and the group coordinator both wait
// through it.
func (p *partition) awaitReplicated(lastOffset int64, timeout time.Duration, done func(*kerr.Error)) {
	p.dataArrived()
	if p.groupCommit && lastOffset >= p.log.FlushedOffset() {
		p.log.Flush(func(error) { p.dataArrived() })
	}
	p.awaitISR(lastOffset+1, timeout, done)
}

// awaitISR holds an acks=all answer until the high watermark reaches
// offset (the end of the appended batch) or timeout passes.
func (p *partition) awaitISR(offset int64, timeout time.Duration, done func(*kerr.Error)) {
	r := &p.replica
	if r.hw >= offset {
		done(p.afterAppendCheck())
		return
	}
	if len(r.acks) >= ackWaitsMax {
		done(kerr.RequestTimedOut)
		return
	}
	w := p.takeAckWait()
	w.offset, w.done = offset, done
	w.timer = p.b.env.Clock.AfterFunc(timeout, w.expireFn)
	r.acks = append(r.acks, w)
}

// takeAckWait returns a kept ack wait, or a new one.
func (p *partition) takeAckWait() *ackWait {
	r := &p.replica
	if n := len(r.freeAcks); n > 0 {
		w := r.freeAcks[n-1]
		r.freeAcks = r.freeAcks[:n-1]
		w.p = p
		return w
	}
	w := &ackWait{p: p}
	w.expireFn = w.expire
	return w
}

// afterAppendCheck is Kafka's check when an acks=all write completes: an
// ISR that shrank below min.insync.replicas meanwhile answers
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (the write is in the log, but fewer
// replicas than asked hold it).
func (p *partition) afterAppendCheck() *kerr.Error {
	if len(p.replica.isr) < p.replica.minInsync {
		return kerr.NotEnoughReplicasAfterAppend
	}
	return nil
}

// releaseAcks answers the held writes the high watermark has passed, in
// the order they came. The held list is filtered in place; the ones
// answered are listed apart first, since an answer may hold a new write
// (or release others) before the rest are answered.
func (p *partition) releaseAcks() {
	r := &p.replica
	var readyRoom [8]*ackWait
	ready := readyRoom[:0]
	keep := r.acks[:0]
	for _, w := range r.acks {
		if w.offset <= r.hw {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	clear(r.acks[len(keep):])
	r.acks = keep
	for _, w := range ready {
		w.timer.Stop()
		w.answer(p.afterAppendCheck())
	}
}

// failAcks answers every held acks=all write with code: the leadership
// they waited under is over.
func (p *partition) failAcks(code *kerr.Error) {
	acks := p.replica.acks
	p.replica.acks = nil
	for _, w := range acks {
		w.timer.Stop()
		w.answer(code)
	}
}

// noteFollowerFetch records a follower's fetch at offset: its log end,
// whether it is caught up, and whether it may join the ISR; then it moves
// the high watermark if it can.
func (p *partition) noteFollowerFetch(replica int32, offset int64) {
	r := &p.replica
	if r.role != roleLeader || replica == p.b.cfg.NodeID || !slices.Contains(r.replicas, replica) {
		return
	}
	now, end := p.b.env.Clock.Mono(), p.log.EndOffset()
	if offset > end {
		return // a log the follower must still cut; the read answers out of range
	}
	f := r.followers[replica]
	if f == nil {
		f = &followerState{caughtUpAt: r.leaderSince, lastFetchLeaderEnd: -1}
		r.followers[replica] = f
	}
	f.leo = offset
	switch {
	case offset >= end:
		f.caughtUpAt = now
	case offset >= f.lastFetchLeaderEnd && f.lastFetchLeaderEnd >= 0:
		f.caughtUpAt = max(f.caughtUpAt, f.lastFetchAt)
	}
	f.lastFetchAt, f.lastFetchLeaderEnd = now, end
	if !slices.Contains(r.isr, replica) && offset >= r.hw && offset >= r.epochStart {
		isr := append(slices.Clone(r.isr), replica)
		slices.Sort(isr)
		p.alterISR(isr, "caught up: "+strconv.Itoa(int(replica)))
	}
	p.advanceHighWatermark()
}

// shrinkISR asks to drop the followers that have not caught up within
// replica.lag.time.max.ms.
func (p *partition) shrinkISR(lagMax time.Duration) {
	r := &p.replica
	if r.role != roleLeader {
		return
	}
	now := p.b.env.Clock.Mono()
	var keep, dropped []int32
	for _, id := range r.isr {
		caughtUp := r.leaderSince
		if f := r.followers[id]; f != nil {
			caughtUp = f.caughtUpAt
		}
		if id != p.b.cfg.NodeID && now-caughtUp > lagMax {
			dropped = append(dropped, id)
			continue
		}
		keep = append(keep, id)
	}
	switch {
	case len(dropped) == 0:
	case p.b.cfg.Bugs.On(faults.BugNeverShrinkISR):
		// The planted bug: the followers stay in the ISR however long
		// they are gone, and acks=all waits for them.
	case p.b.cfg.Bugs.On(faults.BugISRShrinkLocal):
		// The planted bug: the leader drops them on its own word; the
		// controller still counts them in sync and may elect one.
		r.isr = keep
		p.dataArrived()
	default:
		p.alterISR(keep, fmt.Sprintf("%v fell behind for more than %v", dropped, lagMax))
	}
}

// alterISR asks the controller for a new ISR, one request at a time. The
// answer (or the next image) is what changes it.
func (p *partition) alterISR(isr []int32, why string) {
	r := &p.replica
	m := p.b.cluster
	if r.altering || p.b.env.Clock.Mono() < r.alterAfter || m == nil {
		return
	}
	r.altering, r.pendingISR = true, slices.Clone(isr)
	epoch := p.leaderEpoch
	req := controller.Request{Op: controller.OpAlterPartition, BrokerID: p.b.cfg.NodeID, BrokerEpoch: m.member.Epoch(),
		TopicID: r.topicID, Partition: p.index, LeaderEpoch: epoch, PartitionEpoch: r.partitionEpoch, ISR: isr}
	p.b.env.Log.Logf("partition %s-%d: asking for ISR %v (was %v): %s", p.topic, p.index, isr, r.isr, why)
	m.member.Client().Do(req, func(resp controller.Response, err error) {
		if r.role != roleLeader || p.leaderEpoch != epoch || !r.altering {
			return // the leadership that asked is over
		}
		r.altering, r.pendingISR = false, nil
		if err == nil && resp.Code == metadata.CodeNone && resp.Partition != nil {
			p.updateISR(*resp.Partition)
			return
		}
		r.alterAfter = p.b.env.Clock.Mono() + alterRetryDelay
		if err == nil && resp.Partition != nil && resp.Code == metadata.CodeInvalidUpdateVersion {
			p.updateISR(*resp.Partition)
		}
		p.dataArrived()
	})
}

// alterRetryDelay paces AlterPartition requests after a refusal.
const alterRetryDelay = 100 * time.Millisecond
