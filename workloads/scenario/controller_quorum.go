package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// The controller-quorum scenario: a raft quorum of controllers (Kafka's
// KRaft in shape), three broker agents that register, heartbeat, follow
// the metadata log and put replicas back in ISRs, and an admin that keeps
// creating and deleting topics, all through the controllers' protocol.
// Faults hit the controllers' processes, disks, clocks and links. The
// checks: no log index ever held two entries and no term had two leaders;
// every change the controllers acknowledged is committed, in order, on
// every controller; and once the faults heal the quorum settles within a
// bound: one active controller, every broker registered and unfenced,
// every controller's state equal, and every broker's image equal to it.
func init() {
	Register(Definition{
		Name:    "controller-quorum",
		Summary: "a raft controller quorum with registering brokers and an admin creating and deleting topics, under crashes, power loss, disk, network and clock faults",
		Bugs:    []faults.Bug{faults.BugRaftAckBeforeSync},
		Params: []Param{
			{Name: "controllers", Default: "3", Values: []string{"3", "5"}, Help: "controllers in the quorum"},
			{Name: "faults", Default: "mixed", Values: []string{"mixed", "correlated", "none"},
				Help: "mixed: kills, power loss, pauses, partitions, one-way blocks, slow, failing, full and erroring disks, " +
					"clock jumps and drift on the controllers; correlated: slow disks and, every second or two, " +
					"a power loss of every controller at once; none"},
		},
		Run:   20 * time.Second,
		Drain: 10 * time.Second,
		Budget: Budget{
			// About 20 times what seeds use: at most 0.9k events per
			// simulated second and an estimated 350 KiB over 100 seeds
			// of each fault mix and quorum size (and of --swarm). A quorum
			// that lost committed entries may livelock at 80k events a
			// second: the budget stops it.
			EventsPerSecMax: 20_000,
			MemoryBytesMax:  8 << 20,
			// The admin waits between attempts (the client's retry delay
			// and timeout), so it cannot spin: time alone bounds a stall.
			StallMax: 6 * time.Second,
		},
		Build: buildControllerQuorum,
	})
}

const (
	quorumPort      = ":9093"
	quorumAdminNode = "admin"
	// quorumSnapshotEntries is small so that runs roll logs and send
	// snapshots to lagging followers.
	quorumSnapshotEntries = 200
	// quorumRecoveryMax bounds the time from the heal to a settled quorum:
	// a restarted controller recovers, an election takes a second or
	// two, and brokers re-register or are unfenced within a session.
	quorumRecoveryMax = 8 * time.Second
	// quorumSampleInterval paces the looks at whether the quorum settled.
	quorumSampleInterval = 50 * time.Millisecond
	// quorumAdminTopicsMax bounds the topics the admin keeps.
	quorumAdminTopicsMax = 8
	// quorumAdminAcksMax bounds the acknowledged changes kept.
	quorumAdminAcksMax = 100_000
)

var quorumBrokerIDs = []int32{1, 2, 3}

func quorumBrokerNode(id int32) string { return fmt.Sprintf("b%d", id) }

type quorumCluster struct {
	o      Options
	w      *world.World
	names  []string
	ctrls  map[string]*controller.Controller
	starts int
	oracle *controller.Oracle
	agents map[int32]*controller.Agent
	admin  *quorumAdmin
	// adminStop is when the admin stops changing topics, so that the
	// brokers' images can settle.
	adminStop time.Duration
	// quorumSettledAt and imagesSettledAt are when the quorum, then the
	// brokers' images, were first seen settled after the heal; -1 until.
	quorumSettledAt, imagesSettledAt time.Duration
	// lastSeen says why the quorum was not settled at the last look.
	lastSeen string
	// episodes counts the torn-tail episodes planted (begun or skipped):
	// an episode's number in Options.EpisodesSkipped; tornTailEpisodes
	// those that found their controller up.
	episodes, tornTailEpisodes int
}

