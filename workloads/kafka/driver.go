package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
)

// DriverConfig configures a workload driver: one producer writing unique
// values and some consumers reading every partition back, all recording
// into one history.
type DriverConfig struct {
	Bootstrap []string
	Topic     string
	// Partitions are the partitions written and read. With Keys zero and
	// Sticky off the producer writes to them in turn (manual
	// partitioning); otherwise the partitioner picks, so Partitions must
	// list every partition of the topic for the consumers to see
	// everything.
	Partitions []int32
	// CreateTopic, when set, creates the topic through CreateTopics as
	// the driver starts (again after a restart: an existing topic is
	// success); the producer must then not create it on its own.
	CreateTopic *TopicSpec
	// Keys, when positive, gives record n the key "k<n mod Keys>".
	Keys int
	// Sticky, with Keys zero, leaves keyless records to the producer's
	// sticky partitioner, Kafka's default since 2.4 (a partition's batch
	// fills before another partition is drawn), instead of writing to
	// Partitions in turn as Kafka's RoundRobinPartitioner does.
	Sticky bool
	// Producer and Consumer are templates; Bootstrap, Process and
	// Recorder are filled in by the driver.
	Producer ProducerConfig
	Consumer ConsumerConfig
	// Consumers is how many consumers run; default 1.
	Consumers int
	// Rate is sends per second; zero sends as fast as Concurrency allows.
	// Sends are paced on a fixed schedule (send n is due n/Rate seconds
	// after the first round), several per round at rates above one per
	// sendRoundMin.
	Rate float64
	// Concurrency bounds the sends without an outcome; default 10. A
	// rate-paced send due while Concurrency sends are outstanding is
	// skipped (DriverStats.Skipped), not made up later.
	Concurrency int
	// SendsMax stops producing after this many sends; zero means no bound.
	SendsMax int
	// DrainTimeout bounds the final drain; default 30 s.
	DrainTimeout time.Duration
	// ValueBytes pads each value to this length (values are unique by
	// their "process-n" prefix); zero or less than the prefix leaves it.
	ValueBytes int
	// SeekEveryPolls, when positive, makes each consumer move one of its
	// partitions after about every so many polls before the drain: back
	// to an offset inside what it read (usually inside a batch), to the
	// timestamp of a record it read (ListOffsets by time), or to the log
	// start. Each seek is an assign in the history, so rereading is no
	// anomaly.
	SeekEveryPolls int
	// DeleteRecordsEvery, when positive, runs an admin that about this
	// often deletes the records of one partition in turn below the
	// position the first consumer has reached (DeleteRecords), until the
	// drain begins.
	DeleteRecordsEvery time.Duration
	// Reread makes the drain, once caught up, read every partition again
	// from its beginning: a final read of what the log holds now, which
	// shows records that were read once and later lost or corrupted.
	Reread   bool
	Recorder history.Recorder
	// NewProcess allocates a history process number. A harness that
	// restarts the driver's node passes one that never repeats, so that
	// operations left pending by a crash are not confused with new ones.
	// Nil numbers processes from ProcessBase up.
	NewProcess  func() int
	ProcessBase int
}

// DriverStats count what a driver did.
type DriverStats struct {
	Sent, OK, Failed, Unknown int
	// Refused counts sends the producer refused at once (buffer full).
	Refused int
	// Skipped counts rate-paced sends that were due but not sent because
	// Concurrency sends were outstanding or a round's limit was met: the
	// client or the broker could not keep up with Rate.
	Skipped int
	Polls   int
	Polled  int
	// Seeks counts the seeks SeekEveryPolls made, by kind.
	SeeksInside, SeeksByTime, SeeksToStart int
	// RecordDeletes counts the DeleteRecords DeleteRecordsEvery made
	// that the broker answered without error, RecordDeletesFailed the
	// others.
	RecordDeletes, RecordDeletesFailed int
	Producer                           ProducerStats
}

// DrainReport is the outcome of a final drain.
type DrainReport struct {
	// CaughtUp is true when every consumer reached the end offsets of
	// every partition before the drain timeout.
	CaughtUp bool
	// EndOffsets are the partitions' latest offsets when the producer had
	// settled, nil if they could not be read.
	EndOffsets map[TopicPartition]int64
	// Unsettled counts sends still without an outcome.
	Unsettled int
	Err       error
}

// drainPhase is where a drain is.
type drainPhase uint8

