package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// JoinGroup: v0-9.
//
// Served by broker/group: v1 adds the rebalance timeout, v4 hands a new
// member its id first (MEMBER_ID_REQUIRED, KIP-394), v5 static membership
// (group.instance.id, KIP-345), v6 flexible, v7 the protocol type in the
// answer, v8 a reason, v9 SkipAssignment (always false here: a returning
// static leader rebalances). The answer waits for the rebalance.
func init() { serve(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, req *request) {
	r := req.kreq.(*kmsg.JoinGroupRequest)
	b.groupRequest(req, r.Group, func(e *kerr.Error) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = e.Code, -1, r.MemberID
		return resp
	}, func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output {
		return c.JoinGroup(now, to, clientOf(req), r)
	})
}
