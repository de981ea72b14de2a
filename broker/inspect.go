package broker

import "github.com/sluice-sim/sluice/broker/storage"

// PartitionLog is this broker's log of a partition, nil when it holds no
// replica of it. Scenarios read it at the end of a run to audit what the
// log keeps beside its batches (its leader epochs and producer state)
// against the batches themselves; they must not change it.
func (b *Broker) PartitionLog(topicName string, index int32) *storage.Log {
	if b.topics == nil {
		return nil
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return nil
	}
	return t.partitions[index].log
}
