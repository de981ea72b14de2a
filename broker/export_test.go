package broker

import (
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
)

// ReplicaLog describes the batches of a partition's log on this broker,
// each as "base-last epoch crc", so that tests can compare replicas; nil
// when the broker holds no replica of it.
func (b *Broker) ReplicaLog(topicName string, index int32) []string {
	if b.topics == nil {
		return nil
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return nil
	}
	lg := t.partitions[index].log
	var out []string
	for offset := lg.StartOffset(); offset < lg.EndOffset(); {
		res, err := lg.Read(offset, 1<<20, lg.EndOffset())
		if err != nil || res.Batches == 0 {
			return append(out, fmt.Sprintf("read at %d: %v", offset, err))
		}
		batches, _ := record.Split(res.Data, res.Batches)
		for _, batch := range batches {
			out = append(out, fmt.Sprintf("%d-%d e%d %08x", batch.BaseOffset(), batch.LastOffset(), batch.PartitionLeaderEpoch(), batch.CRC()))
		}
		offset = res.NextOffset
	}
	return out
}

// ReplicaRole is this broker's role in a partition and its high
// watermark and log end, for tests.
func (b *Broker) ReplicaRole(topicName string, index int32) (role string, epoch int32, hw, end int64) {
	if b.topics == nil {
		return "", -1, -1, -1
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return "", -1, -1, -1
	}
	p := t.partitions[index]
	return p.replica.role.String(), p.leaderEpoch, p.highWatermark(), p.log.EndOffset()
}

// PartitionRetention is the retention (retention.ms) this broker last
// applied to the logs of a topic, and whether it holds a replica of the
// partition; the broker reconfigures every open log of the topic with the
// same config.
func (b *Broker) PartitionRetention(topicName string, index int32) (time.Duration, bool) {
	if b.topics == nil {
		return 0, false
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return 0, false
	}
	return t.logConfig.RetentionAge, true
}
