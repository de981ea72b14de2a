package broker

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// fetchWaitersMax bounds the fetches one partition holds while they wait
// for data.
const fetchWaitersMax = 10_000

// partition is one partition this broker leads or, in a cluster, one it
// holds a replica of.
type partition struct {
	b     *Broker
	topic string
	index int32
	log   *storage.Log
	// leaderEpoch goes up each time this broker becomes the partition's
	// leader, here at every start, so batches record which leadership
	// wrote them.
	leaderEpoch int32
	// groupCommit: acknowledge and expose writes only once they are on
	// disk (the high watermark is the flushed offset).
	groupCommit bool
	waiters     []*fetchWait
	// waitersSpare is the room of the waiters last woken, for the next
	// to park: a leader wakes its fetches on every append.
	waitersSpare []*fetchWait
	// replica is this broker's part in the partition's replication;
	// unused by a single broker (replication.go).
	replica replicaState
	// deletes is what DeleteRecords answers wait on as leader
	// (21_delete_records.go).
	deletes deleteState
}

func (t *topic) openPartitions(b *Broker) error {
	t.partitions = make([]*partition, t.Partitions)
	for i := range t.partitions {
		p, err := openPartition(b, t, int32(i))
		if err != nil {
			for _, opened := range t.partitions[:i] {
				opened.close()
			}
			return err
		}
		t.partitions[i] = p
	}
	return nil
}

// Probes of what a partition's recovery had to do.
var (
	probeTornTail = sim.DeclareProbe("storage/torn-tail-cut",
		"recovery cut a torn or corrupt tail off a partition's log")
	probeDamageKept = sim.DeclareProbe("storage/damage-fenced",
		"recovery found damaged batches below the tail and fenced them off")
	probeRotFenced = sim.DeclareProbe("storage/rot-fenced-above-recovery-point",
		"recovery fenced a batch one bit off above the recovery point (rot, not a torn write) instead of cutting the log there")
	probeIndexRebuilt = sim.DeclareProbe("storage/index-rebuilt",
		"recovery rebuilt a segment's offset or time index")
	probeProducersReplayed = sim.DeclareProbe("storage/producer-state-replayed",
		"recovery rebuilt producer state by replaying batches after a snapshot")
	probeRewritten = sim.DeclareProbe("storage/rewritten-above-recovery-point",
		"recovery wrote again what it read back above the recovery point (fsyncgate)")
	probeFlushedLost = sim.DeclareProbe("storage/flushed-data-lost",
		"the recovered log ends below its recovery point: the disk lost flushed writes")
	probeSwapCompleted = sim.DeclareProbe("storage/compaction-swap-completed",
		"recovery finished a compaction's segment swap that a crash interrupted")
	probeLogOffline = sim.DeclareProbe("storage/log-offline",
		"a partition's log went offline on a disk error it could not undo, and the broker started over to recover it")
)

// logOffline hears, inside the log call that failed, that the partition's
// log went offline: its state no longer matches the disk. Kafka takes the
// log directory offline, and a broker whose every log directory is
// offline halts for its supervisor to start it again; this broker has
// one. So it stops and starts over (fatal), and recovery at the start
// reads the log back from what the disk holds; until then the partition
// answers KAFKA_STORAGE_ERROR.
func (p *partition) logOffline(err error) {
	b := p.b
	b.env.Hit(probeLogOffline)
	if m := b.cluster; m != nil {
		if m.restarting {
			return
		}
		m.restarting = true
	}
	b.fatalSoon(fmt.Errorf("partition %s-%d: log directory offline: %w", p.topic, p.index, err))
}

func hitRecoveryProbes(env sim.Env, report storage.RecoveryReport) {
	if len(report.Truncations) > 0 {
		env.Hit(probeTornTail)
	}
	if len(report.Damage) > 0 {
		env.Hit(probeDamageKept)
	}
	if report.RotFenced > 0 {
		env.Hit(probeRotFenced)
	}
	if len(report.RebuiltIndexes) > 0 {
		env.Hit(probeIndexRebuilt)
	}
	if report.ProducerBatchesReplayed > 0 {
		env.Hit(probeProducersReplayed)
	}
	if report.RewrittenBytes > 0 {
		env.Hit(probeRewritten)
	}
	if report.FlushedLost {
		env.Hit(probeFlushedLost)
	}
	if len(report.CompletedSwaps) > 0 {
		env.Hit(probeSwapCompleted)
	}
}

