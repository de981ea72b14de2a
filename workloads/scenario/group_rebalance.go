package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The group-rebalance scenario: one broker, a producer writing unique
// values round-robin to a six-partition topic, and a consumer group of
// three members that come and go: one joins late, members leave and come
// back, are killed and restarted, and pause past their session timeout,
// while the broker suffers single-broker's process, disk and network
// faults. After the faults heal the producer stops and the group reads
// every partition to its end. The kafka checker and the groups checker
// judge the history.
func init() {
	Register(Definition{
		Name:    "group-rebalance",
		Summary: "one broker, a consumer group of three members joining, leaving, crashing and pausing past their sessions",
		Bugs:    []faults.Bug{faults.BugCommitBeforeProcess, faults.BugAckBeforeSync},
		Params: []Param{
			{Name: "assignor", Default: "auto", Values: append([]string{"auto"}, kafka.Assignors...),
				Help: "the group's partition assignor; auto: the seed picks one"},
			{Name: "faults", Default: "disk", Values: []string{"disk", "process", "none"},
				Help: "the broker's faults: disk (crashes, power loss, sync failures, slow and full disks, partitions), " +
					"process (crashes, pauses and partitions only), none; members churn in every case"},
		},
		Run:   20 * time.Second,
		Drain: 20 * time.Second,
		Budget: Budget{
			EventsPerSecMax:  200_000,
			MemoryBytesMax:   512 << 20,
			StallMax:         10 * time.Second,
			StallAttemptsMax: 20,
		},
		Configure: func(cfg *world.Config, _ Options) { cfg.Disk = simdisk.DefaultConfig() },
		Build:     buildGroupRebalance,
	})
}

const (
	groupBrokerNode   = "b1"
	groupProducerNode = "p1"
	groupTopic        = "orders"
	groupName         = "readers"
	groupPartitions   = 6
	groupMembers      = 3
	groupSendRate     = 200 // records per second
	groupSendsMax     = 64  // outstanding sends
	// groupSession is the members' session timeout; the coordinator's
	// minimum is lowered to allow it.
	groupSession = 2 * time.Second
	// groupChurnEnd is how long before the faults heal the last member
	// episode ends, so that every member is back for the drain.
	groupChurnEnd = 2 * time.Second
	// groupEpisodesMax bounds the member episodes of a run.
	groupEpisodesMax = 16
)

type groupCluster struct {
	o         Options
	w         *world.World
	bootstrap []string
	assignor  string
	members   []string
	log       *meteredLog
	tally     *groupTally
	process   int
	producer  *kafka.Producer
	sends     groupSends
	// current is each member node's latest member; all are every one
	// started, for their counters.
	current  map[string]*kafka.GroupConsumer
	envs     map[string]sim.Env
	all      []*kafka.GroupConsumer
	brokers  []*broker.Broker
	episodes map[string]int
	report   checkers.Report
}

// groupTally follows the history as it is written: per partition, the
// end of the acknowledged records and the group's last committed offset,
// for the drain check and the no-progress watchdog without a walk over
// the history.
type groupTally struct {
	next      history.Recorder
	acked     [groupPartitions]int64
	committed [groupPartitions]int64
}

// Add implements history.Recorder.
func (t *groupTally) Add(op history.Op) int {
	switch {
	case op.F == history.Send && op.Type == history.OK && op.Record != nil:
		if p := op.Record.Partition; p >= 0 && p < groupPartitions {
			t.acked[p] = max(t.acked[p], op.Record.Offset+1)
		}
	case op.F == history.Commit && op.Type == history.OK:
		for _, o := range op.Offsets {
			if o.Partition >= 0 && o.Partition < groupPartitions {
				t.committed[o.Partition] = o.Offset
			}
		}
	}
	return t.next.Add(op)
}

// behind reports whether some partition holds acknowledged records the
// group has not committed past; mark grows with the group's commits.
func (t *groupTally) behind() (behind bool, mark int64) {
	for p := range t.acked {
		behind = behind || t.committed[p] < t.acked[p]
		mark += t.committed[p]
	}
	return behind, mark
}

