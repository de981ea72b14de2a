package kafka

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/kafkawire"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/slab"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Acks is how many replicas must have a write before the broker answers.
type Acks int8

// Acks settings. The zero value is AcksAll, Kafka's default since 3.0.
const (
	// AcksAll (-1): every member of the current ISR has the write.
	AcksAll Acks = iota
	// AcksLeader (1): the leader appended it.
	AcksLeader
	// AcksNone (0): the broker does not answer at all.
	AcksNone
)

func (a Acks) wire() int16 {
	switch a {
	case AcksAll:
		return -1
	case AcksLeader:
		return 1
	case AcksNone:
		return 0
	}
	panic(fmt.Sprintf("kafka: unknown acks %d", a))
}

// String is the setting as Kafka's acks property spells it.
func (a Acks) String() string {
	switch a {
	case AcksAll:
		return "all"
	case AcksLeader:
		return "1"
	case AcksNone:
		return "0"
	}
	return fmt.Sprintf("acks(%d)", int8(a))
}

// idempotentInFlightMax is how many batches per partition an idempotent
// producer may have in flight: the broker remembers the last five batches
// per producer and partition, so a retry of any of them is recognised.
const idempotentInFlightMax = 5

// ProducerConfig configures a producer. Zero fields take the defaults
// named on each.
type ProducerConfig struct {
	// Bootstrap lists "host:port" addresses to learn the cluster from.
	Bootstrap []string
	// ClientID names the client to the brokers; default "sluice-producer".
	ClientID string
	// Process is the history's process number for this producer.
	Process int
	// Recorder receives the history; nil records nothing.
	Recorder history.Recorder
	Acks     Acks
	// DisableIdempotence turns the idempotent producer off. Idempotence is
	// on by default with acks=all and off with other acks, as in the Java
	// client when enable.idempotence is not set. If the brokers do not
	// serve InitProducerId the producer goes on without it.
	DisableIdempotence bool
	// ManualPartition sends each record to Record.Partition; otherwise the
	// Java client's partitioner picks: murmur2 of the key, or the sticky
	// partition (KIP-480) for records without a key.
	ManualPartition bool
	// Linger is how long a batch waits for more records; default 0.
	Linger time.Duration
	// BatchMaxBytes closes a batch once it holds this much; default 16 KiB.
	BatchMaxBytes int
	// RequestMaxBytes bounds a produce request and so a record; default
	// 1 MiB (max.request.size).
	RequestMaxBytes int
	// Compression is the codec of the batches (compression.type);
	// default none.
	Compression record.Compression
	// RequestTimeout bounds a request's wait for its answer, and is the
	// produce request's timeout on the broker; default 10 s.
	RequestTimeout time.Duration
	// DeliveryTimeout bounds the time from Send to the outcome; default
	// 30 s. A write not acknowledged by then fails (or is unknown, if an
	// attempt may have appended it).
	DeliveryTimeout time.Duration
	// RetryBackoff is the first wait before a retry; it doubles up to
	// RetryBackoffMax, with ±20% jitter. Defaults 100 ms and 1 s.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// RetriesMax bounds the attempts of one batch; default 1000.
	RetriesMax int
	// InFlightMax bounds the unanswered requests per connection; default
	// 5, at most 5 with idempotence.
	InFlightMax int
	// BufferMaxBytes bounds the records held; Send fails with
	// ErrBufferFull beyond it. Default 32 MiB.
	BufferMaxBytes int
	// MetadataMinInterval bounds the metadata refresh rate; default 250 ms.
	MetadataMinInterval time.Duration
	// MetadataMaxAge refreshes metadata periodically; default 5 min.
	MetadataMaxAge time.Duration
	// AllowAutoTopicCreation lets metadata requests create topics.
	AllowAutoTopicCreation bool
}

func (cfg *ProducerConfig) withDefaults() (ProducerConfig, error) {
	c := *cfg
	if len(c.Bootstrap) == 0 {
		return c, errors.New("producer config: no bootstrap brokers")
	}
	if c.Acks < AcksAll || c.Acks > AcksNone {
		return c, fmt.Errorf("producer config: unknown acks %d", c.Acks)
	}
	if c.Compression > record.CompressionZstd {
		return c, fmt.Errorf("producer config: unknown %v", c.Compression)
	}
	setDefault(&c.ClientID, "sluice-producer")
	setDefault(&c.BatchMaxBytes, 16<<10)
	setDefault(&c.RequestMaxBytes, 1<<20)
	setDefault(&c.RequestTimeout, 10*time.Second)
	setDefault(&c.DeliveryTimeout, 30*time.Second)
	setDefault(&c.RetryBackoff, 100*time.Millisecond)
	setDefault(&c.RetryBackoffMax, time.Second)
	setDefault(&c.RetriesMax, 1000)
	setDefault(&c.InFlightMax, 5)
	setDefault(&c.BufferMaxBytes, 32<<20)
	setDefault(&c.MetadataMinInterval, metadataMinIntervalDefault)
	setDefault(&c.MetadataMaxAge, metadataMaxAgeDefault)
	if c.Acks != AcksAll {
		c.DisableIdempotence = true
	}
	if !c.DisableIdempotence && c.InFlightMax > idempotentInFlightMax {
		return c, fmt.Errorf("producer config: InFlightMax %d above %d with idempotence", c.InFlightMax, idempotentInFlightMax)
	}
	if c.BatchMaxBytes > c.RequestMaxBytes {
		return c, fmt.Errorf("producer config: BatchMaxBytes %d above RequestMaxBytes %d", c.BatchMaxBytes, c.RequestMaxBytes)
	}
	if c.RequestMaxBytes > c.BufferMaxBytes {
		return c, fmt.Errorf("producer config: RequestMaxBytes %d above BufferMaxBytes %d", c.RequestMaxBytes, c.BufferMaxBytes)
	}
	return c, nil
}

