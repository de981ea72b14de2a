package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// Heartbeat: v0-4.
//
// Keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin. v3
// adds group.instance.id, v4 is flexible.
func init() { serve(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, req *request) {
	r := req.kreq.(*kmsg.HeartbeatRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = e.Code
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.Heartbeat(now, to, r)
	})
}
