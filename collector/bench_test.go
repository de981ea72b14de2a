package collector

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
	"github.com/sluice-sim/sluice/sim/world"
)

// BenchmarkMemoryChannel moves events through a memory channel in
// transactions of 100 puts and 100 takes, as a source and a null sink
// would: go test -bench MemoryChannel ./collector/
func BenchmarkMemoryChannel(b *testing.B) {
	r := newRig(1)
	cfg := DefaultMemoryChannelConfig()
	cfg.Capacity, cfg.TransactionCapacity = 10000, 100
	ch := NewMemoryChannel("c1", r.env, cfg)
	body := make([]byte, 100)
	const batch = 100
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for moved := 0; moved < b.N; moved += batch {
		put := ch.Begin()
		for i := 0; i < batch; i++ {
			put.Put(Event{Body: body})
		}
		put.Commit(func(err error) {
			if err != nil {
				b.Fatal(err)
			}
		})
		take := ch.Begin()
		for i := 0; i < batch; i++ {
			if _, ok, _ := take.Take(); !ok {
				b.Fatal("channel empty")
			}
		}
		take.Commit(func(error) {})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAgentSeqMemoryNull runs a whole agent, seq -> memory -> null,
// in the simulated world: events/s of wall time, the agent's and the
// simulator's work together.
func BenchmarkAgentSeqMemoryNull(b *testing.B) {
	text := fmt.Sprintf(`a.sources = s
a.channels = c
a.sinks = k
a.sources.s.type = seq
a.sources.s.batchSize = 1000
a.sources.s.totalEvents = %d
a.sources.s.channels = c
a.channels.c.type = memory
a.channels.c.capacity = 100000
a.channels.c.transactionCapacity = 1000
a.sinks.k.type = null
a.sinks.k.batchSize = 1000
a.sinks.k.channel = c
`, b.N)
	cfg, err := config.Parse(text, "a", nil)
	if err != nil {
		b.Fatal(err)
	}
	w := world.New(world.Config{Seed: 1})
	var agent *Agent
	w.AddNode("n", Start(cfg, Options{}, func(a *Agent) { agent = a }))
	b.ResetTimer()
	for step := 0; step < 1<<20; step++ {
		w.Run(w.Now()+time.Second, 0)
		if agent != nil && agent.runners[0].members[0].counters.EventDrainSuccessCount == int64(b.N) {
			break
		}
	}
	b.StopTimer()
	if got := agent.runners[0].members[0].counters.EventDrainSuccessCount; got != int64(b.N) {
		b.Fatalf("drained %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFileChannelRealDisk commits transactions of 100 events of 1000
// bytes to a file channel in a real temporary directory (an fsync per
// group commit) and takes each back out in a transaction of its own, with
// 1, 4 or 16 such put-then-take pipelines in flight: one is a Flume agent
// with one source and one sink, bound by the disk's sync latency, several
// share each sync: go test -bench FileChannelRealDisk ./collector/
func BenchmarkFileChannelRealDisk(b *testing.B) {
	for _, inFlight := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("inflight-%d", inFlight), func(b *testing.B) { benchFileChannelRealDisk(b, inFlight) })
	}
}

func benchFileChannelRealDisk(b *testing.B, inFlight int) {
	quiet := log.New(io.Discard, "", 0)
	node, err := osenv.NewNode(osenv.Options{Name: "bench", DataDir: b.TempDir(), Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go node.Run(ctx)
	cfg := DefaultFileChannelConfig("fc")
	cfg.TransactionCapacity = 100
	opened := make(chan *FileChannel)
	node.Start(func(env sim.Env) {
		OpenFileChannel("c1", env, cfg, func(f *FileChannel, err error) {
			if err != nil {
				panic(err)
			}
			opened <- f
		})
	})
	ch := <-opened
	body := make([]byte, 1000)
	const batch = 100
	finished := make(chan struct{})
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	node.Post(func() {
		sent, taken, active := 0, 0, 0
		var next func()
		next = func() {
			for active < inFlight && sent < b.N {
				tx := ch.Begin()
				for i := 0; i < batch; i++ {
					tx.Put(Event{Body: body})
				}
				sent += batch
				active++
				tx.Commit(func(err error) {
					if err != nil {
						panic(err)
					}
					take := ch.Begin()
					for i := 0; i < batch; i++ {
						take.Take()
					}
					take.Commit(func(err error) {
						if err != nil {
							panic(err)
						}
						active--
						taken += batch
						if taken >= b.N {
							close(finished)
							return
						}
						next()
					})
				})
			}
		}
		next()
	})
	<-finished
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
