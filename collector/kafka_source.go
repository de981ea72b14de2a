package collector

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// KafkaSource reads topics as a member of a consumer group (the group
// consumer of workloads/kafka) and puts each poll's records into its
// channels, batchSize events per transaction. The group commits a poll's
// offsets only after every one of its transactions committed, so a crash
// in between reads the records again (duplicates) and never skips them:
// Flume's KafkaSource commits after its channel transaction too.
type KafkaSource struct {
	name    string
	env     sim.Env
	cfg     KafkaSourceConfig
	proc    *channelProcessor
	member  *kafka.GroupConsumer
	stopped bool
	timer   sim.Timer
	// retry puts the batch timer waits for again.
	retry    func()
	backoff  time.Duration
	counters SourceCounters
	bugs     faults.Bugs
	// backlog holds polls handed on before their put, only under the
	// planted bug faults.BugKafkaSourceCommitBeforePut.
	backlog [][]Event
	putting bool
	// handling: a poll's records are being put, their offsets not yet
	// committed.
	handling bool
	// onHandle, when set, is told of each poll handed to the source (tests
	// time their kills by it).
	onHandle func()
	// timings feeds Flume's Kafka timers.
	timings *kafkaTimings
}

// KafkaSourceConfig is a kafka source's settings.
type KafkaSourceConfig struct {
	Bootstrap []string
	Topics    []string
	Group     string
	// BatchSize bounds the events of one channel transaction.
	BatchSize int
	// BatchDuration is how long a poll waits for records.
	BatchDuration time.Duration
	Reset         kafka.ResetPolicy
	// SessionTimeout is kafka.consumer.session.timeout.ms: how long the
	// group waits for a member that stopped heartbeating (a crashed
	// agent) before its partitions go to the others.
	SessionTimeout time.Duration
}

// errSourceStopped ends a poll whose records a stopped source will not put.
var errSourceStopped = errors.New("source stopped")

// kafkaSourceBackoffMax bounds the wait before a refused batch is put again.
const kafkaSourceBackoffMax = time.Second

func kafkaSourceConfig(c *config.Source) (KafkaSourceConfig, error) {
	cfg := KafkaSourceConfig{
		Bootstrap:      splitList(c.String("kafka.bootstrap.servers")),
		Topics:         splitList(flumeKey(&c.Component, "kafka.topics", "topic")),
		Group:          flumeKey(&c.Component, "kafka.consumer.group.id", "groupId"),
		BatchSize:      int(c.BatchSize()),
		BatchDuration:  time.Duration(c.Int("batchDurationMillis")) * time.Millisecond,
		SessionTimeout: time.Duration(c.Int("kafka.consumer.session.timeout.ms")) * time.Millisecond,
	}
	switch c.String("kafka.consumer.auto.offset.reset") {
	case "earliest":
		cfg.Reset = kafka.ResetEarliest
	case "none":
		cfg.Reset = kafka.ResetNone
	default:
		cfg.Reset = kafka.ResetLatest
	}
	if c.Has("kafka.topics.regex") {
		return cfg, fmt.Errorf("source %s: kafka.topics.regex (line %d) is not supported: list the topics in kafka.topics",
			c.Name, c.Params["kafka.topics.regex"].Line)
	}
	if len(cfg.Bootstrap) == 0 || len(cfg.Topics) == 0 {
		return cfg, fmt.Errorf("source %s: kafka.bootstrap.servers and kafka.topics must name at least one server and topic", c.Name)
	}
	return cfg, nil
}

