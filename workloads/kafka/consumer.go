package kafka

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/kafkawire"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/slab"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResetPolicy is where a consumer starts when it has no position or its
// position left the log (auto.offset.reset).
type ResetPolicy int8

// Reset policies. The zero value is ResetEarliest.
const (
	ResetEarliest ResetPolicy = iota
	ResetLatest
	// ResetNone leaves the partition in error (Consumer.PartitionError)
	// until the caller seeks.
	ResetNone
)

// ListOffsets timestamps naming the log's ends.
const (
	timestampLatest   int64 = -1
	timestampEarliest int64 = -2
)

// Errors the consumer reports per partition.
var (
	// ErrOffsetOutOfRange: the position left the log and the reset policy
	// is none.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrPollPending: Poll, Assign or Seek was called while a poll is in
	// progress. A consumer does one thing at a time, as its history says.
	ErrPollPending = errors.New("a poll is in progress")
	// ErrNotAssigned: the partition is not assigned to the consumer.
	ErrNotAssigned = errors.New("partition not assigned")
)

// fetchBatchesMax bounds the batches decoded from one partition response;
// the batches beyond it are fetched again from the position it reached.
const fetchBatchesMax = 1 << 16

// ConsumerConfig configures a consumer. Zero fields take the defaults
// named on each.
type ConsumerConfig struct {
	Bootstrap []string
	// ClientID names the client to the brokers; default "sluice-consumer".
	ClientID string
	// Process is the history's process number for this consumer.
	Process int
	// Recorder receives the history; nil records nothing.
	Recorder    history.Recorder
	ResetPolicy ResetPolicy
	// FetchMaxWait is how long a broker may hold a fetch for FetchMinBytes,
	// and how long a poll waits for records; default 500 ms.
	FetchMaxWait time.Duration
	// FetchMinBytes is what a broker waits for; default 1.
	FetchMinBytes int
	// FetchMaxBytes bounds a fetch response; default 4 MiB.
	FetchMaxBytes int
	// PartitionMaxBytes bounds one partition in a fetch response; default
	// 1 MiB. A broker still returns a first batch larger than this.
	PartitionMaxBytes int
	// RequestTimeout bounds a request's wait beyond FetchMaxWait; default
	// 10 s.
	RequestTimeout time.Duration
	// RetryBackoff is the first wait before fetching a partition again
	// after an error; it doubles up to RetryBackoffMax. Defaults 100 ms, 1 s.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// MetadataMinInterval bounds the metadata refresh rate; default 250 ms.
	MetadataMinInterval time.Duration
	// MetadataMaxAge refreshes metadata periodically; default 5 min.
	MetadataMaxAge time.Duration
	// SendLeaderEpoch sends the partition's leader epoch from metadata in
	// fetches and offset lookups (KIP-320), so that the broker fences a
	// consumer whose view of the leader is stale; otherwise -1, no check.
	SendLeaderEpoch bool
	// LendRecords lends a poll's records to its callback: they are valid
	// until it returns, and the next poll reuses their slice, sparing a
	// slice per poll. A caller that keeps records past its callback copies
	// them or leaves this off.
	LendRecords bool
	// Bugs switches on planted client bugs (faults.BugConsumerSkipsPastHW).
	Bugs faults.Bugs
}

func (cfg *ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	c := *cfg
	if len(c.Bootstrap) == 0 {
		return c, errors.New("consumer config: no bootstrap brokers")
	}
	if c.ResetPolicy < ResetEarliest || c.ResetPolicy > ResetNone {
		return c, fmt.Errorf("consumer config: unknown reset policy %d", c.ResetPolicy)
	}
	setDefault(&c.ClientID, "sluice-consumer")
	setDefault(&c.FetchMaxWait, 500*time.Millisecond)
	setDefault(&c.FetchMinBytes, 1)
	setDefault(&c.FetchMaxBytes, 4<<20)
	setDefault(&c.PartitionMaxBytes, 1<<20)
	setDefault(&c.RequestTimeout, 10*time.Second)
	setDefault(&c.RetryBackoff, 100*time.Millisecond)
	setDefault(&c.RetryBackoffMax, time.Second)
	setDefault(&c.MetadataMinInterval, metadataMinIntervalDefault)
	setDefault(&c.MetadataMaxAge, metadataMaxAgeDefault)
	return c, nil
}

// PollResult is what one poll returned.
type PollResult struct {
	// Records are the records read, each partition's in offset order.
	Records []Record
}

// resetTo says where a partition's position must be looked up.
type resetTo int8

const (
	resetNothing resetTo = iota
	resetToEarliest
	resetToLatest
	// resetToTimestamp looks up the first offset whose timestamp is at or
	// after consumedPart.seekTimestampMs.
	resetToTimestamp
)

// consumedPart is one assigned partition.
type consumedPart struct {
	tp TopicPartition
	// decoded is where a batch's records are decoded before the ones at
	// or after the position are taken, kept from batch to batch.
	decoded []record.Record
	// position is the next offset to fetch, -1 until known.
	position int64
	// returned is the position as of the last completed poll: records a
	// fetch brought in during a poll are not returned until it completes.
	returned int64
	// epoch is the leader epoch of the record before position (its
	// batch's PartitionLeaderEpoch, or the epoch a committed offset came
	// with), -1 when unknown; returnedEpoch is returned's. With
	// SendLeaderEpoch nothing is fetched until metadata knows a leader
	// epoch at least this (KIP-320): a leader of an older epoch may not
	// hold the records before the position at all.
	epoch         int32
	returnedEpoch int32
	reset         resetTo
	// seekTimestampMs is the timestamp of a resetToTimestamp lookup.
	seekTimestampMs int64
	// resetAwaitsPoll holds a reset that an answer forced during a poll
	// until the next poll, which first records it as an assign: records
	// from the new position in the same poll would read as a skip.
	resetAwaitsPoll bool
	// gen counts seeks and resets, so that an answer to a request sent
	// before one is ignored.
	gen      int
	listing  bool
	fetching bool
	// validate: the position awaits OffsetForLeaderEpoch before it is
	// fetched from (position_validation.go); validating: it is asked.
	validate   bool
	validating bool
	// outOfRangeValidated: an OFFSET_OUT_OF_RANGE answer led to a
	// validation since the last fetch that read; another one resets.
	outOfRangeValidated bool
	// fetchedInPoll: a fetch of this poll answered for the partition
	// without error. It is not fetched again in the same poll, so a broker
	// that answers at once with nothing does not set off a fetch storm.
	fetchedInPoll bool
	retryAt       time.Duration
	failures      int
	err           error
	highWater     int64
	logStart      int64
	// readMax is one past the highest offset returned since the last
	// seek: it grows only when the consumer reads something new, which
	// is what progress means to a watchdog.
	readMax int64
	// stall is what the partition did since readMax last grew.
	stall partStall
}

