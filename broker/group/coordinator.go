// Package group is the group coordinator of Kafka's classic consumer group
// protocol as a pure state machine: it takes requests and the clock's time
// and returns the answers and the __consumer_offsets records to append. It
// does no I/O, keeps no timers and draws no randomness of its own (new
// member ids take their random part from Config.MemberSuffix), so the
// broker drives it on its loop in both worlds and tests drive it directly.
//
// The broker appends an Output's records to the group's __consumer_offsets
// partition, calls Output.Done with whether that worked, and only then
// sends Output.Replies: an answer that depends on a record (a commit, a
// completed SyncGroup) never reaches a client before the record is in the
// log. When the broker starts, or becomes the leader of a partition, it
// reads the partition back through Load, and until EndLoad the groups of
// that partition are answered COORDINATOR_LOAD_IN_PROGRESS; when it stops
// leading it, Unload gives them up.
package group

import (
	"container/heap"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/faults"
)

// Config configures a coordinator. Field names follow Kafka's broker
// configs.
type Config struct {
	// Partitions is offsets.topic.num.partitions.
	Partitions int32
	// ReplicationFactor is offsets.topic.replication.factor: the replicas
	// of __consumer_offsets in a cluster, capped by the live brokers'
	// count when the topic is made.
	ReplicationFactor int16
	// CommitTimeout is offsets.commit.timeout.ms: in a cluster, how long a
	// group's records may wait for the ISR to replicate them before the
	// answer that depends on them fails.
	CommitTimeout time.Duration
	// SessionTimeoutMin and SessionTimeoutMax are
	// group.min.session.timeout.ms and group.max.session.timeout.ms.
	SessionTimeoutMin time.Duration
	SessionTimeoutMax time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// an empty group's first rebalance waits for more members.
	InitialRebalanceDelay time.Duration
	// MembersMax is group.max.size.
	MembersMax int
	// GroupsMax bounds the groups one coordinator holds; OffsetsMax the
	// committed partitions of one group.
	GroupsMax  int
	OffsetsMax int
	// MetadataBytesMax is offset.metadata.max.bytes.
	MetadataBytesMax int
	// OffsetsRetention is offsets.retention.minutes: a group without
	// members loses its offsets, and then itself, this long after it
	// emptied or last committed, whichever is later (KIP-211).
	OffsetsRetention time.Duration
	// MemberSuffix returns the random part of a new member id (Kafka uses
	// a UUID); the broker draws it from the node's seeded stream.
	MemberSuffix func() string
	// PartitionExists says whether a topic partition exists, so commits
	// to one that does not are refused as Kafka refuses them.
	PartitionExists func(topic string, partition int32) bool
	// Bugs switches on planted coordinator bugs
	// (faults.BugStaleGenerationCommit).
	Bugs faults.Bugs
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:            50,
		ReplicationFactor:     3,
		CommitTimeout:         5 * time.Second,
		SessionTimeoutMin:     6 * time.Second,
		SessionTimeoutMax:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		MembersMax:            1000,
		GroupsMax:             100_000,
		OffsetsMax:            100_000,
		MetadataBytesMax:      4096,
		OffsetsRetention:      7 * 24 * time.Hour,
	}
}

// Now is the time a request arrives: Mono drives timeouts, WallMs stamps
// commits and state changes.
type Now struct {
	Mono   time.Duration
	WallMs int64
}

// ReplyTo names the request an answer goes to; the caller chooses it.
type ReplyTo uint64

// Reply is an answer to one request.
type Reply struct {
	To       ReplyTo
	Response kmsg.Response
}

// Output is what one step of the coordinator asks of its caller: append
// Records (in order, to their partitions), then call Done with whether the
// append worked, then send Replies. Done may change the replies (a failed
// append turns a commit's answer into an error).
type Output struct {
	Records []Record
	Replies []Reply
	Done    func(appended bool)
}

// Client is who sent a request, from the request header and connection.
type Client struct {
	ID   string
	Host string
}

type partitionState int8

const (
	partitionLoading partitionState = iota + 1
	partitionLoaded
)

// Coordinator holds the groups of the __consumer_offsets partitions this
// broker leads.
type Coordinator struct {
	cfg        Config
	partitions map[int32]partitionState
	groups     map[string]*group
	// loadErrors counts records a load could not read (skipped).
	loadErrors int
	// deadlines holds each group's next deadline, so that finding the
	// earliest costs a heap look-up, not a walk over every group after
	// every request. Entries go stale when a group changes; touched lists
	// the groups changed since the heap was last brought up to date.
	deadlines     deadlineHeap
	deadlineSeq   uint64
	touchedGroups []*group
	// late are answers Done produced for requests of earlier steps,
	// until TakeReplies.
	late []Reply
}