const (
	drainOff drainPhase = iota
	// drainSettling: waiting for the producer's outstanding sends.
	drainSettling
	// drainEnds: asking for the end offsets.
	drainEnds
	// drainCatchingUp: waiting for the consumers to reach them.
	drainCatchingUp
	// drainRereading: every consumer reads again from the beginning.
	drainRereading
	drainDone
)

// Driver is the workload actor.
type Driver struct {
	env         sim.Env
	cfg         DriverConfig
	producer    *Producer
	producerPID int
	consumers   []*Consumer
	nextProcess int

	sends       int
	outstanding int
	nextPart    int
	sendTimer   sim.Timer
	// onSendTimerFn and polledFns are callbacks bound once (see
	// scheduleSends and pollLoop).
	onSendTimerFn func()
	// creator creates the topic when the config asks; nil otherwise.
	creator *topicCreator
	// deleter deletes records when the config asks; nil otherwise.
	deleter   *recordDeleter
	polledFns map[*Consumer]func(PollResult)
	// pace is the rate schedule: when it began and how many of its sends
	// have come due (sent, refused or skipped).
	paceStarted   bool
	paceStartMono time.Duration
	paceDue       int64
	stopped       bool
	stats         DriverStats

	phase     drainPhase
	drainDone func(DrainReport)
	// rereadSeeks are the consumers still to move back to the beginning.
	rereadSeeks map[*Consumer]bool
	drainTimer  sim.Timer
	endOffsets  map[TopicPartition]int64
	// seen is, per consumer and partition, a record it read lately: where
	// the next seek inside or by time goes.
	seen map[*Consumer]map[TopicPartition]Record
	// rereadAt is when each consumer last sought back to the beginning.
	rereadAt map[*Consumer]time.Duration
}

// NewDriver starts a driver on env: its producer starts sending and its
// consumers start polling.
func NewDriver(env sim.Env, cfg DriverConfig) (*Driver, error) {
	if cfg.Topic == "" || len(cfg.Partitions) == 0 {
		return nil, errors.New("driver config: a topic and its partitions are needed")
	}
	setDefault(&cfg.Consumers, 1)
	setDefault(&cfg.Concurrency, 10)
	setDefault(&cfg.DrainTimeout, 30*time.Second)
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("driver config: rate %v", cfg.Rate)
	}
	if cfg.ValueBytes < 0 || cfg.SeekEveryPolls < 0 || cfg.DeleteRecordsEvery < 0 {
		return nil, fmt.Errorf("driver config: value bytes %d, seek every %d polls, delete records every %v",
			cfg.ValueBytes, cfg.SeekEveryPolls, cfg.DeleteRecordsEvery)
	}
	if cfg.ValueBytes > 0 && cfg.Recorder != nil {
		cfg.Recorder = paddingRecorder{next: cfg.Recorder, valueBytes: cfg.ValueBytes}
	}
	d := &Driver{env: env, cfg: cfg, nextProcess: cfg.ProcessBase, seen: map[*Consumer]map[TopicPartition]Record{}}

	pc := cfg.Producer
	pc.Bootstrap, pc.Recorder = cfg.Bootstrap, cfg.Recorder
	pc.Process = d.newProcess()
	pc.ManualPartition = cfg.Keys == 0 && !cfg.Sticky
	p, err := NewProducer(env, pc)
	if err != nil {
		return nil, fmt.Errorf("driver producer: %w", err)
	}
	d.producer, d.producerPID = p, pc.Process

	tps := make([]TopicPartition, len(cfg.Partitions))
	for i, part := range cfg.Partitions {
		tps[i] = TopicPartition{Topic: cfg.Topic, Partition: part}
	}
	for i := range cfg.Consumers {
		cc := cfg.Consumer
		cc.Bootstrap, cc.Recorder = cfg.Bootstrap, cfg.Recorder
		// polled keeps no record past its call.
		cc.LendRecords = true
		cc.Process = d.newProcess()
		if cc.ClientID == "" {
			cc.ClientID = "sluice-consumer-" + strconv.Itoa(i)
		}
		co, err := NewConsumer(env, cc)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("driver consumer %d: %w", i, err)
		}
		if err := co.Assign(tps); err != nil {
			p.Close()
			return nil, fmt.Errorf("driver consumer %d: %w", i, err)
		}
		d.consumers = append(d.consumers, co)
	}
	if cfg.CreateTopic != nil {
		d.creator = startTopicCreator(env, cfg.Bootstrap, "sluice-admin", cfg.Topic, *cfg.CreateTopic)
	}
	if cfg.DeleteRecordsEvery > 0 {
		d.deleter = startRecordDeleter(env, cfg.Bootstrap, cfg.Topic, cfg.Partitions, cfg.DeleteRecordsEvery,
			d.consumers[0].Position, &d.stats)
	}
	for _, co := range d.consumers {
		d.pollLoop(co)
	}
	d.scheduleSends()
	return d, nil
}

