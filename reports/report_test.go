package reports

import (
	"bytes"
	"fmt"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// sampleRun is a small run with faults: sends every 2 ms, none acked while
// the broker is down (1 s to 1.5 s), slower under a slow disk, a poll
// every 10 ms, and a catch-up poll at the end far above the rest.
func sampleRun() (RunInfo, history.History) {
	var b builder
	for i := range 1500 {
		at := ms(2 * float64(i))
		lat := us(800 + int64(i%7)*50)
		switch {
		case at >= ms(1000) && at < ms(1500):
			b.send(i%2, at, ms(1500)+us(int64(i)), history.Info)
			continue
		case at >= ms(2000) && at < ms(2500):
			lat *= 40
		}
		b.send(i%2, at, at+lat, history.OK)
	}
	for i := range 300 {
		at := ms(10 * float64(i))
		b.poll(5, at, at+us(300), history.OK, 5)
	}
	b.poll(6, ms(2990), ms(2995), history.OK, 2000)
	run := RunInfo{
		Scenario: "single-broker", Seed: 42,
		Params: map[string]string{"flush": "group", "acks": "all", "faults": "disk"},
		Bugs:   []string{"skip-fsync"}, SimTime: 3 * time.Second, Events: 12345, TraceHash: "00c0ffee",
		Checks: []CheckLine{
			{Name: "kafka", OK: true, Detail: "no anomalies"},
			{Name: "linearizable", OK: false, Detail: "lost write <script>alert(1)</script> & more"},
		},
		Stats: map[string]int64{"sends": 1500, "polled_records": 3500, "a_first": 1},
		WorldEvents: []string{
			"1.000000s kill b1",
			"1.500000s restart b1",
			"2.000000s slow-disk b1 x40",
			"2.500000s disk-heal b1",
			"2.600000s power-loss b1",
			"2.600000s   b1 disk: 00000000000000000000.log torn",
			"2.700000s restart b1",
			"this line is not an event",
		},
	}
	return run, b.history()
}

func sampleReport(t *testing.T) Report {
	t.Helper()
	run, h := sampleRun()
	r, err := NewReport(run, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChartsRenderDeterministically: every chart draws a PNG of the
// promised size and an SVG, and the same report draws the same bytes.
func TestChartsRenderDeterministically(t *testing.T) {
	r := sampleReport(t)
	charts := r.Charts()
	var names []string
	for _, c := range charts {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{ChartThroughput, ChartSendLatency, ChartPercentiles}) {
		t.Fatalf("charts %v", names)
	}
	for _, c := range charts {
		var png1, png2, svg1, svg2 bytes.Buffer
		for _, step := range []error{c.WritePNG(&png1), c.WritePNG(&png2), c.WriteSVG(&svg1), c.WriteSVG(&svg2)} {
			if step != nil {
				t.Fatalf("%s: %v", c.Name, step)
			}
		}
		if !bytes.Equal(png1.Bytes(), png2.Bytes()) {
			t.Errorf("%s: two PNGs of one report differ", c.Name)
		}
		if !bytes.Equal(svg1.Bytes(), svg2.Bytes()) {
			t.Errorf("%s: two SVGs of one report differ", c.Name)
		}
		img, err := png.Decode(&png1)
		if err != nil {
			t.Fatalf("%s: png: %v", c.Name, err)
		}
		if b := img.Bounds(); b.Dx() != 1320 || b.Dy() != 720 {
			t.Errorf("%s: png %v, want 1320×720", c.Name, b)
		}
		svg := svg1.String()
		if !strings.Contains(svg, "<svg") || !strings.Contains(svg, "single-broker, seed 42") {
			t.Errorf("%s: svg without its title", c.Name)
		}
	}
	// The time charts carry the fault labels; the percentile chart the
	// operations' summaries.
	var svg bytes.Buffer
	if err := charts[0].WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">kill b1<", ">restart b1<", ">power-loss b1<", ">slow-disk b1<", "node down", "disk fault", "off scale: 20,500/s"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("throughput svg lacks %q", want)
		}
	}
	svg.Reset()
	if err := charts[2].WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "send: 1250 ok") || !strings.Contains(svg.String(), "poll: 301 ok") {
		t.Error("percentile svg lacks the per-kind summaries")
	}
}

// TestChartsDiffer: a different run draws a different chart; otherwise
// the determinism test could pass on a blank canvas.
func TestChartsDiffer(t *testing.T) {
	r := sampleReport(t)
	run, h := sampleRun()
	run.WorldEvents = nil
	other, err := NewReport(run, h[:len(h)/2], Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range r.Charts() {
		var a, b bytes.Buffer
		if err := c.WritePNG(&a); err != nil {
			t.Fatal(err)
		}
		if err := other.Charts()[i].WritePNG(&b); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: different runs drew the same PNG", c.Name)
		}
	}
}