// New returns a coordinator that owns no partition yet.
func New(cfg Config) *Coordinator {
	if cfg.Partitions < 1 {
		panic("group: offsets topic needs at least one partition")
	}
	if cfg.MemberSuffix == nil {
		panic("group: Config.MemberSuffix is required")
	}
	return &Coordinator{cfg: cfg, partitions: map[int32]partitionState{}, groups: map[string]*group{}}
}

// Config returns the coordinator's configuration.
func (c *Coordinator) Config() Config { return c.cfg }

// Partition is the __consumer_offsets partition of a group.
func (c *Coordinator) Partition(groupID string) int32 { return PartitionFor(groupID, c.cfg.Partitions) }

// Status is the error a request for a group gets before it reaches the
// group: nil when this coordinator serves it.
func (c *Coordinator) Status(groupID string) *kerr.Error {
	switch c.partitions[c.Partition(groupID)] {
	case partitionLoaded:
		return nil
	case partitionLoading:
		return kerr.CoordinatorLoadInProgress
	}
	return kerr.NotCoordinator
}

// Loaded reports whether a partition is loaded and served.
func (c *Coordinator) Loaded(partition int32) bool { return c.partitions[partition] == partitionLoaded }

// BeginLoad starts reading a partition back: its groups are forgotten and
// requests for them are answered COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) BeginLoad(partition int32) {
	c.dropPartition(partition)
	c.partitions[partition] = partitionLoading
}

// Load applies one record read from a partition, in log order. A record
// it cannot read is skipped and counted (LoadErrors): Kafka's log may hold
// kinds this coordinator does not serve.
func (c *Coordinator) Load(partition int32, key, value []byte, now Now) {
	if c.partitions[partition] != partitionLoading {
		panic("group: Load of a partition not loading")
	}
	d, err := decodeRecord(key, value)
	if err != nil {
		c.loadErrors++
		return
	}
	g := c.groups[d.group]
	if g == nil {
		if (d.isOffset && d.offset == nil) || (!d.isOffset && d.metadata == nil) || len(c.groups) >= c.cfg.GroupsMax {
			return
		}
		g = newGroup(d.group, partition, now, c.cfg.OffsetsRetention)
		c.groups[d.group] = g
	}
	c.touch(g)
	switch {
	case d.isOffset && d.offset == nil:
		delete(g.offsets, topicPartition{d.topic, d.partition})
	case d.isOffset:
		if len(g.offsets) < c.cfg.OffsetsMax {
			g.offsets[topicPartition{d.topic, d.partition}] = Offset{Offset: d.offset.Offset,
				LeaderEpoch: d.offset.LeaderEpoch, Metadata: d.offset.Metadata, CommitTimestampMs: d.offset.CommitTimestamp}
		}
	case d.metadata == nil:
		g.restoreEmpty()
	default:
		g.restore(d.metadata, now)
	}
}

// LoadErrors counts the records loads have skipped.
func (c *Coordinator) LoadErrors() int { return c.loadErrors }

// EndLoad makes a loaded partition's groups served. Groups that ended
// with neither members nor offsets are dropped.
func (c *Coordinator) EndLoad(partition int32) {
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if g.partition == partition && len(g.members) == 0 && len(g.offsets) == 0 && g.generation == 0 {
			delete(c.groups, id)
		}
	}
	c.partitions[partition] = partitionLoaded
}

// Unload gives a partition up (another broker leads it now, or its log
// failed): its groups are forgotten and requests waiting on them answered
// NOT_COORDINATOR, so clients find the new coordinator.
func (c *Coordinator) Unload(partition int32) []Reply {
	var replies []Reply
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if g.partition != partition {
			continue
		}
		for _, m := range g.members {
			replies = append(replies, m.answerWaiting(kerr.NotCoordinator)...)
		}
	}
	c.dropPartition(partition)
	delete(c.partitions, partition)
	return replies
}

func (c *Coordinator) dropPartition(partition int32) {
	for id, g := range c.groups {
		if g.partition == partition {
			delete(c.groups, id)
		}
	}
}