// flumeKey is key's value, or when the file sets only the deprecated
// spelling Flume still reads (topic, groupId, brokerList), that one's.
func flumeKey(c *config.Component, key, deprecated string) string {
	if !c.Has(key) && c.Has(deprecated) {
		return c.String(deprecated)
	}
	return c.String(key)
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func newKafkaSource(name string, env sim.Env, c *config.Source, proc *channelProcessor, bugs faults.Bugs) (*KafkaSource, error) {
	cfg, err := kafkaSourceConfig(c)
	if err != nil {
		return nil, err
	}
	s := &KafkaSource{name: name, env: env, cfg: cfg, proc: proc, bugs: bugs}
	s.counters.Kafka = &KafkaSourceCounters{}
	s.timings = &kafkaTimings{env: env, commitTotal: &s.counters.Kafka.KafkaCommitTimer}
	return s, nil
}

// Name is the source's name.
func (s *KafkaSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *KafkaSource) Counters() *SourceCounters { return &s.counters }

// Start joins the group.
func (s *KafkaSource) Start() error {
	m, err := kafka.NewGroupConsumer(s.env, kafka.GroupConsumerConfig{
		Consumer: kafka.ConsumerConfig{
			Bootstrap:    s.cfg.Bootstrap,
			ClientID:     "sluice-agent-" + s.name,
			ResetPolicy:  s.cfg.Reset,
			FetchMaxWait: s.cfg.BatchDuration,
			Recorder:     s.timings,
		},
		Group:          s.cfg.Group,
		Topics:         s.cfg.Topics,
		Assignor:       kafka.AssignorRange,
		SessionTimeout: s.cfg.SessionTimeout,
		Handle:         s.handle,
	})
	if err != nil {
		return fmt.Errorf("source %s: %w", s.name, err)
	}
	s.member = m
	return nil
}

// Stop stops reading: the member commits what was put, leaves the group
// and reads no more.
func (s *KafkaSource) Stop() {
	s.stopped = true
	if s.timer != nil && s.timer.Stop() {
		// A batch waits to be put again: end its poll now, uncommitted,
		// so that the member can leave the group.
		s.timer = nil
		retry := s.retry
		s.retry = nil
		retry()
	}
	if s.member != nil {
		s.member.Close(nil)
	}
}

// Member is the source's group member, for tests.
func (s *KafkaSource) Member() *kafka.GroupConsumer { return s.member }

// handle puts one poll's records and tells the member when they are all
// committed to the channels.
func (s *KafkaSource) handle(records []kafka.Record, done func(error)) {
	events := make([]Event, len(records))
	for i := range records {
		events[i] = kafkaEvent(&records[i])
	}
	s.counters.EventReceivedCount += int64(len(events))
	s.counters.Kafka.KafkaEventGetTimer += s.timings.fetched()
	if len(events) == 0 {
		s.counters.Kafka.KafkaEmptyCount++
	}
	if s.onHandle != nil && len(events) > 0 {
		s.onHandle()
	}
	if s.bugs.On(faults.BugKafkaSourceCommitBeforePut) {
		// The planted bug: the offsets commit at once, the put follows.
		if len(events) > 0 {
			s.backlog = append(s.backlog, events)
			s.putBacklog()
		}
		done(nil)
		return
	}
	s.handling = true
	s.put(events, func(err error) {
		s.handling = false
		done(err)
	})
}

// kafkaEvent is a record as Flume's KafkaSource makes it an event: the
// value is the body; topic, partition, offset, timestamp and key go into
// headers.
func kafkaEvent(r *kafka.Record) Event {
	h := map[string]string{
		"topic":     r.Topic,
		"partition": strconv.Itoa(int(r.Partition)),
		"offset":    strconv.FormatInt(r.Offset, 10),
		"timestamp": strconv.FormatInt(r.TimestampMs, 10),
	}
	if r.Key != nil {
		h["key"] = string(r.Key)
	}
	return Event{Headers: h, Body: r.Value}
}

// put commits events in batches, one after another, retrying a refused
// batch after a backoff; done(nil) once all are committed.
func (s *KafkaSource) put(events []Event, done func(error)) {
	if len(events) == 0 {
		done(nil)
		return
	}
	if s.stopped {
		done(errSourceStopped)
		return
	}
	n := min(len(events), s.cfg.BatchSize, s.proc.batchMax)
	batch := events[:n]
	s.counters.AppendBatchReceivedCount++
	s.proc.process(batch, func(err error) {
		if err != nil {
			s.counters.ChannelWriteFail++
			s.backoff = min(max(2*s.backoff, seqBackoffMin), kafkaSourceBackoffMax)
			s.env.Log.Logf("source %s: put %d events: %v; again in %v", s.name, n, err, s.backoff)
			s.retry = func() { s.put(events, done) }
			s.timer = s.env.Clock.AfterFunc(s.backoff, func() {
				s.timer, s.retry = nil, nil
				s.put(events, done)
			})
			return
		}
		s.backoff = 0
		s.counters.EventAcceptedCount += int64(n)
		s.counters.AppendBatchAcceptedCount++
		s.put(events[n:], done)
	})
}

// busy reports whether polled records are on their way into the channels.
func (s *KafkaSource) busy() bool { return s.handling || s.putting }

// putBacklog puts the planted bug's backlog, one poll at a time.
func (s *KafkaSource) putBacklog() {
	if s.putting || len(s.backlog) == 0 {
		return
	}
	s.putting = true
	events := s.backlog[0]
	s.backlog = s.backlog[1:]
	s.put(events, func(error) {
		s.putting = false
		s.putBacklog()
	})
}
