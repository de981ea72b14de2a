package collector

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Channel is a transactional queue of events between sources and sinks.
type Channel interface {
	Name() string
	// Begin opens a transaction. Several may be open at once.
	Begin() *Txn
	// Size is the number of events a take could see now.
	Size() int
	Counters() *ChannelCounters
	// OnPut registers f to be called whenever committed puts become
	// visible, so that an idle sink runner need not poll. f may run
	// inside a commit; it must not start a transaction there.
	OnPut(f func())
	// OnFull registers f to be called by Relieve.
	OnFull(f func())
	// Relieve calls the OnFull listeners when commits wait for room. A
	// source whose batch must wait calls it from the loop (never inside a
	// commit), so the channel's sinks run at once rather than after
	// whatever input is queued on the node's loop.
	Relieve()
	// Waiting reports whether commits wait for room.
	Waiting() bool
	// Stop ends the channel: the file channel writes a checkpoint, then
	// calls done. Transactions after Stop fail.
	Stop(done func())
}

// item is one event in a channel, with the id that orders it (ids grow in
// commit order, so a channel's queue is always sorted by id) and, for the
// file channel, where its transaction's record lies.
type item struct {
	id  uint64
	ev  Event
	loc recordLoc
}

// persister makes a transaction durable: the memory channel calls done at
// once, the file channel after the write-ahead log is synced. It assigns
// the ids of the transaction's puts.
type persister interface {
	persist(t *Txn, done func(error))
}

// channelCore is the transaction logic the channels share: capacity and
// transactionCapacity, commits that wait up to keep-alive for room, takes
// that roll back to the front in order.
type channelCore struct {
	name  string
	env   sim.Env
	store persister
	// capacity bounds queued, taken and committing events together.
	capacity      int
	txCapacity    int
	byteCapacity  int64
	keepAlive     time.Duration
	queue         itemQueue
	queueBytes    int64
	taken         int
	takenBytes    int64
	reserved      int
	reservedBytes int64
	// waiting are commits that wait for room, oldest first.
	waiting  []*Txn
	nextID   uint64
	closed   bool
	counters ChannelCounters
	onPut    []func()
	onFull   []func()
	// bugs are the planted bugs switched on (faults.BugTakeRollbackReorders).
	bugs faults.Bugs
	// readsBack: committed puts do not join the queue here; the store
	// reads them back and queues them itself (the kafka channel, whose
	// puts go to a topic).
	readsBack bool
	// onCommit, if not nil, is told of each applied transaction
	// (Options.OnCommit).
	onCommit func(puts, takes []Event)
	// rollbacks counts the transactions rolled back, by Rollback or by
	// a failed commit.
	rollbacks int64
}

func (c *channelCore) core() *channelCore { return c }

// commitsWaitingMax bounds the commits waiting for room.
const commitsWaitingMax = 1 << 12

type channelLimits struct {
	capacity, txCapacity int
	byteCapacity         int64
	keepAlive            time.Duration
}

func newChannelCore(name string, env sim.Env, limits channelLimits, store persister) *channelCore {
	sim.Assert(limits.capacity > 0 && limits.txCapacity > 0 && limits.txCapacity <= limits.capacity,
		"channel %s: capacity %d, transactionCapacity %d", name, limits.capacity, limits.txCapacity)
	c := &channelCore{name: name, env: env, store: store, capacity: limits.capacity, txCapacity: limits.txCapacity,
		byteCapacity: limits.byteCapacity, keepAlive: limits.keepAlive, nextID: 1}
	c.counters.ChannelCapacity = int64(limits.capacity)
	return c
}

// Begin opens a transaction.
func (c *channelCore) Begin() *Txn { return &Txn{ch: c} }

// Size is the number of events visible to takes.
func (c *channelCore) Size() int { return c.queue.len() }

// Counters returns the channel's counters, with its size filled in.
func (c *channelCore) Counters() *ChannelCounters {
	c.counters.ChannelSize = int64(c.queue.len())
	if c.counters.Kafka != nil {
		c.counters.Kafka.RollbackCount = c.rollbacks
	}
	return &c.counters
}

// occupied is what counts against capacity: queued, taken by open
// transactions, and put by committing ones.
func (c *channelCore) occupied() (int, int64) {
	return c.queue.len() + c.taken + c.reserved, c.queueBytes + c.takenBytes + c.reservedBytes
}

func (c *channelCore) fits(t *Txn) bool {
	n, bytes := c.occupied()
	if n-len(t.takes)+len(t.puts) > c.capacity {
		return false
	}
	return c.byteCapacity == 0 || bytes-t.takeBytes+t.putBytes <= c.byteCapacity
}

type txnState uint8

const (
	txnOpen txnState = iota
	txnCommitting
	txnDone
)

