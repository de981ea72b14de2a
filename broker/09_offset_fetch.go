package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// OffsetFetch: v0-8.
//
// Committed offsets, -1 where none; v2 adds the group error and null
// topics (every committed partition), v5 the leader epoch, v6 is flexible,
// v7 require_stable (always stable: transactions are not served), v8 many
// groups in one request.
func init() { serve(9, 0, 8, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, req *request) {
	r := req.kreq.(*kmsg.OffsetFetchRequest)
	if !b.groups.ensure() {
		req.respond(offsetFetchError(r, kerr.CoordinatorNotAvailable))
		return
	}
	b.groups.call(req, func(now group.Now, to group.ReplyTo) group.Output {
		return b.groups.state.OffsetFetch(now, to, r)
	})
}

func offsetFetchError(r *kmsg.OffsetFetchRequest, e *kerr.Error) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.ErrorCode = e.Code
	for _, rg := range r.Groups {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, e.Code
		resp.Groups = append(resp.Groups, g)
	}
	for _, rt := range r.Topics { // v0-1 carry the error per partition
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.ErrorCode = p, -1, e.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
