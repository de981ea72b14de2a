package broker

import (
	"errors"
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
// partition directory name. A missing or unreadable checkpoint means
// every log is scanned in full: slower, never wrong.
func (b *Broker) loadRecoveryPoints() {
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