// pollState is the poll in progress.
type pollState struct {
	done     func(PollResult)
	records  []Record
	fetches  int
	expired  bool
	deadline sim.Timer
}

// Consumer is the consumer actor: explicit assignment, no group. Its
// methods and callbacks run on the node's loop.
type Consumer struct {
	env sim.Env
	cfg ConsumerConfig
	cl  *cluster

	parts []*consumedPart
	byTP  map[TopicPartition]*consumedPart
	// assignDirty: positions moved other than by reading (a seek, a reset
	// after OFFSET_OUT_OF_RANGE); the next poll is preceded by an assign
	// op so the history says polls may start anywhere.
	assignDirty bool
	poll        *pollState
	wake        deadline
	// stepFn is step, bound once: polls schedule it often.
	stepFn func()
	// pollExpiredFn is pollExpired, bound once: every poll arms it.
	pollExpiredFn func()
	fetchAnswers  fetchAnswers
	// historyChunk is where polls' history records are cut from.
	historyChunk []history.Record
	// historyValue is how the recorder keeps values (historyValueFor),
	// bound once.
	historyValue historyValue
	// pollSlab is where polls' states are cut from.
	pollSlab slab.Slab[pollState]
	// fetchCalls are spare fetch calls (see fetchCall).
	fetchCalls []*fetchCall
	// answeredBetweenPolls are fetches answered while no poll was in
	// progress, taken by the next poll: dropped, the answers of a slower
	// leader could always come back while an application processed what
	// a faster one returned. At most one per leader is in flight.
	answeredBetweenPolls []*fetchCall
	// groupsScratch is groupByLeader's slice, kept between calls.
	groupsScratch []leaderGroup
	// lastPollRecords is how many records the last poll that returned
	// any returned: the room a poll's slice starts with.
	lastPollRecords int
	// lent is the slice of records the last poll lent to its callback,
	// for the next poll (LendRecords).
	lent   []Record
	closed bool
	stats  ConsumerStats
}

// ConsumerStats count what a consumer did.
type ConsumerStats struct {
	Polls            int
	Records          int
	Fetches          int
	ListOffsets      int
	Resets           int
	MetadataRequests int
	// Validations counts OffsetForLeaderEpoch requests (KIP-320);
	// Truncations the positions they found past the leader's log.
	Validations int
	Truncations int
	// CorruptBatches counts batches the broker served that failed this
	// client's checks (CRC, structure): corrupt data a broker must never
	// serve.
	CorruptBatches int
	// CorruptRefusals counts CORRUPT_MESSAGE answers: the broker found
	// damaged data and refused to serve it, as it should.
	CorruptRefusals int
}

// NewConsumer starts a consumer on env with nothing assigned.
func NewConsumer(env sim.Env, cfg ConsumerConfig) (*Consumer, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	co := &Consumer{
		env:  env,
		cfg:  c,
		byTP: map[TopicPartition]*consumedPart{},
	}
	co.historyValue = historyValueFor(c.Recorder)
	co.stepFn = co.step
	co.pollExpiredFn = co.pollExpired
	co.wake.fire = co.stepFn
	co.cl = newCluster(env, clusterConfig{
		bootstrap: c.Bootstrap,
		conn: connConfig{
			clientID:       c.ClientID,
			requestTimeout: c.RequestTimeout,
			// One fetch per broker at a time, plus list offsets and
			// metadata beside it.
			inFlightMax: 4,
		},
		metadataMinInterval: c.MetadataMinInterval,
		metadataMaxAge:      c.MetadataMaxAge,
	}, co.onMetadata)
	return co, nil
}

// Assign replaces the assignment. Partitions kept keep their positions;
// new ones start per the reset policy. It records an assign op.
func (co *Consumer) Assign(tps []TopicPartition) error {
	if err := co.idle("assign"); err != nil {
		return err
	}
	sorted := slices.Clone(tps)
	slices.SortFunc(sorted, compareTP)
	sorted = slices.Compact(sorted)
	parts := make([]*consumedPart, 0, len(sorted))
	byTP := make(map[TopicPartition]*consumedPart, len(sorted))
	for _, tp := range sorted {
		cp := co.byTP[tp]
		if cp == nil {
			cp = &consumedPart{tp: tp, position: -1, epoch: -1, reset: co.policyReset(), highWater: -1, logStart: -1, stall: noStall}
			co.cl.want(tp.Topic)
		}
		parts = append(parts, cp)
		byTP[tp] = cp
	}
	co.parts, co.byTP = parts, byTP
	co.recordAssign()
	return nil
}

// Assignment is the assigned partitions, sorted.
func (co *Consumer) Assignment() []TopicPartition {
	out := make([]TopicPartition, len(co.parts))
	for i, cp := range co.parts {
		out[i] = cp.tp
	}
	return out
}

