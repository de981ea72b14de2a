package broker

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/broker/storage"
)

// alterOutcome is one resource's answer to AlterConfigs or
// IncrementalAlterConfigs.
type alterOutcome struct {
	code    int16
	message *string
}

func alterFailed(e *kerr.Error, format string, args ...any) alterOutcome {
	msg := fmt.Sprintf(format, args...)
	return alterOutcome{code: e.Code, message: &msg}
}

// alterTopicResource checks a resource of an alter request and returns its
// topic; a broker's configs are fixed at start. In a cluster the topic is
// the image's (its configs as the metadata log last set them), not
// registered here: the change goes through the controller.
func (b *Broker) alterTopicResource(kind kmsg.ConfigResourceType, name string) (*topic, *alterOutcome) {
	if kind != kmsg.ConfigResourceTypeTopic {
		o := alterFailed(kerr.InvalidRequest, "only topic configs can be altered; broker configs are set at start")
		return nil, &o
	}
	t := b.topics.get(name)
	if b.cluster != nil {
		t = b.cluster.topicView(name)
	}
	if t == nil {
		o := alterFailed(kerr.UnknownTopicOrPartition, "topic %s does not exist", name)
		return nil, &o
	}
	return t, nil
}

// checkTopicConfigs validates a topic's whole new config set.
func (b *Broker) checkTopicConfigs(configs map[string]string) (storage.Config, *alterOutcome) {
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if !isTopicConfigKey(k) {
			o := alterFailed(kerr.InvalidConfig, "unknown topic config %q", k)
			return storage.Config{}, &o
		}
	}
	cfg, err := topicLogConfig(b.cfg.Log, configs)
	if err == nil {
		err = storage.CheckConfig(cfg)
	}
	if err != nil {
		o := alterFailed(kerr.InvalidConfig, "%v", err)
		return storage.Config{}, &o
	}
	return cfg, nil
}

// alterTopicConfigs checks a topic's whole new config set and, unless the
// request only validates, records and applies it.
func (b *Broker) alterTopicConfigs(t *topic, configs map[string]string, validateOnly bool, done func(alterOutcome)) {
	cfg, failed := b.checkTopicConfigs(configs)
	switch {
	case failed != nil:
		done(*failed)
	case validateOnly:
		done(alterOutcome{})
	default:
		b.setTopicConfigs(t, configs, cfg, done)
	}
}

// setTopicConfigs records a topic's new configs durably, then applies
// them to its partitions' logs. In a cluster the controller records them
// in the metadata log, and every broker applies them from its image; the
// answer waits for this broker's.
func (b *Broker) setTopicConfigs(t *topic, configs map[string]string, cfg storage.Config, done func(alterOutcome)) {
	if b.cluster != nil {
		b.cluster.alterTopicConfigs(t.Name, configs, func(code metadata.Code) {
			if code != metadata.CodeNone {
				done(alterFailed(controllerError(code), "alter configs of topic %s: the controller refused: %v", t.Name, code))
				return
			}
			done(alterOutcome{})
		})
		return
	}
	old := t.Configs
	t.Configs = configs
	b.topics.persist(func(err error) {
		if b.topics == nil || b.topics.byName[t.Name] != t {
			done(alterFailed(kerr.UnknownTopicOrPartition, "topic %s went away", t.Name))
			return
		}
		if err != nil {
			t.Configs = old
			done(alterFailed(kerr.KafkaStorageError, "record configs of topic %s: %v", t.Name, err))
			return
		}
		b.applyTopicConfigs(t, configs, cfg)
		done(alterOutcome{})
	})
}

// applyTopicConfigs gives a topic its new configs and applies them to the
// logs of the partitions this broker holds.
func (b *Broker) applyTopicConfigs(t *topic, configs map[string]string, cfg storage.Config) {
	t.Configs = configs
	t.logConfig = cfg
	t.minInsync = topicMinInsync(configs, b.cfg.MinInsyncReplicas)
	for _, p := range t.hosted() {
		if err := p.log.Reconfigure(cfg); err != nil {
			b.env.Log.Logf("topic %s: apply configs to partition %d: %v", t.Name, p.index, err)
		}
		p.replica.minInsync = t.minInsync
		p.groupCommit = cfg.Flush.Mode == storage.FlushGroupCommit
		p.dataArrived() // leaving group commit exposes what was appended
	}
}

// answerAlters runs each resource's change and answers once all are done.
func answerAlters(n int, run func(i int, done func(alterOutcome)), answer func(outcomes []alterOutcome)) {
	outcomes := make([]alterOutcome, n)
	pending := n + 1
	finish := func() {
		pending--
		if pending == 0 {
			answer(outcomes)
		}
	}
	for i := range n {
		run(i, func(o alterOutcome) { outcomes[i] = o; finish() })
	}
	finish()
}

func cloneConfigs(m map[string]string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	return out
}
