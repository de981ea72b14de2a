package broker

import (
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
)

// The group coordinator's place in the broker: broker/group decides, this
// file feeds it requests and time, appends the records it returns to
// __consumer_offsets, and sends its answers once they are appended. A
// single broker leads every __consumer_offsets partition, so it
// coordinates every group; once partitions move between brokers, a broker
// loads a partition when it becomes its leader and unloads it when it
// stops.

// offsetsTopicConfigs are Kafka's for __consumer_offsets: compacted, with
// offsets.topic.segment.bytes.
var offsetsTopicConfigs = map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}

// offsetsLoadChunkBytes is what one loop turn reads of a partition being
// loaded, so that a long log does not hold the loop.
const offsetsLoadChunkBytes = 1 << 20

// offsetsLoadRetryDelay is how long a load waits for a partition's
// recovered tail to reach disk before looking again.
const offsetsLoadRetryDelay = 10 * time.Millisecond

var probeOffsetsLoaded = sim.DeclareProbe("broker/offsets-loaded",
	"the group coordinator reloaded groups and offsets from a non-empty __consumer_offsets partition")

type coordinator struct {
	b     *Broker
	state *group.Coordinator
	// topic is the __consumer_offsets the state was loaded from.
	topic *topic
	// waiting are the requests whose answers the coordinator owes.
	waiting   map[group.ReplyTo]*request
	nextReply group.ReplyTo
	timer     sim.Timer
	timerAt   time.Duration
	// creating is set while __consumer_offsets is being created.
	creating bool
}

// startCoordinator is called when the broker starts serving: groups and
// offsets are reloaded from __consumer_offsets if it exists; otherwise
// the topic is made on the first FindCoordinator, as Kafka makes it.
func (b *Broker) startCoordinator() {
	b.groups = &coordinator{b: b, waiting: map[group.ReplyTo]*request{}}
	if t := b.topics.get(group.OffsetsTopic); t != nil {
		b.groups.load(t)
	}
}

func (co *coordinator) now() group.Now {
	return group.Now{Mono: co.b.env.Clock.Mono(), WallMs: co.b.env.Clock.Now().UnixMilli()}
}

// ensure returns whether the coordinator serves; if __consumer_offsets
// does not exist yet it starts creating it.
func (co *coordinator) ensure() bool {
	if co.serving() {
		return true
	}
	if co.state != nil {
		co.forget()
	}
	if co.creating {
		return false
	}
	co.creating = true
	b := co.b
	b.createTopic(group.OffsetsTopic, b.cfg.Groups.Partitions, offsetsTopicConfigs, func(err error) {
		co.creating = false
		if err != nil || b.groups != co {
			return
		}
		if t := b.topics.get(group.OffsetsTopic); t != nil {
			co.load(t)
		}
	})
	return false
}

// serving says whether the coordinator has state for the current
// __consumer_offsets, without creating it.
func (co *coordinator) serving() bool {
	return co.state != nil && co.b.topics.get(group.OffsetsTopic) == co.topic
}

// forget drops the state of a __consumer_offsets that was deleted (Kafka
// refuses to delete it; here a new one is made on the next request).
func (co *coordinator) forget() {
	co.b.env.Log.Logf("group coordinator: %s was deleted; its groups and offsets are gone", group.OffsetsTopic)
	for p := range co.state.Config().Partitions {
		co.send(co.state.Unload(p))
	}
	co.state, co.topic = nil, nil
}

// load reads every partition of __consumer_offsets back into a new state
// machine, one chunk per loop turn; requests meanwhile are answered
// COORDINATOR_LOAD_IN_PROGRESS.
func (co *coordinator) load(t *topic) {
	cfg := co.b.cfg.Groups
	if int32(len(t.partitions)) != cfg.Partitions {
		co.b.env.Log.Logf("group coordinator: %s has %d partitions, configured %d: using the topic's",
			group.OffsetsTopic, len(t.partitions), cfg.Partitions)
		cfg.Partitions = int32(len(t.partitions))
	}
	env := co.b.env
	cfg.MemberSuffix = func() string { return strconv.FormatUint(env.Rand.Uint64(), 36) }
	cfg.PartitionExists = func(topic string, partition int32) bool {
		_, e := co.b.lookupPartition(topic, partition)
		return e == nil
	}
	co.state, co.topic = group.New(cfg), t
	for i := range t.partitions {
		co.state.BeginLoad(int32(i))
	}
	co.loadChunk(t, 0, t.partitions[0].log.StartOffset())
}

func (co *coordinator) loadChunk(t *topic, index int, offset int64) {
	if co.b.groups != co || co.b.topics == nil || co.topic != t || co.b.topics.get(group.OffsetsTopic) != t {
		return // the broker restarted or the topic went away
	}
	p := t.partitions[index]
	if offset >= p.highWatermark() && p.highWatermark() < p.log.EndOffset() {
		// What recovery kept above the flushed offset is being synced; a
		// group must not be served from records a power loss could take.
		co.b.env.Clock.AfterFunc(offsetsLoadRetryDelay, func() { co.loadChunk(t, index, offset) })
		return
	}
	next, err := co.readChunk(p, offset)
	switch {
	case err != nil:
		co.b.env.Log.Logf("group coordinator: load %s-%d at offset %d: %v; groups of this partition are not served",
			group.OffsetsTopic, index, offset, err)
	case next > offset:
		co.b.env.Clock.AfterFunc(0, func() { co.loadChunk(t, index, next) })
		return
	default:
		if offset > p.log.StartOffset() {
			co.b.env.Hit(probeOffsetsLoaded)
		}
		co.state.EndLoad(int32(index))
		co.arm()
	}
	if index+1 < len(t.partitions) {
		co.b.env.Clock.AfterFunc(0, func() { co.loadChunk(t, index+1, t.partitions[index+1].log.StartOffset()) })
	}
}

