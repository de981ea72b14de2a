package controller

import (
	"testing"
	"time"
)

// TestLeaderKillElectsAnother kills the leader mid-stream: another
// controller takes over in a later term, writes go on, and the old leader,
// restarted, catches up with nothing lost.
func TestLeaderKillElectsAnother(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		q := newQuorum(t, seed, nil, nil)
		q.proposeEvery(10*time.Millisecond, 5*time.Second)
		q.run(time.Second)
		old := q.leaderName()
		if old == "" {
			t.Fatalf("seed %d: no leader after 1s", seed)
		}
		oldTerm := q.live(old).Status().Term
		q.w.Kill(old)
		q.run(2500 * time.Millisecond)
		now := q.leaderName()
		if now == "" || now == old || q.live(now).Status().Term <= oldTerm {
			t.Fatalf("seed %d: after killing %s (term %d) the leader is %q", seed, old, oldTerm, now)
		}
		before := q.oracle.Len()
		q.w.Restart(old)
		q.run(6 * time.Second)
		q.check()
		q.caughtUp()
		if q.oracle.Len() <= before {
			t.Fatalf("seed %d: nothing committed after the kill", seed)
		}
	}
}

// TestPartitionedLeaderStopsServing cuts the leader off: the majority
// elects a new leader, the old one stops serving (NOT_CONTROLLER) though
// raft still calls it leader of its old term, and after the heal it steps
// down and catches up. No term ever has two leaders.
func TestPartitionedLeaderStopsServing(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		q := newQuorum(t, seed, nil, nil)
		q.proposeEvery(10*time.Millisecond, 6*time.Second)
		q.run(time.Second)
		old := q.leaderName()
		var rest []string
		for _, n := range q.names {
			if n != old {
				rest = append(rest, n)
			}
		}
		q.w.Partition([][]string{{old}, rest})
		q.run(3 * time.Second)
		if q.live(old).Active() {
			t.Fatalf("seed %d: isolated %s still serves", seed, old)
		}
		now := q.active()
		if now == "" || now == old {
			t.Fatalf("seed %d: majority side has no active controller (got %q)", seed, now)
		}
		q.w.Heal()
		q.run(7 * time.Second)
		q.check()
		q.caughtUp()
		if q.live(old).Status().Leader && q.active() != old {
			t.Fatalf("seed %d: %s still thinks it leads after the heal", seed, old)
		}
	}
}

// TestPowerLossOfOneController cuts one controller's power while entries
// stream in: whatever its disk tore is cut on recovery, it catches up, and
// no committed entry is lost. Over the seeds some recovery must have cut a
// torn tail, or the test did not test it.
func TestPowerLossOfOneController(t *testing.T) {
	torn := 0
	for seed := uint64(1); seed <= 10; seed++ {
		q := newQuorum(t, seed, nil, nil)
		victim := q.names[seed%3]
		// A slow disk keeps a sync in flight most of the time, so the
		// power loss finds unsynced bytes to tear.
		q.w.SlowDisk(victim, 30)
		q.proposeEvery(3*time.Millisecond, 4*time.Second)
		q.run(time.Second)
		q.w.PowerLoss(victim)
		q.run(1200 * time.Millisecond)
		q.w.Restart(victim)
		rec := q.live(victim).Status().Recovery
		if rec.TornBytes > 0 {
			torn++
		}
		if rec.Entries == 0 {
			t.Fatalf("seed %d: %s recovered no entries", seed, victim)
		}
		q.run(5 * time.Second)
		q.check()
		q.caughtUp()
	}
	t.Logf("%d of 10 recoveries cut a torn tail", torn)
	if torn == 0 {
		t.Fatal("no power loss tore a log tail in 10 seeds")
	}
}

// TestRestartAllRecoversState restarts every controller after a kill of
// all: the state rebuilt from snapshots and logs equals the one before.
func TestRestartAllRecoversState(t *testing.T) {
	q := newQuorum(t, 7, nil, func(c *Config) { c.SnapshotEntries = 50 })
	q.proposeEvery(5*time.Millisecond, 2*time.Second)
	q.run(2500 * time.Millisecond)
	before := q.live(q.leaderName()).Status().Applied
	for _, n := range q.names {
		q.w.Kill(n)
	}
	for _, n := range q.names {
		q.w.Restart(n)
		st := q.live(n).Status()
		if st.Recovery.SnapshotIndex < 50 {
			t.Fatalf("%s recovered from snapshot %d, want one past 50", n, st.Recovery.SnapshotIndex)
		}
	}
	q.run(4 * time.Second)
	q.check()
	q.caughtUp()
	if after := q.live(q.names[0]).Status().Applied; after < before {
		t.Fatalf("applied %d after restart, %d before", after, before)
	}
}

