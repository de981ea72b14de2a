package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-6.
//
// Timestamp -2 is the log start offset, -1 the high watermark (the last
// stable offset is the same: transactions are not served), and any other
// timestamp the first offset whose record is at least that recent, found
// through the time index. (v7 adds -3, the largest timestamp, not served.)
func init() { serve(2, 1, 6, handleListOffsets) }

const (
	listLatest   = -1
	listEarliest = -2
)

func handleListOffsets(b *Broker, req *request) {
	r := req.kreq.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			b.listOffset(rt.Topic, rp, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	req.respond(resp)
}

func (b *Broker) listOffset(topicName string, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	p, kerrv := b.lookupLeaderAt(topicName, rp.Partition, rp.CurrentLeaderEpoch)
	if kerrv != nil {
		sp.ErrorCode = kerrv.Code
		return
	}
	sp.LeaderEpoch = p.leaderEpoch
	switch rp.Timestamp {
	case listLatest:
		sp.Offset = p.highWatermark()
	case listEarliest:
		sp.Offset = p.log.StartOffset()
	default:
		offset, ts, found, err := p.log.OffsetForTime(rp.Timestamp)
		b.answerTimeLookup(sp, offset, ts, found, err)
	}
}

func (b *Broker) answerTimeLookup(sp *kmsg.ListOffsetsResponseTopicPartition, offset, ts int64, found bool, err error) {
	switch {
	case err != nil:
		sp.ErrorCode = storageCode(err).Code
	case found:
		sp.Offset, sp.Timestamp = offset, ts
	}
}