// StartDriver returns a start function that runs a driver and hands it to
// started (the harness keeps it to drain and read stats). A configuration
// error is logged and nothing runs.
func StartDriver(cfg DriverConfig, started func(*Driver)) sim.Start {
	return func(env sim.Env) {
		d, err := NewDriver(env, cfg)
		if err != nil {
			env.Log.Logf("kafka driver: %v", err)
			return
		}
		if started != nil {
			started(d)
		}
	}
}

func (d *Driver) newProcess() int {
	if d.cfg.NewProcess != nil {
		return d.cfg.NewProcess()
	}
	p := d.nextProcess
	d.nextProcess++
	return p
}

// Producer is the driver's producer.
func (d *Driver) Producer() *Producer { return d.producer }

// Consumers are the driver's consumers.
func (d *Driver) Consumers() []*Consumer { return d.consumers }

// Stopped reports whether the driver stopped: its drain ended, or it was
// closed. Its clients then have no work left, whatever the log holds past
// the end offsets its drain read (other producers may write there).
func (d *Driver) Stopped() bool { return d.stopped }

// Stats returns the driver's counters.
func (d *Driver) Stats() DriverStats {
	s := d.stats
	s.Producer = d.producer.Stats()
	return s
}

// sendRoundMin is the shortest wait between two rounds of rate-paced
// sends: a fast rate sends several records per round instead of arming a
// timer per record, which a real clock cannot honour every few
// microseconds (the timers' own cost caps the rate far below the one
// asked for).
const sendRoundMin = time.Millisecond

// sendsPerRoundMax bounds one round's sends; sends due beyond it are
// skipped, so that a loop that fell far behind does not stall in one
// callback.
const sendsPerRoundMax = 10_000

// scheduleSends sends what the rate and concurrency allow now and arms the
// timer for the next round.
func (d *Driver) scheduleSends() {
	if d.stopped || d.sendTimer != nil {
		return
	}
	if d.cfg.Rate == 0 {
		for d.outstanding < d.cfg.Concurrency && d.mayProduce() {
			if !d.sendOne() {
				break
			}
		}
		return
	}
	now := d.env.Clock.Mono()
	if !d.paceStarted {
		d.paceStarted, d.paceStartMono = true, now
	}
	wait := max(d.paceStartMono+d.dueAt(d.paceDue+1)-now, sendRoundMin)
	if d.onSendTimerFn == nil {
		d.onSendTimerFn = d.onSendTimer
	}
	d.sendTimer = d.env.Clock.AfterFunc(wait, d.onSendTimerFn)
}

// onSendTimer is the pacing timer's callback, bound once (onSendTimerFn):
// it fires every round.
func (d *Driver) onSendTimer() {
	d.sendTimer = nil
	d.sendDue()
	d.scheduleSends()
}

// dueAt is when send n (from 1) of the rate schedule is due, from the
// schedule's start.
func (d *Driver) dueAt(n int64) time.Duration {
	return time.Duration(math.Ceil(float64(n) * float64(time.Second) / d.cfg.Rate))
}

// sendDue sends every send of the schedule that has come due, skipping
// those the concurrency bound or the round limit leaves no room for.
func (d *Driver) sendDue() {
	elapsed := d.env.Clock.Mono() - d.paceStartMono
	// The tolerance keeps float rounding from making a send due at its
	// exact moment wait a round.
	due := int64(math.Floor(float64(elapsed)*d.cfg.Rate/float64(time.Second) + 1e-6))
	for n := 0; d.paceDue < due && n < sendsPerRoundMax; n++ {
		if !d.mayProduce() {
			return
		}
		d.paceDue++
		if d.outstanding >= d.cfg.Concurrency {
			d.stats.Skipped++
			continue
		}
		d.sendOne()
	}
	if d.paceDue < due {
		d.stats.Skipped += int(due - d.paceDue)
		d.paceDue = due
	}
}