// Seek sets the position of an assigned partition.
func (co *Consumer) Seek(tp TopicPartition, offset int64) error {
	return co.SeekEpoch(tp, offset, -1)
}

// SeekEpoch sets the position of an assigned partition with the leader
// epoch of the record before it (a committed offset's), -1 if unknown.
func (co *Consumer) SeekEpoch(tp TopicPartition, offset int64, epoch int32) error {
	return co.seek(tp, func(cp *consumedPart) {
		cp.position, cp.epoch, cp.reset = offset, epoch, resetNothing
		cp.validate = epoch >= 0 && co.cfg.SendLeaderEpoch
	})
}

// SeekToBeginning moves the position to the log start offset.
func (co *Consumer) SeekToBeginning(tp TopicPartition) error {
	return co.seek(tp, func(cp *consumedPart) { cp.position, cp.epoch, cp.reset = -1, -1, resetToEarliest })
}

// SeekToTimestamp moves the position to the first record whose timestamp
// is at or after timestampMs (ListOffsets by time), or to the high
// watermark when there is none.
func (co *Consumer) SeekToTimestamp(tp TopicPartition, timestampMs int64) error {
	if timestampMs < 0 {
		return fmt.Errorf("seek %s to timestamp %d: negative", tp, timestampMs)
	}
	return co.seek(tp, func(cp *consumedPart) {
		cp.position, cp.epoch, cp.reset, cp.seekTimestampMs = -1, -1, resetToTimestamp, timestampMs
	})
}

// SeekToEnd moves the position to the high watermark.
func (co *Consumer) SeekToEnd(tp TopicPartition) error {
	return co.seek(tp, func(cp *consumedPart) { cp.position, cp.epoch, cp.reset = -1, -1, resetToLatest })
}

func (co *Consumer) seek(tp TopicPartition, set func(*consumedPart)) error {
	if err := co.idle("seek"); err != nil {
		return err
	}
	cp := co.byTP[tp]
	if cp == nil {
		return fmt.Errorf("seek %s: %w", tp, ErrNotAssigned)
	}
	cp.validate, cp.outOfRangeValidated = false, false
	set(cp)
	cp.gen++
	cp.err, cp.retryAt, cp.failures = nil, 0, 0
	// A seek starts a new reading: what was read before it is no
	// measure of progress after it.
	cp.readMax, cp.stall = 0, noStall
	co.assignDirty = true
	return nil
}

// LogStartOffset is tp's log start offset as the latest fetch answer
// gave it, -1 before one.
func (co *Consumer) LogStartOffset(tp TopicPartition) int64 {
	if cp := co.byTP[tp]; cp != nil {
		return cp.logStart
	}
	return -1
}

// Position is the offset after the records of tp returned so far: while a
// poll is in progress, its position when the poll began. False while
// unknown.
func (co *Consumer) Position(tp TopicPartition) (int64, bool) {
	cp := co.byTP[tp]
	if cp == nil {
		return -1, false
	}
	pos := cp.position
	if co.poll != nil {
		pos = cp.returned
	}
	return pos, pos >= 0
}

// PositionEpoch is the leader epoch of the record before Position, -1
// when unknown: what a commit of the position carries (KIP-320).
func (co *Consumer) PositionEpoch(tp TopicPartition) int32 {
	cp := co.byTP[tp]
	if cp == nil {
		return -1
	}
	if co.poll != nil {
		return cp.returnedEpoch
	}
	return cp.epoch
}

// HighWatermark is the high watermark the last fetch of tp reported, -1
// before any.
func (co *Consumer) HighWatermark(tp TopicPartition) int64 {
	if cp := co.byTP[tp]; cp != nil {
		return cp.highWater
	}
	return -1
}

// PartitionError is the error that stopped tp (with ResetNone), if any.
func (co *Consumer) PartitionError(tp TopicPartition) error {
	if cp := co.byTP[tp]; cp != nil {
		return cp.err
	}
	return fmt.Errorf("%s: %w", tp, ErrNotAssigned)
}

// Stats returns the consumer's counters.
func (co *Consumer) Stats() ConsumerStats {
	s := co.stats
	s.MetadataRequests = co.cl.metaRequests
	return s
}

// Polling reports whether a poll is in progress.
func (co *Consumer) Polling() bool { return co.poll != nil }

func (co *Consumer) idle(what string) error {
	switch {
	case co.closed:
		return fmt.Errorf("%s: %w", what, ErrClosed)
	case co.poll != nil:
		return fmt.Errorf("%s: %w", what, ErrPollPending)
	}
	return nil
}

func (co *Consumer) policyReset() resetTo {
	switch co.cfg.ResetPolicy {
	case ResetEarliest:
		return resetToEarliest
	case ResetLatest:
		return resetToLatest
	}
	return resetNothing
}

func (co *Consumer) recordAssign() {
	co.assignDirty = false
	if co.cfg.Recorder == nil {
		return
	}
	tps := co.Assignment()
	co.cfg.Recorder.Add(history.Op{Process: co.cfg.Process, Node: co.env.Node, Type: history.Invoke, F: history.Assign, Assign: tps})
	co.cfg.Recorder.Add(history.Op{Process: co.cfg.Process, Node: co.env.Node, Type: history.OK, F: history.Assign, Assign: tps})
}

