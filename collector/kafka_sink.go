package collector

import (
	"fmt"
	"strings"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// KafkaSink produces each event as a Kafka record through the producer
// actor of workloads/kafka, as Flume's KafkaSink does: the body is the
// value, a "key" header the key, a "topic" header (topicHeader) overrides
// the configured topic unless allowTopicOverride is false: an agent whose
// events come from a kafka source, which names their topic in that header,
// sets it false or writes them back where they came from. A batch commits its channel transaction only when every record
// was acknowledged; one failure rolls the whole batch back, and the next
// attempt sends all of it again (Flume's behaviour: duplicates in Kafka,
// no loss). With acks=all the producer is idempotent, as the Java client
// is by default.
type KafkaSink struct {
	name  string
	env   sim.Env
	topic string
	// topicHeader names the header that overrides topic; empty: none does.
	topicHeader string
	producer    *kafka.Producer
	// kafka are the sink's Kafka counters, among its runner's.
	kafka *KafkaSinkCounters
}

// KafkaSinkConfig is a Kafka sink's settings.
type KafkaSinkConfig struct {
	Bootstrap []string
	Topic     string
	Acks      kafka.Acks
	// TopicHeader names the header whose value overrides Topic; empty
	// when allowTopicOverride is false.
	TopicHeader string
}

func kafkaSinkConfig(c *config.Sink) KafkaSinkConfig {
	servers := c.String("kafka.bootstrap.servers")
	if servers == "" {
		servers = c.String("brokerList")
	}
	topic := c.String("kafka.topic")
	if topic == "" {
		topic = c.String("topic")
	}
	acks := c.String("requiredAcks")
	if c.Has("kafka.producer.acks") {
		acks = c.String("kafka.producer.acks")
	}
	cfg := KafkaSinkConfig{Topic: topic, Acks: kafka.AcksLeader}
	if c.Bool("allowTopicOverride") {
		cfg.TopicHeader = c.String("topicHeader")
	}
	for _, s := range strings.Split(servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Bootstrap = append(cfg.Bootstrap, s)
		}
	}
	switch acks {
	case "all", "-1":
		cfg.Acks = kafka.AcksAll
	case "0":
		cfg.Acks = kafka.AcksNone
	}
	return cfg
}

// NewKafkaSink starts the sink's producer on env.
func NewKafkaSink(name string, env sim.Env, cfg KafkaSinkConfig) (*KafkaSink, error) {
	p, err := kafka.NewProducer(env, kafka.ProducerConfig{
		Bootstrap:              cfg.Bootstrap,
		ClientID:               "sluice-agent-" + name,
		Acks:                   cfg.Acks,
		AllowAutoTopicCreation: true,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	return &KafkaSink{name: name, env: env, topic: cfg.Topic, topicHeader: cfg.TopicHeader, producer: p,
		kafka: &KafkaSinkCounters{}}, nil
}

// setCounters adds the sink's Kafka counters to its runner's.
func (s *KafkaSink) setCounters(c *SinkCounters) { c.Kafka = s.kafka }

// Name is the sink's name.
func (s *KafkaSink) Name() string { return s.name }

// Deliver produces the batch and reports once every record's outcome is
// known.
func (s *KafkaSink) Deliver(events []Event, done func(error)) {
	began := s.env.Clock.Mono()
	steps := newCompletions(func(err error) {
		s.kafka.KafkaEventSendTimer += s.env.Clock.Mono() - began
		done(err)
	})
	for _, e := range events {
		rec := kafka.Record{Topic: s.topic, Value: e.Body}
		if t, ok := e.Headers[s.topicHeader]; ok && t != "" && s.topicHeader != "" {
			rec.Topic = t
		}
		if k, ok := e.Headers["key"]; ok {
			rec.Key = []byte(k)
		}
		steps.add()
		err := s.producer.Send(rec, func(r kafka.Result) {
			if r.Outcome != history.OK {
				steps.finish(fmt.Errorf("produce to %s: %w", r.Record.Topic, r.Err))
				return
			}
			steps.finish(nil)
		})
		if err != nil {
			steps.finish(fmt.Errorf("kafka sink %s: %w", s.name, err))
		}
	}
	s.producer.Flush()
	steps.finish(nil)
}

// Stop closes the producer.
func (s *KafkaSink) Stop() { s.producer.Close() }
