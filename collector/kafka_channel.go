package collector

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// KafkaChannel is a topic of a broker as the channel, as Flume's
// KafkaChannel: a commit's puts are produced to the topic (acks=all, by
// the idempotent producer) and the commit succeeds once the broker
// acknowledged every one; takes come from a read-ahead that a member of
// the channel's consumer group fills one poll at a time, and a take
// commits the group's offsets before it succeeds. A rolled-back take
// returns its events to the front of the read-ahead: the same records
// from the last committed offset on, without fetching them again. The
// broker holds the events, so an agent that crashes loses nothing: it
// reads again from the committed offsets (at least once).
//
// With parseAsFlumeEvent (the default) an event's headers travel as the
// record's Kafka headers and its body as the value: sluice's own framing,
// not Flume's Avro-serialized event, so a Flume agent cannot read sluice's
// channel topic with its headers (the bodies read the same). Without it
// only the body is written and events are read back without headers.
//
// Puts that fail part way (some records acknowledged, one not) fail the
// commit, yet the acknowledged records are in the topic and will be read:
// as in Flume, which does not use Kafka transactions either.
type KafkaChannel struct {
	*channelCore
	cfg      KafkaChannelConfig
	producer *kafka.Producer
	member   *kafka.GroupConsumer
	// where locates each read-ahead event, queued or taken, by its id.
	where map[uint64]*readAheadItem
	// pending are the offsets read ahead and not yet taken for good, per
	// partition, ascending; readEnd is each partition's offset after the
	// last record read ahead. Together they give the offset a take commit
	// may commit: the first pending one, or readEnd when none is.
	pending map[kafka.TopicPartition][]int64
	readEnd map[kafka.TopicPartition]int64
	// held is the poll whose records fill the read-ahead; the member reads
	// no more until all are taken for good or it is abandoned.
	held *heldPoll
	// timings feeds Flume's Kafka timers.
	timings *kafkaTimings
	// emptyPolls counts the member's polls in a row that found nothing
	// since this channel last committed a put: see CaughtUp.
	emptyPolls int
}

// kafkaCaughtUpPolls is how many empty polls in a row, after the last put
// this channel committed, show the topic read to its end: the first may
// have been fetched before that put landed, the second was not.
const kafkaCaughtUpPolls = 2

type readAheadItem struct {
	tp     kafka.TopicPartition
	offset int64
	poll   *heldPoll
}

type heldPoll struct {
	left      int
	done      func(error)
	abandoned bool
}

// KafkaChannelConfig is a kafka channel's settings.
type KafkaChannelConfig struct {
	Bootstrap           []string
	Topic               string
	Group               string
	ParseAsFlumeEvent   bool
	PollTimeout         time.Duration
	SessionTimeout      time.Duration
	Capacity            int
	TransactionCapacity int
}

// errChannelStopping abandons the read-ahead of a channel that stops.
var errChannelStopping = errors.New("channel stopping")

// kafkaChannelStopTimeout bounds how long Stop waits for the member to
// leave its group.
const kafkaChannelStopTimeout = 5 * time.Second

func kafkaChannelConfig(c *config.Channel) KafkaChannelConfig {
	return KafkaChannelConfig{
		Bootstrap:           splitList(flumeKey(&c.Component, "kafka.bootstrap.servers", "brokerList")),
		Topic:               flumeKey(&c.Component, "kafka.topic", "topic"),
		Group:               flumeKey(&c.Component, "kafka.consumer.group.id", "groupId"),
		ParseAsFlumeEvent:   c.Bool("parseAsFlumeEvent"),
		PollTimeout:         time.Duration(c.Int("pollTimeout")) * time.Millisecond,
		SessionTimeout:      time.Duration(c.Int("kafka.consumer.session.timeout.ms")) * time.Millisecond,
		Capacity:            int(c.Int("capacity")),
		TransactionCapacity: int(c.Int("transactionCapacity")),
	}
}