func buildControllerQuorum(w *world.World, o Options) Cluster {
	n, _ := strconv.Atoi(o.Param("controllers"))
	c := &quorumCluster{o: o, w: w, ctrls: map[string]*controller.Controller{},
		oracle: controller.NewOracle(w.Now), agents: map[int32]*controller.Agent{},
		adminStop: o.Run + o.Drain/3, quorumSettledAt: -1, imagesSettledAt: -1}
	var voters []controller.Voter
	var addrs []string
	for i := range n {
		name := fmt.Sprintf("ctl%d", i+1)
		c.names = append(c.names, name)
		voters = append(voters, controller.Voter{ID: uint64(i + 1), Addr: name + quorumPort})
		addrs = append(addrs, name+quorumPort)
	}
	for i, name := range c.names {
		cfg := controller.DefaultConfig(uint64(i+1), voters, quorumPort)
		cfg.SnapshotEntries = quorumSnapshotEntries
		cfg.Bugs = o.Bugs
		cfg.OnApply = func(index, term uint64, data []byte) { c.oracle.Applied(name, index, term, data) }
		cfg.OnLead = func(term uint64) { c.oracle.Led(term, cfg.ID) }
		w.AddNode(name, controller.Process(cfg, func(ctl *controller.Controller) {
			// The controller it replaces may have stopped on a damaged
			// log; count that before it is forgotten.
			c.oracle.NoteLostLog(name, c.ctrls[name])
			c.ctrls[name] = ctl
			c.starts++
		}))
	}
	for _, id := range quorumBrokerIDs {
		w.AddNode(quorumBrokerNode(id), controller.StartAgent(id, addrs, func(a *controller.Agent) { c.agents[id] = a }))
	}
	w.AddNode(quorumAdminNode, func(env sim.Env) {
		c.admin = &quorumAdmin{env: env, client: controller.NewClient(env, addrs), now: w.Now}
		c.admin.next()
	})
	w.At(c.adminStop, func() {
		if c.admin != nil {
			c.admin.stopped = true
		}
	})
	if o.Param("faults") == "correlated" {
		c.scheduleCorrelated(w)
	}
	if o.Swarm && o.Param("faults") == "mixed" {
		c.scheduleTornTails(w)
	}
	w.At(o.Run, c.sample)
	return c
}

// Correlated power losses: every controller's disk turns slow, so that
// syncs are in flight most of the time, and every second or two all the
// controllers lose power at once, to restart a moment later. Acknowledged
// entries survive only if they were synced before they were acknowledged.
const (
	correlatedIntervalMin = time.Second
	correlatedDownTime    = 100 * time.Millisecond
	correlatedSlowFactor  = 20
	correlatedRoundsMax   = 64
)

// scheduleCorrelated plants the rounds, drawn from their own stream of
// the seed, ending before the faults heal.
func (c *quorumCluster) scheduleCorrelated(w *world.World) {
	r := sched.NewRand(c.o.Seed, "correlated", 0)
	end := c.o.Run - correlatedDownTime
	w.At(time.Duration(faultsStart), func() {
		for _, n := range c.names {
			plantedAction(w.SlowDisk(n, correlatedSlowFactor))
		}
	})
	w.At(c.o.Run, func() {
		for _, n := range c.names {
			plantedAction(w.DiskHeal(n))
		}
	})
	at := time.Duration(faultsStart)
	for range correlatedRoundsMax {
		at += correlatedIntervalMin + time.Duration(r.Int64N(int64(correlatedIntervalMin)))
		if at >= end {
			return
		}
		w.At(at, func() {
			for _, n := range c.names {
				plantedAction(w.PowerLoss(n))
			}
		})
		w.At(at+correlatedDownTime, func() {
			for _, n := range c.names {
				plantedAction(w.Restart(n))
			}
		})
	}
}

// plantedAction checks a planted fault's result. A schedule given with
// the planted rounds (a file, a profile with kinds) may have taken a node
// down already, so an action with nothing to act on is no error; any
// other is a node name the scenario did not add, a programmer error.
func plantedAction(err error) {
	sched.Assert(err == nil || errors.Is(err, sim.ErrNoEffect), "scenario: %v", err)
}

