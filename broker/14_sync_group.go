package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// SyncGroup: v0-5.
//
// The leader's request carries the assignment; every member's answer
// waits until it is recorded in __consumer_offsets. v3 adds
// group.instance.id, v4 is flexible, v5 carries the protocol type and name.
func init() { serve(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, req *request) {
	r := req.kreq.(*kmsg.SyncGroupRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = e.Code
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.SyncGroup(now, to, r)
	})
}
