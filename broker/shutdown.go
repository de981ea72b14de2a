package broker

import (
	"errors"
	"fmt"
	"path"

	"github.com/sluice-sim/sluice/broker/storage"
)

// lifecycle is what a broker knows about its own start and end.
type lifecycle struct {
	// served is set once the broker first listens.
	served bool
	// exitOnStartFailure, when set, is called instead of a restart when
	// the broker fails before it ever served.
	exitOnStartFailure func(error)
	// stopping is set by Stop (or an exit): nothing starts again.
	stopping bool
	// stops counts fatal's stops: a stop asked for from a timer is void
	// once another came first.
	stops uint64
	// checkpointWritten, when set, runs once the recovery-point write in
	// progress has finished; Stop waits for it before writing its own.
	checkpointWritten func()
}

// ExitOnStartFailure makes the broker end, calling exit with the error,
// when it fails before it ever served (its port is taken, its data
// directory unreadable) rather than start again after restartDelay as it
// does after a later failure. A real server wants this: retrying a
// listen on a taken port forever helps nobody, while the operator needs
// one clear message. The simulated world leaves it off, so that a
// scenario's broker behaves as a supervised service. Call it before the
// broker opens (in Start's onStart).
func (b *Broker) ExitOnStartFailure(exit func(error)) {
	b.lifecycle.exitOnStartFailure = exit
}

// Stop shuts the broker down cleanly: it stops accepting and closes every
// connection, flushes every partition log, writes the recovery-point
// checkpoint (so that the next start re-scans nothing) and closes the
// logs, then calls done with the first error met (nil when all went
// well). done runs on the loop, after Stop returns. A broker that has not
// opened its logs yet only stops. A cluster member first asks the
// controller for a controlled shutdown, so that its leaderships move to
// other ISR members before it stops serving (waiting at most
// controlledShutdownMax). Stop may be called once.
func (b *Broker) Stop(done func(error)) {
	if b.lifecycle.stopping {
		b.env.Clock.AfterFunc(0, func() { done(errors.New("broker already stopped")) })
		return
	}
	b.lifecycle.stopping = true
	b.controlledShutdown(func() { b.stopClean(done) })
}

// stopClean is Stop once the cluster (if any) has let the broker go.
func (b *Broker) stopClean(done func(error)) {
	b.leaveCluster()
	b.stopServing()
	if b.topics == nil {
		b.env.Clock.AfterFunc(0, func() { done(nil) })
		return
	}
	b.flushAll(func(flushErr error) {
		b.afterCheckpoint(func() {
			b.writeFinalCheckpoint(func(err error) {
				b.topics.closeAll()
				b.topics = nil
				done(errors.Join(flushErr, err))
			})
		})
	})
}

// flushAll flushes every partition log and calls done once all are
// through, with the first error.
func (b *Broker) flushAll(done func(error)) {
	pending := 1 // released after the loop, so done waits for every log
	var first error
	finish := func(err error) {
		if err != nil && first == nil {
			first = err
		}
		pending--
		if pending == 0 {
			done(first)
		}
	}
	for _, name := range b.topics.allNames() {
		for _, p := range b.topics.byName[name].hosted() {
			if p == nil {
				continue
			}
			pending++
			name, index := p.topic, p.index
			p.log.Flush(func(err error) {
				if err != nil {
					err = fmt.Errorf("flush %s-%d: %w", name, index, err)
				}
				finish(err)
			})
		}
	}
	b.env.Clock.AfterFunc(0, func() { finish(nil) })
}

// afterCheckpoint runs f once no recovery-point write is in progress.
func (b *Broker) afterCheckpoint(f func()) {
	if !b.checkpointing {
		f()
		return
	}
	b.lifecycle.checkpointWritten = f
}

// writeFinalCheckpoint records every log's recovery point, which after a
// successful flush is its end.
func (b *Broker) writeFinalCheckpoint(done func(error)) {
	var points []storage.PartitionOffset
	for _, name := range b.topics.sortedNames() {
		for _, p := range b.topics.get(name).hosted() {
			if p == nil {
				continue
			}
			points = append(points, storage.PartitionOffset{Topic: p.topic, Partition: p.index, Offset: p.log.RecoveryPoint()})
		}
	}
	data, err := storage.EncodeOffsetCheckpoint(points)
	if err != nil {
		b.env.Clock.AfterFunc(0, func() { done(fmt.Errorf("encode %s: %w", recoveryPointFile, err)) })
		return
	}
	b.checkpointing = true
	storage.ReplaceFile(b.env.FS, path.Join(b.cfg.DataDir, recoveryPointFile), data, func(err error) {
		b.checkpointing = false
		if err != nil {
			err = fmt.Errorf("write %s: %w", recoveryPointFile, err)
		}
		done(err)
	})
}