// Poll reads what the assigned partitions hold past their positions: one
// fetch per leader, then done with every record returned. It waits up to
// FetchMaxWait for records (longer only while a fetch is answered late).
// A poll always completes ok, possibly empty: positions move only over the
// records it returns.
func (co *Consumer) Poll(done func(PollResult)) error {
	sim.Assert(done != nil, "Poll without a done callback")
	if err := co.idle("poll"); err != nil {
		return err
	}
	if co.assignDirty {
		co.recordAssign()
	}
	co.stats.Polls++
	if co.cfg.Recorder != nil {
		co.cfg.Recorder.Add(history.Op{Process: co.cfg.Process, Node: co.env.Node, Type: history.Invoke, F: history.Poll})
	}
	for _, cp := range co.parts {
		cp.returned, cp.returnedEpoch = cp.position, cp.epoch
		cp.fetchedInPoll = false
		cp.resetAwaitsPoll = false
	}
	ps := co.pollSlab.Take()
	ps.done = done
	co.poll = ps
	ps.deadline = co.env.Clock.AfterFunc(co.cfg.FetchMaxWait, co.pollExpiredFn)
	co.takeAnsweredBetweenPolls()
	co.env.Clock.AfterFunc(0, co.stepFn)
	return nil
}

// takeAnsweredBetweenPolls reads the fetches answered since the last poll
// into this one: the partitions not sought since start at the positions
// those fetches asked from.
func (co *Consumer) takeAnsweredBetweenPolls() {
	for i, fc := range co.answeredBetweenPolls {
		co.answeredBetweenPolls[i] = nil
		co.onFetch(fc.parts, fc.gens, fc.answer, fc.err)
		co.fetchAnswers.put(fc.req, fc.into)
		co.putFetchCall(fc)
	}
	co.answeredBetweenPolls = co.answeredBetweenPolls[:0]
}

// pollExpired ends the current poll's wait. Its timer is stopped when
// the poll completes, so the poll it fires for is the current one.
func (co *Consumer) pollExpired() {
	if co.poll != nil {
		co.poll.expired = true
	}
	co.step()
}

// Close ends the consumer. A poll in progress completes with what it has.
func (co *Consumer) Close() {
	if co.closed {
		return
	}
	co.closed = true
	co.wake.stop()
	co.cl.close()
	for i, fc := range co.answeredBetweenPolls {
		co.answeredBetweenPolls[i] = nil
		co.fetchAnswers.put(fc.req, fc.into)
		co.putFetchCall(fc)
	}
	co.answeredBetweenPolls = co.answeredBetweenPolls[:0]
	if co.poll != nil {
		co.completePoll()
	}
}

func (co *Consumer) onMetadata() {
	if !co.closed && co.poll != nil {
		co.step()
	}
}

// step moves the poll on: complete it if it has records, or if its time
// is up and none of its fetches is in flight; otherwise send what can be
// sent. A poll with records does not wait for its other fetches, as
// Kafka's and franz-go's consumers do not: a leader holds a fetch of
// caught-up partitions for FetchMaxWait, and a poll waiting for it read a
// lagging partition of another leader one answer (one segment) per
// FetchMaxWait, too slow for a drain to catch up. A fetch still in flight
// is answered into the poll in progress when it comes back, or into the
// next one.
func (co *Consumer) step() {
	ps := co.poll
	if co.closed || ps == nil {
		return
	}
	if len(ps.records) > 0 || (ps.fetches == 0 && ps.expired) {
		co.completePoll()
		return
	}
	if ps.expired {
		return // wait for the fetches in flight
	}
	now := co.env.Clock.Mono()
	co.sendListOffsets(now)
	co.sendValidations(now)
	co.sendFetches(now)
	co.armWake(now)
}

func (co *Consumer) completePoll() {
	ps := co.poll
	co.poll = nil
	ps.deadline.Stop()
	co.stats.Records += len(ps.records)
	if len(ps.records) > 0 {
		co.lastPollRecords = len(ps.records)
	}
	if co.cfg.Recorder != nil {
		recs := co.takeHistoryRecords(len(ps.records))
		for i := range ps.records {
			recs[i] = ps.records[i].historyRecord(co.historyValue)
		}
		co.cfg.Recorder.Add(history.Op{Process: co.cfg.Process, Node: co.env.Node, Type: history.OK, F: history.Poll, Records: recs})
	}
	ps.done(PollResult{Records: ps.records})
	if co.cfg.LendRecords && cap(ps.records) > 0 && cap(ps.records) <= pollRecordsHintMax {
		// Their keys and values point into fetch answers' frames, which
		// the garbage collector may then free.
		clear(ps.records)
		co.lent = ps.records[:0]
	}
}

// historyChunkRecords is how many history records the consumer allocates
// at once, to cut polls' records from: the history keeps them all, so a
// chunk holds nothing longer than its records would be held anyway.
const historyChunkRecords = 256

// takeHistoryRecords returns room for n history records of a poll.
func (co *Consumer) takeHistoryRecords(n int) []history.Record {
	if n == 0 {
		return []history.Record{}
	}
	if len(co.historyChunk) < n {
		co.historyChunk = make([]history.Record, max(n, historyChunkRecords))
	}
	recs := co.historyChunk[:n:n]
	co.historyChunk = co.historyChunk[n:]
	return recs
}

// armWake wakes the poll when a partition's backoff ends.
func (co *Consumer) armWake(now time.Duration) {
	soon := earliest{now: now}
	for _, cp := range co.parts {
		soon.consider(cp.retryAt)
	}
	co.wake.arm(co.env.Clock, now, soon.at)
}

// ready reports whether cp may be asked about now.
func (cp *consumedPart) ready(now time.Duration) bool {
	return cp.err == nil && !cp.listing && !cp.fetching && !cp.validating && now >= cp.retryAt
}

// backoff delays cp after a failure, noting it for a no-progress verdict.
func (co *Consumer) backoff(cp *consumedPart, now time.Duration, cause error) {
	cp.stall.failures++
	cp.stall.lastFailure = cause.Error()
	cp.failures++
	cp.retryAt = now + jitteredBackoff(co.env, co.cfg.RetryBackoff, co.cfg.RetryBackoffMax, cp.failures)
}

