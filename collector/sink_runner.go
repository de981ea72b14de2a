package collector

import (
	"cmp"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Sink delivers batches of events somewhere.
type Sink interface {
	Name() string
	// Deliver hands a batch over and calls done(nil) once it is delivered
	// (or with why not); done may run before Deliver returns.
	Deliver(events []Event, done func(error))
	// Stop releases what the sink holds (connections, files).
	Stop()
}

// sinkMember is one sink of a runner, with the channel it takes from.
type sinkMember struct {
	sink     Sink
	ch       Channel
	batch    int
	counters SinkCounters
	// priority orders a failover group (higher first); order breaks ties
	// by the order the group lists its sinks.
	priority int64
	order    int
	// failures counts consecutive failed batches; downUntil is when a
	// failed sink may be tried again.
	failures  int
	downUntil time.Duration
}

// sinkPolicy is a sink processor: how a runner picks among its sinks.
type sinkPolicy uint8

const (
	// policyDefault runs one sink.
	policyDefault sinkPolicy = iota
	// policyFailover runs the live sink of highest priority; a failed
	// sink sits out a penalty growing from 1 s up to maxPenalty.
	policyFailover
	// policyLoadBalance spreads batches over the sinks, round robin or
	// at random; with backoff a failed sink sits out a growing timeout.
	policyLoadBalance
)

// sinkRunner drives a sink, or a sink group, as Flume's SinkRunner with
// its sink processor does: take up to batchSize events from the sink's
// channel in one transaction, deliver them, commit on success, roll back
// on failure (a group then tries its next sink). A failure backs off from
// 100 ms doubling up to 5 s. An empty channel backs off 1 s more each
// time, up to 5 s, as in Flume, but unlike Flume a commit of puts into
// the channel wakes the runner at once: Flume's polling leaves a burst
// after a quiet spell waiting up to 5 s, long enough to fill a channel
// and fail its sources' puts.
type sinkRunner struct {
	env     sim.Env
	members []*sinkMember
	policy  sinkPolicy
	// Group settings (Flume's processor.* keys).
	maxPenalty     time.Duration
	random         bool
	backoffOnError bool
	rotation       int
	backoff        time.Duration
	timer          sim.Timer
	busy           bool
	stopped        bool
	// idle is set while the runner backs off on empty channels, failing
	// while it backs off after every sink failed.
	idle, failing bool
	// inTurn is set while process runs a batch; deliveredInTurn says the
	// batch completed within it, so the next one may follow at once.
	inTurn, deliveredInTurn bool
	// bugs switches planted bugs on: faults.BugKafkaSinkCommitBeforeAck.
	bugs faults.Bugs
}

const (
	sinkEmptyBackoffStep = time.Second
	sinkEmptyBackoffMax  = 5 * time.Second
	sinkErrorBackoffMin  = 100 * time.Millisecond
	sinkErrorBackoffMax  = 5 * time.Second
	sinkFailurePenalty   = time.Second
)

func (r *sinkRunner) start() {
	for _, m := range r.members {
		m.ch.OnPut(r.onPut)
		m.ch.OnFull(r.relieve)
	}
	r.schedule(0)
}

// relieve runs the runner now for a full channel, unless it is backing
// off after failures: a sink that cannot deliver must not be retried on
// every batch a source tries to put.
func (r *sinkRunner) relieve() {
	if !r.failing {
		r.process()
	}
}

func (r *sinkRunner) onPut() {
	if r.idle && !r.busy && !r.stopped {
		r.idle = false
		r.schedule(0)
	}
}

func (r *sinkRunner) schedule(d time.Duration) {
	if r.stopped {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = r.env.Clock.AfterFunc(d, r.process)
}

// wake runs the runner now if it is backing off, so a drain does not wait
// out the backoff.
func (r *sinkRunner) wake() {
	if !r.busy {
		r.schedule(0)
	}
}

func (r *sinkRunner) stop() {
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
	for _, m := range r.members {
		m.sink.Stop()
	}
}

// pending reports whether the runner is delivering or has events to.
func (r *sinkRunner) pending() bool {
	if r.busy {
		return true
	}
	for _, m := range r.members {
		if m.ch.Size() > 0 {
			return true
		}
	}
	return false
}

// candidates lists the sinks to try for the next batch, in order.
func (r *sinkRunner) candidates() []*sinkMember {
	now := r.env.Clock.Mono()
	live := make([]*sinkMember, 0, len(r.members))
	for _, m := range r.members {
		if r.policy == policyDefault || m.downUntil <= now || (r.policy == policyLoadBalance && !r.backoffOnError) {
			live = append(live, m)
		}
	}
	switch r.policy {
	case policyFailover:
		slices.SortStableFunc(live, func(a, b *sinkMember) int {
			return cmp.Or(cmp.Compare(b.priority, a.priority), cmp.Compare(a.order, b.order))
		})
	case policyLoadBalance:
		if r.random {
			r.env.Rand.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		} else if len(live) > 0 {
			start := r.rotation % len(live)
			r.rotation++
			live = append(live[start:], live[:start]...)
		}
	}
	return live
}

// sinkBatchesPerTurn bounds the batches a runner delivers in one turn of
// the loop when they complete at once (a memory channel and a null or
// logger sink), so that it keeps pace with sources that fill many batches
// a turn, without starving the rest of the node.
const sinkBatchesPerTurn = 64

func (r *sinkRunner) process() {
	for i := 0; i < sinkBatchesPerTurn; i++ {
		if r.stopped || r.busy {
			return
		}
		r.busy, r.idle = true, false
		r.inTurn, r.deliveredInTurn = true, false
		r.try(r.candidates())
		r.inTurn = false
		if !r.deliveredInTurn {
			return // still delivering, or backing off on its own timer
		}
	}
	r.schedule(0)
}

// try runs a batch through the first candidate; on failure the next one
// gets its turn.
func (r *sinkRunner) try(candidates []*sinkMember) {
	if len(candidates) == 0 {
		// Every sink failed, or every one sits out a penalty.
		r.busy, r.failing = false, true
		r.backoff = min(max(2*r.backoff, sinkErrorBackoffMin), sinkErrorBackoffMax)
		r.schedule(r.backoff)
		return
	}
	m := candidates[0]
	r.runBatch(m, func(n int, err error) {
		if err != nil {
			r.penalize(m, err)
			r.try(candidates[1:])
			return
		}
		m.failures, m.downUntil = 0, 0
		r.busy, r.failing = false, false
		if n == 0 {
			r.backoff = min(r.backoff+sinkEmptyBackoffStep, sinkEmptyBackoffMax)
			r.idle = true
			r.schedule(r.backoff)
			return
		}
		r.backoff = 0
		if r.inTurn {
			r.deliveredInTurn = true // process goes on with the next batch
			return
		}
		// On the loop again rather than in this callback, which may run
		// inside Commit.
		r.schedule(0)
	})
}

func (r *sinkRunner) penalize(m *sinkMember, err error) {
	m.failures++
	penalty := sinkFailurePenalty << min(m.failures-1, 16)
	if r.maxPenalty > 0 {
		penalty = min(penalty, r.maxPenalty)
	}
	m.downUntil = r.env.Clock.Mono() + penalty
	r.env.Hit(probeSinkRolledBack)
	if r.policy == policyDefault {
		r.env.Log.Logf("sink %s: delivery failed, rolled back: %v", m.sink.Name(), err)
	} else {
		r.env.Log.Logf("sink %s: delivery failed, rolled back; it sits out %v: %v", m.sink.Name(), penalty, err)
	}
}

// runBatch takes up to batchSize events from the member's channel,
// delivers them and commits; done gets the number delivered, or the
// error after a rollback.
func (r *sinkRunner) runBatch(m *sinkMember, done func(int, error)) {
	tx := m.ch.Begin()
	events := make([]Event, 0, min(m.batch, 1024))
	for len(events) < m.batch {
		e, ok, err := tx.Take()
		if err != nil || !ok {
			break
		}
		events = append(events, e)
	}
	m.counters.EventDrainAttemptCount += int64(len(events))
	switch {
	case len(events) == 0:
		m.counters.BatchEmptyCount++
		tx.Rollback()
		done(0, nil)
		return
	case len(events) < m.batch:
		m.counters.BatchUnderflowCount++
	default:
		m.counters.BatchCompleteCount++
	}
	if _, kafkaSink := m.sink.(*KafkaSink); kafkaSink && r.bugs.On(faults.BugKafkaSinkCommitBeforeAck) {
		r.commitBeforeDelivery(m, tx, events, done)
		return
	}
	m.sink.Deliver(events, func(err error) {
		if err != nil {
			tx.Rollback()
			m.counters.RollbackCount++
			done(0, err)
			return
		}
		tx.Commit(func(err error) {
			if err != nil {
				m.counters.RollbackCount++
				r.env.Log.Logf("sink %s: commit after delivery failed (the batch will be delivered again): %v", m.sink.Name(), err)
				done(0, err)
				return
			}
			m.counters.EventDrainSuccessCount += int64(len(events))
			done(len(events), nil)
		})
	})
}

// commitBeforeDelivery is the planted faults.BugKafkaSinkCommitBeforeAck:
// the take commits first, as a sink does that hands a batch to an
// asynchronous producer and never waits on its sends, and a failed send
// is only logged. Once committed the events are in no channel, so a crash
// during the produce, or a send that fails, loses them past the sink.
func (r *sinkRunner) commitBeforeDelivery(m *sinkMember, tx *Txn, events []Event, done func(int, error)) {
	tx.Commit(func(err error) {
		if err != nil {
			m.counters.RollbackCount++
			done(0, err)
			return
		}
		m.sink.Deliver(events, func(err error) {
			if err != nil {
				r.env.Log.Logf("sink %s: delivery failed after its commit, %d events dropped: %v", m.sink.Name(), len(events), err)
			}
			m.counters.EventDrainSuccessCount += int64(len(events))
			done(len(events), nil)
		})
	})
}
