package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
)

// ListGroups: v0-5.
//
// Every group this broker coordinates; v3 is flexible, v4 filters by
// state, v5 by type (every group is "classic"). Before __consumer_offsets
// exists there are none, and listing does not create it.
func init() { serve(16, 0, 5, handleListGroups) }

func handleListGroups(b *Broker, req *request) {
	r := req.kreq.(*kmsg.ListGroupsRequest)
	if !b.groups.serving() {
		req.respond(r.ResponseKind())
		return
	}
	b.groups.call(req, func(now group.Now, to group.ReplyTo) group.Output {
		return b.groups.state.ListGroups(now, to, r)
	})
}