// groupByLeader groups the partitions that match by leader, in leader
// order. Partitions without a known leader ask for metadata.
func (co *Consumer) groupByLeader(match func(*consumedPart) bool) []leaderGroup {
	// A slice searched linearly, not a map: a client talks to a handful
	// of brokers, and this runs on every fetch.
	// The groups and their parts' slices are kept from call to call:
	// each caller is done with them before the next call, and copies the
	// parts a request's callback keeps.
	groups := co.groupsScratch[:0]
	for _, cp := range co.parts {
		if !match(cp) {
			continue
		}
		leader := co.cl.leader(cp.tp.Topic, cp.tp.Partition)
		if leader < 0 {
			co.cl.refresh()
			continue
		}
		i := slices.IndexFunc(groups, func(g leaderGroup) bool { return g.leader == leader })
		if i < 0 {
			i = len(groups)
			groups = resized(groups, i+1)
			groups[i] = leaderGroup{leader: leader, parts: groups[i].parts[:0]}
		}
		groups[i].parts = append(groups[i].parts, cp)
	}
	slices.SortFunc(groups, func(a, b leaderGroup) int { return cmp.Compare(a.leader, b.leader) })
	co.groupsScratch = groups
	return groups
}

// leaderGroup is the partitions led by one broker.
type leaderGroup struct {
	leader int32
	parts  []*consumedPart
}

// sendListOffsets looks up the positions of partitions due for a reset.
func (co *Consumer) sendListOffsets(now time.Duration) {
	groups := co.groupByLeader(func(cp *consumedPart) bool {
		return cp.reset != resetNothing && !cp.resetAwaitsPoll && cp.ready(now)
	})
	for _, g := range groups {
		leader, parts := g.leader, slices.Clone(g.parts) // the callback keeps them
		gens := make([]int, len(parts))
		resets := make([]resetTo, len(parts))
		for i, cp := range parts {
			cp.listing = true
			gens[i], resets[i] = cp.gen, cp.reset
		}
		stamps := make([]int64, len(parts))
		for i, cp := range parts {
			stamps[i] = cp.seekTimestampMs
		}
		co.stats.ListOffsets++
		co.listOffsets(leader, parts, resets, stamps, func(offsets []int64, codes []int16, err error) {
			for i, cp := range parts {
				cp.listing = false
				if co.closed || cp.gen != gens[i] || co.byTP[cp.tp] != cp {
					continue
				}
				co.onListed(cp, offsets, codes, err, i)
			}
			co.step()
		})
	}
}

func (co *Consumer) onListed(cp *consumedPart, offsets []int64, codes []int16, err error, i int) {
	now := co.env.Clock.Mono()
	switch {
	case err != nil:
		co.cl.refresh()
		co.backoff(cp, now, fmt.Errorf("list offsets: %w", err))
	case codes[i] != codeNone:
		if classOf(codes[i]).refreshMetadata {
			co.cl.refresh()
		}
		co.backoff(cp, now, fmt.Errorf("list offsets: %w", &CodeError{Code: codes[i]}))
	case offsets[i] < 0 && cp.reset == resetToTimestamp:
		// No record at or after the timestamp: read from the end.
		cp.reset = resetToLatest
	default:
		cp.position, cp.reset = offsets[i], resetNothing
		cp.failures, cp.retryAt = 0, 0
		if cp.stall.resets > 0 {
			cp.stall.resetOffset = offsets[i]
		}
	}
}

// listOffsets asks leader for the earliest or latest offset of parts.
// done gets one offset and code per part, or an error for all.
func (co *Consumer) listOffsets(leader int32, parts []*consumedPart, resets []resetTo, stampsMs []int64,
	done func(offsets []int64, codes []int16, err error)) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for i, cp := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != cp.tp.Topic {
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = cp.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		t := &req.Topics[len(req.Topics)-1]
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition = cp.tp.Partition
		p.Timestamp = timestampLatest
		switch resets[i] {
		case resetToEarliest:
			p.Timestamp = timestampEarliest
		case resetToTimestamp:
			p.Timestamp = stampsMs[i]
		}
		p.CurrentLeaderEpoch = co.leaderEpoch(cp.tp)
		t.Partitions = append(t.Partitions, p)
	}
	co.cl.call(leader, req, 0, false, func(resp kmsg.Response, err error) {
		offsets := make([]int64, len(parts))
		codes := make([]int16, len(parts))
		if err != nil {
			done(offsets, codes, err)
			return
		}
		got := map[TopicPartition]kmsg.ListOffsetsResponseTopicPartition{}
		for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				got[TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p
			}
		}
		for i, cp := range parts {
			p, ok := got[cp.tp]
			switch {
			case !ok:
				codes[i] = codeUnknownTopicOrPartition
			case p.ErrorCode != codeNone:
				codes[i] = p.ErrorCode
			default:
				offsets[i] = p.Offset
			}
		}
		done(offsets, codes, nil)
	})
}

// sendFetches sends one fetch to each leader of partitions with a known
// position and no fetch in flight.
func (co *Consumer) sendFetches(now time.Duration) {
	groups := co.groupByLeader(func(cp *consumedPart) bool {
		return cp.reset == resetNothing && cp.position >= 0 && !cp.validate && !cp.fetchedInPoll && cp.ready(now) && co.epochKnown(cp)
	})
	for _, g := range groups {
		leader := g.leader
		if !co.cl.hasRoom(leader) {
			continue
		}
		co.sendFetch(leader, g.parts)
	}
}

