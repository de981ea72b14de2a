package controller

import (
	"testing"
	"time"
)

// BenchmarkQuorumTwoSimulatedSeconds measures the wall time two simulated
// seconds of a three-controller quorum costs with a proposal every
// millisecond (about 2000 committed entries, snapshots every 1000), and
// reports
// the entries committed per wall-clock second of simulation.
func BenchmarkQuorumTwoSimulatedSeconds(b *testing.B) {
	committed := 0
	for i := 0; i < b.N; i++ {
		q := newQuorum(b, uint64(i+1), nil, nil)
		q.proposeEvery(time.Millisecond, 2*time.Second)
		q.run(2 * time.Second)
		committed += q.oracle.Len()
	}
	b.ReportMetric(float64(committed)/b.Elapsed().Seconds(), "entries/s")
}
