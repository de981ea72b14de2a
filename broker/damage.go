package broker

import (
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// Damage in a cluster: a replica that finds a corrupt batch in its log
// has another copy to take it from, as long as another in-sync replica
// holds it. The storage never serves damaged offsets (reads fail with
// CORRUPT_MESSAGE); the broker makes sure the cluster repairs them:
//
//   - A replica that finds damage while it runs (a read, a follower's
//     fetch or a compaction ran into it, or a read is refused for damage
//     known since recovery) restarts, as Kafka takes a failed log
//     directory offline: the re-registration takes it out of every ISR
//     and hands its leaderships to in-sync replicas, so a damaged leader
//     neither serves past the damage nor acknowledges writes that count on
//     it. A leader that is the only in-sync replica keeps leading with the
//     range fenced: no in-sync replica holds a better copy. So does a
//     broker that leads another partition as its only in-sync replica:
//     the restart's recovery could cut that log and it would be elected
//     again. A follower
//     whose log already ends past the range fetches from there, so it can
//     still catch up and join the ISR; the next refused read then hands
//     the leadership to it.
//   - Recovery at the restart finds the damage again (it verifies every
//     segment) and keeps it fenced. When the partition starts following,
//     its log is cut at the first damaged batch before it fetches, so the
//     follower fetches what lay there and after from its leader again, as
//     Kafka's recovery truncates at the first corrupt batch. The broker is
//     out of the ISR by then (a new registration), so the cut never takes
//     it below a high watermark the ISR counts it in for. A leader that
//     kept its damage fenced as the only in-sync replica and then hands
//     its leadership over (a preferred election) follows while still in
//     the ISR: it restarts before it cuts, or keeps the range fenced
//     while it cannot.
//
// A single broker has no other copy: its damage stays fenced and reported.

// Probes of damage repaired in a cluster.
var (
	probeDamagedReplicaTruncated = sim.DeclareProbe("broker/damaged-replica-truncated",
		"a follower cut its log at the first damaged batch and fetched the rest from its leader again")
	probeDamageRestart = sim.DeclareProbe("broker/damage-found-restart",
		"a cluster broker found damage in a log while serving and restarted, leaving ISRs and leaderships")
)

// watchDamage arranges for the partition to hear of damage its log finds
// after opening.
func (p *partition) watchDamage() {
	if p.b.cluster == nil {
		return
	}
	p.log.OnDamage(p.damageFound)
}

// damageFound is called inside the read that found d: it only decides,
// and a timer acts once the read has returned.
func (p *partition) damageFound(d storage.Damage) {
	r := &p.replica
	if r.role == roleLeader && len(r.isr) <= 1 {
		// Every refused read comes here; say it once. Once a follower
		// that holds the range joins the ISR, the next read hands over.
		if !r.damageNoted {
			r.damageNoted = true
			p.b.env.Log.Logf("partition %s-%d: damaged data found: %s; the only in-sync replica keeps leading with it fenced",
				p.topic, p.index, d)
		}
		return
	}
	p.restartForDamage(d)
}

// restartForDamage restarts the broker so that its re-registration takes
// it out of every ISR, unless a restart is under way or would leave a
// partition it leads alone to its recovery.
func (p *partition) restartForDamage(d storage.Damage) {
	r := &p.replica
	m := p.b.cluster
	if m == nil || m.restarting {
		return
	}
	if q := p.b.soleInSyncLeadership(); q != nil {
		// The restart would leave q to its last in-sync replica's
		// recovery, which (above the recovery point, as with flush=none)
		// cuts a log at damage it finds, and elect the same broker
		// again: acknowledged writes gone. The next refused read asks
		// again.
		if !r.damageNoted {
			r.damageNoted = true
			p.b.env.Log.Logf("partition %s-%d: damaged data found: %s; not restarting while %s-%d has no other in-sync replica",
				p.topic, p.index, d, q.topic, q.index)
		}
		return
	}
	m.restarting = true
	p.b.env.Hit(probeDamageRestart)
	err := fmt.Errorf("partition %s-%d (%s): damaged data found: %s; restarting so that an in-sync replica serves it and this one fetches it again",
		p.topic, p.index, r.role, d)
	p.b.env.Clock.AfterFunc(0, func() { p.b.fatal(err) })
}

// cutDamage cuts a follower's log at its first damaged batch, so that it
// fetches from there on from its leader; it reports false when the cut
// failed (the fetcher backs off and the next follow tries again).
func (p *partition) cutDamage() bool {
	d, ok := p.log.FirstDamage()
	if !ok {
		return true
	}
	if slices.Contains(p.replica.isr, p.b.cfg.NodeID) {
		// A leader that kept its damage fenced as the only in-sync
		// replica, then handed the leadership over, is still in the
		// ISR, which counts it as holding every offset below the high
		// watermark: cut, it could be elected again without them. It
		// restarts first, which takes it out; until it can, it keeps the
		// range fenced and fetches from its log end.
		p.restartForDamage(d)
		return true
	}
	end := p.log.EndOffset()
	if err := p.log.TruncateTo(d.FirstOffset); err != nil {
		p.b.env.Log.Logf("partition %s-%d: cut damaged data at %d: %v", p.topic, p.index, d.FirstOffset, err)
		return false
	}
	p.replica.hw = min(p.replica.hw, p.log.EndOffset())
	p.b.env.Hit(probeDamagedReplicaTruncated)
	p.b.env.Log.Logf("partition %s-%d: follower cut its log from %d to %d at damaged data (%s); fetching it again from %d",
		p.topic, p.index, end, p.log.EndOffset(), d, p.replica.leaderID)
	return true
}

// soleInSyncLeadership is the first partition (by topic and index) this
// broker leads as its only in-sync replica, if any.
func (b *Broker) soleInSyncLeadership() *partition {
	if b.topics == nil {
		return nil
	}
	var first *partition
	for _, t := range b.topics.byName {
		for _, p := range t.partitions {
			if p != nil && p.replica.role == roleLeader && len(p.replica.isr) <= 1 &&
				(first == nil || partitionLess(p, first) < 0) {
				first = p
			}
		}
	}
	return first
}
