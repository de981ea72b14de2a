package controller

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// correlatedPowerLoss streams entries into a quorum on slow disks and, in
// each of rounds seconds, cuts every controller's power at once and
// restarts them 100 ms later, then streams on. It returns the quorum for
// its oracle's verdict.
func correlatedPowerLoss(t *testing.T, seed uint64, bugs faults.Bugs, rounds int, tune func(*Config)) *quorum {
	q := newQuorum(t, seed, bugs, tune)
	for _, n := range q.names {
		q.w.SlowDisk(n, 20)
	}
	end := time.Duration(rounds+2) * time.Second
	q.proposeEvery(2*time.Millisecond, end)
	for round := 1; round <= rounds; round++ {
		// A different instant in each second, so the cut meets the
		// writes at different stages.
		at := time.Duration(round)*time.Second + time.Duration(round*37)*time.Millisecond
		q.run(at)
		for _, n := range q.names {
			q.w.PowerLoss(n)
		}
		q.run(at + 100*time.Millisecond)
		for _, n := range q.names {
			q.w.Restart(n)
		}
	}
	restarted := q.oracle.Len()
	q.run(end + 2*time.Second)
	q.committedAfterFaults = q.oracle.Len() - restarted
	return q
}

// TestCorrelatedPowerLossKeepsCommittedEntries: with entries synced before
// raft's messages leave, losing power everywhere at once loses nothing
// that was committed, and the quorum comes back.
func TestCorrelatedPowerLossKeepsCommittedEntries(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		q := correlatedPowerLoss(t, seed, nil, 1, nil)
		q.check()
		q.caughtUp()
		q.progressed()
	}
}

// TestCorrelatedPowerLossDuringSnapshots does the same five times a run
// with a snapshot every 15 entries, so that the power goes while the log is
// being rolled to a new segment: the synced entries must survive every
// step of it.
func TestCorrelatedPowerLossDuringSnapshots(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		q := correlatedPowerLoss(t, seed, nil, 5, func(c *Config) { c.SnapshotEntries = 15 })
		q.check()
		q.caughtUp()
		q.progressed()
	}
}

// TestRaftAckBeforeSyncIsCaught plants raft-ack-before-sync: the oracle
// must see a committed entry replaced after a correlated power loss within
// the same 20 seeds the correct code survives.
func TestRaftAckBeforeSyncIsCaught(t *testing.T) {
	bugs := faults.Bugs{faults.BugRaftAckBeforeSync: true}
	for seed := uint64(1); seed <= 20; seed++ {
		q := correlatedPowerLoss(t, seed, bugs, 1, nil)
		if len(q.violations) > 0 {
			t.Logf("seed %d caught it: %s", seed, q.violations[0])
			return
		}
	}
	t.Fatal("raft-ack-before-sync lost no committed entry in 20 seeds")
}
