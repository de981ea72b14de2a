package broker

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// maintenanceInterval is how often the broker does its logs' periodic
// work (rolls by age, interval flushes, retention, compaction) and
// records their recovery points.
const maintenanceInterval = time.Second

// recoveryPointFile is Kafka's per-directory record of each log's recovery
// point: recovery after a crash re-scans only what lies above it.
const recoveryPointFile = "recovery-point-offset-checkpoint"

func (b *Broker) scheduleMaintenance() {
	b.env.Clock.AfterFunc(maintenanceInterval, func() {
		if !b.ready {
			return
		}
		b.maintain()
		b.scheduleMaintenance()
	})
}

// probeCompacted marks a compaction that removed records: a swarm seed
// that turns compaction on should reach it.
var probeCompacted = sim.DeclareProbe("broker/compaction-removed-records",
	"a log's compaction removed records superseded by newer ones of their key")

func (b *Broker) maintain() {
	var points []storage.PartitionOffset
	var compacted int64
	defer func() {
		if compacted > b.recordsCompactedSeen {
			b.env.Hit(probeCompacted)
			b.recordsCompactedSeen = compacted
		}
	}()
	for _, name := range b.topics.sortedNames() {
		for _, p := range b.topics.get(name).hosted() {
			compacted += p.log.RecordsCompacted()
			// An offline log logs its own reopen attempts.
			if err := p.log.Tick(p.highWatermark()); err != nil && p.log.Err() == nil {
				b.env.Log.Logf("partition %s-%d: %v", p.topic, p.index, err)
			}
			points = append(points, storage.PartitionOffset{Topic: p.topic, Partition: p.index, Offset: p.log.RecoveryPoint()})
		}
	}
	b.writeRecoveryPoints(points)
	// Followers' starts and retention's moves reach the checkpoint here.
	b.writeLogStarts(nil)
}

// writeRecoveryPoints replaces the checkpoint unless a replacement is
// still running (the next round will catch up).
func (b *Broker) writeRecoveryPoints(points []storage.PartitionOffset) {
	if b.checkpointing {
		return
	}
	data, err := storage.EncodeOffsetCheckpoint(points)
	if err != nil {
		b.env.Log.Logf("encode %s: %v", recoveryPointFile, err)
		return
	}
	b.checkpointing = true
	storage.ReplaceFile(b.env.FS, path.Join(b.cfg.DataDir, recoveryPointFile), data, func(err error) {
		b.checkpointing = false
		if err != nil {
			b.env.Log.Logf("write %s: %v", recoveryPointFile, err)
		}
		if waiting := b.lifecycle.checkpointWritten; waiting != nil {
			b.lifecycle.checkpointWritten = nil
			waiting() // a shutdown waits to write the final checkpoint
		}
	})
}

// loadRecoveryPoints reads the checkpoint into b.recoveryPoints, keyed by
// partition directory name, and the log-start checkpoint beside it. A missing or unreadable checkpoint means
// every log is scanned in full: slower, never wrong.
func (b *Broker) loadRecoveryPoints() {
	b.loadLogStarts()
	b.recoveryPoints = map[string]int64{}
	name := path.Join(b.cfg.DataDir, recoveryPointFile)
	data, err := storage.ReadCheckpointFile(b.env.FS, name)
	if errors.Is(err, sim.ErrNotExist) {
		return // a new directory, or a crash before the first checkpoint
	}
	if err != nil {
		b.env.Log.Logf("read %s: %v; recovering every log from its start", name, err)
		return
	}
	if len(data) == 0 {
		return
	}
	entries, err := storage.DecodeOffsetCheckpoint(data)
	if err != nil {
		b.env.Log.Logf("%s: %v; recovering every log from its start", name, err)
		return
	}
	for _, e := range entries {
		b.recoveryPoints[path.Base(partitionDir("", e.Topic, e.Partition))] = e.Offset
	}
}

// logStartFile is Kafka's per-directory record of each log's start
// offset, which DeleteRecords may move inside a segment.
const logStartFile = storage.LogStartCheckpointName

// logStartWaitersMax bounds the DeleteRecords answers waiting for the
// next checkpoint; past it they fail with KAFKA_STORAGE_ERROR and the
// client retries.
const logStartWaitersMax = 1024

// logStartCheckpoint is the log-start-offset checkpoint's state: one
// replacement at a time, the callers that arrive meanwhile waiting for
// the next, which then holds their starts.
type logStartCheckpoint struct {
	// restored are the starts read at start, by partition directory
	// name, until the partition opens (and kept in every checkpoint
	// until then, so that a cluster member writing before its image
	// opened a partition does not forget its start).
	restored map[string]storage.PartitionOffset
	writing  bool
	// waiting are the callers of the replacement after the one running.
	waiting []func(error)
	// written is what the last completed replacement wrote.
	written []byte
}

