package reports

import (
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// DefaultWindow is the width of a time series window: fine enough to see a
// fault's effect, coarse enough that a window holds enough operations for
// a p99.
const DefaultWindow = 100 * time.Millisecond

// windowsMax bounds a series; a longer run needs a wider window.
const windowsMax = 1_000_000

// Window is what completed in one window of run time, [Start, Start+Width).
// An operation belongs to the window its completion falls in: a send is
// counted when it is acknowledged, whenever it was invoked.
type Window struct {
	// Index is the window's position: Start is Index × the series' width.
	Index int
	Start time.Duration
	// SendsAcked, SendsFailed and SendsUnknown count sends completing ok,
	// fail and info.
	SendsAcked, SendsFailed, SendsUnknown int64
	// RecordsPolled counts the records ok polls returned.
	RecordsPolled int64
	// SendP50 and SendP99 are latency percentiles of the sends acked in
	// the window; zero when SendsAcked is.
	SendP50, SendP99 time.Duration
}

// Series is a history cut into windows of equal width, from time zero to
// the window holding the history's last operation.
type Series struct {
	Width   time.Duration
	Windows []Window
}

// Rate turns a count in one window into a count per second.
func (s Series) Rate(n int64) float64 { return float64(n) / s.Width.Seconds() }

// End is where the last window ends.
func (s Series) End() time.Duration { return time.Duration(len(s.Windows)) * s.Width }

// NewSeries cuts h into windows of width. It fails on a history with an
// operation before time zero or one so long that it needs more than a
// million windows.
func NewSeries(h history.History, width time.Duration) (Series, error) {
	if width <= 0 {
		return Series{}, fmt.Errorf("series window %v: must be positive", width)
	}
	var lastNs int64
	for i := range h {
		if h[i].Time < 0 {
			return Series{}, fmt.Errorf("series: op %d at %d ns, before the run began", h[i].Index, h[i].Time)
		}
		lastNs = max(lastNs, h[i].Time)
	}
	s := Series{Width: width}
	if len(h) == 0 {
		return s, nil
	}
	count := lastNs/int64(width) + 1
	if count > windowsMax {
		return Series{}, fmt.Errorf("series: %v of history in %v windows needs %d windows, more than %d",
			time.Duration(lastNs), width, count, windowsMax)
	}
	s.Windows = make([]Window, count)
	for i := range s.Windows {
		s.Windows[i] = Window{Index: i, Start: time.Duration(i) * width}
	}
	ops, _, _ := pairOps(h)
	acked := make([][]int64, count)
	for _, op := range ops {
		i := op.doneNs / int64(width)
		w := &s.Windows[i]
		switch {
		case op.f == history.Poll && op.outcome == history.OK:
			w.RecordsPolled += int64(op.records)
		case op.f != history.Send:
		case op.outcome == history.OK:
			w.SendsAcked++
			acked[i] = append(acked[i], op.latencyNs())
		case op.outcome == history.Fail:
			w.SendsFailed++
		case op.outcome == history.Info:
			w.SendsUnknown++
		}
	}
	// One histogram, reset per window: a histogram per window would cost
	// its whole bucket array each.
	hist := newLatencyHistogram()
	for i, latencies := range acked {
		if len(latencies) == 0 {
			continue
		}
		hist.Reset()
		for _, ns := range latencies {
			recordLatency(hist, ns)
		}
		s.Windows[i].SendP50 = time.Duration(hist.ValueAtPercentile(50)) * time.Microsecond
		s.Windows[i].SendP99 = time.Duration(hist.ValueAtPercentile(99)) * time.Microsecond
	}
	return s, nil
}