func (d *Driver) mayProduce() bool {
	return !d.stopped && d.phase == drainOff && (d.cfg.SendsMax == 0 || d.sends < d.cfg.SendsMax)
}

// sendOne sends the next value; false if the producer refused it.
func (d *Driver) sendOne() bool {
	n := d.sends
	rec := Record{
		Topic: d.cfg.Topic,
		Value: d.value(n),
	}
	switch {
	case d.cfg.Keys > 0:
		rec.Key = []byte("k" + strconv.Itoa(n%d.cfg.Keys))
	case d.cfg.Sticky:
		// The producer's partitioner picks.
	default:
		rec.Partition = d.cfg.Partitions[d.nextPart%len(d.cfg.Partitions)]
		d.nextPart++
	}
	err := d.producer.Send(rec, d.onSent)
	if err != nil {
		d.stats.Refused++
		return false
	}
	d.sends++
	d.outstanding++
	d.stats.Sent++
	return true
}

// valuePrefixBytesMax is the longest "process-n" prefix: two decimal
// int64s and the dash.
const valuePrefixBytesMax = 2*20 + 1

// value is send n's unique value, padded to ValueBytes.
func (d *Driver) value(n int) []byte {
	if d.cfg.ValueBytes == 0 {
		// The prefix alone, written in place: one allocation, where
		// building the string and copying it took three.
		v := strconv.AppendInt(make([]byte, 0, valuePrefixBytesMax), int64(d.producerPID), 10)
		v = append(v, '-')
		return strconv.AppendInt(v, int64(n), 10)
	}
	return paddedValue(strconv.Itoa(d.producerPID)+"-"+strconv.Itoa(n), d.cfg.ValueBytes)
}

// paddedValue pads a unique prefix to size bytes after a '.', with a
// pattern that depends on the prefix only: a reader can check the padding
// without knowing the send, and compression finds something to compress.
func paddedValue(prefix string, size int) []byte {
	v := make([]byte, len(prefix), max(size, len(prefix)))
	copy(v, prefix)
	if pad := size - len(prefix); pad > 0 {
		v = append(v, '.')
		for i := 1; i < pad; i++ {
			v = append(v, padByte(prefix, i))
		}
	}
	return v
}

// padByte is the i-th byte after the '.' of prefix's padding.
func padByte(prefix string, i int) byte { return byte('a' + (len(prefix)+i)%26) }

// isPaddedValue reports whether value is paddedValue(prefix, size) with
// some padding, without building it: records are checked by the
// thousand, and values may be kilobytes.
func isPaddedValue[V string | []byte](value V, prefix string, size int) bool {
	if len(prefix) >= size || len(value) != size || string(value[:len(prefix)]) != prefix || value[len(prefix)] != '.' {
		return false
	}
	// The padding repeats every 26 bytes, so it is compared a run of
	// whole periods at a time against the alphabet repeated.
	pad := value[len(prefix)+1:]
	phase := padByte(prefix, 1) - 'a'
	for len(pad) > 0 {
		n := min(len(pad), paddingRunBytes)
		if string(pad[:n]) != paddingRun[phase:int(phase)+n] {
			return false
		}
		pad = pad[n:]
	}
	return true
}

// paddingRunBytes is how much padding one comparison checks: whole
// periods of the alphabet, so that every run starts at the same phase.
const paddingRunBytes = 26 * 64

// paddingRun is the alphabet repeated, long enough for a run to start at
// any phase.
var paddingRun = strings.Repeat("abcdefghijklmnopqrstuvwxyz", paddingRunBytes/26+1)

// paddingRecorder records padded values by their prefix, so that a
// history of large records holds no more than one of short ones. A value
// whose padding is not the one its prefix gives is recorded whole, and so
// shows as a value nobody sent (phantom-value).
type paddingRecorder struct {
	next       history.Recorder
	valueBytes int
}

func (r paddingRecorder) Add(op history.Op) int {
	if op.Record != nil {
		rec := r.trim(*op.Record)
		op.Record = &rec
	}
	if len(op.Records) > 0 {
		recs := make([]history.Record, len(op.Records))
		for i, rec := range op.Records {
			recs[i] = r.trim(rec)
		}
		op.Records = recs
	}
	return r.next.Add(op)
}

