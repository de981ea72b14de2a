package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The leader-crash scenario: three controllers, three brokers in cluster
// mode, a three-partition topic with three replicas and
// min.insync.replicas 2, and two clients producing with acks=all and
// idempotence while reading every partition back. Every few seconds the
// leader of a partition is killed (or powered off, or every broker is)
// and restarted a little later. After
// the run the cluster must heal (every partition led, its ISR whole), the
// consumers drain, and the history pass the Jepsen checks: no
// acknowledged write lost or duplicated, offsets in order.
func init() {
	params := []Param{
		{Name: "flush", Default: "none", Values: []string{"none", "group"},
			Help: "when brokers fsync: never, relying on replication (Kafka's default), or before acknowledging (group)"},
	}
	budget := Budget{
		EventsPerSecMax:  400_000,
		MemoryBytesMax:   512 << 20,
		StallMax:         10 * time.Second,
		StallAttemptsMax: 20,
	}
	bugs := []faults.Bug{faults.BugAckBeforeISR, faults.BugHWFromLeaderOnly, faults.BugNoEpochTruncation}
	Register(Definition{
		Name: "leader-crash",
		Summary: "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; " +
			"the leader of a partition killed (or powered off) and restarted every few seconds",
		Bugs: bugs,
		Params: append([]Param{{Name: "crash", Default: "kill", Values: []string{"kill", "power", "power-all"},
			Help: "how the leader dies: kill -9 (the page cache survives), a power loss (unsynced writes are lost), " +
				"or a power loss of every broker at once (with flush=none acknowledged writes may be lost: " +
				"nothing was on any disk; with flush=group none may)"}}, params...),
		Run: 20 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterLeaderCrash) },
	})
	Register(Definition{
		Name: "isolated-leader",
		Summary: "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; " +
			"the leader of a partition cut off from the other brokers and the controllers (clients still reach it) for seconds at a time",
		Bugs: bugs, Params: params,
		Run: 20 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterIsolatedLeader) },
	})
	Register(Definition{
		Name: "cluster-swarm",
		Summary: "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; " +
			"generated faults on brokers and controllers: crashes, power loss, pauses, partitions, one-way blocks, " +
			"slow and failing disks, clock jumps and drift (with --swarm each seed draws its own mix)",
		Bugs: bugs,
		Params: []Param{{Name: "flush", Default: "group", Values: []string{"none", "group"},
			Help: "when brokers fsync: before acknowledging (group; power losses then lose nothing acknowledged) or never"}},
		Run: 20 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterSwarm) },
	})
}

// clusterMode is what a broker-cluster scenario does to the cluster.
type clusterMode uint8

const (
	clusterLeaderCrash clusterMode = iota
	clusterIsolatedLeader
	clusterSwarm
)

const (
	leaderCrashTopic = "jepsen"
	// leaderCrashIntervalMean is the mean pause between crashes.
	leaderCrashIntervalMean = 3 * time.Second
	// leaderCrashSettle is the least time from a restart to the next
	// crash: the broker starts, catches up and rejoins the ISR.
	leaderCrashSettle = 3 * time.Second
	// leaderCrashHealMax bounds the time from the end of the run to a
	// healed cluster.
	leaderCrashHealMax = 15 * time.Second
)

var leaderCrashBrokerIDs = []int32{1, 2, 3}

type leaderCrashCluster struct {
	*singleBrokerCluster
	mode clusterMode
	// latest is each broker's latest start.
	latest  map[int32]*broker.Broker
	crashes int
	// healedAt is when every partition was first seen led with a whole
	// ISR after the run; -1 until then. healNote says what was missing at
	// the last look.
	healedAt time.Duration
	healNote string
}