// setDefault sets *v to def when it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Result is the outcome of one Send.
type Result struct {
	// Record is the record sent, with its partition and, when Outcome is
	// ok, its offset.
	Record Record
	// Outcome is history.OK, history.Fail (the write definitely did not
	// happen) or history.Info (it may have).
	Outcome history.Type
	// Err says why when Outcome is not ok.
	Err error
}

// ProducerStats count what a producer did.
type ProducerStats struct {
	// Invoked counts records entered in the history.
	Invoked int
	OK      int
	Failed  int
	Unknown int
	// Requests counts produce requests sent, retries included.
	Requests int
	// Retries counts batches scheduled for another attempt.
	Retries int
	// Resets counts times the idempotent producer moved to a new epoch
	// (or id) after its sequence broke.
	Resets int
	// MetadataRequests counts metadata requests sent.
	MetadataRequests int
	// ProducerID and ProducerEpoch are the idempotent producer's current
	// identity, -1 without one.
	ProducerID    int64
	ProducerEpoch int16
}

// pendingRecord is one record from Send until its outcome.
type pendingRecord struct {
	rec         Record
	done        func(Result)
	sizeBytes   int
	createdMono time.Duration
	// invoked is the record as the history's invoke op has it, whose
	// strings the completion reuses; invokeRecorded says it is set.
	invoked        history.Record
	invokeRecorded bool
}

// batch is the records of one partition sent together. Once sent it is
// frozen: retries resend the same bytes with the same sequence number.
type batch struct {
	tp TopicPartition
	// ps is the partition's state, which a producer keeps for good.
	ps      *partState
	records []*pendingRecord
	// recordsRoom is records' first room: at low rates a batch holds
	// one record.
	recordsRoom [1]*pendingRecord
	sizeBytes   int
	createdMono time.Duration
	// sealed: no more records join; set when full or first sent.
	sealed bool
	// seq is the base sequence number, -1 until first sent idempotently.
	seq     int32
	encoded record.Batch
	// attempts counts requests that carried the batch.
	attempts int
	// maybeAppended: some attempt may have been appended.
	maybeAppended bool
	inflight      bool
	retryAt       time.Duration
	lastErr       error
}

// partState is one partition's unacknowledged batches, oldest first.
type partState struct {
	tp       TopicPartition
	batches  []*batch
	inflight int
	nextSeq  int32
	// retrying: a batch failed and is being resent; until it is through,
	// only one batch of the partition is in flight, so order holds.
	retrying bool
}

// identityState is where the idempotent producer is in getting an id.
type identityState uint8

const (
	identityNone identityState = iota
	identityAsking
	identityReady
)

// completion is a done callback to run once the current handler is through.
type completion struct {
	done   func(Result)
	result Result
}

// Producer is the producer actor. Its methods and callbacks run on the
// node's loop.
type Producer struct {
	env    sim.Env
	cfg    ProducerConfig
	cl     *cluster
	sticky *stickyPartitioner

	// parts are the partitions written to, sorted.
	parts  []*partState
	byTP   map[TopicPartition]*partState
	parked []*pendingRecord
	// bufferedBytes counts the records held, parked or batched.
	bufferedBytes int
	inflightReqs  int

	idempotent    bool
	identity      identityState
	identityRetry time.Duration
	producerID    int64
	producerEpoch int16
	resetPending  bool

	flushing    bool
	closed      bool
	wakePending bool
	// onWake is wake's callback, bound once: every send may wake.
	onWake      func()
	timer       deadline
	completions []completion
	stats       ProducerStats
	// written counts records the broker took (acknowledged, or sent with
	// acks=0): the producer's progress, for Progress. failedSinceWritten
	// counts the records that ended otherwise since, lastFailure why.
	written            int
	failedSinceWritten int
	lastFailure        error
	// encodeScratch is reused by encode, so that freezing a batch does
	// not allocate a record list each time.
	encodeScratch []record.Record
	// answersScratch is where a produce response's partitions are listed
	// to be matched with the batches sent.
	answersScratch []produceAnswer
	// lastPart is the partition state part returned last.
	lastPart *partState
	// The slabs the producer's small per-record values are cut from.
	pendingSlab slab.Slab[pendingRecord]
	batchSlab   slab.Slab[batch]
	historySlab slab.Slab[history.Record]
	// historyValue is how the recorder keeps values (historyValueFor),
	// bound once.
	historyValue historyValue
	// buildsScratch is drain's, kept between drains.
	buildsScratch []produceBuild
	// produceSends are produce requests whose call is over, built and
	// decoded into again (see produceSend).
	produceSends kafkawire.Spares[produceSend]
}

