package checkers

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// benchHistory simulates a run of about opsN ops over 8 partitions.
func benchHistory(b *testing.B, opsN int) history.History {
	b.Helper()
	c := randChooser{rand.New(rand.NewPCG(1, 2))}
	h := simulate(c, simConfig{
		partitions: 8, producers: 8, consumers: 4,
		steps: opsN * 125 / 100, inflightMax: 8, batchMax: 16,
	})
	if len(h) < opsN*8/10 || len(h) > opsN*12/10 {
		b.Fatalf("simulated %d ops, want about %d", len(h), opsN)
	}
	return h
}

// benchOptions are the default options with a porcupine budget no load
// exhausts: a benchmark measures how fast the checks are, and on a busy
// machine the default budget could run out and call a valid history
// unknown.
func benchOptions() Options {
	o := DefaultOptions()
	o.LinearTimeout = time.Hour
	return o
}

func benchCheck(b *testing.B, opsN int, check func(history.History) bool) {
	h := benchHistory(b, opsN)
	b.ResetTimer()
	for b.Loop() {
		if !check(h) {
			b.Fatalf("a valid history was rejected")
		}
	}
	b.ReportMetric(float64(len(h))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(len(h)), "ops/history")
}

func BenchmarkCheck100k(b *testing.B) {
	benchCheck(b, 100_000, func(h history.History) bool { return Check(h, benchOptions()).Valid })
}

func BenchmarkCheckKafka100k(b *testing.B) {
	benchCheck(b, 100_000, func(h history.History) bool { return CheckKafka(h, benchOptions()).Valid })
}

func BenchmarkCheckLinearizable100k(b *testing.B) {
	benchCheck(b, 100_000, func(h history.History) bool { return CheckLinearizable(h, benchOptions()).Valid })
}

func BenchmarkCheckKafka1M(b *testing.B) {
	benchCheck(b, 1_000_000, func(h history.History) bool { return CheckKafka(h, benchOptions()).Valid })
}
