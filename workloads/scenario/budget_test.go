package scenario

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/world"
)

func checkNamed(t *testing.T, r Result, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, r.Checks)
	return Check{}
}

func wantAll(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s %q does not say %q", what, s, p)
		}
	}
}

// TestEventBudgetStopsTheRun: a run that spends its event budget stops
// there, fails its budget check naming the budget, what it used and the
// simulated time, and stops at the same event every time.
func TestEventBudgetStopsTheRun(t *testing.T) {
	d := counterDef(t)
	o := short(1)
	o.EventsMax = 5000
	a, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	c := checkNamed(t, a, "budget")
	if c.OK {
		t.Fatalf("the budget check held: %s", c.Detail)
	}
	if a.Events != 5000 || a.SimTime >= o.Run+o.Drain {
		t.Errorf("the run went on: %d events, %v of simulated time", a.Events, a.SimTime)
	}
	wantAll(t, "budget detail", c.Detail, "event budget spent", "5000 events", "s of simulated time")
	b, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.TraceHash != b.TraceHash || a.SimTime != b.SimTime {
		t.Errorf("a budget stop is not deterministic: %s at %v, then %s at %v", a.TraceHash, a.SimTime, b.TraceHash, b.SimTime)
	}
}

// TestMemoryBudgetStopsTheRun: a run whose estimated footprint passes the
// memory budget stops and names what it held and when.
func TestMemoryBudgetStopsTheRun(t *testing.T) {
	d := counterDef(t)
	// Well under the run's peak (about 414 KiB, most of it the disks and
	// the client buffers; the queue holds a few dozen events now that
	// stopped timers are swept out of short queues too).
	d.Budget.MemoryBytesMax = 256 << 10
	o := short(1)
	r, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	c := checkNamed(t, r, "budget")
	if c.OK {
		t.Fatalf("the budget check held: %s", c.Detail)
	}
	if r.SimTime >= o.Run+o.Drain {
		t.Errorf("the run went on to %v", r.SimTime)
	}
	wantAll(t, "budget detail", c.Detail, "memory budget spent", "against 256.0 KiB", "disks", "client buffers", "queued events")
	// The same run within a budget it does not reach holds.
	d.Budget.MemoryBytesMax = 256 << 20
	r, err = Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if c := checkNamed(t, r, "budget"); !c.OK {
		t.Errorf("a run within its budgets failed: %s", c.Detail)
	}
}

// TestDefaultEventBudgetIsInTheRecipe: a run without --events-max gets
// the scenario's budget for its length, named in its recipe so that a
// reproduction carries it whatever the default becomes.
func TestDefaultEventBudgetIsInTheRecipe(t *testing.T) {
	for _, name := range []string{"counter", "single-broker"} {
		d, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Seed: 1, Run: 2 * time.Second, Drain: 1500 * time.Millisecond}
		r, err := Run(d, o)
		if err != nil {
			t.Fatal(err)
		}
		want := d.Budget.EventsPerSecMax * 4 // 3.5 s rounds up to 4
		if want == 0 || r.EventsMax != want {
			t.Errorf("%s: events budget %d in the recipe, want %d", name, r.EventsMax, want)
		}
		if d.Budget.MemoryBytesMax == 0 || d.Budget.StallMax == 0 {
			t.Errorf("%s: no memory budget or stall bound: %+v", name, d.Budget)
		}
	}
}

