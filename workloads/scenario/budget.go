package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim/world"
)

// Budget bounds what one run of a scenario may use, so that a run that
// runs away (a retry storm, a client re-reading the same records forever)
// stops with a verdict naming what it spent instead of running until the
// machine runs out of memory. Every figure is deterministic: a seed's run
// stops at the same event on any machine, so a budget verdict reproduces
// like any other.
type Budget struct {
	// EventsPerSecMax is the default event budget per simulated second of
	// run and drain; Options.EventsMax, when set, replaces it.
	EventsPerSecMax uint64
	// MemoryBytesMax bounds an estimate of the memory the run holds:
	// the history, the clients' buffers, the simulated disks and the
	// queued events (Footprint). It is counted from what the run holds,
	// not read from the Go heap, which differs from machine to machine.
	MemoryBytesMax int64
	// StallMax is how long, once the faults have healed, a client may have
	// work and make no progress before the run fails (see watchdog).
	StallMax time.Duration
	// StallAttemptsMax is how many attempts (resets, retries, failed
	// requests) a client may make without progress once the faults heal:
	// a client spinning in a loop is stopped long before StallMax of
	// simulated time, in which it could fill any memory. Zero means no
	// bound.
	StallAttemptsMax int
}

// Footprint estimates the memory a run holds, from counts the run keeps.
type Footprint struct {
	HistoryOps   int
	HistoryBytes int64
	// ClientBytes are the records clients buffer and their results.
	ClientBytes int64
	// DiskBytes are the bytes the simulated disks hold, which live in
	// memory.
	DiskBytes int64
	// QueuedEvents are the world's pending events; the runner fills it.
	QueuedEvents int
}

// queuedEventBytes estimates an event in the queue: the entry, its
// closure and what the closure holds.
const queuedEventBytes = 256

// Bytes is the estimate's total.
func (f Footprint) Bytes() int64 {
	return f.HistoryBytes + f.ClientBytes + f.DiskBytes + int64(f.QueuedEvents)*queuedEventBytes
}

func (f Footprint) String() string {
	return fmt.Sprintf("history %s in %d ops, client buffers %s, disks %s, %d queued events",
		formatBytes(f.HistoryBytes), f.HistoryOps, formatBytes(f.ClientBytes), formatBytes(f.DiskBytes), f.QueuedEvents)
}

// Metered is a cluster that reports its footprint.
type Metered interface {
	Footprint() Footprint
}

// budgetSliceTime and budgetSliceEvents bound how much runs between two
// looks at the budgets and the clients' progress: a slice of simulated
// time, or fewer events when a client spins so fast that a slice of time
// could fill memory. Running the loop in slices dispatches the same events
// in the same order as one long run.
const (
	budgetSliceTime   = 10 * time.Millisecond
	budgetSliceEvents = 10_000
)

// eventsMax is the run's event budget: the option's, or the scenario's per
// simulated second; zero means no bound.
func (b Budget) eventsMax(o Options) uint64 {
	if o.EventsMax > 0 {
		return o.EventsMax
	}
	return b.EventsPerSecMax * uint64((o.Run+o.Drain+time.Second-1)/time.Second)
}

// budgetRun is the state of a run under a budget.
type budgetRun struct {
	budget    Budget
	eventsMax uint64
	peak      Footprint
	peakAt    time.Duration
	// spent names the budget that stopped the run, "" while none did.
	spent string
}

// runBudgeted runs the world until end in slices, stopping early when a
// budget is spent or the watchdog finds clients stuck. It returns the
// checks that judge the budgets and the clients' progress.
func runBudgeted(w *world.World, d Definition, o Options, cluster Cluster, healedAt time.Duration) []Check {
	end := o.Run + o.Drain
	br := &budgetRun{budget: d.Budget, eventsMax: o.EventsMax}
	meter, _ := cluster.(Metered)
	watched, _ := cluster.(Watched)
	var dog *watchdog
	if watched != nil && d.Budget.StallMax > 0 {
		dog = newWatchdog(d.Budget, healedAt)
	}
	// Every slice moves time to its end or runs budgetSliceEvents events;
	// the event budget bounds the slices of the second kind.
	slicesMax := int(end/budgetSliceTime) + 1 + int(br.eventsMax/budgetSliceEvents)
	for range slicesMax {
		if w.Now() >= end {
			break
		}
		// Without an event budget, slices are of time only, so that
		// slicesMax reaches the end.
		sliceEvents := uint64(0)
		if br.eventsMax > 0 {
			sliceEvents = min(w.Loop().Dispatched()+budgetSliceEvents, br.eventsMax)
		}
		w.Run(min(w.Now()+budgetSliceTime, end), sliceEvents)
		if br.eventsSpent(w, end) || br.memorySpent(w, meter) {
			break
		}
		if dog != nil && dog.observe(w.Now(), watched.Progress()) {
			break
		}
	}
	budget := br.check(w)
	if dog != nil && !budget.OK {
		if s := dog.suspect(w.Now()); s != "" {
			budget.Detail += "; the client longest without progress: " + s
		}
	}
	checks := []Check{budget}
	if dog != nil {
		checks = append(checks, dog.check())
	}
	return checks
}