// groupSends is the producer's loop state.
type groupSends struct {
	next, outstanding int
	stopped           bool
	ok, failed, info  int
}

func buildGroupRebalance(w *world.World, o Options) Cluster {
	c, r := newGroupCluster(w, o, []string{groupBrokerNode + ":9092"})
	bcfg := broker.DefaultConfig()
	bcfg.NumPartitions = groupPartitions
	bcfg.Bugs = o.Bugs
	bcfg.Log.Bugs = o.Bugs
	bcfg.Log.Flush = flushPolicy("group")
	bcfg.Groups.Partitions = 4
	bcfg.Groups.SessionTimeoutMin = time.Second
	bcfg.Groups.InitialRebalanceDelay = 300 * time.Millisecond
	w.AddNode(groupBrokerNode, broker.Start(bcfg, func(b *broker.Broker) { c.brokers = append(c.brokers, b) }))
	c.addClients(r, true)
	return c
}

// newGroupCluster is the group workload's state for brokers at bootstrap;
// r is the seed's stream of member episodes, which drew the assignor.
func newGroupCluster(w *world.World, o Options, bootstrap []string) (*groupCluster, *rand.Rand) {
	c := &groupCluster{o: o, w: w, bootstrap: bootstrap, current: map[string]*kafka.GroupConsumer{}, envs: map[string]sim.Env{},
		episodes: map[string]int{}, log: &meteredLog{Log: &history.Log{Now: func() int64 { return int64(w.Now()) }}}}
	c.tally = &groupTally{next: c.log}
	r := sched.NewRand(o.Seed, "group-churn", 0)
	c.assignor = o.Param("assignor")
	if c.assignor == "auto" {
		c.assignor = kafka.Assignors[r.IntN(len(kafka.Assignors))]
	}
	return c, r
}

// addClients adds the producer and the members (the last joins late),
// plants the member episodes when churn is set, and stops the producer
// for the drain.
func (c *groupCluster) addClients(r *rand.Rand, churn bool) {
	w := c.w
	w.AddNode(groupProducerNode, c.startProducer)
	for i := range groupMembers {
		name := "m" + strconv.Itoa(i+1)
		c.members = append(c.members, name)
		delay := time.Duration(0)
		if i == groupMembers-1 {
			delay = time.Duration(1000+r.IntN(4000)) * time.Millisecond // joins late
		}
		w.AddNode(name, c.startMember(name, delay))
	}
	if churn {
		c.scheduleChurn(r)
	}
	w.At(c.o.Run+drainSettle, c.stopProducing)
}

// startProducer sends unique values round-robin over the partitions at
// groupSendRate until the drain.
func (c *groupCluster) startProducer(env sim.Env) {
	c.process++
	p, err := kafka.NewProducer(env, kafka.ProducerConfig{
		Bootstrap: c.bootstrap, Process: c.process, Recorder: c.tally,
		ManualPartition: true, AllowAutoTopicCreation: true, Linger: 5 * time.Millisecond,
		RequestTimeout: 2 * time.Second, DeliveryTimeout: 10 * time.Second,
	})
	sched.Assert(err == nil, "group-rebalance producer: %v", err)
	c.producer = p
	var tick func()
	tick = func() {
		if c.sends.stopped || c.producer != p {
			return
		}
		if c.sends.outstanding < groupSendsMax {
			n := c.sends.next
			rec := kafka.Record{Topic: groupTopic, Partition: int32(n % groupPartitions), Value: []byte("v" + strconv.Itoa(n))}
			if p.Send(rec, c.onSent) == nil {
				c.sends.next++
				c.sends.outstanding++
			}
		}
		env.Clock.AfterFunc(time.Second/groupSendRate, tick)
	}
	tick()
}

func (c *groupCluster) onSent(r kafka.Result) {
	c.sends.outstanding--
	switch r.Outcome {
	case history.OK:
		c.sends.ok++
	case history.Fail:
		c.sends.failed++
	default:
		c.sends.info++
	}
}