// readChunk applies the records of one read; it returns the offset to read
// next, equal to offset at the end of the partition.
func (co *coordinator) readChunk(p *partition, offset int64) (int64, error) {
	res, err := p.log.Read(offset, offsetsLoadChunkBytes, p.highWatermark())
	if err != nil || res.Batches == 0 {
		return offset, err
	}
	batches, err := record.Split(res.Data, res.Batches)
	if err != nil {
		return offset, err
	}
	now := co.now()
	for _, batch := range batches {
		if batch.Control() {
			continue
		}
		records, err := batch.Records()
		if err != nil {
			return offset, err
		}
		for _, r := range records {
			if r.Key != nil {
				co.state.Load(p.index, r.Key, r.Value, now)
			}
		}
	}
	return res.NextOffset, nil
}

// serveGroupRequest runs one request through the state machine when the
// coordinator serves; otherwise it answers with fail.
func (co *coordinator) call(req *request, step func(now group.Now, to group.ReplyTo) group.Output) {
	co.nextReply++
	to := co.nextReply
	co.waiting[to] = req
	co.apply(step(co.now(), to))
	co.arm()
}

// apply appends an output's records, then runs its Done and sends its
// replies.
func (co *coordinator) apply(out group.Output) {
	finish := func(appended bool) {
		if out.Done != nil {
			out.Done(appended)
		}
		co.send(out.Replies)
	}
	if len(out.Records) == 0 {
		finish(true)
		return
	}
	co.appendRecords(out.Records, finish)
}

func (co *coordinator) send(replies []group.Reply) {
	for _, r := range replies {
		req := co.waiting[r.To]
		sim.Assert(req != nil, "group coordinator answered request %d it does not owe", r.To)
		delete(co.waiting, r.To)
		req.respond(r.Response)
	}
}

// appendRecords appends records, one batch per partition, and calls done
// once they all count (appended, and on disk under group commit) or one
// has failed.
func (co *coordinator) appendRecords(records []group.Record, done func(bool)) {
	byPartition := map[int32][]group.Record{}
	for _, r := range records {
		byPartition[r.Partition] = append(byPartition[r.Partition], r)
	}
	indexes := make([]int32, 0, len(byPartition))
	for i := range byPartition {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	pending, ok := len(indexes), true
	for _, i := range indexes {
		co.appendBatch(i, byPartition[i], func(appended bool) {
			ok = ok && appended
			pending--
			if pending == 0 {
				done(ok)
			}
		})
	}
}

func (co *coordinator) appendBatch(index int32, records []group.Record, done func(bool)) {
	p, e := co.b.lookupPartition(group.OffsetsTopic, index)
	if e != nil {
		done(false)
		return
	}
	nowMs := co.b.env.Clock.Now().UnixMilli()
	recs := make([]record.Record, len(records))
	for i, r := range records {
		recs[i] = record.Record{Offset: int64(i), Timestamp: nowMs, Key: r.Key, Value: r.Value}
	}
	batch, err := record.NewBuilder().Build(recs)
	if err == nil {
		_, err = p.log.Append(batch, p.leaderEpoch)
	}
	if err != nil {
		co.b.env.Log.Logf("group coordinator: append to %s-%d: %v", group.OffsetsTopic, index, err)
		done(false)
		return
	}
	if !p.groupCommit {
		p.dataArrived()
		done(true)
		return
	}
	p.log.Flush(func(err error) {
		p.dataArrived()
		done(err == nil)
	})
}

// arm sets the timer for the state machine's next deadline.
func (co *coordinator) arm() {
	if co.state == nil {
		return
	}
	at, ok := co.state.NextDeadline()
	if !ok || (co.timer != nil && co.timerAt <= at) {
		return
	}
	if co.timer != nil {
		co.timer.Stop()
	}
	co.timerAt = at
	co.timer = co.b.env.Clock.AfterFunc(at-co.b.env.Clock.Mono(), func() {
		co.timer = nil
		if co.b.groups != co || !co.b.ready || co.state == nil {
			return
		}
		for _, out := range co.state.Tick(co.now()) {
			co.apply(out)
		}
		co.arm()
	})
}

// groupRequest serves a request for one group: the coordinator's answer,
// or, when it does not serve yet, errorResponse with the code to give.
func (b *Broker) groupRequest(req *request, groupID string, errorResponse func(e *kerr.Error) kmsg.Response,
	step func(c *group.Coordinator, now group.Now, to group.ReplyTo) group.Output) {
	co := b.groups
	if !co.ensure() {
		req.respond(errorResponse(kerr.CoordinatorNotAvailable))
		return
	}
	if e := co.state.Status(groupID); e != nil {
		req.respond(errorResponse(e))
		return
	}
	co.call(req, func(now group.Now, to group.ReplyTo) group.Output { return step(co.state, now, to) })
}

// clientOf is who sent a request, as JoinGroup records it.
func clientOf(req *request) group.Client {
	return group.Client{ID: req.clientID, Host: "/" + req.conn.host}
}