// OpenKafkaChannel starts the channel's producer and group member on env.
func OpenKafkaChannel(name string, env sim.Env, cfg KafkaChannelConfig) (*KafkaChannel, error) {
	if len(cfg.Bootstrap) == 0 || cfg.Topic == "" {
		return nil, fmt.Errorf("channel %s: kafka.bootstrap.servers and kafka.topic must be set", name)
	}
	k := &KafkaChannel{cfg: cfg, where: map[uint64]*readAheadItem{},
		pending: map[kafka.TopicPartition][]int64{}, readEnd: map[kafka.TopicPartition]int64{}}
	k.channelCore = newChannelCore(name, env, channelLimits{capacity: cfg.Capacity, txCapacity: cfg.TransactionCapacity}, k)
	k.readsBack = true
	k.counters.Kafka = &KafkaChannelCounters{}
	k.timings = &kafkaTimings{env: env, commitTotal: &k.counters.Kafka.KafkaCommitTimer}
	p, err := kafka.NewProducer(env, kafka.ProducerConfig{
		Bootstrap:              cfg.Bootstrap,
		ClientID:               "sluice-channel-" + name,
		Acks:                   kafka.AcksAll,
		AllowAutoTopicCreation: true,
	})
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", name, err)
	}
	m, err := kafka.NewGroupConsumer(env, kafka.GroupConsumerConfig{
		Consumer: kafka.ConsumerConfig{
			Bootstrap:    cfg.Bootstrap,
			ClientID:     "sluice-channel-" + name,
			ResetPolicy:  kafka.ResetEarliest,
			FetchMaxWait: cfg.PollTimeout,
			Recorder:     k.timings,
		},
		Group:          cfg.Group,
		Topics:         []string{cfg.Topic},
		Assignor:       kafka.AssignorRange,
		SessionTimeout: cfg.SessionTimeout,
		Handle:         k.readAhead,
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("channel %s: %w", name, err)
	}
	k.producer, k.member = p, m
	return k, nil
}

// Name is the channel's name.
func (k *KafkaChannel) Name() string { return k.name }

// CaughtUp reports that the channel holds nothing: its read-ahead is
// empty and taken for good, and the member's last polls, made after the
// channel's last put, found no record. ChannelSize counts only the
// read-ahead, so it says nothing of records in the topic not yet read.
// Another agent putting into the same topic is not seen.
func (k *KafkaChannel) CaughtUp() bool {
	return !k.closed && k.queue.len() == 0 && k.held == nil && k.emptyPolls >= kafkaCaughtUpPolls
}

// readAhead queues a poll's records for takes and holds the poll until
// every one is taken for good.
func (k *KafkaChannel) readAhead(records []kafka.Record, done func(error)) {
	k.counters.Kafka.KafkaEventGetTimer += k.timings.fetched()
	if k.closed {
		done(errChannelStopping)
		return
	}
	if len(records) == 0 {
		k.emptyPolls = min(k.emptyPolls+1, kafkaCaughtUpPolls)
		done(nil)
		return
	}
	k.emptyPolls = 0
	poll := &heldPoll{left: len(records), done: done}
	k.held = poll
	for i := range records {
		r := &records[i]
		tp := kafka.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		id := k.nextID
		k.nextID++
		ev := k.decode(r)
		k.queue.pushBack(item{id: id, ev: ev})
		k.queueBytes += ev.size()
		k.where[id] = &readAheadItem{tp: tp, offset: r.Offset, poll: poll}
		k.pending[tp] = append(k.pending[tp], r.Offset)
		k.readEnd[tp] = r.Offset + 1
	}
	for _, f := range k.onPut {
		f()
	}
}

func (k *KafkaChannel) decode(r *kafka.Record) Event {
	e := Event{Body: r.Value}
	if k.cfg.ParseAsFlumeEvent && len(r.Headers) > 0 {
		e.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			e.Headers[h.Key] = string(h.Value)
		}
	}
	return e
}

func (k *KafkaChannel) encode(e Event) kafka.Record {
	rec := kafka.Record{Topic: k.cfg.Topic, Value: e.Body}
	if k.cfg.ParseAsFlumeEvent {
		for _, key := range sortedHeaderKeys(e.Headers) {
			rec.Headers = append(rec.Headers, kafka.Header{Key: key, Value: []byte(e.Headers[key])})
		}
	}
	return rec
}

// persist produces the puts, then commits the takes' offsets: a take is
// final only once the group knows it, and never before the puts of its
// transaction are in the topic.
func (k *KafkaChannel) persist(t *Txn, done func(error)) {
	takes := slices.Clone(t.takes)
	hasPuts := len(t.puts) > 0
	k.produce(t.puts, func(err error) {
		if hasPuts {
			// Even a failed commit may have left records in the topic.
			k.emptyPolls = 0
		}
		if err != nil {
			done(err)
			return
		}
		k.commitTakes(takes, done)
	})
}