func buildBrokerCluster(w *world.World, o Options, mode clusterMode) Cluster {
	knobs := fixedSingleBrokerKnobs(o)
	c := &leaderCrashCluster{mode: mode,
		singleBrokerCluster: &singleBrokerCluster{o: o, w: w, knobs: knobs,
			log:     &meteredLog{Log: &history.Log{Now: func() int64 { return int64(w.Now()) }}},
			drivers: map[string]*kafka.Driver{}, drained: map[string]kafka.DrainReport{}},
		latest: map[int32]*broker.Broker{}, healedAt: -1,
	}
	var voters []controller.Voter
	var addrs []string
	for i := range 3 {
		name := fmt.Sprintf("ctl%d", i+1)
		voters = append(voters, controller.Voter{ID: uint64(i + 1), Addr: name + quorumPort})
		addrs = append(addrs, name+quorumPort)
	}
	for i, v := range voters {
		cfg := controller.DefaultConfig(v.ID, voters, quorumPort)
		w.AddNode(fmt.Sprintf("ctl%d", i+1), controller.Process(cfg, func(*controller.Controller) {}))
	}
	var bootstrap []string
	for _, id := range leaderCrashBrokerIDs {
		cfg := broker.DefaultConfig()
		cfg.NodeID = id
		cfg.NumPartitions = 3
		cfg.MinInsyncReplicas = 2
		cfg.Bugs, cfg.Log.Bugs = o.Bugs, o.Bugs
		cfg.Log.SegmentBytes = knobs.SegmentBytes
		cfg.Log.MaxBatchBytes = knobs.brokerBatchMaxBytes()
		cfg.Log.Flush = flushPolicy(o.Param("flush"))
		cfg.Cluster.Controllers = addrs
		cfg.Cluster.DefaultReplicationFactor = 3
		cfg.Cluster.ReplicaLagTimeMax = 5 * time.Second
		cfg.Cluster.ReplicaFetchBackoff = 100 * time.Millisecond
		id := id
		w.AddNode(quorumBrokerNode(id), broker.Start(cfg, func(b *broker.Broker) {
			c.latest[id] = b
			c.brokers = append(c.brokers, b)
		}))
		bootstrap = append(bootstrap, quorumBrokerNode(id)+":9092")
	}
	nextProcess := 0
	for i := range knobs.Clients {
		name := "p" + strconv.Itoa(i+1)
		c.clients = append(c.clients, name)
		cfg := kafka.DriverConfig{
			Bootstrap: bootstrap, Topic: leaderCrashTopic, Partitions: []int32{0, 1, 2},
			Rate: knobs.RatePerClient, Concurrency: knobs.Concurrency, Reread: true, Recorder: c.log,
			NewProcess: func() int { nextProcess++; return nextProcess },
			Producer:   producerConfig(o, knobs),
			Consumer:   kafka.ConsumerConfig{FetchMaxWait: 100 * time.Millisecond, Bugs: o.Bugs},
		}
		w.AddNode(name, kafka.StartDriver(cfg, func(d *kafka.Driver) { c.drivers[name] = d }))
	}
	switch mode {
	case clusterLeaderCrash:
		c.plantCrashes(w, sched.NewRand(o.Seed, "leader-crash", 0), time.Duration(faultsStart)+time.Second, o.Run-2*time.Second)
	case clusterIsolatedLeader:
		c.plantIsolations(w, sched.NewRand(o.Seed, "isolated-leader", 0), time.Duration(faultsStart)+time.Second, o.Run-2*time.Second)
	}
	w.At(o.Run+drainSettle, func() {
		for _, name := range c.clients {
			if d := c.drivers[name]; d != nil {
				d.Drain(func(r kafka.DrainReport) { c.drained[name] = r })
			}
		}
	})
	c.watchHeal(w, o.Run)
	return c
}

// plantCrashes kills the leader of a partition at about at, restarts it
// one to three seconds later, and plants the next crash after that.
func (c *leaderCrashCluster) plantCrashes(w *world.World, r *rand.Rand, at, end time.Duration) {
	at += time.Duration(r.ExpFloat64() * float64(leaderCrashIntervalMean))
	if at >= end {
		return
	}
	partition := r.IntN(3)
	down := time.Duration(1000+r.IntN(2000)) * time.Millisecond
	w.At(at, func() {
		leader := c.leaderOf(partition)
		if leader == metadata.NoLeader {
			c.plantCrashes(w, r, at, end) // no leader to kill yet
			return
		}
		nodes := []string{quorumBrokerNode(leader)}
		if c.o.Param("crash") == "power-all" {
			nodes = nil
			for _, id := range leaderCrashBrokerIDs {
				nodes = append(nodes, quorumBrokerNode(id))
			}
		}
		c.crashes++
		for _, node := range nodes {
			if c.o.Param("crash") == "kill" {
				worldAction(w.Kill(node))
			} else {
				worldAction(w.PowerLoss(node))
			}
		}
		w.At(at+down, func() {
			for _, node := range nodes {
				worldAction(w.Restart(node))
			}
			c.plantCrashes(w, r, at+down+leaderCrashSettle, end)
		})
	})
}

// plantIsolations cuts the leader of a partition off from the other
// brokers and the controllers at about at, heals two to five seconds
// later (past the controller's session timeout, so another leader is
// elected), and plants the next isolation after that.
func (c *leaderCrashCluster) plantIsolations(w *world.World, r *rand.Rand, at, end time.Duration) {
	at += time.Duration(r.ExpFloat64() * float64(leaderCrashIntervalMean))
	if at >= end {
		return
	}
	partition := r.IntN(3)
	cut := time.Duration(2000+r.IntN(3000)) * time.Millisecond
	w.At(at, func() {
		leader := c.leaderOf(partition)
		if leader == metadata.NoLeader {
			c.plantIsolations(w, r, at, end)
			return
		}
		var outside []string
		for _, id := range leaderCrashBrokerIDs {
			if id != leader {
				outside = append(outside, quorumBrokerNode(id))
			}
		}
		outside = append(outside, "ctl1", "ctl2", "ctl3")
		c.crashes++
		for _, other := range outside {
			worldAction(w.Block(quorumBrokerNode(leader), other))
			worldAction(w.Block(other, quorumBrokerNode(leader)))
		}
		w.At(at+cut, func() {
			worldAction(w.Heal())
			c.plantIsolations(w, r, at+cut+leaderCrashSettle, end)
		})
	})
}