func (c *groupCluster) stopProducing() {
	c.sends.stopped = true
	if c.producer != nil {
		c.producer.Flush()
	}
}

// startMember runs a member on the node after delay (its first start
// only): each start is a new process in the history.
func (c *groupCluster) startMember(name string, delay time.Duration) sim.Start {
	first := true
	return func(env sim.Env) {
		c.envs[name] = env
		wait := time.Duration(0)
		if first {
			wait, first = delay, false
		}
		env.Clock.AfterFunc(wait, func() { c.newMember(name, env) })
	}
}

func (c *groupCluster) newMember(name string, env sim.Env) {
	c.process++
	g, err := kafka.NewGroupConsumer(env, kafka.GroupConsumerConfig{
		Consumer: kafka.ConsumerConfig{Bootstrap: c.bootstrap, ClientID: name,
			Process: c.process, Recorder: c.tally, FetchMaxWait: 100 * time.Millisecond,
			RequestTimeout: 3 * time.Second},
		Group: groupName, Topics: []string{groupTopic}, Assignor: c.assignor,
		SessionTimeout: groupSession, RebalanceTimeout: 4 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		ProcessTimeMax: 30 * time.Millisecond, Bugs: c.o.Bugs,
	})
	sched.Assert(err == nil, "group-rebalance member: %v", err)
	c.current[name] = g
	c.all = append(c.all, g)
}

// scheduleChurn plants the member episodes: a member leaves and comes
// back, is killed and restarted, or pauses past its session timeout. One
// member at a time, so that the group always has someone to rebalance to.
func (c *groupCluster) scheduleChurn(r *rand.Rand) {
	at := 3 * time.Second
	end := c.o.Run - groupChurnEnd
	for range groupEpisodesMax {
		at += time.Duration(500+r.IntN(2500)) * time.Millisecond
		name := c.members[r.IntN(len(c.members))]
		hold := time.Duration(300+r.IntN(2700)) * time.Millisecond
		kind := r.IntN(3)
		if kind == 2 {
			hold = groupSession + time.Duration(500+r.IntN(2000))*time.Millisecond
		}
		if at+hold >= end {
			return
		}
		c.episode(name, kind, at, hold)
		at += hold
	}
}

func (c *groupCluster) episode(name string, kind int, at, hold time.Duration) {
	switch kind {
	case 0: // leave the group, come back as a new member
		c.w.At(at, func() {
			g := c.current[name]
			if g == nil || g.Closed() || !c.w.Node(name).Up() {
				return
			}
			c.episodes["leave"]++
			env := c.envs[name]
			g.Close(func() {
				env.Clock.AfterFunc(hold, func() { c.newMember(name, env) })
			})
		})
	case 1: // kill -9 and restart
		c.w.At(at, func() {
			if c.w.Kill(name) == nil {
				c.episodes["kill"]++
			}
		})
		c.w.At(at+hold, func() { _ = c.w.Restart(name) })
	default: // pause past the session timeout
		c.w.At(at, func() {
			if c.w.Pause(name) == nil {
				c.episodes["pause"]++
			}
		})
		c.w.At(at+hold, func() { _ = c.w.Resume(name) })
	}
}

func (c *groupCluster) Profile() faults.Profile {
	kinds := map[string][]faults.Kind{
		"disk": {faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
			faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindDiskFull,
			faults.KindReadErrors, faults.KindClockJump, faults.KindClockDrift},
		"process": {faults.KindKill, faults.KindPause, faults.KindPartition, faults.KindBlock},
	}
	return faults.Profile{
		Targets:      []string{groupBrokerNode},
		Clients:      append([]string{groupProducerNode}, c.members...),
		IntervalMean: 2 * time.Second,
		DurationMax:  3 * time.Second,
		Kinds:        kinds[c.o.Param("faults")],
	}
}

// History is the run's history, for --history.
func (c *groupCluster) History() history.History { return c.log.Ops }

