package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2.
//
// Replaces a topic's whole set of configs (a config left out returns to
// the broker's default), recorded in topics.json before it applies to the
// topic's logs; in a cluster, recorded by the controller in the metadata
// log, applied by every broker from its image, and answered once this
// broker's image holds it. Broker configs are fixed at start. validate_only checks
// without changing. v2 is flexible.
func init() { serve(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, req *request) {
	r := req.kreq.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	answerAlters(len(r.Resources), func(i int, done func(alterOutcome)) {
		rr := r.Resources[i]
		t, failed := b.alterTopicResource(rr.ResourceType, rr.ResourceName)
		if failed != nil {
			done(*failed)
			return
		}
		configs := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value == nil {
				done(alterFailed(kerr.InvalidConfig, "config %s has no value", c.Name))
				return
			}
			configs[c.Name] = *c.Value
		}
		b.alterTopicConfigs(t, configs, r.ValidateOnly, done)
	}, func(outcomes []alterOutcome) {
		for i, rr := range r.Resources {
			res := kmsg.NewAlterConfigsResponseResource()
			res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
			res.ErrorCode, res.ErrorMessage = outcomes[i].code, outcomes[i].message
			resp.Resources = append(resp.Resources, res)
		}
		req.respond(resp)
	})
}