func (c *quorumCluster) Profile() faults.Profile {
	clients := []string{quorumAdminNode}
	for _, id := range quorumBrokerIDs {
		clients = append(clients, quorumBrokerNode(id))
	}
	p := faults.Profile{
		Targets:      slices.Clone(c.names),
		Clients:      clients,
		IntervalMean: time.Second,
		DurationMax:  3 * time.Second,
	}
	if c.o.Param("faults") == "mixed" {
		p.Kinds = []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause,
			faults.KindPartition, faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs,
			faults.KindDiskFull, faults.KindReadErrors, faults.KindClockJump, faults.KindClockDrift}
		// Failed creates, renames and removes and short writes meet the
		// raft log's appends, segment rolls and snapshots; a quarter of
		// the swarm's seeds draw them, so that the rest keep their mixes.
		p.SwarmOccasional = []faults.Kind{faults.KindMetaErrors}
		p.SwarmOccasionalShare = quorumMetaErrorsShare
	}
	return p
}

// quorumMetaErrorsShare is the share of swarm seeds that draw
// meta-errors.
const quorumMetaErrorsShare = 0.25

// live returns the named controller if it runs.
func (c *quorumCluster) live(name string) *controller.Controller {
	ctl := c.ctrls[name]
	if ctl == nil || !c.w.Node(name).Up() || ctl.Stopped() {
		return nil
	}
	return ctl
}

// sample looks, from the heal on, at whether the quorum settled and then
// whether the brokers' images did, until both have.
func (c *quorumCluster) sample() {
	if c.quorumSettledAt < 0 {
		if why := c.quorumUnsettled(); why == "" {
			c.quorumSettledAt = c.w.Now()
		} else {
			c.lastSeen = why
		}
	}
	if c.quorumSettledAt >= 0 && c.imagesSettledAt < 0 && c.w.Now() >= c.adminStop {
		if why := c.imagesUnsettled(); why == "" {
			c.imagesSettledAt = c.w.Now()
		} else {
			c.lastSeen = why
		}
	}
	if c.imagesSettledAt < 0 {
		c.w.At(c.w.Now()+quorumSampleInterval, c.sample)
	}
}

// active is the one controller that serves, or why there is not one.
func (c *quorumCluster) active() (*controller.Controller, string) {
	var active []string
	for _, name := range c.names {
		if c.live(name) == nil {
			return nil, name + " is not running"
		}
		if c.ctrls[name].Active() {
			active = append(active, name)
		}
	}
	if len(active) != 1 {
		return nil, fmt.Sprintf("%d active controllers %v", len(active), active)
	}
	return c.ctrls[active[0]], ""
}

// quorumUnsettled says why the quorum has not settled, or "" if it has:
// one active controller, every broker registered with the epoch it was
// given and unfenced, and every controller at the same applied index with
// the same state.
func (c *quorumCluster) quorumUnsettled() string {
	active, why := c.active()
	if active == nil {
		return why
	}
	s := active.State()
	for _, id := range quorumBrokerIDs {
		a := c.agents[id]
		b := s.Brokers[id]
		switch {
		case a == nil || a.Epoch() == 0:
			return fmt.Sprintf("broker %d not registered", id)
		case b == nil || b.Epoch != a.Epoch():
			return fmt.Sprintf("broker %d registered with epoch %d, the controller has %+v", id, a.Epoch(), b)
		case b.Fenced:
			return fmt.Sprintf("broker %d fenced", id)
		}
	}
	want, applied := s.Encode(), active.Status().Applied
	for _, name := range c.names {
		ctl := c.ctrls[name]
		if got := ctl.Status().Applied; got != applied {
			return fmt.Sprintf("%s applied through %d, the active controller through %d", name, got, applied)
		}
		if !bytes.Equal(ctl.State().Encode(), want) {
			return fmt.Sprintf("%s's state differs from the active controller's at index %d", name, applied)
		}
	}
	return ""
}