// image is the most advanced metadata image among the running brokers.
func (c *leaderCrashCluster) image() *metadata.State {
	var best *metadata.Image
	for _, id := range leaderCrashBrokerIDs {
		b := c.latest[id]
		if b == nil || !c.w.Node(quorumBrokerNode(id)).Up() || b.Member() == nil {
			continue
		}
		if im := b.Member().Image(); best == nil || im.Next() > best.Next() {
			best = im
		}
	}
	if best == nil {
		return metadata.NewState()
	}
	return best.State()
}

func (c *leaderCrashCluster) leaderOf(partition int) int32 {
	t := c.image().Topics[leaderCrashTopic]
	if t == nil || partition >= len(t.Partitions) {
		return metadata.NoLeader
	}
	return t.Partitions[partition].Leader
}

// healthy says what keeps the cluster from being healed: a partition
// without a leader or with a short ISR, or a broker down; "" when none.
func (c *leaderCrashCluster) healthy() string {
	t := c.image().Topics[leaderCrashTopic]
	if t == nil {
		return "no topic " + leaderCrashTopic
	}
	for i, p := range t.Partitions {
		if p.Leader == metadata.NoLeader || len(p.ISR) != len(p.Replicas) {
			return fmt.Sprintf("partition %d: leader %d, ISR %v of %v", i, p.Leader, p.ISR, p.Replicas)
		}
	}
	return ""
}

// watchHeal looks, from the end of the run, for the first moment the
// cluster is healed.
func (c *leaderCrashCluster) watchHeal(w *world.World, from time.Duration) {
	w.At(from, func() {
		if c.healedAt >= 0 {
			return
		}
		if c.healNote = c.healthy(); c.healNote == "" {
			c.healedAt = w.Now()
			return
		}
		c.watchHeal(w, w.Now()+50*time.Millisecond)
	})
}

func (c *leaderCrashCluster) Profile() faults.Profile {
	p := faults.Profile{Targets: []string{"b1", "b2", "b3"}, Clients: c.clients,
		IntervalMean: leaderCrashIntervalMean, DurationMax: 3 * time.Second}
	if c.mode == clusterSwarm {
		p.Targets = append(p.Targets, "ctl1", "ctl2", "ctl3")
		p.IntervalMean = 2 * time.Second
		p.Kinds = []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
			faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindClockJump, faults.KindClockDrift}
	}
	// Otherwise the faults are planted; nothing is drawn.
	return p
}

// Finish judges the history and the cluster's recovery.
func (c *leaderCrashCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	report := checkers.Check(c.log.Ops, checkers.DefaultOptions())
	c.report = report
	healed := Check{Name: "healed", OK: c.healedAt >= 0 && c.healedAt-c.o.Run <= leaderCrashHealMax}
	if c.healedAt >= 0 {
		healed.Detail = fmt.Sprintf("every partition led with its whole ISR %v after the run", c.healedAt-c.o.Run)
	} else {
		healed.Detail = "not healed: " + c.healNote
	}
	checks := []Check{healed, c.drainCheck(), c.corruptReadsCheck()}
	for _, v := range report.Verdicts {
		checks = append(checks, verdictCheck(v))
	}
	stats := map[string]int64{"history_ops": int64(len(c.log.Ops)), "planted_faults": int64(c.crashes),
		"broker_starts": int64(len(c.brokers))}
	if t := c.image().Topics[leaderCrashTopic]; t != nil {
		for _, p := range t.Partitions {
			stats["leader_epochs"] += int64(p.LeaderEpoch)
		}
	}
	for _, b := range c.brokers {
		s := b.Stats()
		stats["broker_appends"] += s.Appends
	}
	for _, name := range c.clients {
		if d := c.drivers[name]; d != nil {
			s := d.Stats()
			stats["sends"] += int64(s.Sent)
			stats["sends_ok"] += int64(s.OK)
			stats["sends_failed"] += int64(s.Failed)
			stats["sends_unknown"] += int64(s.Unknown)
			stats["polled_records"] += int64(s.Polled)
		}
	}
	return checks, stats
}

// Footprint estimates what the run holds, for the memory budget.
func (c *leaderCrashCluster) Footprint() Footprint {
	f := c.singleBrokerCluster.Footprint()
	f.DiskBytes = 0
	for _, id := range leaderCrashBrokerIDs {
		f.DiskBytes += c.w.Node(quorumBrokerNode(id)).Disk().UsedBytes()
	}
	return f
}
