package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// OffsetDelete: v0.
//
// Deletes a group's committed offsets of topics no member subscribes to
// (KIP-496); a subscribed topic's partitions get GROUP_SUBSCRIBED_TO_TOPIC.
func init() { serve(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, req *request) {
	r := req.kreq.(*kmsg.OffsetDeleteRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = e.Code
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.OffsetDelete(now, to, r)
	})
}