func (k *KafkaChannel) produce(puts []Event, done func(error)) {
	began := k.env.Clock.Mono()
	steps := newCompletions(func(err error) {
		k.counters.Kafka.KafkaEventSendTimer += k.env.Clock.Mono() - began
		done(err)
	})
	for _, e := range puts {
		steps.add()
		err := k.producer.Send(k.encode(e), func(r kafka.Result) {
			if r.Outcome != history.OK {
				steps.finish(fmt.Errorf("channel %s: produce to %s: %w", k.name, k.cfg.Topic, r.Err))
				return
			}
			steps.finish(nil)
		})
		if err != nil {
			steps.finish(fmt.Errorf("channel %s: %w", k.name, err))
		}
	}
	if len(puts) > 0 {
		k.producer.Flush()
	}
	steps.finish(nil)
}

// commitTakes commits, per partition the takes touch, the first offset
// still pending once they are gone; takes of an abandoned poll commit
// nothing (their records are read again).
func (k *KafkaChannel) commitTakes(takes []item, done func(error)) {
	var live []*readAheadItem
	gone := map[kafka.TopicPartition][]int64{}
	for _, it := range takes {
		ra := k.where[it.id]
		sim.Assert(ra != nil, "channel %s: take of unknown id %d", k.name, it.id)
		if !ra.poll.abandoned {
			live = append(live, ra)
			gone[ra.tp] = append(gone[ra.tp], ra.offset)
		}
	}
	if len(live) == 0 {
		for _, it := range takes {
			delete(k.where, it.id)
		}
		done(nil)
		return
	}
	var offsets []history.Offset
	for _, tp := range slices.SortedFunc(mapKeys(gone), compareTopicPartition) {
		next := k.readEnd[tp]
		for _, off := range k.pending[tp] {
			if !slices.Contains(gone[tp], off) {
				next = off
				break
			}
		}
		offsets = append(offsets, history.Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: next})
	}
	k.member.CommitOffsets(offsets, func(err error) {
		if err != nil {
			k.abandon(err)
			done(fmt.Errorf("channel %s: %w", k.name, err))
			return
		}
		for _, it := range takes {
			delete(k.where, it.id)
		}
		for _, ra := range live {
			k.pending[ra.tp] = slices.DeleteFunc(k.pending[ra.tp], func(off int64) bool { return off == ra.offset })
			ra.poll.left--
			if ra.poll.left == 0 && !ra.poll.abandoned {
				k.release(ra.poll, nil)
			}
		}
		done(nil)
	})
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for key := range m {
			if !yield(key) {
				return
			}
		}
	}
}

func compareTopicPartition(a, b kafka.TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// release lets the member poll again.
func (k *KafkaChannel) release(p *heldPoll, err error) {
	if k.held == p {
		k.held = nil
	}
	p.done(err)
}

// abandon drops the held poll's queued records: the member rewinds to the
// committed offsets and reads them again (a commit failed: the group may
// have moved on, and this member must rejoin before committing more).
// Its records taken by open transactions stay with them.
func (k *KafkaChannel) abandon(cause error) {
	p := k.held
	if p == nil || p.abandoned {
		return
	}
	p.abandoned = true
	kept := k.queue.snapshot()[:0:0]
	for _, it := range k.queue.snapshot() {
		if ra := k.where[it.id]; ra != nil && ra.poll == p {
			delete(k.where, it.id)
			k.queueBytes -= it.ev.size()
			continue
		}
		kept = append(kept, it)
	}
	k.queue = itemQueue{items: kept}
	k.pending = map[kafka.TopicPartition][]int64{}
	k.env.Log.Logf("channel %s: read-ahead dropped, to be read again: %v", k.name, cause)
	k.release(p, cause)
}

// Stop gives up the read-ahead (its records stay uncommitted in the
// topic), leaves the group and closes the producer.
func (k *KafkaChannel) Stop(done func()) {
	if k.closed {
		done()
		return
	}
	k.closed = true
	k.abandon(errChannelStopping)
	finished := false
	finish := func() {
		if finished {
			return
		}
		finished = true
		k.producer.Close()
		done()
	}
	timer := k.env.Clock.AfterFunc(kafkaChannelStopTimeout, finish)
	k.member.Close(func() {
		timer.Stop()
		finish()
	})
}