// imagesUnsettled says why the brokers' images differ from the quorum's
// state, or "" when the quorum is settled and they equal it.
func (c *quorumCluster) imagesUnsettled() string {
	if why := c.quorumUnsettled(); why != "" {
		return why
	}
	active, _ := c.active()
	want := active.State().Encode()
	for _, id := range quorumBrokerIDs {
		if im := c.agents[id].Image(); !bytes.Equal(im.State().Encode(), want) {
			return fmt.Sprintf("broker %d's image (through %d) differs from the controllers' state (through %d)",
				id, im.Next()-1, active.State().Offset)
		}
	}
	return ""
}

// Footprint estimates what the run holds, for the memory budget.
func (c *quorumCluster) Footprint() Footprint {
	var f Footprint
	for _, name := range c.names {
		f.DiskBytes += c.w.Node(name).Disk().UsedBytes()
	}
	f.ClientBytes = c.oracle.Bytes()
	if c.admin != nil {
		f.ClientBytes += int64(len(c.admin.acked)) * quorumAckBytes
	}
	return f
}

// quorumAckBytes estimates an acknowledged change the admin keeps.
const quorumAckBytes = 128

// Progress reports the admin's acknowledged changes, for the no-progress
// watchdog: it has work until it stops.
func (c *quorumCluster) Progress() []Activity {
	a := c.admin
	if a == nil {
		return nil
	}
	return []Activity{{Name: "admin", Mark: int64(len(a.acked)), Waiting: !a.stopped, Attempts: a.failed,
		Describe: func() string {
			return fmt.Sprintf("no topic change acknowledged; %d acknowledged, %d sent, %d failed in all (last: %s)",
				len(a.acked), a.sent, a.failed, a.lastErr)
		}}}
}

// Finish judges the run: the oracle's safety verdict, the acknowledged
// changes against the committed log, and the quorum's recovery.
func (c *quorumCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	for _, name := range c.names {
		c.oracle.NoteLostLog(name, c.ctrls[name])
	}
	stats := map[string]int64{"controller_starts": int64(c.starts), "terms": int64(c.oracle.Terms()),
		"log_indexes": int64(c.oracle.Len())}
	var acked []quorumAck
	if c.admin != nil {
		acked = c.admin.acked
		stats["admin_sent"] = int64(c.admin.sent)
		stats["admin_failed"] = int64(c.admin.failed)
	}
	stats["acked_changes"] = int64(len(acked))
	stats[plantedEpisodesStat] = int64(c.episodes)
	stats["torn_tail_episodes"] = int64(c.tornTailEpisodes)
	for _, a := range acked {
		if a.at >= c.o.Run {
			stats["acked_after_heal"]++
		}
	}
	for _, id := range quorumBrokerIDs {
		if a := c.agents[id]; a != nil {
			stats["registrations"] += int64(len(a.Epochs()))
			stats["alters_acked"] += int64(a.AltersAcked())
		}
	}
	if c.quorumSettledAt >= 0 {
		stats["recovery_ms"] = (c.quorumSettledAt - c.o.Run).Milliseconds()
	}
	return []Check{c.safetyCheck(), c.ackedCheck(acked), c.livenessCheck()}, stats
}

// safetyCheck is the oracle's verdict.
func (c *quorumCluster) safetyCheck() Check {
	v := c.oracle.Violations()
	check := Check{Name: "quorum-safety", OK: len(v) == 0}
	if check.OK {
		check.Detail = fmt.Sprintf("%d log indexes applied with one entry each by every controller that applied them; %d terms with one leader each; no damaged log",
			c.oracle.Len(), c.oracle.Terms())
		return check
	}
	check.Detail = fmt.Sprintf("%d violations; first: %s", len(v), v[0])
	if len(v) > 1 {
		check.Detail += "; then: " + v[1]
	}
	return check
}

