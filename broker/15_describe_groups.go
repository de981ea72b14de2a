package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// DescribeGroups: v0-5.
//
// State, protocol and members of each group; members carry their
// metadata and assignment while the group is Stable. An unknown group is
// "Dead" with no error, as Kafka answers. v3's authorized operations are
// not computed (no ACLs), v4 adds group.instance.id, v5 is flexible.
func init() { serve(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DescribeGroupsRequest)
	if !b.groups.ensure() {
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range r.Groups {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, g)
		}
		req.respond(resp)
		return
	}
	b.groups.call(req, func(now group.Now, to group.ReplyTo) group.Output {
		return b.groups.state.DescribeGroups(now, to, r)
	})
}