// historyValue is value as the history keeps it: a padded value's prefix,
// taken before the padding is copied into a string only to be dropped.
func (r paddingRecorder) historyValue(value []byte) string {
	if dot := bytes.IndexByte(value, '.'); dot >= 0 && isPaddedValue(value, string(value[:dot]), r.valueBytes) {
		return string(value[:dot])
	}
	return string(value)
}

func (r paddingRecorder) trim(rec history.Record) history.Record {
	dot := strings.IndexByte(rec.Value, '.')
	if dot < 0 {
		return rec
	}
	if prefix := rec.Value[:dot]; isPaddedValue(rec.Value, prefix, r.valueBytes) {
		rec.Value = prefix
	}
	return rec
}

func (d *Driver) onSent(r Result) {
	d.outstanding--
	switch r.Outcome {
	case history.OK:
		d.stats.OK++
	case history.Fail:
		d.stats.Failed++
	default:
		d.stats.Unknown++
	}
	if d.phase == drainSettling && d.outstanding == 0 {
		d.askEnds()
	}
	if d.cfg.Rate == 0 {
		d.scheduleSends()
	}
}

// pollLoop keeps co polling until the driver stops.
func (d *Driver) pollLoop(co *Consumer) {
	if d.stopped {
		return
	}
	err := co.Poll(d.polledFn(co))
	if err != nil && !errors.Is(err, ErrClosed) {
		d.env.Log.Logf("kafka driver: poll: %v", err)
	}
}

// polledFn is polled for co, bound once per consumer: every poll takes it.
func (d *Driver) polledFn(co *Consumer) func(PollResult) {
	f := d.polledFns[co]
	if f == nil {
		f = func(r PollResult) { d.polled(co, r) }
		if d.polledFns == nil {
			d.polledFns = map[*Consumer]func(PollResult){}
		}
		d.polledFns[co] = f
	}
	return f
}

// polled handles a poll's result and polls again.
func (d *Driver) polled(co *Consumer, r PollResult) {
	d.stats.Polls++
	d.stats.Polled += len(r.Records)
	if d.rereadSeeks[co] {
		d.seekToBeginning(co)
	}
	d.noteSeen(co, r.Records)
	d.maybeSeek(co)
	if d.phase == drainCatchingUp || d.phase == drainRereading {
		d.checkCaughtUp()
	}
	d.pollLoop(co)
}