// TestSnapshotInstalledOnLaggingFollower keeps a follower down while the
// others write and compact past what it has: it must catch up from a
// snapshot sent by the leader.
func TestSnapshotInstalledOnLaggingFollower(t *testing.T) {
	q := newQuorum(t, 3, nil, func(c *Config) { c.SnapshotEntries = 40 })
	q.proposeEvery(5*time.Millisecond, 4*time.Second)
	q.run(500 * time.Millisecond)
	lagger := ""
	for _, n := range q.names {
		if n != q.leaderName() {
			lagger = n
			break
		}
	}
	q.w.Kill(lagger)
	q.run(2500 * time.Millisecond)
	leader := q.live(q.leaderName())
	first, _ := leader.store.FirstIndex()
	q.w.Restart(lagger)
	if have := q.live(lagger).Status().Applied; have+1 >= first {
		t.Fatalf("lagger has %d, leader's log starts at %d: no snapshot needed", have, first)
	}
	q.run(5 * time.Second)
	q.check()
	q.caughtUp()
	if q.snapshotsInstalled[lagger] == 0 {
		t.Fatalf("%s caught up without installing a snapshot", lagger)
	}
}

// TestSameSeedSameTrace runs a quorum with a leader kill twice per seed:
// the trace hashes must agree, and differ between seeds.
func TestSameSeedSameTrace(t *testing.T) {
	run := func(seed uint64) uint64 {
		q := newQuorum(t, seed, nil, func(c *Config) { c.SnapshotEntries = 60 })
		q.proposeEvery(7*time.Millisecond, 3*time.Second)
		q.run(time.Second)
		q.w.Kill(q.leaderName())
		q.run(4 * time.Second)
		return q.w.TraceHash()
	}
	seen := map[uint64]uint64{}
	for seed := uint64(1); seed <= 4; seed++ {
		a, b := run(seed), run(seed)
		if a != b {
			t.Fatalf("seed %d: trace %016x then %016x", seed, a, b)
		}
		if other, dup := seen[a]; dup {
			t.Fatalf("seeds %d and %d gave the same trace", other, seed)
		}
		seen[a] = seed
	}
}

// TestFailedSyncRestartsFromDisk makes syncs fail on each controller in
// turn: a controller whose sync failed no longer knows what its disk holds,
// so it restarts from it, rejoins and catches up, and nothing committed is
// lost.
func TestFailedSyncRestartsFromDisk(t *testing.T) {
	q := newQuorum(t, 9, nil, nil)
	q.proposeEvery(5*time.Millisecond, 5*time.Second)
	restarts := map[string]int{}
	for i, n := range q.names {
		q.w.At(time.Duration(i+1)*time.Second, func() {
			first := q.ctrls[n]
			q.w.FailSyncs(n, 2)
			q.w.At(q.w.Now()+500*time.Millisecond, func() {
				if q.ctrls[n] != first {
					restarts[n]++
				}
			})
		})
	}
	q.run(7 * time.Second)
	q.check()
	q.caughtUp()
	if len(restarts) != len(q.names) {
		t.Fatalf("controllers restarted after failed syncs: %v, want all three", restarts)
	}
}

// TestOneWayCutMovesLeadership cuts the links into the leader one way: it
// can still send heartbeats but hears nothing back. It must stop serving
// and fall silent, so that the others, no longer hearing it, elect one of
// themselves; after the heal everyone catches up.
func TestOneWayCutMovesLeadership(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		q := newQuorum(t, seed, nil, nil)
		q.proposeEvery(10*time.Millisecond, 6*time.Second)
		q.run(time.Second)
		old := q.leaderName()
		for _, n := range q.names {
			if n != old {
				q.w.Block(n, old)
			}
		}
		q.run(4 * time.Second)
		if now := q.active(); now == "" || now == old {
			t.Fatalf("seed %d: with %s deaf, the active controller is %q", seed, old, now)
		}
		q.w.Heal()
		q.run(8 * time.Second)
		q.check()
		q.caughtUp()
	}
}