// NewProducer starts a producer on env. It dials nothing until there is
// something to do; with idempotence it asks for a producer id at once.
func NewProducer(env sim.Env, cfg ProducerConfig) (*Producer, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Producer{
		env:        env,
		cfg:        c,
		sticky:     newStickyPartitioner(env.Rand),
		byTP:       map[TopicPartition]*partState{},
		idempotent: !c.DisableIdempotence,
		producerID: -1,
	}
	p.historyValue = historyValueFor(c.Recorder)
	p.producerEpoch = -1
	p.timer.fire = p.pump
	p.onWake = func() {
		p.wakePending = false
		p.pump()
	}
	p.cl = newCluster(env, clusterConfig{
		bootstrap: c.Bootstrap,
		conn: connConfig{
			clientID:       c.ClientID,
			requestTimeout: c.RequestTimeout,
			inFlightMax:    c.InFlightMax,
		},
		metadataMinInterval:    c.MetadataMinInterval,
		metadataMaxAge:         c.MetadataMaxAge,
		allowAutoTopicCreation: c.AllowAutoTopicCreation,
	}, p.onMetadata)
	p.wake()
	return p, nil
}

// Send hands a record to the producer, which keeps its key, value and
// header slices until the outcome (the caller must not change them); done
// is called once with the outcome, from a later callback. Send fails at once, without calling done
// and without a history entry, when the producer is closed, the record is
// larger than RequestMaxBytes or the buffer is full.
//
// The history gets the send's invoke as soon as the record's partition is
// known: at once with ManualPartition or when the topic's metadata is
// known, otherwise when it arrives. A record whose topic never shows up
// within the delivery timeout fails without entering the history.
func (p *Producer) Send(rec Record, done func(Result)) error {
	sim.Assert(done != nil, "Send without a done callback")
	switch {
	case p.closed:
		return fmt.Errorf("send: %w", ErrClosed)
	case rec.Topic == "":
		return errors.New("send: record without a topic")
	case p.cfg.ManualPartition && rec.Partition < 0:
		return fmt.Errorf("send to %s partition %d: %w", rec.Topic, rec.Partition, ErrUnknownPartition)
	}
	size := rec.sizeBytes()
	if size > p.cfg.RequestMaxBytes {
		return fmt.Errorf("send %d bytes (limit %d): %w", size, p.cfg.RequestMaxBytes, ErrRecordTooLarge)
	}
	if p.bufferedBytes+size > p.cfg.BufferMaxBytes {
		return fmt.Errorf("send: %d bytes held (limit %d): %w", p.bufferedBytes, p.cfg.BufferMaxBytes, ErrBufferFull)
	}
	if p.cfg.ManualPartition {
		if n := p.cl.partitions(rec.Topic); n > 0 && int(rec.Partition) >= n {
			return fmt.Errorf("send to %s partition %d of %d: %w", rec.Topic, rec.Partition, n, ErrUnknownPartition)
		}
	} else {
		rec.Partition = -1
	}
	rec.Offset = -1
	if rec.TimestampMs == 0 {
		rec.TimestampMs = p.env.Clock.Now().UnixMilli()
	}
	pr := p.pendingSlab.Take()
	*pr = pendingRecord{rec: rec, done: done, sizeBytes: size, createdMono: p.env.Clock.Mono()}
	p.bufferedBytes += size
	p.cl.want(rec.Topic)
	if !p.place(pr) {
		p.parked = append(p.parked, pr)
	}
	p.wake()
	return nil
}

// Flush makes every batch ready to send without waiting for Linger, now
// and from then on (the final drain of a workload calls it).
func (p *Producer) Flush() {
	p.flushing = true
	p.wake()
}

// Buffered counts the records whose outcome is not known yet.
func (p *Producer) Buffered() int {
	n := len(p.parked)
	for _, ps := range p.parts {
		for _, b := range ps.batches {
			n += len(b.records)
		}
	}
	return n
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	s := p.stats
	s.MetadataRequests = p.cl.metaRequests
	s.ProducerID, s.ProducerEpoch = p.producerID, p.producerEpoch
	return s
}

// Partitions is the partition count metadata gives topic, 0 while
// unknown. Asking registers the topic.
func (p *Producer) Partitions(topic string) int {
	p.cl.want(topic)
	return p.cl.partitions(topic)
}

// Close ends the producer: every record held ends now, info if an attempt
// may have been appended (or a request carrying it is unanswered), fail
// otherwise; parked records fail without a history entry. Their done
// callbacks run before Close returns. Connections are closed.
func (p *Producer) Close() {
	if p.closed {
		return
	}
	p.closed = true
	err := fmt.Errorf("producer closed: %w", ErrClosed)
	for _, ps := range p.parts {
		for len(ps.batches) > 0 {
			b := ps.batches[0]
			p.finish(ps, b, finalOutcome(b.maybeAppended || b.inflight), err, -1)
		}
	}
	p.failParked(func(*pendingRecord) bool { return true }, err)
	p.timer.stop()
	p.cl.close()
	p.runCompletions()
}

// wake runs pump once the current callback returns; several wakes in one
// callback coalesce, which is what batches records sent together.
func (p *Producer) wake() {
	if p.wakePending || p.closed {
		return
	}
	p.wakePending = true
	p.env.Clock.AfterFunc(0, p.onWake)
}

func (p *Producer) onMetadata() {
	if p.closed {
		return
	}
	parked := p.parked
	p.parked = nil
	for _, pr := range parked {
		if !p.place(pr) {
			p.parked = append(p.parked, pr)
		}
	}
	p.pump()
}

