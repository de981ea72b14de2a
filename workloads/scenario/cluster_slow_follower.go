package scenario

import (
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/world"
)

// Two more broker-cluster scenarios over leader-crash's cluster and
// clients, each a fault of its own:
//
//   - slow-follower: a follower's disk nearly stalls, each sync taking a
//     second or two (a dying disk, a throttled cloud volume), and the
//     broker's logs queue their syncs behind each other. Under group
//     commit a follower fetches again only once what it appended is
//     durable, so it falls behind by more than replica.lag.time.max.ms;
//     its leaders drop it from their ISRs through the controller, acks=all
//     goes on with the others, and when the disk heals the follower
//     catches up and is taken back. A slower disk that still syncs in
//     milliseconds does not do it: each fetch then brings the follower up
//     to the leader's end. The broker also leads partitions of its own,
//     which wait for its disk as Kafka's would.
//   - power-loss-all: every broker loses power at once, as a rack or a
//     data centre does. What survives is what reached a disk: with
//     flush=group (the default here) every acknowledged write; with
//     flush=none, Kafka's default, acknowledged writes the page caches
//     held are lost, which the Jepsen checks report as lost writes.
func init() {
	budget := Budget{EventsPerSecMax: 400_000, MemoryBytesMax: 512 << 20, StallMax: 10 * time.Second, StallAttemptsMax: 20}
	shape := "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; "
	Register(Definition{
		Name: clusterModeNames[clusterSlowFollower],
		Summary: shape + "a follower's disk nearly stalls (each sync takes 1 to 2.5 seconds) for 8 to 12 seconds at a time: " +
			"its leaders shrink their ISRs without it and take it back once it catches up",
		// No planted bug: a leader that never shrinks its ISR only slows
		// acks=all to the follower's pace (follower-cut catches it), and
		// one that shrinks on its own word loses data only when a leader
		// dies, which no episode here does.
		Params: append([]Param{{Name: "flush", Default: "group", Values: []string{"group", "none"},
			Help: "when brokers fsync: before acknowledging (group: a slow disk slows the follower) " +
				"or never (none: the follower's syncs are rare, and it keeps up)"}, clusterCorruptParam},
			workloadParams...),
		Run: 30 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterSlowFollower) },
	})
	Register(Definition{
		Name: clusterModeNames[clusterPowerLossAll],
		Bugs: []faults.Bug{faults.BugAckBeforeISR, faults.BugHWFromLeaderOnly, faults.BugNoEpochTruncation, faults.BugStaleLeaderAcks},
		Summary: shape + "every broker loses power at once, then restarts: with flush=group nothing acknowledged " +
			"is lost; with flush=none (Kafka's default) acknowledged writes are",
		Params: append([]Param{{Name: "flush", Default: "group", Values: []string{"group", "none"},
			Help: "when brokers fsync: before acknowledging (group) or never, relying on replication (none: " +
				"a power loss of every replica at once loses what only the page caches held)"}},
			workloadParams...),
		Run: 20 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterPowerLossAll) },
	})
}

// A slow-follower episode lasts longer than replica.lag.time.max.ms plus
// the leader's look for laggards, and a sync asked for in it takes from
// slowFollowerSyncMin to about 1.5 times slowFollowerSyncMax (the slow
// factor is set from the simulated disk's 100 µs base sync, whose jitter
// adds up to half), so that the syncs a few logs queue keep the follower
// behind for longer than the lag allows; at the heal the disk serves what
// is still queued at its healed speed.
const (
	slowFollowerMin     = 8 * time.Second
	slowFollowerMax     = 12 * time.Second
	slowFollowerSyncMin = time.Second
	slowFollowerSyncMax = 1600 * time.Millisecond
	simDiskSyncBase     = 100 * time.Microsecond
)

// slowFollower stalls the disk of a follower of a partition's leader (the
// broker after the leader, in id order), and heals it when the episode
// ends. The partition drawn also sets how slow.
func (c *leaderCrashCluster) slowFollower(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	i := slices.Index(leaderCrashBrokerIDs, leader)
	node := quorumBrokerNode(leaderCrashBrokerIDs[(i+1)%len(leaderCrashBrokerIDs)])
	sync := slowFollowerSyncMin + time.Duration(partition)*(slowFollowerSyncMax-slowFollowerSyncMin)/2
	factor := float64(sync / simDiskSyncBase)
	c.act(faults.Action{Op: faults.SlowDisk, Node: node, Factor: factor})
	return func() { c.act(faults.Action{Op: faults.DiskHeal, Node: node}) }, true
}
