package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// DeleteGroups: v0-2.
//
// Deletes empty groups with their committed offsets (tombstones in
// __consumer_offsets); a group with members is NON_EMPTY_GROUP, an unknown
// one GROUP_ID_NOT_FOUND. v2 is flexible.
func init() { serve(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DeleteGroupsRequest)
	if !b.groups.ensure() {
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range r.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, g)
		}
		req.respond(resp)
		return
	}
	b.groups.call(req, func(now group.Now, to group.ReplyTo) group.Output {
		return b.groups.state.DeleteGroups(now, to, r)
	})
}
