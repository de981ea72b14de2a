package scenario

import (
	"time"

	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// Power loss with a controller's log write in flight. A controller writes
// each Ready's entries and hard state, then syncs them before any message
// leaves; a power loss before the sync returns keeps, drops or tears what
// was written, and recovery must cut the torn frame at the log's tail.
// The mixed faults' power losses almost never fall in that window (the
// quorum writes a few entries a second, each synced within milliseconds),
// so a swarm seed of the mixed faults plants a few episodes: one
// controller's disk turns slow, and as soon as its log holds unsynced
// bytes it loses power, to restart a moment later. The oracle then judges
// that nothing acknowledged was lost and no index held two entries.
const (
	// tornTailPoll is how often an episode looks for unsynced bytes:
	// well inside a slowed sync.
	tornTailPoll = time.Millisecond
	// tornTailWaitMax is how long an episode waits for a write: the
	// admin changes a topic every few hundred milliseconds at most.
	tornTailWaitMax = 2 * time.Second
	// tornTailSlowFactor stretches the controller's syncs to tens of
	// milliseconds.
	tornTailSlowFactor = 20
	// tornTailEpisodesMax bounds the episodes a seed draws.
	tornTailEpisodesMax = 2
	// tornTailQuiet is how long before the faults heal the last episode
	// must have begun: the wait, the restart and an election fit.
	tornTailQuiet = tornTailWaitMax + 2*time.Second
)

// scheduleTornTails plants the seed's episodes (none to
// tornTailEpisodesMax) at times drawn from their own stream, so that they
// shift no other draw.
func (c *quorumCluster) scheduleTornTails(w *world.World) {
	r := sched.NewRand(c.o.Seed, "torn-tail", 0)
	n := r.IntN(tornTailEpisodesMax + 1)
	from, until := time.Duration(faultsStart), c.o.Run-tornTailQuiet
	if until <= from {
		return // a run too short for an episode
	}
	for range n {
		at := from + time.Duration(r.Int64N(int64(until-from)))
		node := c.names[r.IntN(len(c.names))]
		down := time.Duration(50+r.IntN(450)) * time.Millisecond
		w.At(at, func() { c.tornTailEpisode(w, node, down) })
	}
}

// tornTailEpisode slows node's disk and waits for its log to hold
// unsynced bytes, then cuts its power for down. Its draws were made when
// it was planted, so that one the options skip shifts no other.
func (c *quorumCluster) tornTailEpisode(w *world.World, node string, down time.Duration) {
	skip := c.o.skipsEpisode(c.episodes)
	c.episodes++
	n := w.Node(node)
	if skip || !n.Up() {
		return // left out, or a random fault got there first
	}
	c.tornTailEpisodes++
	tolerateNoEffect(w.SlowDisk(node, tornTailSlowFactor))
	deadline := w.Now() + tornTailWaitMax
	var poll func()
	poll = func() {
		switch {
		case !n.Up():
			tolerateNoEffect(w.DiskHeal(node)) // a random fault took it down meanwhile
		case n.Disk().DirtyBytes() > 0:
			tolerateNoEffect(w.PowerLoss(node))
			tolerateNoEffect(w.DiskHeal(node))
			w.At(w.Now()+down, func() { tolerateNoEffect(w.Restart(node)) })
		case w.Now() >= deadline:
			tolerateNoEffect(w.DiskHeal(node))
		default:
			w.At(w.Now()+tornTailPoll, poll)
		}
	}
	w.At(w.Now()+tornTailPoll, poll)
}
