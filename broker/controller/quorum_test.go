package controller

import (
	"testing"
	"time"
)

// TestQuorumElectsAndReplicates: a leader emerges, entries commit on all
// three, and exactly one controller serves.
func TestQuorumElectsAndReplicates(t *testing.T) {
	q := newQuorum(t, 1, nil, nil)
	q.proposeEvery(10*time.Millisecond, 3*time.Second)
	q.run(4 * time.Second)
	q.check()
	if q.active() == "" {
		t.Fatal("no active controller")
	}
	if q.proposed < 100 {
		t.Fatalf("only %d proposals made", q.proposed)
	}
	q.caughtUp()
	if n := q.oracle.Len(); n < q.proposed {
		t.Fatalf("%d entries applied for %d proposals", n, q.proposed)
	}
}
