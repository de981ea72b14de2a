package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-1.
//
// The cluster id, this broker as the controller and the only broker. v1
// asks for an endpoint type: brokers (1) are served, controllers (2) are
// not exposed to clients. Authorized operations are not computed (no ACLs).
func init() { serve(60, 0, 1, handleDescribeCluster) }

const endpointTypeBrokers = 1

func handleDescribeCluster(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = r.EndpointType
	if r.Version >= 1 && r.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		req.respond(resp)
		return
	}
	resp.ClusterID, resp.ControllerID = b.cfg.ClusterID, b.cfg.NodeID
	resp.ClusterAuthorizedOperations = -2147483648 // not computed, as Kafka answers when not asked
	broker := kmsg.NewDescribeClusterResponseBroker()
	broker.NodeID, broker.Host, broker.Port = b.cfg.NodeID, b.host, b.port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{broker}
	req.respond(resp)
}
