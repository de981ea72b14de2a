package broker

import "github.com/sluice-sim/sluice/broker/storage"

// PartitionLog is this broker's log of a partition, nil when it holds no
// replica of it. Scenarios read it at the end of a run to audit what the
// log keeps beside its batches (its leader epochs and producer state)
// against the batches themselves; they must not change it.
func (b *Broker) PartitionLog(topicName string, index int32) *storage.Log {
	if p := b.inspectPartition(topicName, index); p != nil {
		return p.log
	}
	return nil
}

// PartitionHighWatermark is this broker's high watermark of a partition,
// -1 when it holds no replica of it: what a restart audit compares with
// the one the broker rebuilds from its disk.
func (b *Broker) PartitionHighWatermark(topicName string, index int32) int64 {
	if p := b.inspectPartition(topicName, index); p != nil {
		return p.highWatermark()
	}
	return -1
}

// inspectPartition is this broker's replica of a partition, nil when it
// holds none.
func (b *Broker) inspectPartition(topicName string, index int32) *partition {
	if b.topics == nil {
		return nil
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return nil
	}
	return t.partitions[index]
}