// place chooses pr's partition, records the invoke and adds pr to a batch.
// It reports false when the partition cannot be chosen yet.
func (p *Producer) place(pr *pendingRecord) bool {
	topic := pr.rec.Topic
	keyless := false
	if !p.cfg.ManualPartition {
		n := p.cl.partitions(topic)
		if n == 0 {
			return false
		}
		if pr.rec.Key != nil {
			pr.rec.Partition = KeyPartition(pr.rec.Key, n)
		} else {
			pr.rec.Partition = p.sticky.partition(topic, n, p.available(topic))
			keyless = true
		}
	}
	p.stats.Invoked++
	if p.cfg.Recorder != nil {
		pr.invoked, pr.invokeRecorded = pr.rec.historyRecord(p.historyValue), true
		hr := p.historySlab.Take()
		*hr = pr.invoked
		p.cfg.Recorder.Add(history.Op{Process: p.cfg.Process, Node: p.env.Node,
			Type: history.Invoke, F: history.Send, Record: hr})
	}
	tp := TopicPartition{Topic: topic, Partition: pr.rec.Partition}
	ps := p.part(tp)
	var b *batch
	if n := len(ps.batches); n > 0 {
		last := ps.batches[n-1]
		if !last.sealed && last.sizeBytes+pr.sizeBytes <= p.cfg.BatchMaxBytes {
			b = last
		} else {
			last.sealed = true
		}
	}
	if b == nil {
		b = p.batchSlab.Take()
		*b = batch{tp: tp, ps: ps, createdMono: pr.createdMono, seq: -1}
		b.records = b.recordsRoom[:0]
		ps.batches = append(ps.batches, b)
	}
	b.records = append(b.records, pr)
	b.sizeBytes += pr.sizeBytes
	if b.sizeBytes >= p.cfg.BatchMaxBytes {
		b.sealed = true
	}
	if keyless {
		p.sticky.filled(topic, tp.Partition, b)
	}
	return true
}

// available lists topic's partitions with a known leader.
func (p *Producer) available(topic string) []int32 {
	var out []int32
	for i := range p.cl.partitions(topic) {
		if p.cl.leader(topic, int32(i)) >= 0 {
			out = append(out, int32(i))
		}
	}
	return out
}

// part returns tp's state, creating it in sorted position.
func (p *Producer) part(tp TopicPartition) *partState {
	if last := p.lastPart; last != nil && last.tp == tp {
		return last // the sticky partitioner sends runs of records to one partition
	}
	if ps := p.byTP[tp]; ps != nil {
		p.lastPart = ps
		return ps
	}
	ps := &partState{tp: tp}
	p.byTP[tp] = ps
	i, _ := slices.BinarySearchFunc(p.parts, tp, func(a *partState, t TopicPartition) int { return compareTP(a.tp, t) })
	p.parts = slices.Insert(p.parts, i, ps)
	return ps
}

// pump is the producer's step: expire what is overdue, settle the producer
// id, send what is ready, arm the timer for the next deadline, then run
// the done callbacks gathered on the way.
func (p *Producer) pump() {
	if p.closed {
		p.runCompletions()
		return
	}
	now := p.env.Clock.Mono()
	p.expire(now)
	if len(p.parked) > 0 {
		// Their topic is unknown or has no partitions yet; the refresh is
		// rate-limited by MetadataMinInterval.
		p.cl.refresh()
	}
	if p.resetPending && p.inflightReqs == 0 {
		p.resetIdentity()
	}
	if p.idempotent && p.identity != identityReady {
		if p.identity == identityNone && now >= p.identityRetry && !p.resetPending {
			p.askIdentity()
		}
	} else if !p.resetPending {
		// Each round sends at most one request per leader; InFlightMax
		// rounds fill every connection.
		for range p.cfg.InFlightMax {
			if !p.drain(now) {
				break
			}
		}
	}
	p.armTimer(now)
	p.runCompletions()
}

// completionsMax bounds one run of callbacks; more wait for the next pump.
const completionsMax = 1 << 16

func (p *Producer) runCompletions() {
	n := min(len(p.completions), completionsMax)
	run := p.completions[:n]
	p.completions = slices.Clone(p.completions[n:])
	for _, c := range run {
		c.done(c.result)
	}
	if len(p.completions) > 0 {
		p.wake()
		return
	}
	// Nothing came while they ran: the slice run is kept for the next
	// completions (callbacks may have queued into the clone meanwhile,
	// which is then what is kept).
	if cap(p.completions) == 0 {
		clear(run)
		p.completions = run[:0]
	}
}

// expire ends batches and parked records past their delivery timeout.
func (p *Producer) expire(now time.Duration) {
	for _, ps := range p.parts {
		for i := 0; i < len(ps.batches); {
			b := ps.batches[i]
			if b.inflight || now < b.createdMono+p.cfg.DeliveryTimeout {
				i++
				continue
			}
			err := fmt.Errorf("%w after %v", ErrDeliveryTimeout, p.cfg.DeliveryTimeout)
			if b.lastErr != nil {
				err = fmt.Errorf("%w after %v (last error: %w)", ErrDeliveryTimeout, p.cfg.DeliveryTimeout, b.lastErr)
			}
			p.finishFailed(ps, b, err)
		}
	}
	if len(p.parked) > 0 {
		p.failParked(func(pr *pendingRecord) bool { return now >= pr.createdMono+p.cfg.DeliveryTimeout },
			errNoMetadataInTime)
	}
}

