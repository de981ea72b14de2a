package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
// consumers drain, the replicas agree below the high watermark
// (cluster_replicas.go), and the history pass the Jepsen checks (no
// acknowledged write lost or duplicated, offsets in order) and the
// availability check: while at most one broker is down or cut off, writes
// go on (cluster_availability.go).
func init() {
	params := append([]Param{
		{Name: "flush", Default: "none", Values: []string{"none", "group"},
			Help: "when brokers fsync: never, relying on replication (Kafka's default), or before acknowledging (group)"},
		clusterCorruptParam,
	}, workloadParams...)
	budget := Budget{
		EventsPerSecMax:  400_000,
		MemoryBytesMax:   512 << 20,
		StallMax:         10 * time.Second,
		StallAttemptsMax: 20,
	}
	// Each scenario lists the bugs its faults reveal (sim hunt finds each
	// within a few seeds). The leader-loss bugs lose data only when a
	// partition's leader goes down or is cut off, which the controller's
	// crashes and the clock faults never do, so those two plant none.
	bugs := []faults.Bug{faults.BugAckBeforeISR, faults.BugHWFromLeaderOnly, faults.BugNoEpochTruncation,
		faults.BugStaleLeaderAcks}
	plantedBugs := map[clusterMode][]faults.Bug{
		clusterIsolatedLeader: bugs, clusterRollingRestart: bugs, clusterPauses: bugs,
		clusterFollowerCut: {faults.BugNeverShrinkISR, faults.BugISRShrinkLocal},
	}
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
	for _, planted := range []struct {
		mode    clusterMode
		summary string
	}{
		{clusterIsolatedLeader, "the leader of a partition cut off from the other brokers and the controllers " +
			"(clients still reach it) for two to five seconds at a time"},
		{clusterControllerCrash, "the active controller killed and restarted every few seconds"},
		{clusterRollingRestart, "brokers stopped cleanly (controlled shutdown) and restarted one at a time"},
		{clusterPauses, "the leader of a partition paused for up to four seconds at a time"},
		{clusterClockJump, "the clock of a partition's leader jumped by up to a minute either way"},
		{clusterFollowerCut, "the link between a partition's leader and a follower cut both ways for 17 to 19 seconds " +
			"(controllers and clients reach both): each must drop the other from its ISRs for writes to go on; " +
			"the leader is killed 15 seconds in and restarted when the cut heals"},
	} {
		mode := planted.mode
		run := 20 * time.Second
		if mode == clusterFollowerCut {
			run = 30 * time.Second // room for one cut longer than the availability bound
		}
		Register(Definition{
			Name:    clusterModeNames[mode],
			Summary: "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; " + planted.summary,
			Bugs:    plantedBugs[mode], Params: clusterParams(mode, params),
			Run: run, Drain: 20 * time.Second, Budget: budget,
			Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, mode) },
		})
	}
	Register(Definition{
		Name: "cluster-swarm",
		Summary: "3 controllers + 3 brokers, RF 3, min ISR 2, acks=all idempotent producers and consumers; " +
			"generated faults on brokers and controllers: crashes, power loss, pauses, partitions, one-way blocks, " +
			"slow and failing disks, clock jumps and drift (with --swarm each seed draws its own mix, and one seed in four " +
			"also failed metadata operations and short writes)",
		Bugs: append(slices.Clone(bugs), faults.BugISRShrinkLocal, faults.BugSkipCRC),
		Params: append([]Param{{Name: "flush", Default: "group", Values: []string{"none", "group"},
			Help: "when brokers fsync: before acknowledging (group; power losses then lose nothing acknowledged) or never"}},
			workloadParams...),
		Run: 20 * time.Second, Drain: 20 * time.Second, Budget: budget,
		Build: func(w *world.World, o Options) Cluster { return buildBrokerCluster(w, o, clusterSwarm) },
	})
}

// clusterCorruptParam adds bit flips to a planted cluster scenario.
var clusterCorruptParam = Param{Name: "corrupt", Default: "off", Values: []string{"off", "on"},
	Help: "on: besides the scenario's own episodes, bits flip on the brokers' disks (one to three, about every 6s); " +
		"a replica that finds the damage fetches it again from an in-sync one"}

