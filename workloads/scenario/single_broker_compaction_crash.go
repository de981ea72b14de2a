package scenario

import (
	"errors"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// Power loss in the middle of a compaction. The cleaner swaps a cleaned
// segment in by renames and removals (storage's swap) that are durable
// only once the directory is synced; a power loss before then keeps a
// random prefix of them, and recovery must turn every such prefix back
// into the old segments or the new one. Random faults almost never land
// in that window, so a compacted seed plants a few episodes: the disk
// turns slow (stretching the syncs of the cleaned files and of the
// directory after the swap), and as soon as a compaction of any
// partition completes, the machine loses power, then restarts. The
// history checkers and the end-of-run audits then judge the recovered
// log.
const (
	// compactionCrashPoll is how often an episode looks for a completed
	// compaction: well inside a slowed directory sync.
	compactionCrashPoll = 2 * time.Millisecond
	// compactionCrashWaitMax is how long an episode waits for one: a
	// couple of compaction rounds.
	compactionCrashWaitMax = 2 * compactionInterval
	// compactionCrashSlowFactor slows the disk so that the syncs around
	// a swap take tens of milliseconds.
	compactionCrashSlowFactor = 50
	// compactionCrashEpisodesMax bounds the episodes a seed draws.
	compactionCrashEpisodesMax = 3
	// compactionCrashQuiet is how long before the faults heal the last
	// episode must have begun: the wait, the restart and recovery fit.
	compactionCrashQuiet = compactionCrashWaitMax + time.Second
)

// scheduleCompactionCrashes plants the seed's episodes at times drawn
// from their own stream, so that they shift no other draw.
func (c *singleBrokerCluster) scheduleCompactionCrashes(w *world.World) {
	r := sched.NewRand(c.o.Seed, "compaction-crash", 0)
	from, until := time.Duration(faultsStart)+compactionInterval, c.o.Run-compactionCrashQuiet
	if until <= from {
		return // a run too short for an episode
	}
	for range c.knobs.CompactionPowerLosses {
		at := from + time.Duration(r.Int64N(int64(until-from)))
		down := time.Duration(100+r.IntN(400)) * time.Millisecond
		w.At(at, func() { c.compactionCrashEpisode(w, down) })
	}
}

// compactionCrashEpisode slows the disk and waits for a compaction to
// complete on the serving broker, which then stays without power for
// down. Its draws were made when it was planted, so that one the options
// skip shifts no other.
func (c *singleBrokerCluster) compactionCrashEpisode(w *world.World, down time.Duration) {
	skip := c.o.skipsEpisode(c.episodes)
	c.episodes++
	if skip || !c.serving() {
		return // left out, or a random fault got there first
	}
	broker := len(c.brokers)
	seen := c.recordsCompacted()
	tolerateNoEffect(w.SlowDisk(singleBrokerNode, compactionCrashSlowFactor))
	deadline := w.Now() + compactionCrashWaitMax
	var poll func()
	poll = func() {
		switch {
		case len(c.brokers) != broker || !c.serving():
			tolerateNoEffect(w.DiskHeal(singleBrokerNode)) // the broker restarted meanwhile
		case c.recordsCompacted() > seen:
			tolerateNoEffect(w.PowerLoss(singleBrokerNode))
			tolerateNoEffect(w.DiskHeal(singleBrokerNode))
			w.At(w.Now()+down, func() {
				tolerateNoEffect(w.Restart(singleBrokerNode))
			})
		case w.Now() >= deadline:
			tolerateNoEffect(w.DiskHeal(singleBrokerNode))
		default:
			w.At(w.Now()+compactionCrashPoll, poll)
		}
	}
	w.At(w.Now()+compactionCrashPoll, poll)
}

// recordsCompacted sums what the serving broker's compactions removed.
func (c *singleBrokerCluster) recordsCompacted() int64 {
	b := c.brokers[len(c.brokers)-1]
	n := int64(0)
	for _, tp := range c.topicPartitions() {
		if lg := b.PartitionLog(tp.Topic, tp.Partition); lg != nil {
			n += lg.RecordsCompacted()
		}
	}
	return n
}

// tolerateNoEffect checks a world action that random faults may have
// made moot (a node already down, a disk already healed).
func tolerateNoEffect(err error) {
	sched.Assert(err == nil || errors.Is(err, sim.ErrNoEffect), "scenario: %v", err)
}
