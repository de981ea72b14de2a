package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/sluice-sim/sluice/checkers/history"
)

// Latency histograms record microseconds from 1 µs to an hour with three
// significant digits: a latency is known to within 0.1%.
const (
	latencyUsLowest  = 1
	latencyUsHighest = int64(time.Hour / time.Microsecond)
	latencySigFigs   = 3
)

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyUsLowest, latencyUsHighest, latencySigFigs)
}

// recordLatency records latencyNs, rounded to the nearest microsecond, and
// reports whether it was longer than the histogram holds (it is then
// recorded as the longest it holds).
func recordLatency(h *hdrhistogram.Histogram, latencyNs int64) (clamped bool) {
	if latencyNs < 0 {
		panic(fmt.Sprintf("reports: negative latency %d ns", latencyNs))
	}
	us := (latencyNs + 500) / 1000
	if us > latencyUsHighest {
		us, clamped = latencyUsHighest, true
	}
	if err := h.RecordValue(us); err != nil {
		panic(fmt.Sprintf("reports: record %d µs: %v", us, err))
	}
	return clamped
}

// OpLatency is how one kind of operation went: its outcomes and the
// latency of those that succeeded. Failed and indeterminate operations are
// counted but not timed: a timeout's latency is the client's timeout, not
// the system's.
type OpLatency struct {
	F history.F
	// OK, Fail and Info count completions by outcome.
	OK, Fail, Info int64
	// Pending counts invokes the history ends before completing.
	Pending int64
	// Unpaired counts completions the history cannot match to an invoke.
	Unpaired int64
	// Clamped counts ok operations longer than an hour, recorded as an
	// hour.
	Clamped int64
	// Histogram holds completion − invoke of every ok operation, in
	// microseconds.
	Histogram *hdrhistogram.Histogram
}

// Percentiles are points of a latency distribution.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
}

// Percentiles reads the distribution of ok latencies; all zero when none
// succeeded. Percentile p is the latency of the operation at rank
// round(p% × count) in increasing order (at least rank 1), to within the
// histogram's precision.
func (o OpLatency) Percentiles() Percentiles {
	h := o.Histogram
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Percentiles{
		P50:  us(h.ValueAtPercentile(50)),
		P90:  us(h.ValueAtPercentile(90)),
		P99:  us(h.ValueAtPercentile(99)),
		P999: us(h.ValueAtPercentile(99.9)),
		Max:  us(h.Max()),
	}
}

// Latencies are the latencies of a history's sends and polls.
type Latencies struct {
	Send, Poll OpLatency
}

// Kinds lists the operation kinds in a fixed order: send, then poll.
func (l Latencies) Kinds() []OpLatency { return []OpLatency{l.Send, l.Poll} }

// NewLatencies measures every send and poll of h.
func NewLatencies(h history.History) Latencies {
	ops, sends, polls := pairOps(h)
	l := Latencies{
		Send: OpLatency{F: history.Send, Pending: sends.pending, Unpaired: sends.unpaired, Histogram: newLatencyHistogram()},
		Poll: OpLatency{F: history.Poll, Pending: polls.pending, Unpaired: polls.unpaired, Histogram: newLatencyHistogram()},
	}
	for _, op := range ops {
		o := &l.Send
		if op.f == history.Poll {
			o = &l.Poll
		}
		switch op.outcome {
		case history.OK:
			o.OK++
			if recordLatency(o.Histogram, op.latencyNs()) {
				o.Clamped++
			}
		case history.Fail:
			o.Fail++
		case history.Info:
			o.Info++
		default:
			panic(fmt.Sprintf("reports: paired a %q completion", op.outcome))
		}
	}
	return l
}

// latencyHeader heads the latency table, in the order latencyRow fills it.
var latencyHeader = []string{"op", "ok", "fail", "info", "pending", "p50", "p90", "p99", "p99.9", "max"}

func latencyRow(o OpLatency) []string {
	row := []string{string(o.F), itoa(o.OK), itoa(o.Fail), itoa(o.Info), itoa(o.Pending)}
	if o.OK == 0 {
		return append(row, "-", "-", "-", "-", "-")
	}
	p := o.Percentiles()
	return append(row, FormatLatency(p.P50), FormatLatency(p.P90), FormatLatency(p.P99),
		FormatLatency(p.P999), FormatLatency(p.Max))
}

// WriteLatencyTable renders l as a terminal table, one row per operation
// kind, with a note under it for what could not be measured.
func WriteLatencyTable(w io.Writer, l Latencies) error {
	var rows [][]string
	for _, o := range l.Kinds() {
		rows = append(rows, latencyRow(o))
	}
	// The header is written as it should read: auto-formatting would
	// print "p99.9" as "P 99 . 9".
	header := make([]string, len(latencyHeader))
	align := tw.MakeAlign(len(latencyHeader), tw.AlignRight).Set(0, tw.AlignLeft)
	for i, h := range latencyHeader {
		header[i] = strings.ToUpper(h)
	}
	err := writeTable(w, header, rows,
		tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	if err != nil {
		return fmt.Errorf("latency table: %w", err)
	}
	for _, note := range latencyNotes(l) {
		if _, err := fmt.Fprintln(w, note); err != nil {
			return fmt.Errorf("latency table note: %w", err)
		}
	}
	return nil
}

// latencyNotes says what the latency table leaves out.
func latencyNotes(l Latencies) []string {
	var notes []string
	for _, o := range l.Kinds() {
		if o.Unpaired > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d completions without a matching invoke were not measured", o.F, o.Unpaired))
		}
		if o.Clamped > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d operations longer than an hour were counted as an hour", o.F, o.Clamped))
		}
	}
	return notes
}

// FormatLatency prints a latency in the unit that reads best: µs below a
// millisecond, ms below a second, s above.
func FormatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
