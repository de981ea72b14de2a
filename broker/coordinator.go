package broker

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// The group coordinator's place in the broker: broker/group decides, this
// file feeds it requests and time, appends the records it returns to
// __consumer_offsets, and sends its answers once they count. The
// coordinator of a group is the leader of the group's __consumer_offsets
// partition. A single broker leads them all and loads every partition when
// it starts; a cluster member loads a partition when the image makes it
// the leader (at each new leader epoch) and unloads it when it stops
// leading, and its records count once the high watermark passes them
// (acks=all), as Kafka's offsets.commit.required.acks asks.

// offsetsTopicConfigs are Kafka's for __consumer_offsets: compacted, with
// offsets.topic.segment.bytes.
var offsetsTopicConfigs = map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}

// offsetsLoadChunkBytes is what one loop turn reads of a partition being
// loaded, so that a long log does not hold the loop.
const offsetsLoadChunkBytes = 1 << 20

// offsetsLoadRetryDelay is how long a load waits for a partition's
// high watermark to reach its log end (what recovery kept reaching disk,
// or a new leader's followers catching up) before looking again.
const offsetsLoadRetryDelay = 10 * time.Millisecond

var probeOffsetsLoaded = sim.DeclareProbe("broker/offsets-loaded",
	"the group coordinator reloaded groups and offsets from a non-empty __consumer_offsets partition")

type coordinator struct {
	b     *Broker
	state *group.Coordinator
	// topic is the __consumer_offsets the state follows.
	topic *topic
	// owned are the partitions this broker coordinates, loading or
	// loaded.
	owned     map[int32]*ownedPartition
	waiting   map[group.ReplyTo]*request
	nextReply group.ReplyTo
	timer     sim.Timer
	timerAt   time.Duration
	// creating is set while __consumer_offsets is being created.
	creating bool
}

// ownedPartition is a __consumer_offsets partition this broker
// coordinates, under one leadership: a new leader epoch is a new one.
type ownedPartition struct {
	index  int32
	p      *partition
	epoch  int32
	loaded bool
}

// startCoordinator is called when the broker starts serving: a single
// broker reloads groups and offsets from __consumer_offsets if it exists;
// a cluster member does as the image gives it leaderships. Otherwise the
// topic is made on the first FindCoordinator, as Kafka makes it.
func (b *Broker) startCoordinator() {
	b.groups = &coordinator{b: b, waiting: map[group.ReplyTo]*request{}, owned: map[int32]*ownedPartition{}}
	b.groups.follow()
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
	co.create()
	return false
}

// create asks for __consumer_offsets: a single broker records it, a
// cluster member asks the controller, with offsets.topic.replication.factor
// replicas at most the live brokers' count. The topic is followed once the
// registry (or the applied image) holds it.
func (co *coordinator) create() {
	b := co.b
	if co.creating || b.topics == nil {
		return
	}
	cfg := b.cfg.Groups
	if b.cluster == nil {
		co.creating = true
		b.createTopic(group.OffsetsTopic, cfg.Partitions, offsetsTopicConfigs, func(err error) {
			co.creating = false
			if err == nil && b.groups == co && b.topics != nil {
				co.follow()
			}
		})
		return
	}
	m := b.cluster
	if m.member == nil || m.stopped {
		return
	}
	s := m.member.Image().State()
	if s.Topics[group.OffsetsTopic] != nil {
		return // made already: the image applied next brings it
	}
	live := int16(0)
	for _, br := range s.Brokers {
		if !br.Fenced {
			live++
		}
	}
	rf := max(min(cfg.ReplicationFactor, live), 1)
	co.creating = true
	m.createTopic(group.OffsetsTopic, cfg.Partitions, rf, offsetsTopicConfigs, func(code metadata.Code) {
		co.creating = false
		if code != metadata.CodeNone && code != metadata.CodeTopicAlreadyExists {
			b.env.Log.Logf("group coordinator: create %s with %d replicas: %s", group.OffsetsTopic, rf, code)
		}
	})
}

// serving says whether the coordinator has state for the current
// __consumer_offsets, without creating it.
func (co *coordinator) serving() bool {
	return co.state != nil && co.b.topics != nil && co.b.topics.get(group.OffsetsTopic) == co.topic
}