// errNoMetadataInTime fails records parked past the delivery timeout for
// want of metadata.
var errNoMetadataInTime = fmt.Errorf("%w: no metadata for the topic", ErrDeliveryTimeout)

// failParked ends the parked records that match, which never entered the
// history.
func (p *Producer) failParked(match func(*pendingRecord) bool, err error) {
	kept := p.parked[:0]
	for _, pr := range p.parked {
		if !match(pr) {
			kept = append(kept, pr)
			continue
		}
		p.bufferedBytes -= pr.sizeBytes
		p.completions = append(p.completions, completion{pr.done, Result{Record: pr.rec, Outcome: history.Fail, Err: err}})
	}
	clear(p.parked[len(kept):])
	p.parked = kept
}

// produceBuild is one produce request being assembled.
type produceBuild struct {
	leader  int32
	bytes   int
	batches []*batch
}

// drain sends one request to each leader with a batch ready and room on
// its connection. It reports whether it sent anything.
func (p *Producer) drain(now time.Duration) bool {
	// Builds are found by a linear search, not a map: a producer talks
	// to a handful of brokers, and this runs on every wake.
	// The builds and their batch slices are kept from drain to drain:
	// sendProduce copies what it keeps of them.
	builds := p.buildsScratch[:0]
	for _, ps := range p.parts {
		if len(ps.batches) == 0 {
			continue
		}
		if n := p.cl.partitions(ps.tp.Topic); n > 0 && int(ps.tp.Partition) >= n {
			p.failUnknownPartition(ps, n)
			continue
		}
		b := p.nextSendable(ps, now)
		if b == nil {
			continue
		}
		leader := p.cl.leader(ps.tp.Topic, ps.tp.Partition)
		if leader < 0 {
			p.cl.refresh()
			continue
		}
		i := slices.IndexFunc(builds, func(b produceBuild) bool { return b.leader == leader })
		if i < 0 {
			if !p.cl.hasRoom(leader) {
				continue
			}
			i = len(builds)
			builds = resized(builds, i+1)
			builds[i] = produceBuild{leader: leader, batches: builds[i].batches[:0]}
		}
		build := &builds[i]
		if len(build.batches) > 0 && build.bytes+b.sizeBytes > p.cfg.RequestMaxBytes {
			continue
		}
		if b.encoded == nil && !p.encode(ps, b) {
			continue
		}
		build.batches = append(build.batches, b)
		build.bytes += len(b.encoded)
	}
	slices.SortFunc(builds, func(a, b produceBuild) int { return int(a.leader) - int(b.leader) })
	sent := false
	for i := range builds {
		if len(builds[i].batches) > 0 {
			p.sendProduce(&builds[i])
			sent = true
		}
	}
	for i := range builds {
		clear(builds[i].batches)
	}
	p.buildsScratch = builds
	return sent
}

// resized is s at length n, keeping the elements between its length and
// its capacity, whose slices are reused.
func resized[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	return append(s[:cap(s)], make([]T, n-cap(s))...)
}

// nextSendable is ps's next batch to send, nil if none may go now. Batches
// go out in order: a batch waits while an earlier one waits.
func (p *Producer) nextSendable(ps *partState, now time.Duration) *batch {
	limit := p.cfg.InFlightMax
	if p.idempotent {
		limit = min(limit, idempotentInFlightMax)
	}
	if ps.retrying {
		limit = 1
	}
	if ps.inflight >= limit {
		return nil
	}
	for _, b := range ps.batches {
		if b.inflight {
			continue
		}
		if b.retryAt > now {
			return nil
		}
		if !b.sealed && !p.flushing && now < b.createdMono+p.cfg.Linger {
			return nil
		}
		return b
	}
	return nil
}

// encode freezes b: seals it, gives it its sequence numbers and builds its
// bytes. It reports false if the batch could not be encoded, which ends it.
func (p *Producer) encode(ps *partState, b *batch) bool {
	b.sealed = true
	bl := record.NewBuilder()
	// The broker assigns the base offset and stamps its leader epoch; the
	// Java producer leaves the epoch at -1 as well.
	bl.PartitionLeaderEpoch = -1
	bl.Compression = p.cfg.Compression
	if p.idempotent {
		b.seq = ps.nextSeq
		bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = p.producerID, p.producerEpoch, b.seq
	}
	recs := p.encodeScratch[:0]
	for i, pr := range b.records {
		recs = append(recs, record.Record{Offset: int64(i), Timestamp: pr.rec.TimestampMs,
			Key: pr.rec.Key, Value: pr.rec.Value, Headers: pr.rec.Headers})
	}
	enc, err := bl.Build(recs)
	// Build copies the records into the batch: keep the slice for the next
	// batch, but not the records' bytes.
	clear(recs)
	p.encodeScratch = recs
	if err != nil {
		b.seq = -1
		p.finish(ps, b, history.Fail, fmt.Errorf("encode batch for %s: %w", ps.tp, err), -1)
		return false
	}
	if p.idempotent {
		ps.nextSeq = record.IncrementSequence(ps.nextSeq, int32(len(b.records)))
	}
	b.encoded = enc
	return true
}

// failUnknownPartition ends the batches of a partition metadata says does
// not exist.
func (p *Producer) failUnknownPartition(ps *partState, n int) {
	err := fmt.Errorf("%s has %d partitions: %w", ps.tp.Topic, n, ErrUnknownPartition)
	for i := 0; i < len(ps.batches); {
		b := ps.batches[i]
		if b.inflight {
			i++
			continue
		}
		p.finishFailed(ps, b, err)
	}
}

