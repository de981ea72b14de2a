package sched

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkLoop measures raw scheduler throughput: a population of timers
// on a few nodes, each firing and rescheduling itself at a random-looking
// delay, the way timers and message deliveries mix in a run.
func BenchmarkLoop(b *testing.B) {
	for _, pending := range []int{16, 1024, 65536} {
		b.Run(strconv.Itoa(pending)+"-pending", func(b *testing.B) {
			l := New()
			nodes := []*Node{l.AddNode("a"), l.AddNode("b"), l.AddNode("c")}
			for _, n := range nodes {
				n.Boot()
			}
			x := uint64(1)
			fired := 0
			fns := make([]func(), pending)
			for i := range fns {
				n := nodes[i%len(nodes)]
				kind := Kind(KindTimer + Kind(i%2)*(KindFrame-KindTimer))
				fns[i] = func() {
					fired++
					x = x*6364136223846793005 + 1442695040888963407
					l.After(time.Duration(x>>40)+1, n, kind, x, fns[i])
				}
				l.After(time.Duration(i), n, kind, 0, fns[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			l.Run(Limits{Until: 1 << 62, EventsMax: uint64(b.N)})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
