package broker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

func flushNever(cfg *broker.Config) {
	cfg.Log.Flush = storage.FlushPolicy{Mode: storage.FlushNever}
}

// TestStopMakesEverythingDurable: a broker that never flushes on its own
// and is stopped cleanly has everything on disk, so a power loss right
// after the stop loses nothing, across seeds whose power losses drop
// unsynced data in different ways.
func TestStopMakesEverythingDurable(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := newRig(t, seed, flushNever)
			r.createTopic("orders", 2)
			want := map[int32][]string{}
			for i := range 10 {
				p := int32(i % 2)
				v := fmt.Sprint("v", i)
				if pp := r.produce("orders", p, buildBatch(t, plain, int64(i), v)); pp.ErrorCode != 0 {
					t.Fatalf("produce %s: %s", v, errName(pp.ErrorCode))
				}
				want[p] = append(want[p], v)
			}
			var stopped, stopErr = false, error(nil)
			r.w.At(r.now(), func() { r.broker.Stop(func(err error) { stopped, stopErr = true, err }) })
			r.runUntil("the broker stops", 10*time.Second, func() bool { return stopped })
			if stopErr != nil {
				t.Fatalf("stop: %v", stopErr)
			}
			if r.broker.Serving() {
				t.Fatal("the broker serves after Stop")
			}
			if err := r.w.PowerLoss(brokerNode); err != nil {
				t.Fatal(err)
			}
			r.runFor(50 * time.Millisecond)
			if err := r.w.Restart(brokerNode); err != nil {
				t.Fatal(err)
			}
			r.awaitServing()
			r.admin = nil
			for p, values := range want {
				got := r.readAll("orders", p)
				if len(got) != len(values) {
					t.Fatalf("orders-%d: %d records after a clean stop and a power loss, %d written", p, len(got), len(values))
				}
				for i, rec := range got {
					if rec.value != values[i] || rec.offset != int64(i) {
						t.Fatalf("orders-%d record %d: %q at %d, want %q", p, i, rec.value, rec.offset, values[i])
					}
				}
			}
		})
	}
}

// TestStartFailureExitsOnlyWhenAsked: a broker whose port is taken starts
// again every restartDelay in the simulated world (a supervised
// service), and ends with the error, trying nothing more, when told to
// exit on a start failure.
func TestStartFailureExitsOnlyWhenAsked(t *testing.T) {
	for _, exit := range []bool{false, true} {
		logs := &strings.Builder{}
		w := world.New(world.Config{Seed: 1, Log: logs})
		var exitErr error
		exits := 0
		w.AddNode(brokerNode, func(env sim.Env) {
			// Something else holds the port first.
			if _, err := env.Net.Listen(":9092", sim.ConnOptions{}, func(sim.Conn) sim.ConnHandler { return nil }); err != nil {
				t.Fatal(err)
			}
			broker.Start(broker.DefaultConfig(), func(b *broker.Broker) {
				if exit {
					b.ExitOnStartFailure(func(err error) { exitErr = err; exits++ })
				}
			})(env)
		})
		w.Run(5*time.Second, 0)
		retries := strings.Count(logs.String(), "starting again")
		if !exit {
			if retries < 3 || exits != 0 {
				t.Fatalf("without ExitOnStartFailure: %d restarts logged in 5 s, %d exits\n%s", retries, exits, logs)
			}
			continue
		}
		if exits != 1 || !errors.Is(exitErr, sim.ErrAddrInUse) || retries != 0 {
			t.Fatalf("with ExitOnStartFailure: %d exits (%v), %d restarts\n%s", exits, exitErr, retries, logs)
		}
	}
}