// TestDefaultBudgetsLeaveRoom: an ordinary seed uses at most a tenth of
// its scenario's event budget, so that the budget stops runaways only.
func TestDefaultBudgetsLeaveRoom(t *testing.T) {
	for _, name := range []string{"counter", "single-broker"} {
		d, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(d, Options{Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		if r.Events*10 > r.EventsMax {
			t.Errorf("%s seed 2: %d events of a budget of %d", name, r.Events, r.EventsMax)
		}
		if c := checkNamed(t, r, "budget"); !c.OK {
			t.Errorf("%s seed 2: %s", name, c.Detail)
		}
	}
}

// TestConsumerSkipsPastHWIsCaughtByTheWatchdog: a consumer whose position
// jumps past the high watermark resets and re-reads forever; the watchdog
// stops the run within its budgets and names the consumer, the partition
// and the reset loop. Without the bug the same seeds pass.
func TestConsumerSkipsPastHWIsCaughtByTheWatchdog(t *testing.T) {
	d := singleBrokerDef(t)
	for seed := uint64(1); seed <= 2; seed++ {
		buggy, err := Run(d, withParams(seed, nil, faults.BugConsumerSkipsPastHW))
		if err != nil {
			t.Fatal(err)
		}
		c := checkNamed(t, buggy, "progress")
		if c.OK {
			t.Errorf("seed %d: the watchdog saw progress: %s", seed, c.Detail)
			continue
		}
		wantAll(t, "progress detail", c.Detail, "no progress", "consumer sluice-consumer-0 on jepsen-",
			"reset to offset 0 after OFFSET_OUT_OF_RANGE", "re-read offsets 0..", "without reading past", "run stopped")
		if b := checkNamed(t, buggy, "budget"); !b.OK {
			t.Errorf("seed %d: a budget stopped the run before the watchdog did: %s", seed, b.Detail)
		}
		if buggy.SimTime >= time.Duration(buggy.Run+buggy.Drain) {
			t.Errorf("seed %d: the run was not stopped: %v", seed, buggy.SimTime)
		}
		t.Logf("seed %d: %s", seed, c.Detail)
		clean, err := Run(d, withParams(seed, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !clean.OK() {
			t.Errorf("seed %d without the bug failed: %+v", seed, clean.Failed())
		}
	}
}

// TestWatchdog: waits during the faults do not count; an idle activity is
// never stuck; an activity with work is stuck after stallMax without
// progress, or sooner after attemptsMax attempts.
func TestWatchdog(t *testing.T) {
	const healed = 10 * time.Second
	b := Budget{StallMax: 5 * time.Second, StallAttemptsMax: 20}
	describe := func() string { return "spinning" }
	waiting := func(mark int64, attempts int) []Activity {
		return []Activity{{Name: "c1", Mark: mark, Waiting: true, Attempts: attempts, Describe: describe}}
	}
	// Stuck from the start: judged from the heal on.
	d := newWatchdog(b, healed)
	for at := time.Duration(0); at < healed+b.StallMax; at += time.Second {
		if d.observe(at, waiting(7, 0)) {
			t.Fatalf("stuck at %v, before the heal plus %v", at, b.StallMax)
		}
	}
	if !d.observe(healed+b.StallMax, waiting(7, 0)) {
		t.Fatalf("not stuck %v after the heal", b.StallMax)
	}
	c := d.check()
	wantAll(t, "verdict", c.Detail, "no progress for 5s", "c1, stuck since 10.000s", "spinning")
	if c.OK {
		t.Error("a stuck activity passed")
	}

	// Idle, then progressing: never stuck.
	d = newWatchdog(b, healed)
	for at := time.Duration(0); at < 30*time.Second; at += time.Second {
		acts := []Activity{{Name: "idle", Mark: 1, Describe: describe}, {Name: "busy", Mark: int64(at), Waiting: true, Describe: describe}}
		if d.observe(at, acts) {
			t.Fatalf("stuck at %v: %s", at, d.check().Detail)
		}
	}
	if c := d.check(); !c.OK {
		t.Errorf("progress check failed: %s", c.Detail)
	}

	// Attempts made during the faults do not count; 20 after them do.
	d = newWatchdog(b, healed)
	if d.observe(healed-time.Second, waiting(3, 100)) || d.observe(healed, waiting(3, 110)) {
		t.Fatal("attempts during the faults counted")
	}
	if d.observe(healed+time.Millisecond, waiting(3, 129)) {
		t.Fatal("stuck after 19 attempts")
	}
	if !d.observe(healed+2*time.Millisecond, waiting(3, 130)) {
		t.Fatal("not stuck after 20 attempts")
	}
	wantAll(t, "verdict", d.check().Detail, "over 20 attempts")

	// A client that counts its attempts afresh without progress (the
	// oldest send gave up, the next one retries) is still stuck.
	d = newWatchdog(Budget{StallMax: 5 * time.Second}, healed)
	for at := healed; at < healed+b.StallMax; at += time.Second {
		if d.observe(at, waiting(3, int(at/time.Second)%3)) {
			t.Fatalf("stuck at %v", at)
		}
	}
	if !d.observe(healed+b.StallMax, waiting(3, 0)) {
		t.Fatal("attempts counted afresh restarted the stall clock")
	}
}

// TestWatchdogNamesAStuckProducer: a broker killed for good leaves the
// producers retrying sends that cannot succeed; ten seconds after the
// schedule's end the watchdog stops the run and names a producer and its
// oldest send.
func TestWatchdogNamesAStuckProducer(t *testing.T) {
	d := singleBrokerDef(t)
	o := withParams(1, nil)
	o.Schedule = &faults.Schedule{Actions: []faults.Action{{At: faults.Duration(time.Second), Op: faults.Kill, Node: singleBrokerNode}}}
	o.Run, o.Drain = 5*time.Second, 20*time.Second
	r, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	c := checkNamed(t, r, "progress")
	if c.OK {
		t.Fatalf("the watchdog saw progress: %s", c.Detail)
	}
	wantAll(t, "progress detail", c.Detail, "no progress for 10s (5.000s to 15.000s", "'s producer, stuck since 5.000s",
		"no send pending; 20 failed since the last written (last: delivery timeout")
	if r.SimTime != 15*time.Second {
		t.Errorf("the run stopped at %v, want 15s", r.SimTime)
	}
	t.Log(c.Detail)
}

// TestBudgetNamesTheSpinningClient: with no bound on attempts, the
// consumer's reset loop fills memory long before ten seconds pass; the
// memory budget stops the run and points at the consumer spinning.
func TestBudgetNamesTheSpinningClient(t *testing.T) {
	d := singleBrokerDef(t)
	d.Budget.StallAttemptsMax = 0
	d.Budget.MemoryBytesMax = 128 << 20
	r, err := Run(d, withParams(1, nil, faults.BugConsumerSkipsPastHW))
	if err != nil {
		t.Fatal(err)
	}
	c := checkNamed(t, r, "budget")
	if c.OK {
		t.Fatalf("the budget held: %s", c.Detail)
	}
	wantAll(t, "budget detail", c.Detail, "memory budget spent", "against 128.0 MiB", "run stopped",
		"the client longest without progress: ", "consumer sluice-consumer-0 on jepsen-", "reset to offset 0 after OFFSET_OUT_OF_RANGE")
	t.Log(c.Detail)
}

// TestSlicedRunIsTheSameRun: running the world in budget slices, with the
// watchdog and the meter looking between them, dispatches the same events
// as running it in one go: the trace hash is the same.
func TestSlicedRunIsTheSameRun(t *testing.T) {
	for _, name := range []string{"counter", "single-broker"} {
		d, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Seed: 4, Run: 4 * time.Second, Drain: 2 * time.Second}
		sliced, err := Run(d, o)
		if err != nil {
			t.Fatal(err)
		}
		// The same run by hand, in one piece.
		o, err = d.resolve(o)
		if err != nil {
			t.Fatal(err)
		}
		w := world.New(world.Config{Seed: o.Seed})
		cluster := d.Build(w, o)
		if _, err := sliced.Schedule.Install(w); err != nil {
			t.Fatal(err)
		}
		w.Run(o.Run+o.Drain, 0)
		cluster.Finish(w)
		if whole := fmt.Sprintf("%016x", w.TraceHash()); whole != sliced.TraceHash {
			t.Errorf("%s: sliced run %s, whole run %s", name, sliced.TraceHash, whole)
		}
	}
}
