package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// OffsetCommit: v0-8.
//
// A member commits in its generation; a client outside any group
// (generation -1) only to a group without members. The answer goes out
// once the commit's records are in __consumer_offsets (on disk under group
// commit). v1's per-partition timestamp and v2-4's retention time are
// ignored (offsets are kept until deleted); v6 adds the leader epoch, v7
// group.instance.id, v8 is flexible.
func init() { serve(8, 0, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, req *request) {
	r := req.kreq.(*kmsg.OffsetCommitRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, e.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.OffsetCommit(now, to, r)
	})
}