// sentBatch remembers which partition a batch of a request belongs to.
type sentBatch struct {
	ps *partState
	b  *batch
}

func (p *Producer) sendProduce(build *produceBuild) {
	send := p.takeProduceSend()
	req := send.req
	req.Acks = p.cfg.Acks.wire()
	req.TimeoutMillis = int32(p.cfg.RequestTimeout / time.Millisecond)
	for _, b := range build.batches {
		ps := b.ps
		if ps == nil {
			ps = p.byTP[b.tp]
		}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != b.tp.Topic {
			req.Topics = kafkawire.AppendProduceTopic(req.Topics, b.tp.Topic)
		}
		t := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = b.tp.Partition
		rp.Records = b.encoded
		t.Partitions = append(t.Partitions, rp)
		b.inflight = true
		b.attempts++
		ps.inflight++
		send.sent = append(send.sent, sentBatch{ps: ps, b: b})
	}
	p.inflightReqs++
	p.stats.Requests++
	c := p.cl.cfg.conn.newCall()
	c.req, c.into, c.noResponse, c.done = req, send.into, p.cfg.Acks == AcksNone, send.doneFn
	p.cl.send(c, build.leader)
}

// produceSend is one produce request in flight: the request, the answer
// it is decoded into and the batches it carries, with its callback bound
// once. A producer reuses them once the callback returned: nothing reads
// the request then (it was encoded when written), nor the answer (its
// strings and the records' bytes point into frames).
type produceSend struct {
	p      *Producer
	req    *kmsg.ProduceRequest
	into   *kmsg.ProduceResponse
	sent   []sentBatch
	doneFn func(kmsg.Response, error)
}

func (s *produceSend) done(resp kmsg.Response, err error) {
	s.p.onProduce(s.sent, resp, err)
	s.p.putProduceSend(s)
}

// produceSendsMax bounds the produce sends a producer keeps: one for
// each request in flight is enough.
const produceSendsMax = 8

// takeProduceSend returns a send with an empty request and answer,
// reusing one whose callback has returned.
func (p *Producer) takeProduceSend() *produceSend {
	s := p.produceSends.Take()
	if s == nil {
		s = &produceSend{p: p, req: kmsg.NewPtrProduceRequest(), into: kmsg.NewPtrProduceResponse()}
		s.doneFn = s.done
		return s
	}
	kafkawire.ResetProduceRequest(s.req)
	kafkawire.ResetProduceResponse(s.into)
	return s
}

// putProduceSend keeps a send whose callback has returned.
func (p *Producer) putProduceSend(s *produceSend) {
	clear(s.sent)
	s.sent = s.sent[:0]
	p.produceSends.Put(s, produceSendsMax)
}

func (p *Producer) onProduce(sent []sentBatch, resp kmsg.Response, err error) {
	if p.closed {
		return // Close ended every batch already
	}
	p.inflightReqs--
	for _, s := range sent {
		s.b.inflight = false
		s.ps.inflight--
	}
	switch {
	case err != nil:
		class := classOfRequestError(err)
		if class.refreshMetadata {
			p.cl.refresh()
		}
		for _, s := range sent {
			p.retryOrFinish(s.ps, s.b, err, class)
		}
	case resp == nil:
		// acks=0: written, never answered.
		for _, s := range sent {
			p.finish(s.ps, s.b, history.Info, ErrNoAcknowledgement, -1)
		}
	default:
		p.onProduceResponse(sent, resp.(*kmsg.ProduceResponse))
	}
	p.pump()
}

func (p *Producer) onProduceResponse(sent []sentBatch, resp *kmsg.ProduceResponse) {
	answers := producePartitions(p.answersScratch[:0], resp)
	defer p.keepAnswers(answers)
	if len(answers) > produceAnswersScanMax {
		p.onProduceResponseIndexed(sent, answers)
		return
	}
	for _, s := range sent {
		a := findProduceAnswer(answers, s.b.tp)
		if a == nil {
			p.retryOrFinish(s.ps, s.b, fmt.Errorf("%s missing from the produce response: %w", s.b.tp, errMalformedResponse), classLostInFlight)
			continue
		}
		p.onPartitionResponse(s.ps, s.b, a.ErrorCode, a.BaseOffset, errorMessage(a.ErrorMessage))
	}
}

// produceAnswersScanMax is the most partitions of a produce answer looked
// up by scanning rather than through a map: a producer's request carries
// a batch for a handful of partitions, and a map of them per answer was a
// fair part of a simulated client's work.
const produceAnswersScanMax = 16

// produceAnswer is one partition of a produce response with its topic.
type produceAnswer struct {
	topic string
	*kmsg.ProduceResponseTopicPartition
}

// keepAnswers keeps the room of a response's answers for the next one,
// without pointers into it.
func (p *Producer) keepAnswers(answers []produceAnswer) {
	clear(answers)
	if cap(answers) <= produceAnswersScanMax {
		p.answersScratch = answers[:0]
	}
}

// producePartitions appends resp's partitions to answers, in order.
func producePartitions(answers []produceAnswer, resp *kmsg.ProduceResponse) []produceAnswer {
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			answers = append(answers, produceAnswer{topic: t.Topic, ProduceResponseTopicPartition: &t.Partitions[pi]})
		}
	}
	return answers
}

