package collector

import (
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// SpillableChannel is Flume's SPILLABLEMEMORY channel: events stay in
// memory up to memoryCapacity, and what does not fit overflows to a file
// channel of up to overflowCapacity. Takes see one queue in commit order,
// wherever each event lives. A transaction's overflow puts and takes of
// overflowed events are one file channel record, synced before the commit
// completes; its memory part completes with it. After a crash the
// overflowed events are replayed and the in-memory ones are gone, as in
// Flume.
//
// Every event gets its id from the file channel's counter, so ids grow in
// commit order across both places; an event lives in the overflow exactly
// when the file channel's live map holds its id. Commits complete in the
// order they were admitted, so the queue stays in id order even when a
// memory-only commit follows one waiting for a sync.
type SpillableChannel struct {
	*channelCore
	overflow *FileChannel
	// memCapacity bounds the events in memory; memUsed counts them,
	// including those reserved by commits in flight.
	memCapacity int
	memUsed     int
	ownNextID   uint64
	inOrder     []*spillCommit
}

type spillCommit struct {
	finished bool
	err      error
	done     func(error)
}

// SpillableChannelConfig is a spillable memory channel's settings.
type SpillableChannelConfig struct {
	MemoryCapacity      int
	OverflowCapacity    int
	TransactionCapacity int
	KeepAlive           time.Duration
	// Overflow configures the file channel; its Capacity and
	// TransactionCapacity are set from the fields above.
	Overflow FileChannelConfig
}

func spillableChannelConfig(c *config.Channel, resolve func(string) string) SpillableChannelConfig {
	return SpillableChannelConfig{
		MemoryCapacity:      int(c.Int("memoryCapacity")),
		OverflowCapacity:    int(c.Int("overflowCapacity")),
		TransactionCapacity: int(c.Int("transactionCapacity")),
		KeepAlive:           time.Duration(c.Int("keep-alive")) * time.Second,
		Overflow: FileChannelConfig{
			CheckpointDir:      resolve(c.String("checkpointDir")),
			DataDirs:           resolveDataDirs(c.String("dataDirs"), resolve),
			CheckpointInterval: time.Duration(c.Int("checkpointInterval")) * time.Millisecond,
			MaxFileSize:        c.Int("maxFileSize"),
			KeepAlive:          time.Duration(c.Int("keep-alive")) * time.Second,
		},
	}
}

// OpenSpillableChannel opens the overflow (replaying it) and calls ready
// once the channel can commit.
func OpenSpillableChannel(name string, env sim.Env, cfg SpillableChannelConfig, ready func(*SpillableChannel, error)) {
	capacity := cfg.MemoryCapacity + cfg.OverflowCapacity
	if capacity < cfg.TransactionCapacity || capacity <= 0 {
		env.Clock.AfterFunc(0, func() {
			ready(nil, fmt.Errorf("spillable channel %s: memoryCapacity %d + overflowCapacity %d is below transactionCapacity %d",
				name, cfg.MemoryCapacity, cfg.OverflowCapacity, cfg.TransactionCapacity))
		})
		return
	}
	s := &SpillableChannel{memCapacity: cfg.MemoryCapacity, ownNextID: 1}
	s.channelCore = newChannelCore(name, env, channelLimits{capacity: capacity, txCapacity: cfg.TransactionCapacity, keepAlive: cfg.KeepAlive}, s)
	if cfg.OverflowCapacity == 0 {
		env.Clock.AfterFunc(0, func() { ready(s, nil) })
		return
	}
	fcfg := cfg.Overflow
	fcfg.Capacity = cfg.OverflowCapacity
	fcfg.TransactionCapacity = min(cfg.TransactionCapacity, cfg.OverflowCapacity)
	OpenFileChannel(name+"-overflow", env, fcfg, func(f *FileChannel, err error) {
		if err != nil {
			ready(nil, fmt.Errorf("spillable channel %s: %w", name, err))
			return
		}
		s.overflow = f
		// The replayed events are served from this channel's queue; the
		// file channel keeps only their records.
		for _, it := range f.queue.snapshot() {
			s.queue.pushBack(it)
			s.queueBytes += it.ev.size()
		}
		f.queue, f.queueBytes = itemQueue{}, 0
		env.Log.Logf("spillable channel %s: %d overflowed events replayed", name, s.queue.len())
		ready(s, nil)
	})
}

// Name is the channel's name.
func (s *SpillableChannel) Name() string { return s.name }

// claimReplayedTakes returns the takes the overflow's replay found: an
// overflowed event taken by a commit that became durable as the agent
// died.
func (s *SpillableChannel) claimReplayedTakes() []Event {
	if s.overflow == nil {
		return nil
	}
	return s.overflow.claimReplayedTakes()
}

// MemorySize is the events held in memory (queued, taken or committing).
func (s *SpillableChannel) MemorySize() int { return s.memUsed }

func (s *SpillableChannel) takeID() uint64 {
	if s.overflow != nil {
		id := s.overflow.nextID
		s.overflow.nextID++
		return id
	}
	id := s.ownNextID
	s.ownNextID++
	return id
}

// persist splits a transaction between memory and the overflow.
func (s *SpillableChannel) persist(t *Txn, done func(error)) {
	c := &spillCommit{done: done}
	s.inOrder = append(s.inOrder, c)
	memPuts := min(len(t.puts), max(s.memCapacity-s.memUsed, 0))
	var spillTakes []item
	memTakes := 0
	for _, it := range t.takes {
		if s.overflow != nil {
			if loc, ok := s.overflow.live[it.id]; ok {
				spillTakes = append(spillTakes, item{id: it.id, loc: loc})
				continue
			}
		}
		memTakes++
	}
	s.memUsed += memPuts
	t.ids = t.ids[:0]
	for range memPuts {
		t.ids = append(t.ids, s.takeID())
	}
	finish := func(err error) {
		if err != nil {
			s.memUsed -= memPuts
		} else {
			s.memUsed -= memTakes
		}
		c.finished, c.err = true, err
		s.completeInOrder()
	}
	spillPuts := t.puts[memPuts:]
	if len(spillPuts) == 0 && len(spillTakes) == 0 {
		finish(nil)
		return
	}
	sim.Assert(s.overflow != nil, "spillable channel %s: overflow without a file channel", s.name)
	inner := &Txn{ch: s.overflow.channelCore, puts: spillPuts, takes: spillTakes}
	s.overflow.persist(inner, func(err error) {
		if err == nil {
			t.ids = append(t.ids, inner.ids...)
			t.loc = inner.loc
		}
		finish(err)
	})
}

// completeInOrder reports finished commits in the order they were
// admitted.
func (s *SpillableChannel) completeInOrder() {
	for len(s.inOrder) > 0 && s.inOrder[0].finished {
		c := s.inOrder[0]
		s.inOrder = s.inOrder[1:]
		c.done(c.err)
	}
}

// Stop closes the channel: the overflow writes a checkpoint; what is in
// memory is gone.
func (s *SpillableChannel) Stop(done func()) {
	s.closed = true
	if s.overflow == nil {
		done()
		return
	}
	s.overflow.Stop(done)
}