// Txn is a channel transaction: puts become visible and takes final only
// when it commits; a rollback returns its takes to the channel's front.
type Txn struct {
	ch        *channelCore
	puts      []Event
	putBytes  int64
	takes     []item
	takeBytes int64
	// ids are the ids the store assigned to puts, locs where they lie.
	ids   []uint64
	loc   recordLoc
	state txnState
	done  func(error)
	timer sim.Timer
}

// Put stages an event.
func (t *Txn) Put(e Event) error {
	sim.Assert(t.state == txnOpen, "put on a transaction that is not open")
	t.ch.counters.EventPutAttemptCount++
	if t.ch.closed {
		return ErrChannelClosed
	}
	if len(t.puts) >= t.ch.txCapacity {
		return fmt.Errorf("channel %s: put %d: %w (%d)", t.ch.name, len(t.puts)+1, ErrTransactionFull, t.ch.txCapacity)
	}
	t.puts = append(t.puts, e)
	t.putBytes += e.size()
	return nil
}

// Take removes the channel's first event from view; ok is false when the
// channel holds none.
func (t *Txn) Take() (e Event, ok bool, err error) {
	sim.Assert(t.state == txnOpen, "take on a transaction that is not open")
	c := t.ch
	c.counters.EventTakeAttemptCount++
	if c.closed {
		return Event{}, false, ErrChannelClosed
	}
	if len(t.takes) >= c.txCapacity {
		return Event{}, false, fmt.Errorf("channel %s: take %d: %w (%d)", c.name, len(t.takes)+1, ErrTransactionFull, c.txCapacity)
	}
	it, ok := c.queue.popFront()
	if !ok {
		return Event{}, false, nil
	}
	size := it.ev.size()
	c.queueBytes -= size
	c.taken++
	c.takenBytes += size
	t.takes = append(t.takes, it)
	t.takeBytes += size
	return it.ev, true, nil
}

// Commit makes the transaction's puts visible and its takes final, then
// calls done(nil); done may run before Commit returns. When the channel has
// no room for the puts it waits up to keep-alive for takes to make some,
// then fails with ErrChannelFull. A failed commit is rolled back.
func (t *Txn) Commit(done func(error)) {
	sim.Assert(t.state == txnOpen, "commit of a transaction that is not open")
	c := t.ch
	t.state, t.done = txnCommitting, done
	if c.closed {
		t.finish(ErrChannelClosed)
		return
	}
	// A commit that does not add to what the channel holds never waits:
	// it is often a sink's, whose takes are what make room for the
	// waiting puts. It is admitted even over capacity: a kafka channel's
	// read-ahead (a whole poll) may hold more than its capacity, and only
	// takes bring it back.
	if t.shrinks() || (len(c.waiting) == 0 && c.fits(t)) {
		c.admit(t)
		return
	}
	if len(c.waiting) >= commitsWaitingMax {
		t.finish(fmt.Errorf("channel %s: %w: %d commits already waiting", c.name, ErrChannelFull, commitsWaitingMax))
		return
	}
	c.waiting = append(c.waiting, t)
	t.timer = c.env.Clock.AfterFunc(c.keepAlive, func() { c.expire(t) })
}

// shrinks reports whether committing frees at least as much as it adds.
func (t *Txn) shrinks() bool {
	return len(t.puts) <= len(t.takes) && t.putBytes <= t.takeBytes
}

// Rollback undoes an open transaction: its puts are dropped and its takes
// go back to the channel's front, in order.
func (t *Txn) Rollback() {
	sim.Assert(t.state == txnOpen, "rollback of a transaction that is not open")
	t.state = txnDone
	t.ch.rollbacks++
	t.ch.returnTakes(t)
}

func (c *channelCore) expire(t *Txn) {
	for i, w := range c.waiting {
		if w == t {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			t.finish(fmt.Errorf("channel %s: %w: no room for %d events within keep-alive %v", c.name, ErrChannelFull, len(t.puts), c.keepAlive))
			c.wake()
			return
		}
	}
}

// admit reserves room for the puts and hands the transaction to the store.
func (c *channelCore) admit(t *Txn) {
	c.reserved += len(t.puts)
	c.reservedBytes += t.putBytes
	c.store.persist(t, func(err error) {
		c.reserved -= len(t.puts)
		c.reservedBytes -= t.putBytes
		if err == nil {
			c.apply(t)
		}
		t.finish(err)
		c.wake()
	})
}