func (co *Consumer) sendFetch(leader int32, parts []*consumedPart) {
	req := co.fetchAnswers.takeRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(co.cfg.FetchMaxWait / time.Millisecond)
	req.MinBytes = int32(co.cfg.FetchMinBytes)
	req.MaxBytes = int32(co.cfg.FetchMaxBytes)
	req.IsolationLevel = 0 // read_uncommitted
	req.SessionID = 0
	req.SessionEpoch = -1 // full fetches, no session
	fc := co.takeFetchCall()
	gens := resized(fc.gens[:0], len(parts))
	for i, cp := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != cp.tp.Topic {
			req.Topics = kafkawire.AppendFetchTopic(req.Topics, cp.tp.Topic, len(parts)-i)
		}
		t := &req.Topics[len(req.Topics)-1]
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = cp.tp.Partition
		p.FetchOffset = cp.position
		p.LogStartOffset = -1
		p.PartitionMaxBytes = int32(co.cfg.PartitionMaxBytes)
		p.CurrentLeaderEpoch = co.leaderEpoch(cp.tp)
		t.Partitions = append(t.Partitions, p)
		cp.fetching = true
		gens[i] = cp.gen
	}
	co.stats.Fetches++
	co.poll.fetches++
	// parts is groupByLeader's, used again by the next call: the call
	// keeps a copy.
	fc.parts = append(fc.parts[:0], parts...)
	fc.gens, fc.ps, fc.req, fc.into = gens, co.poll, req, co.fetchAnswers.take()
	co.cl.callInto(leader, req, fc.into, co.cfg.FetchMaxWait, fc.onDoneFn)
}

// fetchCall is one fetch in flight. A consumer reuses them, with the
// callback bound once: a closure and the generations' slice per fetch
// were a fair part of a simulated consumer's allocations.
type fetchCall struct {
	co    *Consumer
	parts []*consumedPart
	// gens are the parts' generations when the fetch was sent.
	gens     []int
	ps       *pollState
	req      *kmsg.FetchRequest
	into     *kmsg.FetchResponse
	onDoneFn func(kmsg.Response, error)
	// answer and err are the answer of a fetch answered between polls.
	answer *kmsg.FetchResponse
	err    error
}

// fetchCallsMax bounds the fetch calls a consumer keeps for reuse: one
// per leader in flight.
const fetchCallsMax = 8

// takeFetchCall returns a fetch call to fill, reused when one is spare.
func (co *Consumer) takeFetchCall() *fetchCall {
	n := len(co.fetchCalls)
	if n == 0 {
		fc := &fetchCall{co: co}
		fc.onDoneFn = fc.done
		return fc
	}
	fc := co.fetchCalls[n-1]
	co.fetchCalls[n-1] = nil
	co.fetchCalls = co.fetchCalls[:n-1]
	return fc
}

// done handles the fetch's answer in the poll in progress, or keeps it
// for the next poll; the call is spare once it is handled.
func (fc *fetchCall) done(resp kmsg.Response, err error) {
	co, parts, ps := fc.co, fc.parts, fc.ps
	for _, cp := range parts {
		cp.fetching = false
	}
	ps.fetches--
	if err == nil {
		fc.answer = resp.(*kmsg.FetchResponse)
	}
	fc.err = err
	switch {
	case co.closed:
		co.fetchAnswers.put(fc.req, fc.into)
		co.putFetchCall(fc)
	case co.poll == nil:
		co.answeredBetweenPolls = append(co.answeredBetweenPolls, fc)
	default:
		co.onFetch(parts, fc.gens, fc.answer, err)
		co.fetchAnswers.put(fc.req, fc.into)
		co.putFetchCall(fc)
		co.step()
	}
}

// putFetchCall keeps a fetch call whose callback has returned, with the
// room of its parts and generations.
func (co *Consumer) putFetchCall(fc *fetchCall) {
	clear(fc.parts)
	parts, gens := fc.parts[:0], fc.gens[:0]
	*fc = fetchCall{co: co, parts: parts, gens: gens, onDoneFn: fc.onDoneFn}
	if len(co.fetchCalls) < fetchCallsMax {
		co.fetchCalls = append(co.fetchCalls, fc)
	}
}

// fetchAnswers are fetch requests and their decoded answers whose
// callbacks have returned, used again: a consumer fetches once for every
// batch it reads, a request is encoded when it is written, and what the
// consumer keeps of an answer (its records' keys and values) points into
// the answer's frame, not into the struct.
type fetchAnswers struct {
	free     kafkawire.Spares[kmsg.FetchResponse]
	requests kafkawire.Spares[kmsg.FetchRequest]
}

// takeRequest returns a fetch request with its defaults, with the topic
// and partition slices of an earlier one when there is one to reuse.
func (fa *fetchAnswers) takeRequest() *kmsg.FetchRequest {
	req := fa.requests.Take()
	if req == nil {
		return kmsg.NewPtrFetchRequest()
	}
	kafkawire.ResetFetchRequest(req)
	return req
}

// pollRecordsRoom is the slice a poll's records start in: the lent one,
// or room for as many as the last poll returned (a poll's slice grew from
// one record by doubling, and records are large), or none.
func (co *Consumer) pollRecordsRoom() []Record {
	if lent := co.lent; lent != nil {
		co.lent = nil
		return lent
	}
	if co.lastPollRecords == 0 {
		return nil
	}
	return make([]Record, 0, min(co.lastPollRecords, pollRecordsHintMax))
}

// pollRecordsHintMax bounds the room a poll's slice starts with and the
// lent slice a consumer keeps (3.5 MiB of records): a consumer reading a
// log again from its start takes thousands of records a poll, and at 4,096
// each such poll grew a fresh slice by doubling (a tenth of a batched
// leader-crash seed's allocation).
const pollRecordsHintMax = 1 << 15

// fetchAnswersMax bounds the answers kept: one per leader in flight.
const fetchAnswersMax = 8

// take returns an empty answer, with the topic slice of an earlier one
// when there is one to reuse.
func (fa *fetchAnswers) take() *kmsg.FetchResponse {
	resp := fa.free.Take()
	if resp == nil {
		return kmsg.NewPtrFetchResponse()
	}
	kafkawire.ResetFetchResponse(resp)
	return resp
}

