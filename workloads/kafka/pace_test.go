package kafka

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim/world"
)

// paceRun runs a driver at rate against the toy broker for runFor of
// simulated time and returns its counters.
func paceRun(t *testing.T, rate float64, concurrency int, runFor time.Duration) DriverStats {
	t.Helper()
	w := world.New(world.Config{Seed: 3})
	w.AddNode("broker", startToyBroker(newToyLog(testTopic, testPartitions)))
	var d *Driver
	cfg := DriverConfig{
		Bootstrap: []string{"broker:9092"}, Topic: testTopic, Partitions: []int32{0, 1, 2, 3},
		Rate: rate, Concurrency: concurrency,
		Producer: ProducerConfig{Linger: 5 * time.Millisecond},
		Consumer: ConsumerConfig{FetchMaxWait: 100 * time.Millisecond},
	}
	w.AddNode("client", StartDriver(cfg, func(started *Driver) { d = started }))
	w.Run(runFor, simEventsMax)
	if d == nil {
		t.Fatal("the driver did not start")
	}
	return d.Stats()
}

// TestDriverPacesHighRates: a rate far above one send per millisecond is
// met by sending several records per round, on the schedule.
func TestDriverPacesHighRates(t *testing.T) {
	const rate, runFor = 20000, 2 * time.Second
	s := paceRun(t, rate, 10_000, runFor)
	want := int(rate * runFor.Seconds())
	if s.Sent < want*99/100 || s.Sent > want || s.Skipped != 0 {
		t.Fatalf("%d sends/s for %v: sent %d (skipped %d), want about %d", rate, runFor, s.Sent, s.Skipped, want)
	}
	if s.OK < s.Sent*9/10 {
		t.Fatalf("sent %d, only %d acknowledged", s.Sent, s.OK)
	}
	if again := paceRun(t, rate, 10_000, runFor); again.Sent != s.Sent || again.OK != s.OK {
		t.Fatalf("same seed, %d/%d sent/ok then %d/%d", s.Sent, s.OK, again.Sent, again.OK)
	}
}

// TestDriverSkipsWhatConcurrencyRefuses: sends due while the concurrency
// bound is reached are skipped and counted, not made up in a burst.
func TestDriverSkipsWhatConcurrencyRefuses(t *testing.T) {
	const rate, runFor = 5000, time.Second
	s := paceRun(t, rate, 1, runFor)
	due := int(rate * runFor.Seconds())
	if s.Skipped == 0 || s.Sent >= due/2 {
		t.Fatalf("one send at a time at %d/s: sent %d, skipped %d", rate, s.Sent, s.Skipped)
	}
	if s.Sent+s.Skipped+s.Refused > due || s.Sent+s.Skipped+s.Refused < due*99/100 {
		t.Fatalf("sent %d + skipped %d + refused %d, but %d were due", s.Sent, s.Skipped, s.Refused, due)
	}
}