// findProduceAnswer is tp's answer, the last one if the broker named tp
// twice (as a map of the answers would keep), nil if none.
func findProduceAnswer(answers []produceAnswer, tp TopicPartition) *kmsg.ProduceResponseTopicPartition {
	for i := len(answers) - 1; i >= 0; i-- {
		if a := answers[i]; a.Partition == tp.Partition && a.topic == tp.Topic {
			return a.ProduceResponseTopicPartition
		}
	}
	return nil
}

// onProduceResponseIndexed is onProduceResponse for an answer with many
// partitions.
func (p *Producer) onProduceResponseIndexed(sent []sentBatch, answers []produceAnswer) {
	byTP := make(map[TopicPartition]*kmsg.ProduceResponseTopicPartition, len(answers))
	for _, a := range answers {
		byTP[TopicPartition{Topic: a.topic, Partition: a.Partition}] = a.ProduceResponseTopicPartition
	}
	for _, s := range sent {
		a := byTP[s.b.tp]
		if a == nil {
			p.retryOrFinish(s.ps, s.b, fmt.Errorf("%s missing from the produce response: %w", s.b.tp, errMalformedResponse), classLostInFlight)
			continue
		}
		p.onPartitionResponse(s.ps, s.b, a.ErrorCode, a.BaseOffset, errorMessage(a.ErrorMessage))
	}
}

// errorMessage is a response's nullable error message, "" for null.
func errorMessage(msg *string) string {
	if msg == nil {
		return ""
	}
	return *msg
}

func (p *Producer) onPartitionResponse(ps *partState, b *batch, code int16, baseOffset int64, message string) {
	switch code {
	case codeNone:
		if baseOffset < 0 {
			p.finish(ps, b, history.Info, fmt.Errorf("acknowledged without an offset: %w", errMalformedResponse), -1)
		} else {
			p.finish(ps, b, history.OK, nil, baseOffset)
		}
		if ps.inflight == 0 {
			ps.retrying = false
		}
		return
	case codeDuplicateSequenceNumber:
		p.finish(ps, b, history.Info, ErrDuplicateUnknownOffset, -1)
		return
	}
	err := &CodeError{Code: code, Message: message}
	class := p.classifyProduceError(ps, b, code)
	if class.refreshMetadata {
		p.cl.refresh()
	}
	if class.resetProducer && p.idempotent {
		p.wantReset(err)
	}
	p.retryOrFinish(ps, b, err, class)
}

// classifyProduceError is the table's class, except for a sequence gap
// the producer caused itself: OUT_OF_ORDER_SEQUENCE_NUMBER on a batch
// behind another unacknowledged batch of the same partition (which is
// being retried), or while a reset is pending, only means the batch went
// too early; it was not appended and is resent.
func (p *Producer) classifyProduceError(ps *partState, b *batch, code int16) produceClass {
	if code == codeOutOfOrderSequenceNumber && p.idempotent && (p.resetPending || ps.batches[0] != b) {
		return produceClass{retriable: true}
	}
	return classOf(code)
}

// retryOrFinish schedules another attempt of b or ends it.
func (p *Producer) retryOrFinish(ps *partState, b *batch, err error, class produceClass) {
	b.lastErr = err
	if class.mayHaveAppended {
		b.maybeAppended = true
	}
	now := p.env.Clock.Mono()
	switch {
	case !class.retriable:
		p.finishFailed(ps, b, err)
	case b.attempts >= p.cfg.RetriesMax:
		p.finishFailed(ps, b, fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, b.attempts, err))
	case now >= b.createdMono+p.cfg.DeliveryTimeout:
		p.finishFailed(ps, b, fmt.Errorf("%w after %v: %w", ErrDeliveryTimeout, p.cfg.DeliveryTimeout, err))
	default:
		b.retryAt = now + p.backoff(b.attempts)
		ps.retrying = true
		p.stats.Retries++
	}
}

// backoff is the wait before attempt+1: exponential with ±20% jitter.
func (p *Producer) backoff(attempts int) time.Duration {
	return jitteredBackoff(p.env, p.cfg.RetryBackoff, p.cfg.RetryBackoffMax, attempts)
}

func jitteredBackoff(env sim.Env, base, ceiling time.Duration, attempts int) time.Duration {
	d := base
	for i := 1; i < attempts && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	jitter := time.Duration(env.Rand.Int64N(int64(d)*2/5+1)) - d/5
	return max(d+jitter, time.Millisecond)
}

// finishFailed ends b without an acknowledgement. An idempotent batch that
// carried sequence numbers leaves a gap (or an unknown) in the sequence,
// so the producer moves to a new epoch before sending more.
func (p *Producer) finishFailed(ps *partState, b *batch, err error) {
	if p.idempotent && b.seq >= 0 {
		p.wantReset(err)
	}
	p.finish(ps, b, finalOutcome(b.maybeAppended), err, -1)
}

