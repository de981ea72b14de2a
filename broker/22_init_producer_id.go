package broker

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-4.
//
// Gives an idempotent producer a new id at epoch 0. From v3 a producer
// that names its current id and epoch gets the same id at the next epoch
// (KIP-360), which fences its own older requests; at the last epoch it
// gets a new id. Transactional ids are not served.
func init() { serve(22, 0, 4, handleInitProducerID) }

func handleInitProducerID(b *Broker, req *request) {
	r := req.kreq.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		req.respond(resp)
		return
	}
	if r.Version >= 3 && r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		req.respond(resp)
		return
	}
	b.pids.allocate(func(id int64, err error) {
		if err != nil {
			b.env.Log.Logf("init producer id: %v", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		} else {
			resp.ProducerID, resp.ProducerEpoch = id, 0
			if b.cluster != nil {
				// Each broker hands out ids of its own range, so that
				// two brokers never give out one id.
				resp.ProducerID = int64(b.cfg.NodeID)<<clusterProducerIDBits | id
			}
		}
		req.respond(resp)
	})
}

// clusterProducerIDBits is how many low bits of a producer id a cluster
// member's own counter fills; the broker id is above them.
const clusterProducerIDBits = 40
