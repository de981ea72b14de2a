package collector

import (
	"time"

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

// sinkRunner drives one sink, as Flume's SinkRunner with the default
// processor does: take up to batchSize events in one transaction, deliver
// them, commit on success, roll back and back off on failure; an empty
// channel backs off too (1 s more each time, up to 5 s, Flume's defaults).
type sinkRunner struct {
	env      sim.Env
	sink     Sink
	ch       Channel
	batch    int
	backoff  time.Duration
	timer    sim.Timer
	busy     bool
	stopped  bool
	counters SinkCounters
	// idle is called when the runner found its channel empty, for a
	// draining stop.
	idle func()
}

const (
	sinkEmptyBackoffStep = time.Second
	sinkEmptyBackoffMax  = 5 * time.Second
	sinkErrorBackoffMin  = 100 * time.Millisecond
	sinkErrorBackoffMax  = 5 * time.Second
)

func (r *sinkRunner) start() { r.schedule(0) }

func (r *sinkRunner) schedule(d time.Duration) {
	if r.stopped {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = r.env.Clock.AfterFunc(d, r.process)
}

// wake runs the runner now if it is backing off on an empty channel, so
// a drain does not wait out the backoff.
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
}

func (r *sinkRunner) process() {
	if r.stopped || r.busy {
		return
	}
	tx := r.ch.Begin()
	events := make([]Event, 0, min(r.batch, 1024))
	for len(events) < r.batch {
		e, ok, err := tx.Take()
		if err != nil || !ok {
			break
		}
		events = append(events, e)
	}
	r.counters.EventDrainAttemptCount += int64(len(events))
	switch {
	case len(events) == 0:
		r.counters.BatchEmptyCount++
		tx.Rollback()
		r.backoff = min(r.backoff+sinkEmptyBackoffStep, sinkEmptyBackoffMax)
		if r.idle != nil {
			r.idle()
		}
		r.schedule(r.backoff)
		return
	case len(events) < r.batch:
		r.counters.BatchUnderflowCount++
	default:
		r.counters.BatchCompleteCount++
	}
	r.busy = true
	r.sink.Deliver(events, func(err error) {
		if err != nil {
			r.fail(tx, err)
			return
		}
		tx.Commit(func(err error) {
			if err != nil {
				r.busy = false
				r.counters.RollbackCount++
				r.env.Log.Logf("sink %s: commit after delivery failed (the batch will be delivered again): %v", r.sink.Name(), err)
				r.schedule(sinkErrorBackoffMin)
				return
			}
			r.busy = false
			r.counters.EventDrainSuccessCount += int64(len(events))
			r.backoff = 0
			r.schedule(0)
		})
	})
}

func (r *sinkRunner) fail(tx *Txn, err error) {
	r.busy = false
	tx.Rollback()
	r.counters.RollbackCount++
	r.backoff = min(max(2*r.backoff, sinkErrorBackoffMin), sinkErrorBackoffMax)
	r.env.Log.Logf("sink %s: delivery failed, rolled back; retrying in %v: %v", r.sink.Name(), r.backoff, err)
	r.schedule(r.backoff)
}