// noteSeen keeps the last record of each partition a poll returned.
func (d *Driver) noteSeen(co *Consumer, recs []Record) {
	if d.cfg.SeekEveryPolls == 0 || len(recs) == 0 {
		return
	}
	m := d.seen[co]
	if m == nil {
		m = map[TopicPartition]Record{}
		d.seen[co] = m
	}
	for _, r := range recs {
		m[TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r
	}
}

// rereadSpacing is the least time between two seeks of one consumer back
// to the beginning.
const rereadSpacing = 5 * time.Second

// seekBackMax bounds how far back a seek inside what was read goes.
const seekBackMax = 64

// maybeSeek moves one of co's partitions, between two polls, about once
// every SeekEveryPolls polls and only before the drain.
func (d *Driver) maybeSeek(co *Consumer) {
	if d.cfg.SeekEveryPolls == 0 || d.phase != drainOff || d.env.Rand.IntN(d.cfg.SeekEveryPolls) != 0 {
		return
	}
	tps := co.Assignment()
	tp := tps[d.env.Rand.IntN(len(tps))]
	last, seen := d.seen[co][tp]
	if !seen {
		return
	}
	var err error
	// Rereading from the start costs the whole log, so it is rare: one
	// draw in 32, and no more than once per rereadSpacing a consumer,
	// since seeks come with polls and polls with the produce rate, and a
	// fast producer's consumers once reread the log several times a
	// second, their history outgrowing the run's memory budget
	// (follower-cut swarm seed 600: 2.9 million records polled).
	kind := d.env.Rand.IntN(32)
	now := d.env.Clock.Mono()
	rereadLast, reread := d.rereadAt[co]
	if kind == 31 && reread && now-rereadLast < rereadSpacing {
		kind = 0 // a seek into what was read instead
	}
	switch {
	case kind < 20:
		// Into what was read: the offset lands inside a batch when the
		// batches hold several records.
		d.stats.SeeksInside++
		err = co.Seek(tp, max(0, last.Offset-int64(d.env.Rand.IntN(seekBackMax))))
	case kind < 31:
		d.stats.SeeksByTime++
		err = co.SeekToTimestamp(tp, max(0, last.TimestampMs-int64(d.env.Rand.IntN(1000))))
	default:
		d.stats.SeeksToStart++
		if d.rereadAt == nil {
			d.rereadAt = map[*Consumer]time.Duration{}
		}
		d.rereadAt[co] = now
		err = co.SeekToBeginning(tp)
	}
	delete(d.seen[co], tp)
	if err != nil {
		d.env.Log.Logf("kafka driver: seek: %v", err)
	}
}

// Drain stops producing, waits for the outstanding sends, reads the end
// offsets and keeps polling until every consumer reached them or the drain
// timeout passed; then it stops the driver and calls done.
func (d *Driver) Drain(done func(DrainReport)) {
	sim.Assert(d.phase == drainOff, "Drain called twice")
	d.phase = drainSettling
	d.drainDone = done
	if d.deleter != nil {
		d.deleter.stop()
	}
	if d.sendTimer != nil {
		d.sendTimer.Stop()
		d.sendTimer = nil
	}
	d.producer.Flush()
	d.drainTimer = d.env.Clock.AfterFunc(d.cfg.DrainTimeout, func() {
		d.finishDrain(false, fmt.Errorf("drain timed out after %v", d.cfg.DrainTimeout))
	})
	if d.outstanding == 0 {
		d.env.Clock.AfterFunc(0, d.askEnds)
	}
}

// askEnds reads the end offsets, retrying until the drain times out.
func (d *Driver) askEnds() {
	if d.phase != drainSettling && d.phase != drainEnds {
		return
	}
	d.phase = drainEnds
	tps := make([]TopicPartition, len(d.cfg.Partitions))
	for i, part := range d.cfg.Partitions {
		tps[i] = TopicPartition{Topic: d.cfg.Topic, Partition: part}
	}
	// A consumer of the driver asks; any would do.
	d.consumers[0].EndOffsets(tps, func(ends map[TopicPartition]int64, err error) {
		if d.phase != drainEnds {
			return
		}
		if err != nil {
			d.env.Log.Logf("kafka driver: drain: %v", err)
			d.env.Clock.AfterFunc(d.cfg.Consumer.RetryBackoff+100*time.Millisecond, d.askEnds)
			return
		}
		d.endOffsets = ends
		d.phase = drainCatchingUp
		d.checkCaughtUp()
	})
}

func (d *Driver) checkCaughtUp() {
	if len(d.rereadSeeks) > 0 {
		return
	}
	for _, co := range d.consumers {
		for tp, end := range d.endOffsets {
			// A position past the high watermark the broker reported is
			// not one a consumer can have read to: it is about to be
			// answered OFFSET_OUT_OF_RANGE, not caught up.
			if pos, ok := co.Position(tp); !ok || pos < end || pos > co.HighWatermark(tp) {
				return
			}
		}
	}
	if d.cfg.Reread && d.phase == drainCatchingUp {
		d.phase = drainRereading
		d.rereadSeeks = map[*Consumer]bool{}
		for _, co := range d.consumers {
			d.rereadSeeks[co] = true
		}
		return
	}
	d.finishDrain(true, nil)
}

// seekToBeginning moves a consumer, between two polls, back to the start of
// every partition it reads.
func (d *Driver) seekToBeginning(co *Consumer) {
	delete(d.rereadSeeks, co)
	for _, tp := range co.Assignment() {
		if err := co.SeekToBeginning(tp); err != nil {
			d.env.Log.Logf("kafka driver: reread: %v", err)
		}
	}
}

func (d *Driver) finishDrain(caughtUp bool, err error) {
	if d.phase == drainDone {
		return
	}
	d.phase = drainDone
	d.stopped = true
	d.drainTimer.Stop()
	report := DrainReport{CaughtUp: caughtUp, EndOffsets: d.endOffsets, Unsettled: d.outstanding, Err: err}
	d.drainDone(report)
}

// Close stops the driver and closes its producer and consumers; sends and
// polls in progress complete (sends as info or fail, polls with what they
// have).
func (d *Driver) Close() {
	d.stopped = true
	if d.sendTimer != nil {
		d.sendTimer.Stop()
		d.sendTimer = nil
	}
	d.producer.Close()
	if d.creator != nil {
		d.creator.close()
	}
	if d.deleter != nil {
		d.deleter.stop()
	}
	for _, co := range d.consumers {
		co.Close()
	}
}
