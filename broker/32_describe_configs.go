package broker

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/storage"
)

// DescribeConfigs: v0-4.
//
// A topic's configs (the keys of topicConfigKeys) with their effective
// values: set on the topic (DYNAMIC_TOPIC_CONFIG) or the broker's
// defaults (DEFAULT_CONFIG); and this broker's own configs, read-only
// (STATIC_BROKER_CONFIG). Synonyms (v1) and documentation (v3) are not
// given; v3 adds each config's type, v4 is flexible. In a cluster a
// topic's configs are those of this broker's metadata image.
func init() { serve(32, 0, 4, handleDescribeConfigs) }

// describedConfig is one config of a resource.
type describedConfig struct {
	name     string
	value    string
	set      bool
	readOnly bool
	kind     kmsg.ConfigType
}

func handleDescribeConfigs(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var configs []describedConfig
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.topics.get(rr.ResourceName)
			if b.cluster != nil {
				t = b.cluster.topicView(rr.ResourceName)
			}
			if t == nil {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "topic " + rr.ResourceName + " does not exist"
				res.ErrorMessage = &msg
				break
			}
			configs = b.topicConfigs(t)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := "broker " + rr.ResourceName + " is not this broker (" + strconv.Itoa(int(b.cfg.NodeID)) + ")"
				res.ErrorMessage = &msg
				break
			}
			configs = b.brokerConfigs()
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
		}
		for _, c := range configs {
			if len(rr.ConfigNames) > 0 && !slices.Contains(rr.ConfigNames, c.name) {
				continue
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			value := c.value
			rc.Name, rc.Value, rc.ReadOnly, rc.IsDefault, rc.ConfigType = c.name, &value, c.readOnly, !c.set, c.kind
			switch {
			case c.readOnly:
				rc.Source = kmsg.ConfigSourceStaticBrokerConfig
			case c.set:
				rc.Source = kmsg.ConfigSourceDynamicTopicConfig
			default:
				rc.Source = kmsg.ConfigSourceDefaultConfig
			}
			res.Configs = append(res.Configs, rc)
		}
		resp.Resources = append(resp.Resources, res)
	}
	req.respond(resp)
}

// topicConfigs are a topic's effective configs in topicConfigKeys order.
func (b *Broker) topicConfigs(t *topic) []describedConfig {
	cfg := t.logConfig
	flushMessages, flushMs := int64(math.MaxInt64), int64(math.MaxInt64) // Kafka's "never"
	switch cfg.Flush.Mode {
	case storage.FlushEveryMessages:
		flushMessages = cfg.Flush.Messages
	case storage.FlushEveryInterval:
		flushMs = cfg.Flush.Interval.Milliseconds()
	case storage.FlushGroupCommit:
		flushMessages = 1 // every write is on disk before it is acknowledged
	}
	retentionBytes := cfg.RetentionBytes
	if retentionBytes <= 0 { // unbounded
		retentionBytes = -1
	}
	values := map[string]struct {
		value string
		kind  kmsg.ConfigType
	}{
		"cleanup.policy":       {cfg.Cleanup.String(), kmsg.ConfigTypeList},
		"delete.retention.ms":  {durationMs(cfg.TombstoneRetention), kmsg.ConfigTypeLong},
		"flush.messages":       {strconv.FormatInt(flushMessages, 10), kmsg.ConfigTypeLong},
		"flush.ms":             {strconv.FormatInt(flushMs, 10), kmsg.ConfigTypeLong},
		"index.interval.bytes": {strconv.Itoa(cfg.IndexIntervalBytes), kmsg.ConfigTypeInt},
		"max.message.bytes":    {strconv.Itoa(cfg.MaxBatchBytes), kmsg.ConfigTypeInt},
		"min.insync.replicas":  {strconv.Itoa(b.cfg.MinInsyncReplicas), kmsg.ConfigTypeInt},
		"retention.bytes":      {strconv.FormatInt(retentionBytes, 10), kmsg.ConfigTypeLong},
		"retention.ms":         {durationMs(cfg.RetentionAge), kmsg.ConfigTypeLong},
		"segment.bytes":        {strconv.FormatInt(cfg.SegmentBytes, 10), kmsg.ConfigTypeInt},
		"segment.ms":           {durationMs(cfg.SegmentAge), kmsg.ConfigTypeLong},
	}
	var out []describedConfig
	for _, k := range topicConfigKeys {
		v := values[k]
		c := describedConfig{name: k, value: v.value, kind: v.kind}
		if set, ok := t.Configs[k]; ok {
			c.value, c.set = set, true
		}
		out = append(out, c)
	}
	return out
}

func durationMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// brokerConfigs are this broker's own configs, fixed at start.
func (b *Broker) brokerConfigs() []describedConfig {
	c := b.cfg
	ro := func(name, value string, kind kmsg.ConfigType) describedConfig {
		return describedConfig{name: name, value: value, set: true, readOnly: true, kind: kind}
	}
	return []describedConfig{
		ro("auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), kmsg.ConfigTypeBoolean),
		ro("fetch.max.bytes", strconv.Itoa(c.FetchMaxBytes), kmsg.ConfigTypeInt),
		ro("group.initial.rebalance.delay.ms", strconv.FormatInt(c.Groups.InitialRebalanceDelay.Milliseconds(), 10), kmsg.ConfigTypeInt),
		ro("group.max.session.timeout.ms", strconv.FormatInt(c.Groups.SessionTimeoutMax.Milliseconds(), 10), kmsg.ConfigTypeInt),
		ro("group.min.session.timeout.ms", strconv.FormatInt(c.Groups.SessionTimeoutMin.Milliseconds(), 10), kmsg.ConfigTypeInt),
		ro("log.retention.ms", durationMs(c.Log.RetentionAge), kmsg.ConfigTypeLong),
		ro("log.segment.bytes", strconv.FormatInt(c.Log.SegmentBytes, 10), kmsg.ConfigTypeInt),
		ro("max.connections", strconv.Itoa(c.ConnectionsMax), kmsg.ConfigTypeInt),
		ro("message.max.bytes", strconv.Itoa(c.Log.MaxBatchBytes), kmsg.ConfigTypeInt),
		ro("min.insync.replicas", strconv.Itoa(c.MinInsyncReplicas), kmsg.ConfigTypeInt),
		ro("node.id", strconv.Itoa(int(c.NodeID)), kmsg.ConfigTypeInt),
		ro("num.partitions", strconv.Itoa(int(c.NumPartitions)), kmsg.ConfigTypeInt),
		ro("offsets.retention.minutes", strconv.FormatInt(int64(c.Groups.OffsetsRetention/time.Minute), 10), kmsg.ConfigTypeInt),
		ro("offsets.topic.num.partitions", strconv.Itoa(int(c.Groups.Partitions)), kmsg.ConfigTypeInt),
	}
}