func (c *Coordinator) sortedGroupIDs() []string {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// NextDeadline is the earliest time Tick has work: a session or rebalance
// timeout, or the end of an initial rebalance delay.
func (c *Coordinator) NextDeadline() (time.Duration, bool) {
	c.flushTouched()
	for len(c.deadlines) > 0 {
		if top := c.deadlines[0]; c.current(top) {
			return top.at, true
		}
		heap.Pop(&c.deadlines)
	}
	return 0, false
}

// Tick expires sessions, completes rebalances whose time has come and
// fences members that did not rejoin or sync in time.
func (c *Coordinator) Tick(now Now) []Output {
	c.flushTouched()
	var due []*group
	for len(c.deadlines) > 0 && (c.deadlines[0].at <= now.Mono || !c.current(c.deadlines[0])) {
		e := heap.Pop(&c.deadlines).(deadlineEntry)
		if c.current(e) {
			due = append(due, e.g)
		}
	}
	slices.SortFunc(due, func(a, b *group) int { return strings.Compare(a.id, b.id) })
	var outs []Output
	for _, g := range due {
		out := c.tickGroup(g, now)
		if g.expired(now, c.cfg.OffsetsRetention) {
			out = merge(out, c.expire(g))
		}
		c.touch(g)
		if len(out.Replies) > 0 || len(out.Records) > 0 {
			outs = append(outs, out)
		}
	}
	return outs
}

// expire removes an empty group whose offsets outlived their retention,
// with tombstones for its offsets and metadata.
func (c *Coordinator) expire(g *group) Output {
	var out Output
	for _, tp := range sortedOffsets(g.offsets) {
		out.Records = append(out.Records, Record{Partition: g.partition, Key: offsetCommitKey(g.id, tp.topic, tp.partition)})
	}
	out.Records = append(out.Records, Record{Partition: g.partition, Key: groupKey(g.id)})
	delete(c.groups, g.id)
	return out
}

// deadlineEntry is a group's deadline as of seq; a later change of the
// group makes it stale.
type deadlineEntry struct {
	at  time.Duration
	g   *group
	seq uint64
}

type deadlineHeap []deadlineEntry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// current says whether a heap entry is its group's latest and the group
// still exists.
func (c *Coordinator) current(e deadlineEntry) bool {
	return e.g.deadlineSeq == e.seq && c.groups[e.g.id] == e.g
}

// touch notes that a group may have changed its next deadline.
func (c *Coordinator) touch(g *group) {
	if !g.touched {
		g.touched = true
		c.touchedGroups = append(c.touchedGroups, g)
	}
}

// flushTouched brings the heap up to date with the touched groups; a heap
// grown mostly stale is rebuilt, so it holds at most a few entries per
// group.
func (c *Coordinator) flushTouched() {
	for _, g := range c.touchedGroups {
		g.touched = false
		c.deadlineSeq++
		g.deadlineSeq = c.deadlineSeq
		if at, ok := g.nextDeadline(); ok && c.groups[g.id] == g {
			heap.Push(&c.deadlines, deadlineEntry{at: at, g: g, seq: g.deadlineSeq})
		}
	}
	c.touchedGroups = c.touchedGroups[:0]
	if len(c.deadlines) > 2*len(c.groups)+64 {
		live := c.deadlines[:0]
		for _, e := range c.deadlines {
			if c.current(e) {
				live = append(live, e)
			}
		}
		c.deadlines = live
		heap.Init(&c.deadlines)
	}
}

// Groups lists the served groups by id (for tools and tests).
func (c *Coordinator) Groups() []string {
	var ids []string
	for _, id := range c.sortedGroupIDs() {
		if c.Loaded(c.groups[id].partition) {
			ids = append(ids, id)
		}
	}
	return ids
}

// served returns the group of a request that passed Status, creating it
// when create is set.
func (c *Coordinator) group(id string, create bool, now Now) (*group, *kerr.Error) {
	if e := c.Status(id); e != nil {
		return nil, e
	}
	g := c.groups[id]
	if g == nil && create {
		if len(c.groups) >= c.cfg.GroupsMax {
			return nil, kerr.CoordinatorNotAvailable
		}
		g = newGroup(id, c.Partition(id), now, c.cfg.OffsetsRetention)
		c.groups[id] = g
	}
	if g != nil {
		c.touch(g) // whatever the request does to it, its deadline is looked at again
	}
	return g, nil
}

// replyNow is an Output answering one request at once.
func replyNow(to ReplyTo, resp kmsg.Response) Output {
	return Output{Replies: []Reply{{To: to, Response: resp}}}
}

func sortedKeys[K interface{ ~string }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
