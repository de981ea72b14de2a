package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/storage"
)

// DeleteRecords: v0-2.
//
// Moves each partition's log start offset up to the offset asked (-1: the
// high watermark), as Kafka's deleteRecordsOnLeader does: reads below it
// are refused at once, the segments wholly below it are deleted, and the
// answer is the new low watermark. An offset above the high watermark is
// OFFSET_OUT_OF_RANGE, a compact-only topic POLICY_VIOLATION, and a broker
// that does not lead the partition NOT_LEADER_OR_FOLLOWER.
//
// The answer waits until the log-start-offset-checkpoint holding the new
// starts is durable, so that an acknowledged deletion survives a crash
// (Kafka checkpoints periodically and may bring deleted records back).
// In a cluster it does not wait for the followers to move their own
// starts (Kafka's DelayedDeleteRecords): they follow from the next fetch
// answer, and until they do a new leader could serve records below it.
func init() { serve(21, 0, 2, handleDeleteRecords) }

// deleteToHighWatermark is the offset that asks for everything below the
// high watermark.
const deleteToHighWatermark = -1

func handleDeleteRecords(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	moved := false
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			if b.deleteRecords(rt.Topic, rp, &sp) {
				moved = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if !moved {
		req.respond(resp)
		return
	}
	b.writeLogStarts(func(err error) {
		if err != nil {
			b.env.Log.Logf("delete records: %v", err)
			markStorageErrors(resp)
		}
		req.respond(resp)
	})
}

// markStorageErrors fails every partition not already failed when the
// checkpoint could not be written: a retry is harmless (the start never
// moves back) and makes the deletion durable.
func markStorageErrors(resp *kmsg.DeleteRecordsResponse) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
				sp.ErrorCode = kerr.KafkaStorageError.Code
			}
		}
	}
}

// deleteRecords moves one partition's log start and reports whether it
// moved.
func (b *Broker) deleteRecords(topicName string, rp kmsg.DeleteRecordsRequestTopicPartition, sp *kmsg.DeleteRecordsResponseTopicPartition) bool {
	sp.LowWatermark = -1
	p, kerrv := b.lookupLeader(topicName, rp.Partition)
	if kerrv != nil {
		sp.ErrorCode = kerrv.Code
		return false
	}
	if b.topics.get(topicName).logConfig.Cleanup == storage.CleanupCompact {
		sp.ErrorCode = kerr.PolicyViolation.Code
		return false
	}
	hw := p.highWatermark()
	offset := rp.Offset
	if offset == deleteToHighWatermark {
		offset = hw
	}
	if offset < 0 || offset > hw {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return false
	}
	moved, err := p.log.AdvanceStartOffset(offset)
	if err != nil {
		b.env.Log.Logf("partition %s-%d: delete records before %d: %v", p.topic, p.index, offset, err)
		sp.ErrorCode = storageCode(err).Code
		return false
	}
	sp.LowWatermark = p.log.StartOffset()
	return moved
}
