package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-4.
//
// The coordinator of a group is the leader of its __consumer_offsets
// partition (Java's hashCode of the group id modulo the partition count):
// a single broker leads them all; in a cluster the image names the leader,
// and a partition without one is COORDINATOR_NOT_AVAILABLE. The first
// request creates __consumer_offsets (in a cluster through the controller)
// and is answered COORDINATOR_NOT_AVAILABLE until the topic exists, as
// Kafka does. v4 batches keys. Transaction
// coordinators are not served (transactions are not).
func init() { serve(10, 0, 4, handleFindCoordinator) }

const coordinatorTypeGroup = 0

func handleFindCoordinator(b *Broker, req *request) {
	r := req.kreq.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, -1, "", -1
		var e *kerr.Error
		switch {
		case r.CoordinatorType != coordinatorTypeGroup:
			e = kerr.CoordinatorNotAvailable
			msg := "transactions are not served"
			c.ErrorMessage = &msg
		case key == "" && r.Version >= 4:
			e = kerr.InvalidRequest
		default:
			var why string
			c.NodeID, c.Host, c.Port, why = b.groups.locate(key)
			if why != "" {
				e, c.ErrorMessage = kerr.CoordinatorNotAvailable, &why
			}
		}
		if e != nil {
			c.ErrorCode = e.Code
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if r.Version < 4 && len(resp.Coordinators) == 1 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	req.respond(resp)
}