func openPartition(b *Broker, t *topic, index int32) (*partition, error) {
	dir := partitionDir(b.cfg.DataDir, t.Name, index)
	if err := b.env.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	logf := func(format string, args ...any) { b.env.Log.Logf(format, args...) }
	cfg := t.logConfig
	// A cluster member's peers repair what it fences; a single broker
	// cuts at rot above its recovery point.
	cfg.FenceRot = b.cluster != nil
	lg, report, err := storage.Open(b.env.FS, b.env.Clock, dir, cfg, b.recoveryPoints[path.Base(dir)], logf)
	if err != nil {
		return nil, err
	}
	b.restoreLogStart(lg, dir)
	for _, d := range report.Damage {
		b.env.Log.Logf("partition %s-%d: damaged data found in recovery, not served: %+v", t.Name, index, d)
	}
	for _, cut := range report.Truncations {
		b.env.Log.Logf("partition %s-%d: recovery cut a torn or corrupt tail: %+v", t.Name, index, cut)
	}
	if report.FlushedLost {
		b.env.Log.Logf("partition %s-%d: data below the recovery point is gone: the disk lost flushed writes", t.Name, index)
	}
	if report.Repaired() {
		b.env.Log.Logf("recovery: partition %s-%d: %s", t.Name, index, report.Summary())
	}
	if b.startRecovery != nil {
		b.startRecovery.add(report)
	}
	hitRecoveryProbes(b.env, report)
	p := &partition{b: b, topic: t.Name, index: index, log: lg,
		groupCommit: t.logConfig.Flush.Mode == storage.FlushGroupCommit}
	lg.OnOffline(p.logOffline)
	if b.cluster != nil {
		// The image says who leads and at which epoch (becomeLeader,
		// becomeFollower); until then the partition serves nobody.
		p.leaderEpoch = -1
		p.replica = newReplicaState(t, b.env.Clock.Mono(), lg.Reopens())
		p.watchDamage()
		return p, nil
	}
	// Epochs count from 0; the first start leads at 0.
	p.leaderEpoch = b.starts - 1
	if epochs := lg.Epochs(); len(epochs) > 0 {
		p.leaderEpoch = max(p.leaderEpoch, epochs[len(epochs)-1].Epoch+1)
	}
	if err := lg.AssignEpoch(p.leaderEpoch, lg.EndOffset()); err != nil {
		lg.Close()
		return nil, err
	}
	// What recovery kept above the recovery point may be only in the page
	// cache (after a process crash); sync it so that the high watermark
	// and acknowledgements of replays can count on it.
	lg.Flush(func(err error) {
		if err == nil {
			p.dataArrived()
		}
	})
	return p, nil
}

// recoveryTally sums what recovery did to the partitions one start opened.
type recoveryTally struct {
	startMono      time.Duration
	partitions     int
	clean          int
	truncatedBytes int64
	rewrittenBytes int64
	damaged        int
}

func (r *recoveryTally) add(report storage.RecoveryReport) {
	r.partitions++
	if !report.Repaired() {
		r.clean++
	}
	if len(report.Damage) > 0 || report.FlushedLost {
		r.damaged++
	}
	r.truncatedBytes += report.TruncatedBytes()
	r.rewrittenBytes += report.RewrittenBytes
}

// summary is the start's one line on recovery.
func (r *recoveryTally) summary(now time.Duration) string {
	return fmt.Sprintf("recovery: %d partitions opened in %v, %d recovered cleanly, %d repaired (%d with data lost or damaged), "+
		"%d bytes truncated, %d bytes above recovery points written again",
		r.partitions, now-r.startMono, r.clean, r.partitions-r.clean, r.damaged, r.truncatedBytes, r.rewrittenBytes)
}

func (t *topic) close() {
	for _, p := range t.partitions {
		if p != nil {
			p.close()
		}
	}
}

func (p *partition) close() {
	p.leaveReplication()
	for _, w := range slices.Clone(p.waiters) {
		w.finish()
	}
	p.waiters = nil
	if err := p.log.Close(); err != nil {
		p.b.env.Log.Logf("close %s-%d: %v", p.topic, p.index, err)
	}
}

