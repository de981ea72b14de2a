package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1.
//
// Changes some of a topic's configs: SET, DELETE (back to the default),
// and APPEND and SUBTRACT for the list config cleanup.policy. Recorded in
// topics.json before it applies to the topic's logs; in a cluster the
// whole new set goes to the controller, as AlterConfigs does. Broker
// configs are fixed at start. validate_only checks without changing. v1 is flexible.
func init() { serve(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, req *request) {
	r := req.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	answerAlters(len(r.Resources), func(i int, done func(alterOutcome)) {
		rr := r.Resources[i]
		t, failed := b.alterTopicResource(rr.ResourceType, rr.ResourceName)
		if failed != nil {
			done(*failed)
			return
		}
		configs := cloneConfigs(t.Configs)
		for _, c := range rr.Configs {
			if failed := applyConfigOp(configs, c, b.topicConfigs(t)); failed != nil {
				done(*failed)
				return
			}
		}
		b.alterTopicConfigs(t, configs, r.ValidateOnly, done)
	}, func(outcomes []alterOutcome) {
		for i, rr := range r.Resources {
			res := kmsg.NewIncrementalAlterConfigsResponseResource()
			res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
			res.ErrorCode, res.ErrorMessage = outcomes[i].code, outcomes[i].message
			resp.Resources = append(resp.Resources, res)
		}
		req.respond(resp)
	})
}

// applyConfigOp applies one operation to a topic's configs; current holds
// the effective values (for APPEND and SUBTRACT on a default).
func applyConfigOp(configs map[string]string, c kmsg.IncrementalAlterConfigsRequestResourceConfig, current []describedConfig) *alterOutcome {
	value := ""
	if c.Value != nil {
		value = *c.Value
	}
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		if c.Value == nil {
			o := alterFailed(kerr.InvalidConfig, "config %s: SET needs a value", c.Name)
			return &o
		}
		configs[c.Name] = value
	case kmsg.IncrementalAlterConfigOpDelete:
		delete(configs, c.Name)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if c.Name != "cleanup.policy" {
			o := alterFailed(kerr.InvalidConfig, "config %s is not a list: APPEND and SUBTRACT apply to cleanup.policy", c.Name)
			return &o
		}
		i := slices.IndexFunc(current, func(d describedConfig) bool { return d.name == c.Name })
		list := strings.Split(current[i].value, ",")
		if v, ok := configs[c.Name]; ok {
			list = strings.Split(v, ",")
		}
		for _, item := range strings.Split(value, ",") {
			list = slices.DeleteFunc(list, func(x string) bool { return x == item })
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				list = append(list, item)
			}
		}
		configs[c.Name] = strings.Join(list, ",")
	default:
		o := alterFailed(kerr.InvalidRequest, "config %s: unknown operation %d", c.Name, c.Op)
		return &o
	}
	return nil
}
