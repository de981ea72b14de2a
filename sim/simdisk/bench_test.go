package simdisk

import (
	"strconv"
	"testing"

	"github.com/sluice-sim/sluice/sim"
)

// BenchmarkAppendSync measures the simulator's own cost of a log-shaped
// workload: appends of recordBytes, a sync every batch, the loop run until
// the sync completes. Segments roll at 64 MiB so memory stays bounded.
// Reported: simulated bytes per wall second, loop events per wall second,
// and how much faster than the simulated device the run went.
func BenchmarkAppendSync(b *testing.B) {
	for _, shape := range []struct{ recordBytes, batch int }{{100, 1}, {100, 64}, {4096, 16}} {
		name := strconv.Itoa(shape.recordBytes) + "B-x" + strconv.Itoa(shape.batch)
		b.Run(name, func(b *testing.B) {
			r := newRig(b, 1, DefaultConfig())
			record := make([]byte, shape.recordBytes)
			for i := range record {
				record[i] = byte(i)
			}
			const segmentBytes = 64 << 20
			segment := 0
			var f sim.File
			roll := func() {
				f.Close()
				if err := r.fs.Remove("log/" + strconv.Itoa(segment)); err != nil {
					b.Fatal(err)
				}
				segment++
				f = r.create("log/" + strconv.Itoa(segment))
			}
			if err := r.fs.MkdirAll("log"); err != nil {
				b.Fatal(err)
			}
			f = r.create("log/0")
			var size int64
			done := false
			onSync := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
				done = true
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.Append(record); err != nil {
					b.Fatal(err)
				}
				size += int64(len(record))
				if (i+1)%shape.batch != 0 {
					continue
				}
				done = false
				f.Sync(onSync)
				for !done {
					r.loop.Step()
				}
				if size >= segmentBytes {
					roll()
					size = 0
				}
			}
			b.StopTimer()
			wall := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*shape.recordBytes)/wall/1e6, "MB/s")
			b.ReportMetric(float64(r.loop.Dispatched())/wall, "events/s")
			b.ReportMetric(r.loop.Now().Seconds()/wall, "x-realtime")
		})
	}
}

// BenchmarkWriteAt measures page-cache writes alone, no sync.
func BenchmarkWriteAt(b *testing.B) {
	r := newRig(b, 1, Config{WritebackAge: 0})
	f := r.create("f")
	record := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(record, int64(i%(1<<20))*100); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(record))/b.Elapsed().Seconds()/1e6, "MB/s")
}