// clusterParams are a planted scenario's knobs: isolated-leader also
// offers unclean election and a smaller min.insync.replicas, the settings
// of Jepsen's finding of lost writes in Kafka.
func clusterParams(mode clusterMode, params []Param) []Param {
	if mode != clusterIsolatedLeader {
		return params
	}
	return append([]Param{
		{Name: "unclean.leader.election.enable", Default: "false", Values: []string{"false", "true"},
			Help: "true: the isolation comes in two steps, first from the other brokers (the leader shrinks the ISR to " +
				"itself) then from the controllers, which elect an out-of-sync replica: with min.insync.replicas=1 " +
				"the writes the leader acknowledged alone are lost, as Jepsen found"},
		{Name: "min.insync.replicas", Default: "2", Values: []string{"2", "1"}, Help: "the brokers' min.insync.replicas"},
	}, params...)
}

// brokerClusterScenario reports whether a scenario is one of these.
func brokerClusterScenario(name string) bool {
	if name == coordinatorFailoverName {
		return true
	}
	for _, n := range clusterModeNames {
		if n == name {
			return true
		}
	}
	return false
}

// clusterMode is what a broker-cluster scenario does to the cluster.
type clusterMode uint8

const (
	clusterLeaderCrash clusterMode = iota
	clusterIsolatedLeader
	clusterControllerCrash
	clusterRollingRestart
	clusterPauses
	clusterClockJump
	clusterSwarm
	clusterFollowerCut
	clusterSlowFollower
	clusterPowerLossAll
)

// clusterModeNames are the scenarios' names; each planted mode draws its
// episodes from the seed's stream of that name.
var clusterModeNames = map[clusterMode]string{
	clusterLeaderCrash: "leader-crash", clusterIsolatedLeader: "isolated-leader",
	clusterControllerCrash: "controller-crash", clusterRollingRestart: "rolling-restart",
	clusterPauses: "pauses", clusterClockJump: "clock-jump", clusterSwarm: "cluster-swarm",
	clusterFollowerCut: "follower-cut", clusterSlowFollower: "slow-follower", clusterPowerLossAll: "power-loss-all",
}

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

// clusterCorruptIntervalMean is the mean time between bit flips with
// --param corrupt=on.
const clusterCorruptIntervalMean = 6 * time.Second

// clusterReplicationFactor is the cluster's default.replication.factor:
// every broker holds a replica of every partition.
const clusterReplicationFactor = 3

// clusterCorruptBrokersMax is how many brokers' disks one run's bit flips
// may land on: one fewer than the replicas, so every partition keeps a
// replica nothing flipped. A schedule that flips bits on every replica
// (at different offsets) asks for data no replica holds, which no Kafka
// cluster could give back: a swarm seed failing on it would report the
// schedule, not the broker. A user of the swarm expects a failure to be a
// bug; what the cluster does with every replica damaged is told by
// DESIGN.md, not tested.
const clusterCorruptBrokersMax = clusterReplicationFactor - 1

// clusterReplicaLagTimeMax is the brokers' replica.lag.time.max.ms, short
// for runs of seconds.
const clusterReplicaLagTimeMax = 5 * time.Second

type leaderCrashCluster struct {
	*singleBrokerCluster
	mode clusterMode
	// latest is each broker's latest start; ctrls each controller's.
	latest  map[int32]*broker.Broker
	ctrls   map[string]*controller.Controller
	crashes int
	// replicaScratch is the replicas check's read buffer.
	replicaScratch []byte
	// healedAt is when every partition was first seen led with a whole
	// ISR after the run; -1 until then. healNote says what was missing at
	// the last look.
	healedAt time.Duration
	healNote string
	// healTopics are the topics healing waits for; leaderCrashTopic when
	// none are named.
	healTopics []string
	// planted are the faults the scenario's episodes applied, and
	// schedule the run's fault schedule: what the availability check
	// reads.
	planted  []faults.Action
	schedule faults.Schedule
	// logFlipped are the brokers whose partition logs a bit flip reached
	// (see flipGuard).
	logFlipped map[int32]bool
	// flipsSpared counts the flips the guard spared.
	flipsSpared int
}

