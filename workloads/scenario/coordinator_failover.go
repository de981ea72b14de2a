package scenario

import (
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The coordinator-failover scenario: group-rebalance's producer and
// consumer group over leader-crash's cluster (three controllers, three
// brokers, RF 3, min.insync.replicas 2). Every few seconds the broker
// that coordinates the group, the leader of the group's
// __consumer_offsets partition as the metadata image has it, is killed
// or powered off and restarted a little later (or, with crash=isolate,
// cut off from the other brokers and the controllers), while the members come
// and go as in group-rebalance. A new coordinator must load the group's
// offsets and metadata before it answers, and its commits count once the
// ISR has them: the members then resume where the group committed. After
// the run the cluster must heal (the topic and __consumer_offsets led
// with whole ISRs), the group commit every partition to its end, and the
// kafka and groups checkers find nothing.
func init() {
	Register(Definition{
		Name: coordinatorFailoverName,
		Summary: "3 controllers + 3 brokers, an acks=all idempotent producer and a consumer group of three; " +
			"the group's coordinator killed or powered off and restarted every few seconds",
		Bugs: []faults.Bug{faults.BugNoOffsetReload, faults.BugStaleGenerationCommit, faults.BugAckBeforeISR,
			faults.BugCommitBeforeProcess},
		Params: []Param{
			{Name: "crash", Default: "mixed", Values: []string{"mixed", "kill", "power", "isolate"},
				Help: "how the coordinator dies: kill -9, a power loss (unsynced writes are lost), or either, drawn per crash; " +
					"isolate: it is cut off from the other brokers and the controllers (clients still reach it) and healed later"},
			{Name: "flush", Default: "none", Values: []string{"none", "group"},
				Help: "when brokers fsync: never, relying on replication (Kafka's default), or before acknowledging (group)"},
			{Name: "assignor", Default: "auto", Values: append([]string{"auto"}, kafka.Assignors...),
				Help: "the group's partition assignor; auto: the seed picks one"},
			{Name: "members", Default: "churn", Values: []string{"churn", "steady"},
				Help: "churn: members also leave, are killed and pause past their sessions, as in group-rebalance; steady: they stay"},
		},
		Run:   20 * time.Second,
		Drain: 20 * time.Second,
		Budget: Budget{
			EventsPerSecMax:  400_000,
			MemoryBytesMax:   512 << 20,
			StallMax:         10 * time.Second,
			StallAttemptsMax: 20,
		},
		Build: buildCoordinatorFailover,
	})
}

const coordinatorFailoverName = "coordinator-failover"

// coordinatorFailoverCluster is the group workload (its history, checks
// and drain) over the broker cluster (its crashes and healing).
type coordinatorFailoverCluster struct {
	*groupCluster
	cluster *leaderCrashCluster
}

func buildCoordinatorFailover(w *world.World, o Options) Cluster {
	cl := &leaderCrashCluster{singleBrokerCluster: &singleBrokerCluster{o: o, w: w},
		latest: map[int32]*broker.Broker{}, ctrls: map[string]*controller.Controller{}, healedAt: -1,
		healTopics: []string{groupTopic, group.OffsetsTopic}}
	bootstrap := cl.addNodes(w, func(cfg *broker.Config) {
		cfg.NumPartitions = groupPartitions
		cfg.Groups.Partitions = 4
		cfg.Groups.SessionTimeoutMin = time.Second
		cfg.Groups.InitialRebalanceDelay = 300 * time.Millisecond
	})
	g, r := newGroupCluster(w, o, bootstrap)
	g.addClients(r, o.Param("members") == "churn")
	c := &coordinatorFailoverCluster{groupCluster: g, cluster: cl}
	crashes := sched.NewRand(o.Seed, coordinatorFailoverName, 0)
	durMin, durMax := time.Second, 3*time.Second
	if o.Param("crash") == "isolate" {
		// Long enough for the controllers to fence it and move its
		// leaderships, as in isolated-leader.
		durMin, durMax = 2*time.Second, 5*time.Second
	}
	cl.plant(w, crashes, time.Duration(faultsStart)+time.Second, o.Run-2*time.Second, durMin, durMax, c.crashCoordinator)
	cl.watchHeal(w, o.Run)
	return c
}

// coordinator is the broker that leads the group's __consumer_offsets
// partition in the most advanced image the running brokers hold.
func (c *coordinatorFailoverCluster) coordinator() int32 {
	t := c.cluster.image().Topics[group.OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		return metadata.NoLeader
	}
	return t.Partitions[group.PartitionFor(groupName, int32(len(t.Partitions)))].Leader
}

// crashCoordinator kills or powers off the group's coordinator (with
// crash=mixed, a power loss one time in three, by the drawn target) and
// restarts it when the episode ends.
func (c *coordinatorFailoverCluster) crashCoordinator(w *world.World, target int) (func(), bool) {
	leader := c.coordinator()
	if leader == metadata.NoLeader {
		return nil, false
	}
	node := quorumBrokerNode(leader)
	crash := c.o.Param("crash")
	if crash == "isolate" {
		c.episodes["coordinator_isolated"]++
		return c.cluster.isolateBroker(w, leader), true
	}
	if crash == "power" || (crash == "mixed" && target == 0) {
		worldAction(w.PowerLoss(node))
		c.episodes["coordinator_power_loss"]++
	} else {
		worldAction(w.Kill(node))
		c.episodes["coordinator_kill"]++
	}
	return func() { worldAction(w.Restart(node)) }, true
}

// Profile: the faults are planted; nothing is drawn.
func (c *coordinatorFailoverCluster) Profile() faults.Profile {
	return faults.Profile{Targets: []string{"b1", "b2", "b3"}, Clients: append([]string{groupProducerNode}, c.members...),
		IntervalMean: leaderCrashIntervalMean, DurationMax: 3 * time.Second}
}

// Footprint estimates what the run holds, for the memory budget.
func (c *coordinatorFailoverCluster) Footprint() Footprint {
	f := Footprint{HistoryOps: len(c.log.Ops), HistoryBytes: c.log.bytes, DiskBytes: c.cluster.disksUsedBytes()}
	if c.producer != nil {
		f.ClientBytes = int64(c.producer.BufferedBytes())
	}
	return f
}

// Finish judges the group's history and drain, as group-rebalance does,
// and the cluster's healing.
func (c *coordinatorFailoverCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	checks, stats := c.groupCluster.Finish(w)
	checks = append([]Check{c.cluster.healedCheck()}, checks...)
	stats["broker_starts"] = int64(len(c.cluster.brokers))
	stats["planted_faults"] = int64(c.cluster.crashes)
	stats["planted_episodes"] = int64(c.cluster.episodes)
	return checks, stats
}

// History is the run's history, for --history.
func (c *coordinatorFailoverCluster) History() history.History { return c.log.Ops }
