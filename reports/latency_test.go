package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// TestLatencyPercentilesHandComputed: 1000 ok sends taking 1..1000 µs.
// Percentile p is the latency at rank round(p% × 1000): p50 is the 500th
// smallest (500 µs), p90 900 µs, p99 990 µs, p99.9 999 µs, max 1000 µs.
// Below 2048 µs a 3-digit histogram is exact, so these hold to the µs.
// Failed, indeterminate and pending sends, slower than all of them, must
// not move a single percentile.
func TestLatencyPercentilesHandComputed(t *testing.T) {
	var b builder
	// Shuffled order of completion: the histogram must not care.
	for i := int64(1000); i >= 1; i-- {
		start := ms(float64(i))
		b.send(int(i%3), start, start+us(i), history.OK)
	}
	b.send(7, 0, ms(3_600_000), history.Fail) // an hour: a timeout
	b.send(7, 0, ms(5_000), history.Info)
	b.send(8, 0, ms(9_000), history.Info)
	b.send(9, ms(10), 0, "") // never completes
	l := NewLatencies(b.history())

	s := l.Send
	if s.OK != 1000 || s.Fail != 1 || s.Info != 2 || s.Pending != 1 || s.Unpaired != 0 {
		t.Fatalf("counts: ok %d fail %d info %d pending %d unpaired %d", s.OK, s.Fail, s.Info, s.Pending, s.Unpaired)
	}
	got := s.Percentiles()
	want := Percentiles{P50: 500 * time.Microsecond, P90: 900 * time.Microsecond, P99: 990 * time.Microsecond,
		P999: 999 * time.Microsecond, Max: 1000 * time.Microsecond}
	if got != want {
		t.Fatalf("percentiles %+v, want %+v", got, want)
	}
	if l.Poll.OK != 0 || l.Poll.Percentiles() != (Percentiles{}) {
		t.Fatalf("polls measured from a history without polls: %+v", l.Poll)
	}
}

// TestLatencyFewSamples: with 4 samples, rank round(p% × 4) (at least 1)
// picks 20, 40, 40, 40 µs for p50, p90, p99, p99.9 — the HdrHistogram
// rule, not interpolation.
func TestLatencyFewSamples(t *testing.T) {
	var b builder
	for i, lat := range []int64{40, 10, 30, 20} {
		b.poll(i, 0, us(lat), history.OK, 1)
	}
	got := NewLatencies(b.history()).Poll.Percentiles()
	want := Percentiles{P50: 20 * time.Microsecond, P90: 40 * time.Microsecond, P99: 40 * time.Microsecond,
		P999: 40 * time.Microsecond, Max: 40 * time.Microsecond}
	if got != want {
		t.Fatalf("percentiles %+v, want %+v", got, want)
	}
}

// TestLatencyLargeValuesWithinPrecision: above 2048 µs values share
// buckets; a percentile is within 0.1% of the true value.
func TestLatencyLargeValuesWithinPrecision(t *testing.T) {
	var b builder
	for i := range 100 {
		b.send(0, ms(float64(i)), ms(float64(i))+ms(123.456), history.OK)
	}
	p := NewLatencies(b.history()).Send.Percentiles()
	for name, d := range map[string]time.Duration{"p50": p.P50, "p99": p.P99, "max": p.Max} {
		if diff := d - 123456*time.Microsecond; diff < 0 || diff > 124*time.Microsecond {
			t.Errorf("%s = %v, want 123.456 ms within 0.1%% (above)", name, d)
		}
	}
}