// ackedCheck finds every change the controllers acknowledged in the
// committed log: each admin change at an index after the one before it
// (the admin sends one at a time), each broker registration at the index
// that is its epoch, and every controller applied through all of them.
func (c *quorumCluster) ackedCheck(acked []quorumAck) Check {
	check := Check{Name: "acknowledged-committed"}
	found := c.findRecords()
	var problems []string
	last, maxIndex := uint64(0), uint64(0)
	for i, a := range acked {
		index, ok := found[a.key()]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("acknowledged %s (change %d, at %.3fs) is in no committed entry", a, i+1, a.at.Seconds()))
		case index <= last:
			problems = append(problems, fmt.Sprintf("acknowledged %s is at index %d, not after the change acknowledged before it (index %d)", a, index, last))
		}
		last, maxIndex = max(last, index), max(maxIndex, index)
	}
	registrations, regIndex, regProblems := c.checkRegistrations()
	problems = append(problems, regProblems...)
	maxIndex = max(maxIndex, regIndex)
	for _, name := range c.names {
		ctl := c.live(name)
		switch {
		case ctl == nil:
			problems = append(problems, name+" is not running at the end")
		case ctl.Status().Applied < maxIndex:
			problems = append(problems, fmt.Sprintf("%s applied through %d, short of acknowledged index %d", name, ctl.Status().Applied, maxIndex))
		}
	}
	check.OK = len(problems) == 0
	check.Detail = fmt.Sprintf("%d acknowledged topic changes and %d registrations, through index %d, committed in acknowledgement order and applied by all %d controllers",
		len(acked), registrations, maxIndex, len(c.names))
	if !check.OK {
		check.Detail = fmt.Sprintf("%d problems; %s", len(problems), strings.Join(problems[:min(len(problems), 3)], "; "))
	}
	return check
}

// checkRegistrations finds each registration the brokers were acknowledged
// at the index that is its epoch; it returns how many there were, the
// highest index and what was wrong.
func (c *quorumCluster) checkRegistrations() (n int, maxIndex uint64, problems []string) {
	for _, id := range quorumBrokerIDs {
		a := c.agents[id]
		if a == nil {
			continue
		}
		for _, epoch := range a.Epochs() {
			n++
			maxIndex = max(maxIndex, uint64(epoch))
			e, ok := c.oracle.Entry(uint64(epoch))
			r, err := metadata.DecodeRecord(e.Data)
			if !ok || err != nil || r.Kind != metadata.KindRegisterBroker || r.BrokerID != id {
				problems = append(problems, fmt.Sprintf("broker %d's registration acknowledged with epoch %d is not the entry at index %d", id, epoch, epoch))
			}
		}
	}
	return n, maxIndex, problems
}

// findRecords maps each topic change in the committed log to the first
// index that holds it: a retried request may leave a second copy, which
// applies as an error.
func (c *quorumCluster) findRecords() map[string]uint64 {
	found := map[string]uint64{}
	for _, index := range c.oracle.Indexes() {
		e, _ := c.oracle.Entry(index)
		if len(e.Data) == 0 {
			continue
		}
		r, err := metadata.DecodeRecord(e.Data)
		if err != nil || (r.Kind != metadata.KindCreateTopic && r.Kind != metadata.KindDeleteTopic) {
			continue
		}
		key := quorumAck{kind: r.Kind, topic: r.Topic, topicID: r.TopicID}.key()
		if _, dup := found[key]; !dup {
			found[key] = index
		}
	}
	return found
}

// livenessCheck: after the heal, the quorum settled within the bound and
// the brokers' images caught up to it once the admin stopped.
func (c *quorumCluster) livenessCheck() Check {
	check := Check{Name: "quorum-recovery"}
	heal := c.o.Run
	switch {
	case c.quorumSettledAt < 0:
		check.Detail = fmt.Sprintf("not settled %v after the heal at %.1fs: %s", (c.w.Now() - heal).Round(time.Millisecond), heal.Seconds(), c.lastSeen)
	case c.quorumSettledAt-heal > quorumRecoveryMax:
		check.Detail = fmt.Sprintf("settled %v after the heal, over the bound of %v", c.quorumSettledAt-heal, quorumRecoveryMax)
	case c.imagesSettledAt < 0:
		check.Detail = fmt.Sprintf("quorum settled %v after the heal, but by %.1fs (the admin stopped at %.1fs) the brokers' images had not caught up: %s",
			c.quorumSettledAt-heal, c.w.Now().Seconds(), c.adminStop.Seconds(), c.lastSeen)
	default:
		check.OK = true
		check.Detail = fmt.Sprintf("%v after the heal at %.1fs (bound %v): one active controller, brokers %v registered and unfenced, all %d controllers' states equal; the brokers' images equal to it %v after the admin stopped",
			c.quorumSettledAt-heal, heal.Seconds(), quorumRecoveryMax, quorumBrokerIDs, len(c.names), (c.imagesSettledAt - c.adminStop).Round(time.Millisecond))
	}
	return check
}

