package controller

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// correlatedPowerLoss streams entries into a quorum on slow disks, cuts
// every controller's power at once, restarts them and streams on. It
// returns the quorum for its oracle's verdict.
func correlatedPowerLoss(t *testing.T, seed uint64, bugs faults.Bugs) *quorum {
	q := newQuorum(t, seed, bugs, nil)
	for _, n := range q.names {
		q.w.SlowDisk(n, 20)
	}
	q.proposeEvery(2*time.Millisecond, 3*time.Second)
	q.run(time.Second)
	for _, n := range q.names {
		q.w.PowerLoss(n)
	}
	q.run(1100 * time.Millisecond)
	for _, n := range q.names {
		q.w.Restart(n)
	}
	q.run(5 * time.Second)
	return q
}

// TestCorrelatedPowerLossKeepsCommittedEntries: with entries synced before
// raft's messages leave, losing power everywhere at once loses nothing
// that was committed, and the quorum comes back.
func TestCorrelatedPowerLossKeepsCommittedEntries(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		q := correlatedPowerLoss(t, seed, nil)
		q.check()
		q.caughtUp()
	}
}

// TestRaftAckBeforeSyncIsCaught plants raft-ack-before-sync: the oracle
// must see a committed entry replaced after a correlated power loss within
// the same 20 seeds the correct code survives.
func TestRaftAckBeforeSyncIsCaught(t *testing.T) {
	bugs := faults.Bugs{faults.BugRaftAckBeforeSync: true}
	for seed := uint64(1); seed <= 20; seed++ {
		q := correlatedPowerLoss(t, seed, bugs)
		if len(q.violations) > 0 {
			t.Logf("seed %d caught it: %s", seed, q.violations[0])
			return
		}
	}
	t.Fatal("raft-ack-before-sync lost no committed entry in 20 seeds")
}