// TestChartsOfAnEmptyRun: no history and no events still draw.
func TestChartsOfAnEmptyRun(t *testing.T) {
	r, err := NewReport(RunInfo{Scenario: "empty"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Files() {
		var out bytes.Buffer
		if err := f.Write(&out); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if out.Len() == 0 {
			t.Errorf("%s: empty", f.Name)
		}
	}
}

// TestSVGEscapesLabels: an event name with markup reaches the SVG as text.
func TestSVGEscapesLabels(t *testing.T) {
	run, h := sampleRun()
	run.WorldEvents = []string{"1s <script>x</script> b1"}
	r, err := NewReport(run, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := r.Charts()[0].WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(svg.String(), "<script>") || !strings.Contains(svg.String(), "&lt;script&gt;") {
		t.Fatal("event label not escaped in the SVG")
	}
}

func TestHTML(t *testing.T) {
	r := sampleReport(t)
	var out bytes.Buffer
	if err := WriteHTML(&out, r); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	if strings.Contains(page, "<script>alert") {
		t.Fatal("a check's detail reached the page unescaped")
	}
	for _, want := range []string{
		"<title>sluice: single-broker, seed 42</title>",
		`class="verdict failv">FAIL`,
		`<tr class="fail"><td>linearizable</td><td class="result">FAIL</td>`,
		`<tr><td>kafka</td><td class="result">ok</td>`,
		"lost write &lt;script&gt;alert(1)&lt;/script&gt; &amp; more",
		"acks=all faults=disk flush=group", // sorted
		"skip-fsync", "00c0ffee", "12345", "3s",
		"<th>p99.9</th>",
		"<td>send</td><td class=\"num\">1250</td><td class=\"num\">0</td><td class=\"num\">250</td>",
		`<img src="data:image/svg&#43;xml;base64,`,
		`<a href="throughput.png">`,
		"<code>power-loss b1</code><div class=\"details\">b1 disk: 00000000000000000000.log torn</div>",
		"<code>this line is not an event</code>", // listed as unread
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if got := strings.Count(page, "<img "); got != 3 {
		t.Errorf("%d charts on the page, want 3", got)
	}
	// Counters in name order, whatever the map's order.
	a, p, s := strings.Index(page, "a_first"), strings.Index(page, "polled_records"), strings.Index(page, "<td>sends</td>")
	if !(a >= 0 && a < p && p < s) {
		t.Errorf("counters out of order: %d %d %d", a, p, s)
	}
	// Maps iterate in random order: the page must not.
	for range 5 {
		var again bytes.Buffer
		if err := WriteHTML(&again, r); err != nil {
			t.Fatal(err)
		}
		if again.String() != page {
			t.Fatal("two pages of one report differ")
		}
	}
}

// TestHTMLPasses: a run whose checks all held says PASS and marks no row.
func TestHTMLPasses(t *testing.T) {
	run, h := sampleRun()
	run.Checks = []CheckLine{{Name: "kafka", OK: true}}
	r, err := NewReport(run, h, Options{Window: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteHTML(&out, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "verdict pass\">PASS") || strings.Contains(out.String(), `class="fail"`) {
		t.Fatal("a passing run not shown as passing")
	}
	if !strings.Contains(out.String(), "Windows of 250ms") {
		t.Fatal("the window width is not stated")
	}
}

func TestFiles(t *testing.T) {
	r := sampleReport(t)
	var names []string
	for _, f := range r.Files() {
		names = append(names, f.Name)
		var out bytes.Buffer
		if err := f.Write(&out); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if out.Len() < 100 {
			t.Errorf("%s: %d bytes", f.Name, out.Len())
		}
	}
	want := []string{HTMLName, "latency.txt"}
	for _, c := range []string{ChartThroughput, ChartSendLatency, ChartPercentiles} {
		want = append(want, c+".png", c+".svg")
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
}

// TestReportNumbers: the report's pieces agree with the history.
func TestReportNumbers(t *testing.T) {
	r := sampleReport(t)
	// 1500 sends: 250 invoked while down are info, the rest ok.
	if r.Latencies.Send.OK != 1250 || r.Latencies.Send.Info != 250 {
		t.Fatalf("sends ok %d info %d", r.Latencies.Send.OK, r.Latencies.Send.Info)
	}
	var acked, polled int64
	for _, w := range r.Series.Windows {
		acked += w.SendsAcked
		polled += w.RecordsPolled
	}
	if acked != 1250 || polled != 300*5+2000 {
		t.Fatalf("series: %d acked, %d polled", acked, polled)
	}
	// While down (windows 10..14) nothing is acked.
	for i := 10; i < 15; i++ {
		if w := r.Series.Windows[i]; w.SendsAcked != 0 {
			t.Errorf("window %d: %d acked while the broker was down", i, w.SendsAcked)
		}
	}
	// Under the slow disk the window p50 is 40× the usual.
	if p := r.Series.Windows[22].SendP50; p < 30*time.Millisecond {
		t.Errorf("slow-disk window p50 %v", p)
	}
	if fmt.Sprint(len(r.Events)) != "6" {
		t.Errorf("%d events, want 6", len(r.Events))
	}
}