// finish ends b with outcome, recording one completion per record.
func (p *Producer) finish(ps *partState, b *batch, outcome history.Type, err error, baseOffset int64) {
	i := slices.Index(ps.batches, b)
	if i < 0 { // not a bare Assert: its argument would allocate on every batch
		sim.Assert(false, "finishing a batch of %s that is not queued", ps.tp)
	}
	ps.batches = slices.Delete(ps.batches, i, i+1)
	p.bufferedBytes -= b.sizeBytes
	for j, pr := range b.records {
		r := pr.rec
		r.Offset = -1
		if outcome == history.OK {
			r.Offset = baseOffset + int64(j)
		}
		if outcome == history.OK || errors.Is(err, ErrNoAcknowledgement) {
			p.written++
			p.failedSinceWritten = 0
		} else {
			p.failedSinceWritten++
			p.lastFailure = err
		}
		switch outcome {
		case history.OK:
			p.stats.OK++
		case history.Fail:
			p.stats.Failed++
		default:
			p.stats.Unknown++
		}
		if p.cfg.Recorder != nil {
			hr := p.historySlab.Take()
			if pr.invokeRecorded {
				// The same record: its strings are not built again.
				*hr = pr.invoked
				hr.Offset = r.Offset
			} else {
				*hr = r.historyRecord(p.historyValue)
			}
			op := history.Op{Process: p.cfg.Process, Node: p.env.Node, Type: outcome, F: history.Send, Record: hr}
			if err != nil {
				op.Error = err.Error()
			}
			p.cfg.Recorder.Add(op)
		}
		p.completions = append(p.completions, completion{pr.done, Result{Record: r, Outcome: outcome, Err: err}})
	}
}

// wantReset stops sending until every request is answered, then gives the
// producer a new epoch (resetIdentity).
func (p *Producer) wantReset(cause error) {
	if !p.resetPending {
		p.env.Log.Logf("kafka producer %s: new producer epoch needed: %v", p.cfg.ClientID, cause)
	}
	p.resetPending = true
}

// resetIdentity moves the producer to a new epoch, as the Java client does
// for an idempotent producer (KIP-360): it bumps the epoch itself, which
// fences requests of the old epoch still on their way, and numbers
// sequences from 0 again. When the epoch is exhausted it asks for a new
// producer id instead. Batches sent under the old epoch whose outcome is
// unknown end as info (resending them could append them twice); batches
// the broker refused start again with new sequence numbers.
func (p *Producer) resetIdentity() {
	sim.Assert(p.inflightReqs == 0, "producer reset with requests in flight")
	p.resetPending = false
	p.stats.Resets++
	for _, ps := range p.parts {
		for i := 0; i < len(ps.batches); {
			b := ps.batches[i]
			if b.seq >= 0 && b.maybeAppended {
				err := fmt.Errorf("%w (last error: %w)", ErrProducerReset, b.lastErr)
				p.finish(ps, b, history.Info, err, -1)
				continue
			}
			b.seq, b.encoded = -1, nil
			i++
		}
		ps.nextSeq = 0
		ps.retrying = false
	}
	if p.identity == identityReady && p.producerEpoch < math.MaxInt16 {
		p.producerEpoch++
		return
	}
	p.identity = identityNone
	p.producerID, p.producerEpoch = -1, -1
}

// transactionTimeoutMs is sent with InitProducerId, as the Java client's
// default transaction.timeout.ms; it does not matter without transactions.
const transactionTimeoutMs = 60_000

func (p *Producer) askIdentity() {
	p.identity = identityAsking
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = transactionTimeoutMs
	req.ProducerID = -1
	req.ProducerEpoch = -1
	p.cl.call(p.cl.metadataNode(), req, 0, false, p.onInitProducerID)
}

func (p *Producer) onInitProducerID(resp kmsg.Response, err error) {
	if p.closed {
		return
	}
	p.identity = identityNone
	var unsupported *errUnsupported
	switch {
	case errors.As(err, &unsupported):
		p.env.Log.Logf("kafka producer %s: %v; going on without idempotence", p.cfg.ClientID, err)
		p.idempotent = false
	case err != nil:
		p.identityRetry = p.env.Clock.Mono() + p.cfg.RetryBackoff
	default:
		r := resp.(*kmsg.InitProducerIDResponse)
		switch {
		case r.ErrorCode == codeNone:
			p.producerID, p.producerEpoch = r.ProducerID, r.ProducerEpoch
			p.identity = identityReady
		case kerr.IsRetriable(kerr.ErrorForCode(r.ErrorCode)) || r.ErrorCode == codeConcurrentTransactions:
			p.identityRetry = p.env.Clock.Mono() + p.cfg.RetryBackoff
		default:
			p.env.Log.Logf("kafka producer %s: InitProducerId: %s; going on without idempotence",
				p.cfg.ClientID, errorName(r.ErrorCode))
			p.idempotent = false
		}
	}
	p.pump()
}

// armTimer sets the producer's one timer to its next deadline: a lingering
// batch, a retry, a delivery timeout or a producer id retry.
func (p *Producer) armTimer(now time.Duration) {
	soon := earliest{now: now}
	for _, ps := range p.parts {
		for _, b := range ps.batches {
			if b.inflight {
				continue
			}
			soon.consider(b.createdMono + p.cfg.DeliveryTimeout)
			if b.retryAt > now {
				soon.consider(b.retryAt)
			}
			if !b.sealed && !p.flushing {
				soon.consider(b.createdMono + p.cfg.Linger)
			}
		}
	}
	for _, pr := range p.parked {
		soon.consider(pr.createdMono + p.cfg.DeliveryTimeout)
	}
	if p.idempotent && p.identity == identityNone {
		soon.consider(p.identityRetry)
	}
	p.timer.arm(p.env.Clock, now, soon.at)
}