// put takes back a fetch request and its answer once the answer's
// callback has returned.
func (fa *fetchAnswers) put(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	fa.free.Put(resp, fetchAnswersMax)
	fa.requests.Put(req, fetchAnswersMax)
}

// epochKnown reports whether metadata knows cp's leader at an epoch no
// older than its position's. If not, it asks for metadata from another
// broker: the one asked last may be cut off from the controller.
func (co *Consumer) epochKnown(cp *consumedPart) bool {
	if !co.cfg.SendLeaderEpoch || cp.epoch < 0 {
		return true
	}
	if co.cl.leaderEpoch(cp.tp.Topic, cp.tp.Partition) >= cp.epoch {
		return true
	}
	co.cl.refreshElsewhere()
	return false
}

// leaderEpoch is the epoch a request names for tp: the one metadata gave
// with SendLeaderEpoch, else -1 (no check).
func (co *Consumer) leaderEpoch(tp TopicPartition) int32 {
	if !co.cfg.SendLeaderEpoch {
		return -1
	}
	return co.cl.leaderEpoch(tp.Topic, tp.Partition)
}

func (co *Consumer) onFetch(parts []*consumedPart, gens []int, resp *kmsg.FetchResponse, err error) {
	now := co.env.Clock.Mono()
	if err == nil && resp.ErrorCode != codeNone {
		err = &CodeError{Code: resp.ErrorCode}
	}
	if err != nil {
		co.env.Log.Logf("kafka consumer %s: fetch: %v", co.cfg.ClientID, err)
		co.cl.refresh()
		for _, cp := range parts {
			co.backoff(cp, now, fmt.Errorf("fetch: %w", err))
		}
		return
	}
	got := indexFetchResponse(resp, len(parts))
	for i, cp := range parts {
		if cp.gen != gens[i] || co.byTP[cp.tp] != cp {
			continue // sought or unassigned since
		}
		p := got.find(resp, cp.tp)
		if p == nil {
			co.backoff(cp, now, fmt.Errorf("fetch: %s missing from the response", cp.tp))
			continue
		}
		co.onFetchPartition(cp, p, now)
	}
}

// fetchIndexPartsMin is the partition count from which a fetch response is
// indexed by a map; below it, a linear search is cheaper than the map.
const fetchIndexPartsMin = 8

// fetchIndex finds a fetch response's partitions.
type fetchIndex map[TopicPartition]*kmsg.FetchResponseTopicPartition

func indexFetchResponse(resp *kmsg.FetchResponse, parts int) fetchIndex {
	if parts < fetchIndexPartsMin {
		return nil
	}
	got := fetchIndex{}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			tp := TopicPartition{Topic: t.Topic, Partition: t.Partitions[pi].Partition}
			got[tp] = &t.Partitions[pi]
		}
	}
	return got
}

// find is resp's entry for tp, the last one if it is named twice, as the
// map kept; nil when missing.
func (ix fetchIndex) find(resp *kmsg.FetchResponse, tp TopicPartition) *kmsg.FetchResponseTopicPartition {
	if ix != nil {
		return ix[tp]
	}
	var found *kmsg.FetchResponseTopicPartition
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if t.Topic != tp.Topic {
			continue
		}
		for pi := range t.Partitions {
			if t.Partitions[pi].Partition == tp.Partition {
				found = &t.Partitions[pi]
			}
		}
	}
	return found
}

func (co *Consumer) onFetchPartition(cp *consumedPart, p *kmsg.FetchResponseTopicPartition, now time.Duration) {
	switch p.ErrorCode {
	case codeNone:
	case codeCorruptMessage:
		co.stats.CorruptRefusals++
		co.backoff(cp, now, fmt.Errorf("fetch at %d: %w", cp.position, &CodeError{Code: p.ErrorCode}))
		return
	case codeOffsetOutOfRange:
		co.env.Log.Logf("kafka consumer %s: %s offset %d out of range (log %d..%d)",
			co.cfg.ClientID, cp.tp, cp.position, p.LogStartOffset, p.HighWatermark)
		if co.cfg.SendLeaderEpoch && cp.epoch >= 0 && !cp.outOfRangeValidated {
			// KIP-320: ask where the position's epoch ends before
			// giving the position up; the log may have been truncated
			// under it, and the reset policy would skip or re-read.
			cp.validate, cp.outOfRangeValidated = true, true
			return
		}
		co.resetPosition(cp, fmt.Errorf("%s: %w", cp.tp, ErrOffsetOutOfRange))
		return
	default:
		if classOf(p.ErrorCode).refreshMetadata || p.ErrorCode == codeReplicaNotAvailable ||
			p.ErrorCode == codeOffsetNotAvailable || p.ErrorCode == codeFencedLeaderEpoch ||
			p.ErrorCode == codeUnknownLeaderEpoch {
			co.cl.refresh()
		}
		co.backoff(cp, now, fmt.Errorf("fetch at %d: %w", cp.position, &CodeError{Code: p.ErrorCode}))
		return
	}
	cp.fetchedInPoll = true
	cp.outOfRangeValidated = false
	cp.highWater, cp.logStart = p.HighWatermark, p.LogStartOffset
	cp.failures, cp.retryAt = 0, 0
	var err error
	positionBefore, recordsBefore := cp.position, len(co.poll.records)
	if co.poll.records == nil && len(p.RecordBatches) > 0 {
		co.poll.records = co.pollRecordsRoom()
	}
	co.poll.records, err = cp.takeBatches(p.RecordBatches, co.poll.records)
	if err == nil && len(co.poll.records) == recordsBefore && cp.position > positionBefore {
		// Only batches without records to return (emptied by compaction,
		// control batches): fetch on from the new position in this poll,
		// as Kafka's fetcher does, instead of waiting out the poll.
		cp.fetchedInPoll = false
	}
	if err != nil {
		if errors.Is(err, record.ErrCorrupt) {
			co.stats.CorruptBatches++
		}
		co.env.Log.Logf("kafka consumer %s: %s at %d: %v", co.cfg.ClientID, cp.tp, cp.position, err)
		co.backoff(cp, now, fmt.Errorf("fetched batch at %d: %w", cp.position, err))
		return
	}
	if co.cfg.Bugs.On(faults.BugConsumerSkipsPastHW) && len(p.RecordBatches) > 0 && cp.position < p.HighWatermark {
		// The planted bug: a fetch cut short (the broker serves one
		// segment at a time) is taken for one that reached the end.
		cp.position = p.HighWatermark + 1
	}
}