// follow brings the coordinator in line with __consumer_offsets as the
// broker holds it: state for the topic, and a load of every partition
// this broker leads that it does not yet coordinate at that leader epoch,
// an unload of every one it no longer leads. It runs at the start, once a
// single broker has made the topic, and after every image a cluster
// member applies.
func (co *coordinator) follow() {
	if co.b.topics == nil {
		return
	}
	t := co.b.topics.get(group.OffsetsTopic)
	if co.state != nil && co.topic != t {
		co.forget()
	}
	if t == nil {
		return
	}
	if co.state == nil {
		co.newState(t)
	}
	for i, p := range t.partitions {
		co.followPartition(int32(i), p)
	}
}

func (co *coordinator) followPartition(index int32, p *partition) {
	leads := p != nil && (co.b.cluster == nil || p.replica.role == roleLeader)
	op := co.owned[index]
	switch {
	case leads && op == nil:
		co.beginLoad(index, p)
	case leads && (op.p != p || op.epoch != p.leaderEpoch):
		co.unload(index, fmt.Sprintf("it leads again at epoch %d", p.leaderEpoch))
		co.beginLoad(index, p)
	case !leads && op != nil:
		co.unload(index, "no longer its leader")
	}
}

// forget drops the state of a __consumer_offsets that was deleted (Kafka
// refuses to delete it; here a new one is made on the next request).
func (co *coordinator) forget() {
	co.b.env.Log.Logf("group coordinator: %s was deleted; its groups and offsets are gone", group.OffsetsTopic)
	for _, index := range co.ownedIndexes() {
		co.unload(index, "the topic was deleted")
	}
	co.state, co.topic = nil, nil
}