func buildBrokerCluster(w *world.World, o Options, mode clusterMode) Cluster {
	knobs := clusterKnobsFor(o)
	c := &leaderCrashCluster{mode: mode,
		singleBrokerCluster: &singleBrokerCluster{o: o, w: w, knobs: knobs,
			log:     &meteredLog{Log: &history.Log{Now: func() int64 { return int64(w.Now()) }}},
			drivers: map[string]*kafka.Driver{}, drained: map[string]kafka.DrainReport{}},
		latest: map[int32]*broker.Broker{}, ctrls: map[string]*controller.Controller{}, healedAt: -1,
	}
	c.log.Reserve(historyOpsHint(knobs, o))
	bootstrap := c.addNodes(w, func(cfg *broker.Config) {
		cfg.NumPartitions = 3
		cfg.MinInsyncReplicas = 2
		if o.Param("min.insync.replicas") == "1" {
			cfg.MinInsyncReplicas = 1
		}
		cfg.Cluster.UncleanLeaderElection = o.Param("unclean.leader.election.enable") == "true"
		cfg.Log.SegmentBytes = knobs.SegmentBytes
		cfg.Log.MaxBatchBytes = knobs.brokerBatchMaxBytes()
	})
	nextProcess := 0
	for i := range knobs.Clients {
		name := "p" + strconv.Itoa(i+1)
		c.clients = append(c.clients, name)
		cfg := kafka.DriverConfig{
			Bootstrap: bootstrap, Topic: leaderCrashTopic, Partitions: []int32{0, 1, 2},
			Rate: knobs.RatePerClient, Concurrency: knobs.Concurrency, ValueBytes: knobs.ValueBytes,
			SeekEveryPolls: knobs.SeekEveryPolls, Sticky: knobs.Sticky, Reread: true, Recorder: c.log,
			NewProcess: func() int { nextProcess++; return nextProcess },
			Producer:   producerConfig(o, knobs),
			Consumer: kafka.ConsumerConfig{FetchMaxWait: 100 * time.Millisecond, Bugs: o.Bugs,
				SendLeaderEpoch: knobs.SendLeaderEpoch},
		}
		w.AddNode(name, kafka.StartDriver(cfg, func(d *kafka.Driver) { c.drivers[name] = d }))
	}
	r := sched.NewRand(o.Seed, clusterModeNames[mode], 0)
	from, until := time.Duration(faultsStart)+time.Second, o.Run-2*time.Second
	switch mode {
	case clusterLeaderCrash:
		c.plant(w, r, from, until, time.Second, 3*time.Second, c.crashLeader)
	case clusterIsolatedLeader:
		if o.Param("unclean.leader.election.enable") == "true" {
			c.plant(w, r, from, until, uncleanIsolationLead+4*time.Second, uncleanIsolationLead+6*time.Second, c.isolateLeader)
			break
		}
		c.plant(w, r, from, until, 2*time.Second, 5*time.Second, c.isolateLeader)
	case clusterControllerCrash:
		c.plant(w, r, from, until, time.Second, 3*time.Second, c.crashController)
	case clusterRollingRestart:
		c.plant(w, r, from, until, 500*time.Millisecond, 2*time.Second, c.restartBroker)
	case clusterPauses:
		c.plant(w, r, from, until, 500*time.Millisecond, 4*time.Second, c.pauseLeader)
	case clusterClockJump:
		c.plant(w, r, from, until, time.Second, 2*time.Second, c.jumpLeaderClock)
	case clusterFollowerCut:
		c.plant(w, r, from, o.Run-followerCutMax-time.Second, followerCutMin, followerCutMax, c.cutFollower)
	case clusterSlowFollower:
		c.plant(w, r, from, o.Run-slowFollowerMax, slowFollowerMin, slowFollowerMax, c.slowFollower)
	case clusterPowerLossAll:
		c.plant(w, r, from, until, time.Second, 3*time.Second, c.crashLeader)
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

// addNodes adds the three controllers and the three brokers in cluster
// mode (RF 3, min.insync.replicas 2, the flush param's policy), each
// broker's config adjusted by configure, and returns the brokers'
// bootstrap addresses.
func (c *leaderCrashCluster) addNodes(w *world.World, configure func(*broker.Config)) []string {
	var voters []controller.Voter
	var addrs []string
	for i := range 3 {
		name := fmt.Sprintf("ctl%d", i+1)
		voters = append(voters, controller.Voter{ID: uint64(i + 1), Addr: name + quorumPort})
		addrs = append(addrs, name+quorumPort)
	}
	for i, v := range voters {
		cfg := controller.DefaultConfig(v.ID, voters, quorumPort)
		name := fmt.Sprintf("ctl%d", i+1)
		w.AddNode(name, controller.Process(cfg, func(ctl *controller.Controller) { c.ctrls[name] = ctl }))
	}
	var bootstrap []string
	c.logFlipped = map[int32]bool{}
	for _, id := range leaderCrashBrokerIDs {
		cfg := broker.DefaultConfig()
		cfg.NodeID = id
		cfg.NumPartitions = 3
		cfg.MinInsyncReplicas = 2
		cfg.Bugs, cfg.Log.Bugs = c.o.Bugs, c.o.Bugs
		cfg.Log.Flush = flushPolicy(c.o.Param("flush"))
		cfg.Cluster.Controllers = addrs
		cfg.Cluster.DefaultReplicationFactor = clusterReplicationFactor
		cfg.Cluster.ReplicaLagTimeMax = clusterReplicaLagTimeMax
		cfg.Cluster.ReplicaFetchBackoff = 100 * time.Millisecond
		configure(&cfg)
		id := id
		w.AddNode(quorumBrokerNode(id), broker.Start(cfg, func(b *broker.Broker) {
			c.latest[id] = b
			c.brokers = append(c.brokers, b)
		}))
		w.Node(quorumBrokerNode(id)).Disk().SetFlipGuard(c.flipGuard(id))
		bootstrap = append(bootstrap, quorumBrokerNode(id)+":9092")
	}
	return bootstrap
}

// episode acts on the cluster at the start of an episode, given a target
// drawn from 0..2 (a partition or a broker), and returns what undoes it
// when the episode ends; ok is false when there is nothing to act on yet
// (no leader elected).
type episode func(w *world.World, target int) (undo func(), ok bool)

// plant runs an episode at about at (exponential pauses of
// leaderCrashIntervalMean), lasting between durMin and durMax, then plants
// the next after leaderCrashSettle, until end. Draws come from r, the
// scenario's own stream, so the episodes are the seed's. An episode the
// options skip takes its time but does nothing.
func (c *leaderCrashCluster) plant(w *world.World, r *rand.Rand, at, end, durMin, durMax time.Duration, act episode) {
	at += time.Duration(r.ExpFloat64() * float64(leaderCrashIntervalMean))
	if at >= end {
		return
	}
	target := r.IntN(3)
	dur := durMin + time.Duration(r.Int64N(int64(durMax-durMin)/int64(time.Millisecond)))*time.Millisecond
	w.At(at, func() {
		skip := c.o.skipsEpisode(c.episodes)
		undo, ok := func() {}, true
		if !skip {
			undo, ok = act(w, target)
		}
		if !ok {
			c.plant(w, r, at, end, durMin, durMax, act)
			return
		}
		if !skip {
			c.crashes++
		}
		c.episodes++
		w.At(at+dur, func() {
			undo()
			c.plant(w, r, at+dur+leaderCrashSettle, end, durMin, durMax, act)
		})
	})
}

// crashLeader kills (or powers off) the leader of a partition, or with
// crash=power-all every broker, restarting them when the episode ends.
func (c *leaderCrashCluster) crashLeader(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	nodes := []string{quorumBrokerNode(leader)}
	crash := c.o.Param("crash")
	if c.mode == clusterPowerLossAll {
		crash = "power-all"
	}
	if crash == "power-all" {
		nodes = nil
		for _, id := range leaderCrashBrokerIDs {
			nodes = append(nodes, quorumBrokerNode(id))
		}
	}
	for _, node := range nodes {
		if crash == "power" || crash == "power-all" {
			c.act(faults.Action{Op: faults.PowerLoss, Node: node})
		} else {
			c.act(faults.Action{Op: faults.Kill, Node: node})
		}
	}
	return func() {
		for _, node := range nodes {
			c.act(faults.Action{Op: faults.Restart, Node: node})
		}
	}, true
}

// isolateLeader cuts the leader of a partition off from the other brokers
// and the controllers; clients still reach it.
func (c *leaderCrashCluster) isolateLeader(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	return c.isolateBroker(w, leader), true
}

// isolateBroker cuts a broker off from the other brokers and the
// controllers (with unclean election on, first from the brokers only);
// clients still reach it. It returns what heals the cut.
func (c *leaderCrashCluster) isolateBroker(w *world.World, leader int32) func() {
	var outside []string
	for _, id := range leaderCrashBrokerIDs {
		if id != leader {
			outside = append(outside, quorumBrokerNode(id))
		}
	}
	cut := func(others []string) {
		for _, other := range others {
			c.act(faults.Action{Op: faults.Block, From: quorumBrokerNode(leader), To: other})
			c.act(faults.Action{Op: faults.Block, From: other, To: quorumBrokerNode(leader)})
		}
	}
	controllers := []string{"ctl1", "ctl2", "ctl3"}
	if c.o.Param("unclean.leader.election.enable") == "true" {
		// First the other brokers only: the leader, still heard by
		// the controllers, shrinks the ISR to itself; then the
		// controllers too, which fence it and elect an out-of-sync
		// replica.
		cut(outside)
		w.At(w.Now()+uncleanIsolationLead, func() { cut(controllers) })
		return func() { c.act(faults.Action{Op: faults.Heal}) }
	}
	cut(append(outside, controllers...))
	return func() { c.act(faults.Action{Op: faults.Heal}) }
}

// uncleanIsolationLead is how long an isolated leader is cut off from the
// other brokers only, when unclean election is on: past
// replica.lag.time.max.ms, so that it shrinks the ISR to itself.
const uncleanIsolationLead = clusterReplicaLagTimeMax + 2*time.Second

// crashController kills the active controller (or, with none active, the
// one drawn), restarting it when the episode ends.
func (c *leaderCrashCluster) crashController(w *world.World, target int) (func(), bool) {
	node := fmt.Sprintf("ctl%d", target+1)
	for i := range 3 {
		name := fmt.Sprintf("ctl%d", i+1)
		if ctl := c.ctrls[name]; ctl != nil && w.Node(name).Up() && ctl.Active() {
			node = name
		}
	}
	if !w.Node(node).Up() {
		return nil, false
	}
	c.act(faults.Action{Op: faults.Kill, Node: node})
	return func() { c.act(faults.Action{Op: faults.Restart, Node: node}) }, true
}

// restartBroker stops a broker cleanly (a controlled shutdown moves its
// leaderships first), ends its process, and starts it again when the
// episode ends: one step of a rolling restart.
func (c *leaderCrashCluster) restartBroker(w *world.World, target int) (func(), bool) {
	id := leaderCrashBrokerIDs[target]
	node := quorumBrokerNode(id)
	b := c.latest[id]
	if b == nil || !w.Node(node).Up() || !b.Serving() {
		return nil, false
	}
	// The broker counts as down from the start of its controlled
	// shutdown: it hands its leaderships over and stops serving.
	c.note(faults.Action{Op: faults.Kill, Node: node})
	b.Stop(func(error) {
		if w.Node(node).Up() {
			worldAction(w.Kill(node))
		}
	})
	return func() {
		if !w.Node(node).Up() {
			c.act(faults.Action{Op: faults.Restart, Node: node})
		}
	}, true
}

// pauseLeader pauses the leader of a partition (a long GC, a stopped VM).
func (c *leaderCrashCluster) pauseLeader(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	node := quorumBrokerNode(leader)
	c.act(faults.Action{Op: faults.Pause, Node: node})
	return func() { c.act(faults.Action{Op: faults.Resume, Node: node}) }, true
}

// jumpLeaderClock moves the clock of a partition's leader by up to a
// minute either way; the episode's end leaves it where it went.
func (c *leaderCrashCluster) jumpLeaderClock(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	jump := time.Duration(partition-1) * 37 * time.Second
	if jump == 0 {
		jump = 13 * time.Second
	}
	c.act(faults.Action{Op: faults.ClockJump, Node: quorumBrokerNode(leader), By: faults.Duration(jump)})
	return func() {}, true
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
	topics := c.healTopics
	if len(topics) == 0 {
		topics = []string{leaderCrashTopic}
	}
	state := c.image()
	for _, name := range topics {
		t := state.Topics[name]
		if t == nil {
			return "no topic " + name
		}
		for i, p := range t.Partitions {
			if p.Leader == metadata.NoLeader || len(p.ISR) != len(p.Replicas) {
				return fmt.Sprintf("partition %d: leader %d, ISR %v of %v", i, p.Leader, p.ISR, p.Replicas)
			}
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
	p.CorruptNodesMax = clusterCorruptBrokersMax
	if c.mode == clusterSwarm {
		p.CorruptTargets = slices.Clone(p.Targets)
		p.Targets = append(p.Targets, "ctl1", "ctl2", "ctl3")
		p.IntervalMean = 2 * time.Second
		p.Kinds = []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
			faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindCorrupt, faults.KindClockJump, faults.KindClockDrift}
		// Failed creates, removes, renames and truncations and short
		// writes meet the replication paths (a follower's truncation to
		// its leader's epochs, fetched appends, log starts moved by the
		// leader, partitions created and deleted, checkpoints) and the
		// controllers' raft logs; a quarter of the swarm's seeds draw
		// them, so that the rest keep their mixes.
		p.SwarmOccasional = []faults.Kind{faults.KindMetaErrors}
		p.SwarmOccasionalShare = clusterMetaErrorsShare
	}
	if c.o.Param("corrupt") == "on" {
		// Besides the planted episodes: bit flips, drawn from the seed,
		// a few a run, on at most clusterCorruptBrokersMax brokers.
		p.CorruptTargets = slices.Clone(p.Targets)
		p.Kinds = []faults.Kind{faults.KindCorrupt}
		p.IntervalMean = clusterCorruptIntervalMean
	}
	// Otherwise the faults are planted; nothing is drawn.
	return p
}

// clusterMetaErrorsShare is the share of cluster-swarm's swarm seeds that
// draw meta-errors.
const clusterMetaErrorsShare = 0.25

// Finish judges the history and the cluster's recovery.
func (c *leaderCrashCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	report := checkers.Check(c.log.Ops, checkers.DefaultOptions())
	report = report.With(c.availabilityCheck())
	c.report = report
	checks := []Check{c.healedCheck(), c.drainCheck(), c.corruptReadsCheck(), c.replicasCheck()}
	for _, v := range report.Verdicts {
		check := verdictCheck(v)
		if v.Checker == checkers.CheckerAvailability && v.Valid {
			check.Detail = availabilityDetail(v)
		}
		checks = append(checks, check)
	}
	stats := c.knobs.stats()
	stats["history_ops"], stats["broker_starts"] = int64(len(c.log.Ops)), int64(len(c.brokers))
	stats["planted_faults"], stats["planted_episodes"] = int64(c.crashes), int64(c.episodes)
	stats["flips_spared"] = int64(c.flipsSpared)
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

// healedCheck: the cluster healed within leaderCrashHealMax of the run's
// end.
func (c *leaderCrashCluster) healedCheck() Check {
	healed := Check{Name: "healed", OK: c.healedAt >= 0 && c.healedAt-c.o.Run <= leaderCrashHealMax}
	if c.healedAt >= 0 {
		healed.Detail = fmt.Sprintf("every partition led with its whole ISR %v after the run", c.healedAt-c.o.Run)
	} else {
		healed.Detail = "not healed: " + c.healNote
	}
	return healed
}

// disksUsedBytes is what the brokers' disks hold.
func (c *leaderCrashCluster) disksUsedBytes() int64 {
	var used int64
	for _, id := range leaderCrashBrokerIDs {
		used += c.w.Node(quorumBrokerNode(id)).Disk().UsedBytes()
	}
	return used
}

// Footprint estimates what the run holds, for the memory budget.
func (c *leaderCrashCluster) Footprint() Footprint {
	f := c.singleBrokerCluster.Footprint()
	f.DiskBytes = c.disksUsedBytes()
	return f
}

// historyOpsHint estimates how many operations a run's history holds, on
// the high side, since outgrowing the room copies the whole history: up to
// about two and three quarters per record the clients' rate asks for over
// the run and drain (a send's invoke and completion and a poll's, the
// consumers polling about once a batch, less the sends the drain does not
// make; seeds 1 to 12 of single-broker and leader-crash held 0.9 to 2.7).
// A long run reserves no more than historyOpsHintMax.
func historyOpsHint(k singleBrokerKnobs, o Options) int {
	ops := 2.75 * float64(k.Clients) * k.RatePerClient * (o.Run + o.Drain).Seconds()
	return int(min(ops, historyOpsHintMax))
}

// historyOpsHintMax bounds the room reserved ahead: 144 MiB of operations.
const historyOpsHintMax = 1 << 20