// takeBatches appends to records the records of data, the record batches
// of cp in a fetch response, from cp's position on, and moves the position
// past every batch it reads: control batches, compacted gaps and the
// records of a batch that began before the position are passed over. A
// batch cut short at the end of data is normal (a broker cuts a fetch at
// its byte limit) and ends the walk silently, as does fetchBatchesMax. A
// batch that fails its CRC or structure ends it with an error wrapping
// record.ErrCorrupt; the batches before it are taken.
func (cp *consumedPart) takeBatches(data []byte, records []Record) ([]Record, error) {
	size := len(data)
	for range fetchBatchesMax {
		if len(data) == 0 {
			break
		}
		b, rest, err := record.Next(data)
		if errors.Is(err, record.ErrPartial) {
			break
		}
		if err != nil {
			return records, fmt.Errorf("batch at byte %d of %d: %w", size-len(data), size, err)
		}
		positionBefore := cp.position
		if b.Control() {
			// Transaction markers carry no application records, but are
			// still checked: a broker must not serve corrupt ones either.
			err = b.VerifyChecksum()
		} else {
			records, err = cp.takeRecords(b, records)
		}
		if err != nil {
			return records, fmt.Errorf("batch at offset %d: %w", b.BaseOffset(), err)
		}
		if next := b.NextOffset(); next > positionBefore {
			// The position passes this batch: its epoch is the position's.
			cp.position = max(cp.position, next)
			if epoch := b.PartitionLeaderEpoch(); epoch >= 0 {
				cp.epoch = epoch
			}
		}
		data = rest
	}
	return records, nil
}

// takeRecords appends the records of b, a batch record.Next returned, at
// or after cp's position.
func (cp *consumedPart) takeRecords(b record.Batch, records []Record) ([]Record, error) {
	decoded, err := b.AppendNextRecords(cp.decoded[:0])
	if err != nil {
		return records, err
	}
	defer cp.keepDecoded(decoded)
	records = slices.Grow(records, len(decoded))
	for i := range decoded {
		r := &decoded[i]
		if r.Offset < cp.position {
			continue // the batch began before the position
		}
		records = append(records, Record{
			Topic: cp.tp.Topic, Partition: cp.tp.Partition,
			Key: r.Key, Value: r.Value, Headers: r.Headers,
			Offset: r.Offset, TimestampMs: r.Timestamp,
		})
		cp.position = r.Offset + 1
		cp.noteRead(r.Offset)
	}
	return records, nil
}

// decodedKeepMax bounds the decoded records a partition keeps room for
// between batches.
const decodedKeepMax = 4096

// keepDecoded keeps decoded's room for the next batch, without its
// records: they point into a fetch answer's frame.
func (cp *consumedPart) keepDecoded(decoded []record.Record) {
	clear(decoded)
	if cap(decoded) <= decodedKeepMax {
		cp.decoded = decoded[:0]
	}
}

// EndOffsets looks up the latest offsets (high watermarks) of tps; done
// gets them, or the first error. Partitions need not be assigned.
func (co *Consumer) EndOffsets(tps []TopicPartition, done func(map[TopicPartition]int64, error)) {
	parts := make([]*consumedPart, len(tps))
	for i, tp := range tps {
		parts[i] = &consumedPart{tp: tp}
		co.cl.want(tp.Topic)
	}
	out := map[TopicPartition]int64{}
	var firstErr error
	pending := 0
	var missing []TopicPartition
	byLeader := map[int32][]*consumedPart{}
	var leaders []int32
	for _, cp := range parts {
		leader := co.cl.leader(cp.tp.Topic, cp.tp.Partition)
		if leader < 0 {
			missing = append(missing, cp.tp)
			continue
		}
		if _, ok := byLeader[leader]; !ok {
			leaders = append(leaders, leader)
		}
		byLeader[leader] = append(byLeader[leader], cp)
	}
	if len(missing) > 0 {
		co.cl.refresh()
		co.env.Clock.AfterFunc(0, func() {
			done(nil, fmt.Errorf("end offsets: no leader known for %v", missing))
		})
		return
	}
	slices.Sort(leaders)
	pending = len(leaders)
	for _, leader := range leaders {
		group := byLeader[leader]
		resets := make([]resetTo, len(group))
		for i := range resets {
			resets[i] = resetToLatest
		}
		co.stats.ListOffsets++
		co.listOffsets(leader, group, resets, make([]int64, len(group)), func(offsets []int64, codes []int16, err error) {
			for i, cp := range group {
				switch {
				case err != nil:
					firstErr = cmpErr(firstErr, fmt.Errorf("end offset of %s: %w", cp.tp, err))
				case codes[i] != codeNone:
					firstErr = cmpErr(firstErr, fmt.Errorf("end offset of %s: %w", cp.tp, &CodeError{Code: codes[i]}))
				default:
					out[cp.tp] = offsets[i]
				}
			}
			pending--
			if pending == 0 {
				if firstErr != nil {
					co.cl.refresh()
					done(nil, firstErr)
					return
				}
				done(out, nil)
			}
		})
	}
	if pending == 0 {
		co.env.Clock.AfterFunc(0, func() { done(out, nil) })
	}
}

// cmpErr keeps the first error.
func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
