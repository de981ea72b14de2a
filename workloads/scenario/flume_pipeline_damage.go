package scenario

import (
	"time"

	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// A damaged checkpoint. The file channel writes its checkpoint to a
// temporary file, syncs it and renames it over the old one, so no crash
// leaves it torn: only the disk's own damage does, and then the channel
// must replay every log file and find the same events. Bit flips across
// the agent's disk would mostly land in log records, whose loss the
// scenario cannot excuse, so a swarm seed with a file channel plants, one
// time in four, an episode aimed at the checkpoint: bits flip in the
// Kafka agent's checkpoint file and the agent is killed or loses power at
// that moment, to boot again a moment later. The pipeline's accounting
// then judges that no acknowledged line was lost.
const (
	// checkpointDamageFile is the Kafka agent's file channel's
	// checkpoint (pipelineChannel's checkpointDir).
	checkpointDamageFile = "flume/checkpoint/checkpoint"
	// checkpointDamageShare is one in how many swarm seeds plant an
	// episode.
	checkpointDamageShare = 4
	// checkpointDamageFrom is the earliest an episode falls: after the
	// first checkpoint (checkpointInterval 2 s).
	checkpointDamageFrom = 3 * time.Second
	// checkpointDamageQuiet is how long before the faults heal the
	// episode must fall: the restart and replay fit.
	checkpointDamageQuiet = 2 * time.Second
	// checkpointDamageBytesMax bounds the bytes flipped.
	checkpointDamageBytesMax = 3
)

// scheduleCheckpointDamage plants the seed's episode, if it draws one,
// from its own stream, so that it shifts no other draw.
func (c *pipelineCluster) scheduleCheckpointDamage(w *world.World) {
	r := sched.NewRand(c.o.Seed, "checkpoint-damage", 0)
	if r.IntN(checkpointDamageShare) != 0 {
		return
	}
	from, until := checkpointDamageFrom, c.o.Run-checkpointDamageQuiet
	if until <= from {
		return // a run too short for an episode
	}
	at := from + time.Duration(r.Int64N(int64(until-from)))
	flips := 1 + r.IntN(checkpointDamageBytesMax)
	crash := drawAgentCrash(r)
	w.At(at, func() { c.checkpointDamageEpisode(w, flips, crash) })
}

// checkpointDamageEpisode flips bits in the Kafka agent's checkpoint and
// crashes the agent.
func (c *pipelineCluster) checkpointDamageEpisode(w *world.World, flips int, crash agentCrash) {
	skip := c.o.skipsEpisode(c.episodes)
	c.episodes++
	if skip || !w.Node(pipelineAgent).Up() {
		return // left out, or a random fault got there first
	}
	if err := w.CorruptFile(pipelineAgent, checkpointDamageFile, flips); err != nil {
		tolerateNoEffect(err) // no checkpoint yet: the agent is still opening
		return
	}
	c.checkpointsDamaged++
	crash.apply(w, pipelineAgent)
}
