package broker

import "github.com/sluice-sim/sluice/broker/storage"

// PartitionReplica is this broker's replica of a partition, with the high
// watermark it knows (a leader's own, a follower's from its fetches) and
// whether it leads it, for checks that compare the replicas once a run
// has healed; ok is false when the broker holds no replica of it.
func (b *Broker) PartitionReplica(topic string, partition int32) (log *storage.Log, highWatermark int64, leader, ok bool) {
	if b.topics == nil {
		return nil, 0, false, false
	}
	t := b.topics.get(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.partitions) || t.partitions[partition] == nil {
		return nil, 0, false, false
	}
	p := t.partitions[partition]
	if b.cluster == nil {
		return p.log, p.log.EndOffset(), true, true
	}
	return p.log, p.replica.hw, p.replica.role == roleLeader, true
}
