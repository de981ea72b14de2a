package storage

import (
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// flushRound is one group commit: the syncs that make everything appended
// before it began durable. Rounds run one at a time; callers that arrive
// during a round wait for the next, which covers all of them with one sync
// per dirty file.
type flushRound struct {
	// target becomes the recovery point if every sync succeeds; a
	// truncation during the round lowers it.
	target int64
	// snapshots become durable if every sync succeeds, and so do the
	// truncations counted so far.
	snapshots   []int64
	truncations uint64
	callers     []func(error)
	pending     int
	err         error
	gen         uint64
}

// flushWaitersMax bounds the callers waiting for the next round.
const flushWaitersMax = 1 << 16

// Flush makes everything appended so far durable, then calls done (if not
// nil) on the loop with nil, or with an error wrapping ErrStorage. On
// success the recovery point has reached the log end as it was at the
// call. Concurrent calls coalesce: one round of syncs covers every append
// before it. done never runs before Flush returns.
//
// When a sync fails, the log reopens itself from disk and drops what lies
// above its recovery point before done hears of the failure: see the
// package comment.
func (l *Log) Flush(done func(error)) {
	if err := l.usable(); err != nil {
		if done != nil {
			l.later(func() { done(err) })
		}
		return
	}
	if done == nil {
		l.flushWanted = true
	} else {
		if len(l.flushWaiters) >= flushWaitersMax {
			l.later(func() {
				done(fmt.Errorf("flush %s: %w: %d flushes already waiting", l.dir, ErrStorage, flushWaitersMax))
			})
			return
		}
		l.flushWaiters = append(l.flushWaiters, done)
	}
	if l.round == nil {
		l.startRound()
	}
}

// later runs f on the loop once the current callback has returned.
func (l *Log) later(f func()) { l.clock.AfterFunc(0, f) }

// startRound syncs every file written since the previous round began:
// segment logs, index files of rolled segments, snapshots and checkpoints,
// and the directory if entries changed.
func (l *Log) startRound() {
	r := &flushRound{target: l.EndOffset(), callers: l.flushWaiters, gen: l.gen, truncations: l.truncations}
	l.flushWaiters, l.flushWanted = nil, false
	l.round = r
	l.lastFlushMono = l.clock.Mono()
	l.unflushedMessages = 0
	var syncs []func(func(error))
	for _, s := range l.segments {
		if s.logDirty {
			s.logDirty = false
			syncs = append(syncs, l.segmentSync(s, s.file, false))
		}
		for _, f := range s.indexFiles {
			syncs = append(syncs, l.segmentSync(s, f, true))
		}
		s.indexFiles = nil
	}
	for _, p := range l.pendingFiles {
		if p.snapshot >= 0 {
			r.snapshots = append(r.snapshots, p.snapshot)
		}
		syncs = append(syncs, func(done func(error)) {
			p.file.Sync(func(err error) {
				p.file.Close()
				done(err)
			})
		})
	}
	l.pendingFiles = nil
	if l.dirDirty {
		l.dirDirty = false
		syncs = append(syncs, func(done func(error)) { l.fs.SyncDir(l.dir, done) })
	}
	if l.parentDirty {
		l.parentDirty = false
		syncs = append(syncs, func(done func(error)) { l.fs.SyncDir(path.Dir(l.dir), done) })
	}
	r.pending = len(syncs)
	if r.pending == 0 {
		l.later(func() { l.finishRound(r) })
		return
	}
	for _, sync := range syncs {
		sync(func(err error) {
			r.pending--
			if err != nil && r.err == nil {
				r.err = err
			}
			if r.pending == 0 {
				l.finishRound(r)
			}
		})
	}
}

// segmentSync syncs one of a segment's files, keeping the segment's
// handles open until the sync completes even if the segment is deleted
// meanwhile; closeAfter closes f once synced (an index file).
func (l *Log) segmentSync(s *segment, f sim.File, closeAfter bool) func(func(error)) {
	return func(done func(error)) {
		s.syncing++
		f.Sync(func(err error) {
			s.syncing--
			if closeAfter {
				f.Close()
			}
			if s.syncing == 0 && s.closeWhenSynced {
				s.closeFiles()
			}
			done(err)
		})
	}
}

// finishRound advances the recovery point or, after a failed sync,
// reopens the log; then tells the callers and starts the next round if
// anyone waits.
func (l *Log) finishRound(r *flushRound) {
	if l.round == r {
		l.round = nil
	}
	var err error
	switch {
	case r.gen != l.gen:
		err = fmt.Errorf("flush %s: %w: the log was reopened meanwhile", l.dir, ErrStorage)
	case r.err != nil:
		err = storageError("flush "+l.dir, r.err)
		if !l.closed {
			// Callers waiting for the next round appended before the
			// reopen, which may drop what they wrote: they hear of the
			// failure, and the round the reopen starts must not take them.
			l.failWaiters(err)
			l.reopen(err, true)
			// The reopen's cut must become durable before appends resume.
			l.flushWanted = true
		}
	case !l.closed:
		l.recoveryPoint = max(l.recoveryPoint, min(r.target, l.EndOffset()))
		l.durableTruncations = max(l.durableTruncations, r.truncations)
		for i := range l.snapshots {
			if slices.Contains(r.snapshots, l.snapshots[i].offset) {
				l.snapshots[i].durable = true
			}
		}
	}
	for _, c := range r.callers {
		c(err)
	}
	if l.round == nil && (len(l.flushWaiters) > 0 || l.flushWanted) {
		if l.usable() == nil {
			l.startRound()
		} else {
			l.failWaiters(l.usable())
		}
	}
}

// failWaiters fails every caller waiting for a round.
func (l *Log) failWaiters(err error) {
	for _, c := range l.flushWaiters {
		l.later(func() { c(err) })
	}
	l.flushWaiters, l.flushWanted = nil, false
}

// reopen rebuilds the log from disk after a failed sync, then drops what
// this incarnation appended above the recovery point: the disk may have
// lost any of it, and on Linux the page cache may still show bytes the
// disk does not hold. What Open found on disk is kept, as far as the
// reload still finds it: the recovery point read at Open may lag the
// durable end by up to a checkpoint interval, and the data between was
// acknowledged. Found data that was never synced may be only in the page
// cache after a process crash; after a failed sync of it Linux keeps
// showing it, so the reload may find it again: the reload writes it
// again (rewriteUnflushed) and the flush that follows writes it for real
// before the recovery point covers it.
//
// Without syncLost (a compaction's swap that failed part way, leaving the
// segment list out of step with the directory) the disk lost nothing: the
// reload keeps all it finds, as a restart after a process crash would, so
// that batches acknowledged without a sync (flush=none) survive.
func (l *Log) reopen(cause error, syncLost bool) {
	l.gen++
	l.reopens++
	l.abortCompaction()
	l.closeFiles()
	l.logf("log %s: reopening from disk after %v", l.dir, cause)
	l.reload(cause, 1, syncLost)
}

// A reload that fails (files it cannot open, reads that fail) leaves the
// log offline and tries again after a delay that starts at
// reopenRetryFirst and doubles up to reopenRetryMax, for as long as the
// log is open: the cause (too many open files, a flaky device) may pass.
const (
	reopenRetryFirst = 100 * time.Millisecond
	reopenRetryMax   = 10 * time.Second
)

// reopenRetryDelay is the wait after failed attempt number attempt.
func reopenRetryDelay(attempt int) time.Duration {
	delay := reopenRetryFirst
	for i := 1; i < attempt && delay < reopenRetryMax; i++ {
		delay *= 2
	}
	return min(delay, reopenRetryMax)
}

// reload reads the log back from disk (attempt counts from 1) and cuts
// what the reopen must drop; on failure it schedules the next attempt.
func (l *Log) reload(cause error, attempt int, syncLost bool) {
	recoveryPoint := l.recoveryPoint
	report, err := l.load(recoveryPoint)
	l.lastRecovery = report
	if err == nil && syncLost {
		keep := max(recoveryPoint, min(l.loadedEnd, l.EndOffset()))
		l.loadedEnd = min(l.loadedEnd, keep)
		if l.EndOffset() > keep {
			if terr := l.truncateTo(keep); terr != nil {
				err = fmt.Errorf("truncate to the recovery point: %w", terr)
			}
		}
	}
	if err == nil {
		if attempt > 1 {
			l.logf("log %s: back online after %d reopen attempts", l.dir, attempt)
		}
		return
	}
	l.closeFiles()
	l.segments = nil
	l.recoveryPoint = recoveryPoint
	l.failed = fmt.Errorf("reopen after %v: %w", cause, err)
	delay := reopenRetryDelay(attempt)
	l.logf("log %s offline: reopen attempt %d failed: %v; retrying in %v", l.dir, attempt, err, delay)
	gen := l.gen
	l.clock.AfterFunc(delay, func() {
		if l.closed || l.gen != gen {
			return
		}
		l.failed = nil
		l.reload(cause, attempt+1, syncLost)
	})
}

// LastRecovery is the report of the last reopen after a failed sync.
func (l *Log) LastRecovery() RecoveryReport { return l.lastRecovery }
