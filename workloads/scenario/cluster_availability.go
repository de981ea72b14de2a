package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/world"
)

// The broker-cluster scenarios judge availability as well as safety: while
// at most one broker is down or cut off and the rest of the cluster is
// healthy, acks=all writes to every partition must go on
// (checkers.CheckAvailability). The check reads the history and every
// fault of the run: the planted episodes, which the scenario notes as it
// acts (act, note), and the generated schedule (noteSchedule).

// act applies a planted fault now and notes it for the availability check.
func (c *leaderCrashCluster) act(a faults.Action) {
	a = c.note(a)
	worldAction(a.Apply(c.w))
}

// note records a fault the scenario brings about now by other means (a
// controlled shutdown) and returns it, timed.
func (c *leaderCrashCluster) note(a faults.Action) faults.Action {
	a.At = faults.Duration(c.w.Now())
	c.planted = append(c.planted, a)
	return a
}

// noteSchedule is told the run's fault schedule, generated or given.
func (c *leaderCrashCluster) noteSchedule(s faults.Schedule) { c.schedule = s }

// availabilityBound is how long a partition may go without acknowledging
// an acks=all write while one broker is down or cut off. It adds up the
// two ways the cluster routes around the broker, whichever applies, and
// the client's way back:
//   - replica.lag.time.max.ms, and the leader's period of looking for
//     followers past it (at most half of it): a follower cut off from its
//     leader alone is dropped from the ISR through the controller
//     (AlterPartition) only then;
//   - the broker session timeout: a broker down, paused or cut off from
//     the controllers is fenced only then, which moves its leaderships
//     and takes it out of every ISR;
//   - the client's slack: a produce sent just before the change waits its
//     whole request timeout, then the longest retry backoff, then a
//     metadata refresh (the controller's commit, the brokers' images, the
//     client's metadata request), for which a second is ample.
func availabilityBound(lag time.Duration, cfg controller.Config, requestTimeout, retryBackoffMax time.Duration) time.Duration {
	const metadataSlack = time.Second
	return lag + lag/2 + cfg.SessionTimeout + requestTimeout + retryBackoffMax + metadataSlack
}

// availabilitySettle is how long a broker, controller or link counts as
// faulted after its fault ends: a restarted broker recovers its log,
// registers, catches up and rejoins the ISR (leaderCrashSettle, with
// room), and a healed link's stalled connections reset.
const availabilitySettle = 5 * time.Second

// availabilityCheck judges the run's availability.
func (c *leaderCrashCluster) availabilityCheck() checkers.Verdict {
	pc := producerConfig(c.o, c.knobs)
	bound := availabilityBound(clusterReplicaLagTimeMax, controller.DefaultConfig(1, nil, quorumPort),
		pc.RequestTimeout, cmp.Or(pc.RetryBackoffMax, time.Second))
	opts := checkers.AvailabilityOptions{
		Controllers: []string{"ctl1", "ctl2", "ctl3"}, Clients: c.clients,
		Faults: append(slices.Clone(c.planted), c.schedule.Actions...),
		Bound:  bound, Settle: availabilitySettle,
		// The clients produce steadily until the drain begins.
		End: c.o.Run + drainSettle,
	}
	for _, id := range leaderCrashBrokerIDs {
		opts.Brokers = append(opts.Brokers, quorumBrokerNode(id))
	}
	return checkers.CheckAvailability(c.log.Ops, opts)
}

// availabilityDetail sums up a passing availability verdict: how long
// the cluster was judged and the longest a judged send waited.
func availabilityDetail(v checkers.Verdict) string {
	return fmt.Sprintf("longest wait for an acknowledged write %v of %v allowed, over %d judged windows (%v)",
		time.Duration(v.Stats["longest-wait-ms"])*time.Millisecond, time.Duration(v.Stats["bound-ms"])*time.Millisecond,
		v.Stats["windows-judged"], time.Duration(v.Stats["judged-ms"])*time.Millisecond)
}

// cutFollower cuts, both ways, the link between the leader of a partition
// and one of its followers; the controllers and the clients reach both.
// Each side is a follower of partitions the other leads: for writes to go
// on, both leaders must drop the other from their ISRs through the
// controller once it has lagged past replica.lag.time.max.ms. Late in the
// cut the leader is killed (and restarted when the cut heals): the
// controller then elects from the ISR it knows, so a follower dropped
// without it would lead, lacking writes acknowledged without it.
func (c *leaderCrashCluster) cutFollower(w *world.World, partition int) (func(), bool) {
	leader := c.leaderOf(partition)
	if leader == metadata.NoLeader {
		return nil, false
	}
	i := slices.Index(leaderCrashBrokerIDs, leader)
	follower := leaderCrashBrokerIDs[(i+1)%len(leaderCrashBrokerIDs)]
	a, b := quorumBrokerNode(leader), quorumBrokerNode(follower)
	c.act(faults.Action{Op: faults.Block, From: a, To: b})
	c.act(faults.Action{Op: faults.Block, From: b, To: a})
	w.At(w.Now()+followerCutKillAfter, func() { c.act(faults.Action{Op: faults.Kill, Node: a}) })
	return func() {
		c.act(faults.Action{Op: faults.Heal})
		c.act(faults.Action{Op: faults.Restart, Node: a})
	}, true
}

// A follower-cut episode lasts from followerCutMin to followerCutMax,
// longer than the availability bound, so that a leader that never drops
// the follower leaves its partitions without writes for longer than it;
// the leader dies followerCutKillAfter into it, well past the lag and the
// ISR shrink, and before the cut heals.
const (
	followerCutMin       = 17 * time.Second
	followerCutMax       = 19 * time.Second
	followerCutKillAfter = 15 * time.Second
)