// writeLogStarts replaces the log-start checkpoint with every hosted
// log's start and calls done once that is durable (nil: no one waits).
func (b *Broker) writeLogStarts(done func(error)) {
	ls := &b.logStarts
	if done != nil {
		if len(ls.waiting) >= logStartWaitersMax {
			done(errLogStartWaitersFull)
			return
		}
		ls.waiting = append(ls.waiting, done)
	}
	if ls.writing {
		return // the running replacement starts the next one
	}
	if b.topics == nil {
		// The broker stopped (a fatal error, a clean stop) while a
		// write ran: its logs are closed, and what waits for this one
		// was not answered; the next start reads the file afresh.
		waiters := ls.waiting
		ls.waiting = nil
		for _, w := range waiters {
			w(errLogStartsStopped)
		}
		return
	}
	data, err := storage.EncodeOffsetCheckpoint(b.logStartEntries())
	if err == nil && len(ls.waiting) == 0 && string(data) == string(ls.written) {
		return // nothing moved since the last one
	}
	waiters := ls.waiting
	ls.waiting = nil
	finish := func(err error) {
		for _, w := range waiters {
			w(err)
		}
	}
	if err != nil {
		finish(fmt.Errorf("encode %s: %w", logStartFile, err))
		return
	}
	ls.writing = true
	storage.ReplaceFile(b.env.FS, path.Join(b.cfg.DataDir, logStartFile), data, func(err error) {
		ls.writing = false
		if err == nil {
			ls.written = data
		} else {
			b.env.Log.Logf("write %s: %v", logStartFile, err)
		}
		finish(err)
		if len(ls.waiting) > 0 {
			b.writeLogStarts(nil)
		}
	})
}

var (
	errLogStartWaitersFull = errors.New("too many requests waiting for the log start checkpoint")
	errLogStartsStopped    = errors.New("the broker stopped before the log start checkpoint was written")
)

// logStartEntries lists the hosted logs' starts and the restored entries
// of partitions not open yet.
func (b *Broker) logStartEntries() []storage.PartitionOffset {
	var entries []storage.PartitionOffset
	seen := map[string]bool{}
	for _, name := range b.topics.sortedNames() {
		for _, p := range b.topics.get(name).hosted() {
			key := path.Base(partitionDir("", p.topic, p.index))
			seen[key] = true
			// Every log, as Kafka writes them: a start at a segment's base
			// still counts until the deletion of the segments below it is
			// durable.
			entries = append(entries, storage.PartitionOffset{Topic: p.topic, Partition: p.index, Offset: p.log.StartOffset()})
		}
	}
	for key, e := range b.logStarts.restored {
		if !seen[key] {
			entries = append(entries, e)
		}
	}
	return entries // EncodeOffsetCheckpoint sorts them
}

// loadLogStarts reads the log-start checkpoint. A missing file means no
// start was moved; an unreadable one is logged and every log starts at
// its first segment, which can serve deleted records again.
//
// A replacement from before a fatal error may still be syncing: a restart
// comes a second later, and a real disk's syncs run side by side (the
// simulated device serves them in turn, so there the start's own syncs
// wait for it). It keeps its writing flag and its waiters, so that this
// start's replacements queue behind it instead of writing the same
// temporary file at once, and its end still starts the next one.
func (b *Broker) loadLogStarts() {
	b.logStarts.restored = map[string]storage.PartitionOffset{}
	b.logStarts.written = nil
	name := path.Join(b.cfg.DataDir, logStartFile)
	data, err := storage.ReadCheckpointFile(b.env.FS, name)
	if errors.Is(err, sim.ErrNotExist) {
		return
	}
	if err != nil {
		b.env.Log.Logf("read %s: %v; logs start at their first segments", name, err)
		return
	}
	entries, err := storage.DecodeOffsetCheckpoint(data)
	if err != nil {
		b.env.Log.Logf("%s: %v; logs start at their first segments", name, err)
		return
	}
	b.logStarts.written = data
	for _, e := range entries {
		b.logStarts.restored[path.Base(partitionDir("", e.Topic, e.Partition))] = e
	}
}

// restoreLogStart hands an opening log its checkpointed start.
func (b *Broker) restoreLogStart(lg *storage.Log, dir string) {
	key := path.Base(dir)
	if e, ok := b.logStarts.restored[key]; ok {
		lg.RestoreStartOffset(e.Offset)
		delete(b.logStarts.restored, key)
	}
}
