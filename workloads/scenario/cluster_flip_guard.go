package scenario

import (
	"path"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// The broker-cluster scenarios promise that every committed record is
// delivered as long as one copy of it is left: replication repairs a
// replica's damage from another (broker/damage.go). A bit flip drawn in
// advance cannot know how many copies the bytes it lands in have. A
// batch a leader appended alone (its followers were down, or the ISR
// shrank to the leader and the high watermark rose over what only it
// held) has one, and a flip there destroys the record outright: the
// partition then stays fenced at that range for good, as Kafka's would
// (cluster-swarm seed 1766). So the brokers' disks spare a flip in a
// partition's log unless another replica, on a broker whose logs no flip
// has reached, holds the batch the flip lands in (its offsets, of the
// same leader epoch). Flips elsewhere (indexes, checkpoints, state files)
// are not spared: the broker rebuilds those or keeps several copies.

// flipGuard is broker id's disk's guard.
func (c *leaderCrashCluster) flipGuard(id int32) simdisk.FlipGuard {
	return func(spot simdisk.FlipSpot) bool {
		topic, partition, ok := partitionOfSegment(spot.Name)
		if !ok {
			return false
		}
		b, ok := batchAtSpot(spot)
		if !ok || !c.anotherCopy(id, topic, partition, b) {
			c.flipsSpared++
			return true
		}
		c.logFlipped[id] = true
		return false
	}
}

// partitionOfSegment names the partition whose log segment file name is
// (<log dir>/<topic>-<partition>/<base>.log).
func partitionOfSegment(name string) (string, int32, bool) {
	if path.Ext(name) != ".log" {
		return "", 0, false
	}
	dir := path.Base(path.Dir(name))
	dash := strings.LastIndexByte(dir, '-')
	if dash <= 0 {
		return "", 0, false
	}
	partition, err := strconv.ParseInt(dir[dash+1:], 10, 32)
	if err != nil || partition < 0 {
		return "", 0, false
	}
	return dir[:dash], int32(partition), true
}

// spotBatch is the batch a flip was drawn in.
type spotBatch struct {
	base, last int64
	epoch      int32
}

// batchAtSpot walks a segment's batch headers to the batch holding the
// spot's byte; false when a header cannot be read (a torn tail, earlier
// damage): the flip is spared then.
func batchAtSpot(spot simdisk.FlipSpot) (spotBatch, bool) {
	header := make([]byte, record.HeaderBytes)
	for pos := int64(0); pos <= spot.Offset; {
		if spot.Read(header, pos) < len(header) {
			return spotBatch{}, false
		}
		size, err := record.FrameBytes(header)
		if err != nil {
			return spotBatch{}, false
		}
		if spot.Offset < pos+int64(size) {
			b := record.Batch(header)
			return spotBatch{base: b.BaseOffset(), last: b.LastOffset(), epoch: b.PartitionLeaderEpoch()}, b.LastOffset() >= b.BaseOffset()
		}
		pos += int64(size) // at least a header: the walk ends
	}
	return spotBatch{}, false
}

// anotherCopy reports whether a running broker other than id, whose logs
// no flip has reached, holds batch b of the partition.
func (c *leaderCrashCluster) anotherCopy(id int32, topic string, partition int32, b spotBatch) bool {
	for _, other := range leaderCrashBrokerIDs {
		if other == id || c.logFlipped[other] {
			continue
		}
		if log, _, ok := c.replicaLog(other, topic, partition, false); ok && holdsBatch(log, b) {
			return true
		}
	}
	return false
}

// holdsBatch reports whether log holds b's offsets in b's leader epoch.
func holdsBatch(log *storage.Log, b spotBatch) bool {
	if log.StartOffset() > b.base || log.EndOffset() <= b.last {
		return false
	}
	epochs := log.Epochs()
	for i, e := range epochs {
		next := log.EndOffset()
		if i+1 < len(epochs) {
			next = epochs[i+1].StartOffset
		}
		if e.StartOffset <= b.base && b.last < next {
			return e.Epoch == b.epoch
		}
	}
	return false
}