func (co *coordinator) ownedIndexes() []int32 {
	indexes := make([]int32, 0, len(co.owned))
	for i := range co.owned {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	return indexes
}

// newState makes a state machine for t that owns no partition yet.
func (co *coordinator) newState(t *topic) {
	cfg := co.b.cfg.Groups
	if int32(len(t.partitions)) != cfg.Partitions {
		co.b.env.Log.Logf("group coordinator: %s has %d partitions, configured %d: using the topic's",
			group.OffsetsTopic, len(t.partitions), cfg.Partitions)
		cfg.Partitions = int32(len(t.partitions))
	}
	env := co.b.env
	cfg.Bugs = co.b.cfg.Bugs
	cfg.MemberSuffix = func() string { return strconv.FormatUint(env.Rand.Uint64(), 36) }
	cfg.PartitionExists = func(topic string, partition int32) bool {
		// Every broker knows every topic (in a cluster from the image),
		// whether or not it holds a replica of the partition.
		t := co.b.topics.get(topic)
		return t != nil && partition >= 0 && partition < int32(len(t.partitions))
	}
	co.state, co.topic = group.New(cfg), t
}

// beginLoad makes this broker the coordinator of a partition's groups:
// they are read back from its log, one chunk per loop turn; requests
// meanwhile are answered COORDINATOR_LOAD_IN_PROGRESS. Partitions load
// side by side, so that one waiting for its high watermark holds up no
// other.
func (co *coordinator) beginLoad(index int32, p *partition) {
	op := &ownedPartition{index: index, p: p, epoch: p.leaderEpoch}
	co.owned[index] = op
	co.state.BeginLoad(index)
	if co.b.cluster != nil {
		co.b.env.Log.Logf("group coordinator: loading %s-%d as its leader at epoch %d", group.OffsetsTopic, index, op.epoch)
	}
	if co.b.cfg.Bugs.On(faults.BugNoOffsetReload) {
		// The planted bug: served at once, nothing read back.
		co.state.EndLoad(index)
		op.loaded = true
		co.arm()
		return
	}
	co.loadChunk(op, p.log.StartOffset())
}

// unload gives a partition's groups up: requests waiting on them are
// answered NOT_COORDINATOR, and its load, if unfinished, stops.
func (co *coordinator) unload(index int32, why string) {
	op := co.owned[index]
	if op == nil {
		return
	}
	delete(co.owned, index)
	if co.b.cluster != nil {
		co.b.env.Log.Logf("group coordinator: unloading %s-%d: %s", group.OffsetsTopic, index, why)
	}
	co.send(co.state.Unload(index))
}

// current says whether op is still this broker's coordination of its
// partition under a broker that serves.
func (co *coordinator) current(op *ownedPartition) bool {
	return co.b.groups == co && co.b.topics != nil && co.owned[op.index] == op
}

func (co *coordinator) loadChunk(op *ownedPartition, offset int64) {
	if !co.current(op) {
		return // the broker restarted, the topic went away, or the leadership moved
	}
	p := op.p
	if offset >= p.highWatermark() && p.highWatermark() < p.log.EndOffset() {
		// What recovery kept above the flushed offset is being synced,
		// or a new leader's followers have yet to reach its log end: a
		// group must not be served from records that may not last.
		co.b.env.Clock.AfterFunc(offsetsLoadRetryDelay, func() { co.loadChunk(op, offset) })
		return
	}
	next, err := co.readChunk(p, offset)
	switch {
	case err != nil:
		co.b.env.Log.Logf("group coordinator: load %s-%d at offset %d: %v; groups of this partition are not served",
			group.OffsetsTopic, op.index, offset, err)
	case next > offset:
		co.b.env.Clock.AfterFunc(0, func() { co.loadChunk(op, next) })
		return
	default:
		if offset > p.log.StartOffset() {
			co.b.env.Hit(probeOffsetsLoaded)
		}
		co.state.EndLoad(op.index)
		op.loaded = true
		co.arm()
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
	state := co.state
	finish := func(appended bool) {
		if out.Done != nil {
			out.Done(appended)
		}
		co.send(out.Replies)
		co.send(state.TakeReplies())
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
	op := co.owned[index]
	if op == nil || !op.loaded || op.p.lostData() {
		done(false)
		return
	}
	p := op.p
	if co.b.cluster != nil && (p.replica.role != roleLeader || p.leaderEpoch != op.epoch) {
		done(false) // the leadership is over; the next image unloads the partition
		return
	}
	nowMs := co.b.env.Clock.Now().UnixMilli()
	recs := make([]record.Record, len(records))
	for i, r := range records {
		recs[i] = record.Record{Offset: int64(i), Timestamp: nowMs, Key: r.Key, Value: r.Value}
	}
	batch, err := record.NewBuilder().Build(recs)
	var res storage.AppendResult
	if err == nil {
		res, err = p.log.Append(batch, p.leaderEpoch)
	}
	if err != nil {
		co.b.env.Log.Logf("group coordinator: append to %s-%d: %v", group.OffsetsTopic, index, err)
		done(false)
		return
	}
	if co.b.cluster != nil {
		// Kafka's offsets.commit.required.acks: the records count once
		// every ISR member has them.
		p.awaitReplicated(res.LastOffset, co.state.Config().CommitTimeout, func(e *kerr.Error) { done(e == nil) })
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

// locate names a group's coordinator: the leader of the group's
// __consumer_offsets partition (in a cluster, as the image has it), or why
// there is none yet (COORDINATOR_NOT_AVAILABLE). The first look creates
// the topic.
func (co *coordinator) locate(groupID string) (nodeID int32, host string, port int32, why string) {
	b := co.b
	if b.cluster == nil {
		if !co.ensure() {
			return -1, "", -1, "creating " + group.OffsetsTopic
		}
		return b.cfg.NodeID, b.host, b.port, ""
	}
	m := b.cluster
	if m.member == nil {
		return -1, "", -1, "the broker has not joined the cluster yet"
	}
	s := m.member.Image().State()
	t := s.Topics[group.OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		co.ensure()
		return -1, "", -1, "creating " + group.OffsetsTopic
	}
	index := group.PartitionFor(groupID, int32(len(t.Partitions)))
	leader := t.Partitions[index].Leader
	br := s.Brokers[leader]
	if leader == metadata.NoLeader || br == nil || br.Fenced {
		return -1, "", -1, fmt.Sprintf("%s-%d has no leader", group.OffsetsTopic, index)
	}
	host, port, ok := splitAddr(br.Addr)
	if !ok {
		return -1, "", -1, fmt.Sprintf("broker %d's address %q is not host:port", leader, br.Addr)
	}
	return leader, host, port, ""
}

// clientOf is who sent a request, as JoinGroup records it.
func clientOf(req *request) group.Client {
	return group.Client{ID: req.clientID, Host: "/" + req.conn.host}
}