// highWatermark is the end of what consumers may read: with group commit
// what is on disk, otherwise everything appended (one broker is the whole
// ISR).
func (p *partition) highWatermark() int64 {
	if p.b.cluster != nil {
		return p.replica.hw
	}
	if p.groupCommit {
		return min(p.log.FlushedOffset(), p.log.EndOffset())
	}
	return p.log.EndOffset()
}

// dataArrived wakes the fetches waiting on this partition (a leader in a
// cluster first sees whether its high watermark moved); one that still has
// too little parks again.
func (p *partition) dataArrived() {
	if p.b.cluster != nil {
		p.advanceHighWatermark()
	}
	p.wakeWaiters()
}

func (p *partition) wakeWaiters() {
	// The fetches woken may park again: they go on the spare slice, and
	// the one walked here becomes the spare, so that a fetch parked for
	// every batch appended does not grow a fresh slice each time.
	waiters := p.waiters
	p.waiters, p.waitersSpare = p.waitersSpare, nil
	for _, w := range waiters {
		w.parked = slices.DeleteFunc(w.parked, func(q *partition) bool { return q == p })
	}
	for _, w := range waiters {
		if !w.done {
			w.retry()
		}
	}
	if p.waitersSpare == nil { // not taken by a wake nested in the loop
		clear(waiters)
		p.waitersSpare = waiters[:0]
	}
}

func (p *partition) removeWaiter(w *fetchWait) {
	p.waiters = slices.DeleteFunc(p.waiters, func(x *fetchWait) bool { return x == w })
}

func (p *partition) addWaiter(w *fetchWait) bool {
	if len(p.waiters) >= fetchWaitersMax {
		return false
	}
	p.waiters = append(p.waiters, w)
	return true
}

// lookupPartition finds a partition clients may use: in a cluster, one
// this broker holds a replica of.
func (b *Broker) lookupPartition(topicName string, index int32) (*partition, *kerr.Error) {
	t := b.topics.get(topicName)
	if t == nil || index < 0 || index >= int32(len(t.partitions)) {
		return nil, kerr.UnknownTopicOrPartition
	}
	if t.partitions[index] == nil {
		return nil, kerr.NotLeaderForPartition
	}
	if t.partitions[index].lostData() {
		return nil, kerr.KafkaStorageError
	}
	return t.partitions[index], nil
}

// lookupLeader finds a partition this broker leads: produce, consumers'
// fetches and offset lookups are served by the leader only.
func (b *Broker) lookupLeader(topicName string, index int32) (*partition, *kerr.Error) {
	p, kerrv := b.lookupPartition(topicName, index)
	if kerrv == nil && b.cluster != nil && p.replica.role != roleLeader {
		return nil, kerr.NotLeaderForPartition
	}
	return p, kerrv
}

// lookupLeaderAt is lookupLeader for a request that names the leader
// epoch it knows (KIP-320): a newer epoch than this leader's is unknown
// here yet, an older one fenced; a negative one asks for no check.
func (b *Broker) lookupLeaderAt(topicName string, index, currentEpoch int32) (*partition, *kerr.Error) {
	p, kerrv := b.lookupLeader(topicName, index)
	switch {
	case kerrv != nil:
		return nil, kerrv
	case currentEpoch < 0:
	case currentEpoch > p.leaderEpoch:
		return nil, kerr.UnknownLeaderEpoch
	case currentEpoch < p.leaderEpoch:
		return nil, kerr.FencedLeaderEpoch
	}
	return p, nil
}

// storageCode maps a log error to the Kafka error a client gets.
func storageCode(err error) *kerr.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrCorruptLog), errors.Is(err, record.ErrCorrupt):
		return kerr.CorruptMessage
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, storage.ErrBatchTooLarge):
		return kerr.MessageTooLarge
	case errors.Is(err, storage.ErrStorage), errors.Is(err, storage.ErrClosed),
		errors.Is(err, storage.ErrTruncating), // the log is flushing its cut; a retry succeeds
		errors.Is(err, sim.ErrIO), errors.Is(err, sim.ErrNoSpace):
		return kerr.KafkaStorageError
	}
	return kerr.UnknownServerError
}