// quorumAck is a topic change the controllers acknowledged.
type quorumAck struct {
	kind           metadata.Kind
	topic, topicID string
	at             time.Duration
}

func (a quorumAck) key() string { return string(a.kind) + "/" + a.topic + "/" + a.topicID }

func (a quorumAck) String() string { return fmt.Sprintf("%s %s (id %.8s)", a.kind, a.topic, a.topicID) }

// quorumAdmin creates and deletes topics, one request at a time, and keeps
// every change the controllers acknowledged.
type quorumAdmin struct {
	env    sim.Env
	client *controller.Client
	now    func() time.Duration
	// topics are the topics it created and has not deleted, by creation.
	topics  []quorumAck
	acked   []quorumAck
	seq     int
	sent    int
	failed  int
	lastErr string
	stopped bool
}

// Pauses between the admin's requests.
const (
	quorumAdminPauseMin = 20 * time.Millisecond
	quorumAdminPauseMax = 150 * time.Millisecond
)

func (a *quorumAdmin) next() {
	if a.stopped {
		return
	}
	r := a.env.Rand
	if len(a.topics) >= quorumAdminTopicsMax || (len(a.topics) > 0 && r.IntN(3) == 0) {
		a.deleteTopic(r.IntN(len(a.topics)))
		return
	}
	a.createTopic(r)
}

func (a *quorumAdmin) again() {
	pause := quorumAdminPauseMin + time.Duration(a.env.Rand.Int64N(int64(quorumAdminPauseMax-quorumAdminPauseMin)))
	a.env.Clock.AfterFunc(pause, a.next)
}

func (a *quorumAdmin) createTopic(r *rand.Rand) {
	a.seq++
	name := fmt.Sprintf("t%d", a.seq)
	req := controller.Request{Op: controller.OpCreateTopic, Topic: name,
		Partitions: int32(1 + r.IntN(3)), ReplicationFactor: int16(1 + r.IntN(len(quorumBrokerIDs)))}
	a.sent++
	a.client.Do(req, func(resp controller.Response, err error) {
		if a.settle(resp, err) {
			ack := quorumAck{kind: metadata.KindCreateTopic, topic: name, topicID: resp.TopicID, at: a.now()}
			a.topics = append(a.topics, ack)
			a.note(ack)
		}
		a.again()
	})
}

func (a *quorumAdmin) deleteTopic(i int) {
	t := a.topics[i]
	req := controller.Request{Op: controller.OpDeleteTopic, Topic: t.topic, TopicID: t.topicID}
	a.sent++
	a.client.Do(req, func(resp controller.Response, err error) {
		if a.settle(resp, err) || (err == nil && resp.Code == metadata.CodeUnknownTopicOrPartition) {
			// Deleted, by this request or an earlier attempt of it.
			a.topics = slices.DeleteFunc(a.topics, func(x quorumAck) bool { return x.topicID == t.topicID })
		}
		if err == nil && resp.Code == metadata.CodeNone {
			a.note(quorumAck{kind: metadata.KindDeleteTopic, topic: t.topic, topicID: t.topicID, at: a.now()})
		}
		a.again()
	})
}

// settle reports whether a request was acknowledged, counting failures.
func (a *quorumAdmin) settle(resp controller.Response, err error) bool {
	switch {
	case err != nil:
		a.failed++
		a.lastErr = err.Error()
		return false
	case resp.Code != metadata.CodeNone:
		a.failed++
		a.lastErr = resp.Code.String()
		return false
	}
	return true
}

func (a *quorumAdmin) note(ack quorumAck) {
	if len(a.acked) < quorumAdminAcksMax {
		a.acked = append(a.acked, ack)
	}
}