// CheckReport is what the checkers found.
func (c *groupCluster) CheckReport() checkers.Report { return c.report }

// Footprint estimates what the run holds, for the memory budget.
func (c *groupCluster) Footprint() Footprint {
	f := Footprint{HistoryOps: len(c.log.Ops), HistoryBytes: c.log.bytes,
		DiskBytes: c.w.Node(groupBrokerNode).Disk().UsedBytes()}
	if c.producer != nil {
		f.ClientBytes = int64(c.producer.BufferedBytes())
	}
	return f
}

// Finish judges the history with the kafka checker and the groups
// checker, and checks the drain: the group committed every partition to
// its end.
func (c *groupCluster) Finish(*world.World) ([]Check, map[string]int64) {
	opts := checkers.DefaultOptions()
	c.report = checkers.Check(c.log.Ops, opts)
	checks := []Check{c.drainCheck()}
	groups := checkers.Verdict{Checker: checkers.CheckerGroups, Notes: []string{"no group ops"}}
	for _, v := range c.report.Verdicts {
		checks = append(checks, verdictCheck(v))
		if v.Checker == checkers.CheckerGroups {
			groups = v
		}
	}
	if groups.Stats == nil {
		checks = append(checks, Check{Name: checkers.CheckerGroups, Detail: "the history has no group ops"})
	}
	stats := map[string]int64{
		"history_ops": int64(len(c.log.Ops)), "broker_starts": int64(len(c.brokers)),
		"sends": int64(c.sends.next), "sends_ok": int64(c.sends.ok), "sends_failed": int64(c.sends.failed),
		"sends_unknown": int64(c.sends.info), "members_started": int64(len(c.all)),
	}
	stats["assignor_"+strings.ReplaceAll(c.assignor, "-", "_")] = 1
	for kind, n := range c.episodes {
		stats["episodes_"+kind] = int64(n)
	}
	for _, g := range c.all {
		s := g.Stats()
		stats["member_polls"] += int64(s.Polls)
		stats["member_records"] += int64(s.Records)
		stats["member_commits"] += int64(s.Commits)
		stats["member_commits_ok"] += int64(s.CommitsOK)
		stats["member_joins"] += int64(s.Joins)
		stats["member_syncs"] += int64(s.Syncs)
		stats["member_lost"] += int64(s.Lost)
		stats["member_revocations"] += int64(s.CooperativeRevocations)
	}
	for k, v := range groups.Stats {
		stats["groups_"+strings.ReplaceAll(k, "-", "_")] = v
	}
	return checks, stats
}

// drainCheck: for every partition, the group's last committed offset
// reaches past the last acknowledged record.
func (c *groupCluster) drainCheck() Check {
	var behind []string
	for p := range groupPartitions {
		if c.tally.committed[p] < c.tally.acked[p] {
			behind = append(behind, fmt.Sprintf("%s-%d committed %d of %d", groupTopic, p, c.tally.committed[p], c.tally.acked[p]))
		}
	}
	if len(behind) > 0 {
		return Check{Name: "drained", OK: false, Detail: strings.Join(behind, "; ")}
	}
	return Check{Name: "drained", OK: true, Detail: "the group committed every partition to its end after the faults healed"}
}

// Progress reports the producer's sends and the group's commits to the
// no-progress watchdog: once the faults heal, a group that has records to
// read and commits nothing for the scenario's stall bound is stuck.
func (c *groupCluster) Progress() []Activity {
	var acts []Activity
	if p := c.producer; p != nil {
		pp := p.Progress()
		acts = append(acts, Activity{Name: groupProducerNode + "'s producer", Mark: int64(pp.Written),
			Waiting: pp.Pending > 0 || pp.FailedSinceWritten > 0, Attempts: pp.Attempts, Describe: p.DescribeStall})
	}
	behind, mark := c.tally.behind()
	acts = append(acts, Activity{Name: "group " + groupName, Mark: mark, Waiting: behind,
		Describe: func() string { return c.drainCheck().Detail }})
	return acts
}