// apply makes a durable transaction's effects visible.
func (c *channelCore) apply(t *Txn) {
	if !c.readsBack {
		sim.Assert(len(t.ids) == len(t.puts), "channel %s: %d ids for %d puts", c.name, len(t.ids), len(t.puts))
		for i, e := range t.puts {
			c.queue.pushBack(item{id: t.ids[i], ev: e, loc: t.loc})
			c.queueBytes += e.size()
		}
	}
	c.taken -= len(t.takes)
	c.takenBytes -= t.takeBytes
	c.counters.EventPutSuccessCount += int64(len(t.puts))
	c.counters.EventTakeSuccessCount += int64(len(t.takes))
	if c.onCommit != nil {
		takes := make([]Event, len(t.takes))
		for i, it := range t.takes {
			takes[i] = it.ev
		}
		c.onCommit(t.puts, takes)
	}
	if len(t.puts) > 0 && !c.readsBack {
		for _, f := range c.onPut {
			f()
		}
	}
}

// OnPut registers a listener for visible puts.
func (c *channelCore) OnPut(f func()) { c.onPut = append(c.onPut, f) }

// OnFull registers a listener for Relieve.
func (c *channelCore) OnFull(f func()) { c.onFull = append(c.onFull, f) }

// Waiting reports whether commits wait for room.
func (c *channelCore) Waiting() bool { return len(c.waiting) > 0 }

// Relieve runs the OnFull listeners if commits wait for room.
func (c *channelCore) Relieve() {
	if len(c.waiting) == 0 {
		return
	}
	for _, f := range c.onFull {
		f()
	}
}

// finish ends a committing transaction, rolling it back on error.
func (t *Txn) finish(err error) {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.state = txnDone
	if err != nil {
		t.ch.rollbacks++
		t.ch.returnTakes(t)
	}
	if t.done != nil {
		t.done(err)
	}
}

func (c *channelCore) returnTakes(t *Txn) {
	if len(t.takes) == 0 {
		return
	}
	if c.bugs.On(faults.BugTakeRollbackReorders) {
		c.queue.returnBack(t.takes)
	} else {
		c.queue.returnFront(t.takes)
	}
	c.taken -= len(t.takes)
	c.takenBytes -= t.takeBytes
	c.queueBytes += t.takeBytes
}

// wake admits waiting commits that now fit, oldest first; a commit that
// does not fit holds back the later ones, so none starves.
func (c *channelCore) wake() {
	for len(c.waiting) > 0 && c.fits(c.waiting[0]) {
		t := c.waiting[0]
		c.waiting = c.waiting[1:]
		t.timer.Stop()
		t.timer = nil
		c.admit(t)
	}
}

// assignIDs gives a transaction's puts their ids, in commit order.
func (c *channelCore) assignIDs(t *Txn) {
	t.ids = t.ids[:0]
	for range t.puts {
		t.ids = append(t.ids, c.nextID)
		c.nextID++
	}
}

// itemQueue is a double-ended queue of items kept in id order.
type itemQueue struct {
	items []item
	head  int
}

func (q *itemQueue) len() int { return len(q.items) - q.head }

func (q *itemQueue) pushBack(it item) {
	if n := q.len(); n > 0 {
		sim.Assert(q.items[len(q.items)-1].id < it.id, "queue order: %d after %d", it.id, q.items[len(q.items)-1].id)
	}
	q.items = append(q.items, it)
}

func (q *itemQueue) popFront() (item, bool) {
	if q.len() == 0 {
		return item{}, false
	}
	it := q.items[q.head]
	q.items[q.head] = item{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return it, true
}

// returnFront puts taken items back. They were taken from the front, so
// they usually all precede the queue; when transactions roll back out of
// order they are merged, keeping the queue in id (commit) order. A
// transaction's takes are not always ascending (it may take an event
// another rolled back after its own earlier takes), so they are sorted.
func (q *itemQueue) returnFront(back []item) {
	back = slices.Clone(back)
	slices.SortFunc(back, func(a, b item) int { return cmp.Compare(a.id, b.id) })
	if q.len() == 0 || back[len(back)-1].id < q.items[q.head].id {
		if q.head >= len(back) {
			q.head -= len(back)
			copy(q.items[q.head:], back)
			return
		}
		merged := make([]item, 0, q.len()+len(back))
		merged = append(append(merged, back...), q.items[q.head:]...)
		q.items, q.head = merged, 0
		return
	}
	rest := q.items[q.head:]
	merged := make([]item, 0, len(rest)+len(back))
	i, j := 0, 0
	for i < len(back) || j < len(rest) {
		if j == len(rest) || (i < len(back) && back[i].id < rest[j].id) {
			merged = append(merged, back[i])
			i++
		} else {
			merged = append(merged, rest[j])
			j++
		}
	}
	q.items, q.head = merged, 0
}

// returnBack is the planted bug faults.BugTakeRollbackReorders: taken
// items go behind everything queued, out of commit order. They keep their
// ids (a file channel's log knows them by those), so the queue is no
// longer sorted by id; every id committed later is still larger than
// theirs, so pushBack's order check holds.
func (q *itemQueue) returnBack(back []item) {
	q.items = append(q.items, back...)
}

// snapshot lists the queued items in order.
func (q *itemQueue) snapshot() []item { return q.items[q.head:] }
