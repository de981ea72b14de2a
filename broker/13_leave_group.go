package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// LeaveGroup: v0-5.
//
// v0-2 one member by id; v3 a batch by member or instance id (KIP-345);
// v4 flexible; v5 a reason per member.
func init() { serve(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, req *request) {
	r := req.kreq.(*kmsg.LeaveGroupRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = e.Code
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.LeaveGroup(now, to, r)
	})
}