// eventsSpent reports whether the event budget stopped the run short of
// end: the loop returns at the budget without moving time to the slice's
// end.
func (br *budgetRun) eventsSpent(w *world.World, end time.Duration) bool {
	if br.eventsMax == 0 || w.Loop().Dispatched() < br.eventsMax || w.Now() >= end {
		return false
	}
	br.spent = "events"
	return true
}

func (br *budgetRun) memorySpent(w *world.World, meter Metered) bool {
	var f Footprint
	if meter != nil {
		f = meter.Footprint()
	}
	f.QueuedEvents = w.Loop().Pending()
	if f.Bytes() > br.peak.Bytes() {
		br.peak, br.peakAt = f, w.Now()
	}
	if br.budget.MemoryBytesMax == 0 || f.Bytes() <= br.budget.MemoryBytesMax {
		return false
	}
	br.spent = "memory"
	return true
}

// check is the budget verdict: what the run used of each budget, and
// which one stopped it, how much it used and when.
func (br *budgetRun) check(w *world.World) Check {
	events := w.Loop().Dispatched()
	eventsOf := fmt.Sprintf("%d events of %s", events, boundText(br.eventsMax))
	memoryOf := fmt.Sprintf("estimated memory peak %s of %s at %.1fs (%v)",
		formatBytes(br.peak.Bytes()), boundBytesText(br.budget.MemoryBytesMax), br.peakAt.Seconds(), br.peak)
	c := Check{Name: "budget", OK: br.spent == ""}
	switch br.spent {
	case "events":
		c.Detail = fmt.Sprintf("event budget spent: %d events by %.3fs of simulated time, run stopped; %s",
			events, w.Now().Seconds(), memoryOf)
	case "memory":
		c.Detail = fmt.Sprintf("memory budget spent: an estimated %s held at %.3fs against %s (%v), run stopped; %s",
			formatBytes(br.peak.Bytes()), br.peakAt.Seconds(), formatBytes(br.budget.MemoryBytesMax), br.peak, eventsOf)
	default:
		c.Detail = eventsOf + "; " + memoryOf
	}
	return c
}

func boundText(n uint64) string {
	if n == 0 {
		return "no bound"
	}
	return fmt.Sprint(n)
}

func boundBytesText(n int64) string {
	if n == 0 {
		return "no bound"
	}
	return formatBytes(n)
}

// formatBytes shows a byte count in binary units.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// meteredLog is a history log that keeps an estimate of the memory its
// operations hold, for the memory budget.
type meteredLog struct {
	*history.Log
	bytes int64
}

// Estimates of the Go structures a history holds on a 64-bit machine:
// an operation (with its share of the growing slice) and a record.
const (
	historyOpBytes     = 192
	historyRecordBytes = 80
)

// Add records op, counting its size.
func (m *meteredLog) Add(op history.Op) int {
	n := int64(historyOpBytes + len(op.Error))
	if op.Record != nil {
		n += historyRecordBytes + int64(len(op.Record.Key)+len(op.Record.Value))
	}
	for _, r := range op.Records {
		n += historyRecordBytes + int64(len(r.Key)+len(r.Value))
	}
	m.bytes += n
	return m.Log.Add(op)
}

// String shows the budget as sim list prints it.
func (b Budget) String() string {
	parts := []string{"events " + boundText(b.EventsPerSecMax) + "/s", "memory " + boundBytesText(b.MemoryBytesMax)}
	if b.StallMax > 0 {
		stall := "stall " + b.StallMax.String()
		if b.StallAttemptsMax > 0 {
			stall += fmt.Sprintf(" or %d attempts", b.StallAttemptsMax)
		}
		parts = append(parts, stall)
	}
	return strings.Join(parts, ", ")
}