// TestLatencyPairing: sends pair by process and value (several in flight
// on one process), polls by process; a completion with no invoke, or
// before its invoke, is counted unpaired, not measured.
func TestLatencyPairing(t *testing.T) {
	rec := func(v string) *history.Record { return &history.Record{Topic: "t", Value: v, Offset: -1} }
	h := history.History{
		{Time: 0, Process: 1, Type: history.Invoke, F: history.Send, Record: rec("a")},
		{Time: 0, Process: 1, Type: history.Invoke, F: history.Send, Record: rec("b")},
		{Time: us(10), Process: 1, Type: history.OK, F: history.Send, Record: rec("b")},
		{Time: us(30), Process: 1, Type: history.OK, F: history.Send, Record: rec("a")},
		// Same value, other process: not a's completion.
		{Time: us(40), Process: 2, Type: history.OK, F: history.Send, Record: rec("a")},
		{Time: us(50), Process: 3, Type: history.OK, F: history.Poll},
		{Time: us(60), Process: 3, Type: history.Invoke, F: history.Poll},
		{Time: us(65), Process: 3, Type: history.OK, F: history.Poll, Records: []history.Record{{Value: "a"}}},
		{Time: us(70), Process: 4, Type: history.Invoke, F: history.Send, Record: rec("c")},
		// Completes before it was invoked: a malformed history.
		{Time: us(69), Process: 4, Type: history.OK, F: history.Send, Record: rec("c")},
		{Time: us(80), Process: 5, Type: "bogus", F: history.Poll},
		{Time: us(90), Process: 5, Type: history.Invoke, F: history.Assign},
	}
	l := NewLatencies(h)
	if l.Send.OK != 2 || l.Send.Unpaired != 2 || l.Send.Pending != 1 {
		t.Fatalf("sends: %+v", l.Send)
	}
	if p := l.Send.Percentiles(); p.P50 != 10*time.Microsecond || p.Max != 30*time.Microsecond {
		t.Fatalf("send percentiles %+v, want p50 10µs max 30µs", p)
	}
	if l.Poll.OK != 1 || l.Poll.Unpaired != 2 || l.Poll.Percentiles().Max != 5*time.Microsecond {
		t.Fatalf("polls: %+v %+v", l.Poll, l.Poll.Percentiles())
	}
}

// TestLatencyClampsAtAnHour: an ok op longer than the histogram holds is
// recorded as an hour and counted, not dropped or crashed on.
func TestLatencyClampsAtAnHour(t *testing.T) {
	var b builder
	b.send(0, 0, int64(2*time.Hour), history.OK)
	l := NewLatencies(b.history())
	if l.Send.Clamped != 1 || l.Send.OK != 1 {
		t.Fatalf("clamped %d ok %d", l.Send.Clamped, l.Send.OK)
	}
	if max := l.Send.Percentiles().Max; max < time.Hour || max > time.Hour+4*time.Second {
		t.Fatalf("max %v, want an hour within precision", max)
	}
	var out bytes.Buffer
	if err := WriteLatencyTable(&out, l); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 operations longer than an hour") {
		t.Fatalf("table does not note the clamp:\n%s", out.String())
	}
}

func TestWriteLatencyTable(t *testing.T) {
	var b builder
	for i := int64(1); i <= 1000; i++ {
		b.send(0, ms(float64(i)), ms(float64(i))+us(i), history.OK)
	}
	b.send(1, 0, 5, history.Fail)
	var out bytes.Buffer
	if err := WriteLatencyTable(&out, NewLatencies(b.history())); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"P99.9", "PENDING", "500 µs", "990 µs", "999 µs", "1.00 ms"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	lines := strings.Split(text, "\n")
	var sendRow, pollRow string
	for _, l := range lines {
		if strings.Contains(l, " send ") {
			sendRow = l
		}
		if strings.Contains(l, " poll ") {
			pollRow = l
		}
	}
	// 1000 ok, 1 fail, 0 info, 0 pending.
	if fields := strings.Fields(strings.ReplaceAll(sendRow, "│", " ")); len(fields) < 5 ||
		strings.Join(fields[:5], " ") != "send 1000 1 0 0" {
		t.Errorf("send row %q", sendRow)
	}
	// No ok polls: dashes, not zeros that read as latencies.
	if strings.Count(pollRow, "-") != 5 {
		t.Errorf("poll row %q: want five dashes for the latencies", pollRow)
	}
}

func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "0 µs",
		999 * time.Microsecond:     "999 µs",
		time.Millisecond:           "1.00 ms",
		123456 * time.Microsecond:  "123.46 ms",
		3272999 * time.Microsecond: "3.273 s",
	} {
		if got := FormatLatency(d); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", d, got, want)
		}
	}
}
