package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v0-4.
//
// Where a leader epoch ends in the leader's log (KIP-101/279): for the
// leader's latest epoch its log end, for an older one the start of the
// next epoch it knows, with the largest epoch it knows not above the one
// asked. Followers truncate to it on becoming followers; consumers use it
// to detect a log that was truncated under them (KIP-320). Served by the
// leader only; current_leader_epoch (v2+) fences a stale or future epoch.
func init() { serve(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, req *request) {
	r := req.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			b.epochEndOffset(rt.Topic, rp, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	req.respond(resp)
}

func (b *Broker) epochEndOffset(topicName string, rp kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
	sp.LeaderEpoch, sp.EndOffset = -1, -1
	p, kerrv := b.lookupLeaderAt(topicName, rp.Partition, rp.CurrentLeaderEpoch)
	if kerrv != nil {
		sp.ErrorCode = kerrv.Code
		return
	}
	if err := p.log.Err(); err != nil {
		sp.ErrorCode = storageCode(err).Code
		return
	}
	sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
}
