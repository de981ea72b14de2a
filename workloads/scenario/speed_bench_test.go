package scenario

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkSingleBrokerSeed runs whole single-broker seeds (the default
// workload and fault mix, checkers included) and reports the simulator's
// speed: events per wall second and time dilation, the figures a swarm's
// cost rests on, and CPU per event (user and system time of the process,
// the garbage collector's threads included), which other work on a shared
// machine disturbs far less than wall time.
func BenchmarkSingleBrokerSeed(b *testing.B) {
	benchmarkSeeds(b, singleBrokerDef(b), nil)
}

// BenchmarkLeaderCrashSeed runs whole leader-crash seeds: the six-node
// cluster (three brokers, three controllers) under its default workload of
// 1,000 records a second, the scenario the cluster's speed bar is set on.
func BenchmarkLeaderCrashSeed(b *testing.B) {
	d, err := Lookup("leader-crash")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkSeeds(b, d, nil)
}

// BenchmarkLeaderCrashSeedBatched runs leader-crash seeds at the same
// rate with the producers' linger.ms at 100: batches of about sixteen
// records instead of one, and a quarter of the events.
func BenchmarkLeaderCrashSeedBatched(b *testing.B) {
	d, err := Lookup("leader-crash")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkSeeds(b, d, map[string]string{"linger.ms": "100"})
}

// benchmarkSeeds runs seeds 1 to 3 of d in turn, b.N seeds in all. Its
// sim-dilation is the time dilation of running the worlds alone, without
// the end-of-run audits and checks.
func benchmarkSeeds(b *testing.B, d Definition, params map[string]string) {
	var events uint64
	var simulated, simulating time.Duration
	start, cpuStart := time.Now(), processCPU(b)
	for i := 0; i < b.N; i++ {
		o := withParams(uint64(1+i%3), params)
		runStart := time.Now()
		o.Judging = func() { simulating += time.Since(runStart) }
		res, err := Run(d, o)
		if err != nil {
			b.Fatal(err)
		}
		if !res.OK() {
			b.Fatalf("seed %d failed: %+v", o.Seed, res.Failed())
		}
		events += res.Events
		simulated += res.SimTime
	}
	wall, cpu := time.Since(start), processCPU(b)-cpuStart
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	b.ReportMetric(simulated.Seconds()/wall.Seconds(), "dilation")
	b.ReportMetric(simulated.Seconds()/simulating.Seconds(), "sim-dilation")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
	// A change that makes a seed take fewer events (a stopped timer no
	// longer dispatched) moves CPU per event the wrong way; CPU per seed
	// compares such changes.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/seed")
}

// processCPU is the user and system time the process has used.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
