package reports

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// htmlPage is the data the page template reads: everything already in
// display order and form, so the template holds no logic.
type htmlPage struct {
	Title    string
	OK       bool
	Summary  [][2]string
	Checks   []CheckLine
	Latency  htmlTable
	Notes    []string
	Charts   []htmlChart
	Events   []htmlEvent
	Counters [][2]string
	Window   string
	// NoHistory is true for runs whose clients kept no history.
	NoHistory bool
	// Anomalies explain what the checkers found; Porcupine names the
	// pages of partitions porcupine found no linearization of.
	Anomalies  []htmlAnomaly
	AnomalyOps []string
	Porcupine  []htmlPorcupine
	// Unread are world event lines that did not parse.
	Unread []string
}

type htmlTable struct {
	Header []string
	Rows   [][]string
}

type htmlChart struct {
	Title string
	// Src is the chart's SVG as a data URL: the page needs no other file.
	Src template.URL
	// PNG is the name of the chart's PNG beside the page.
	PNG string
}

type htmlPorcupine struct {
	Partition, Page string
}

type htmlEvent struct {
	At      string
	Text    string
	Kind    string
	Details []string
}

// WriteHTML writes r as one self-contained HTML page: the run's summary,
// its checks (failures in colour), latencies, charts, the fault
// timeline and counters. Every string from the run is escaped.
func WriteHTML(w io.Writer, r Report) error {
	page, err := newHTMLPage(r)
	if err != nil {
		return err
	}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("write report page: %w", err)
	}
	return nil
}

func newHTMLEvent(e WorldEvent) htmlEvent {
	return htmlEvent{At: formatSeconds(e.At), Text: e.Text(), Kind: e.Kind.String(), Details: e.Details}
}

func newHTMLPage(r Report) (htmlPage, error) {
	run := r.Run
	page := htmlPage{
		Title:     fmt.Sprintf("sluice: %s, seed %d", run.Scenario, run.Seed),
		OK:        run.OK(),
		Checks:    run.Checks,
		Notes:     latencyNotes(r.Latencies),
		Window:    r.Series.Width.String(),
		NoHistory: !r.HasHistory(),
	}
	params := "none"
	if keys := sortedKeys(run.Params); len(keys) > 0 {
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = k + "=" + run.Params[k]
		}
		params = strings.Join(pairs, " ")
	}
	bugs := "none"
	if len(run.Bugs) > 0 {
		bugs = strings.Join(run.Bugs, ", ")
	}
	page.Summary = [][2]string{
		{"scenario", run.Scenario},
		{"seed", strconv.FormatUint(run.Seed, 10)},
		{"params", params},
		{"planted bugs", bugs},
		{"simulated time", run.SimTime.String()},
		{"events", strconv.FormatUint(run.Events, 10)},
		{"trace hash", run.TraceHash},
	}
	page.Latency.Header = latencyHeader
	for _, o := range r.Latencies.Kinds() {
		page.Latency.Rows = append(page.Latency.Rows, latencyRow(o))
	}
	for _, c := range r.Charts() {
		var svg bytes.Buffer
		if err := c.WriteSVG(&svg); err != nil {
			return htmlPage{}, fmt.Errorf("report page: %w", err)
		}
		// A data URL the package built from its own bytes, base64
		// encoded: nothing in it can end the attribute.
		src := template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg.Bytes()))
		page.Charts = append(page.Charts, htmlChart{Title: c.Title, Src: src, PNG: c.Name + ".png"})
	}
	for _, e := range r.Events {
		page.Events = append(page.Events, newHTMLEvent(e))
	}
	page.Anomalies = explainAnomalies(run.CheckReport, r.history, r.Events)
	page.AnomalyOps = anomalyOpsHeader
	for _, v := range r.Visualizations() {
		page.Porcupine = append(page.Porcupine, htmlPorcupine{Partition: v.Partition, Page: porcupinePageName(v.Partition)})
	}
	// Lines that did not parse are not lost: the page lists them as they
	// came.
	_, page.Unread = parseWorldEvents(run.WorldEvents)
	for _, k := range sortedKeys(run.Stats) {
		page.Counters = append(page.Counters, [2]string{k, strconv.FormatInt(run.Stats[k], 10)})
	}
	return page, nil
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: "Liberation Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 0.1em 0.6em; border-radius: 4px; color: #fff; font-weight: bold; }
.pass { background: #1b7837; }
.failv { background: #b2182b; }
tr.fail td { background: #fde0dd; }
tr.fail td.result { color: #b2182b; font-weight: bold; }
td.detail { white-space: pre-wrap; font-family: "Liberation Mono", monospace; font-size: 0.9em; }
tr.fault td.kind { color: #b2182b; }
tr.recovery td.kind { color: #1b7837; }
.details { color: #666; font-size: 0.9em; }
figure { margin: 1em 0; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { font-family: "Liberation Mono", monospace; }
.example { margin: 0.5em 0 1.5em 1em; }
p.detail { font-family: "Liberation Mono", monospace; font-size: 0.9em; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>{{.Title}} {{if .OK}}<span class="verdict pass">PASS</span>{{else}}<span class="verdict failv">FAIL</span>{{end}}</h1>

<h2>Run</h2>
<table>
{{range .Summary}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>

<h2>Checks</h2>
<table>
<tr><th>check</th><th>result</th><th>detail</th></tr>
{{range .Checks}}<tr{{if not .OK}} class="fail"{{end}}><td>{{.Name}}</td><td class="result">{{if .OK}}ok{{else}}FAIL{{end}}</td><td class="detail">{{.Detail}}</td></tr>
{{else}}<tr><td colspan="3">no checks</td></tr>
{{end}}</table>

{{if .Anomalies}}<h2>Anomalies</h2>
<p>What the checkers found, with the operations each example involves as the history has them, and the world events around them.</p>
{{range .Anomalies}}<h3>{{.Checker}}: {{.Kind}} × {{.Count}}</h3>
{{range .Examples}}<div class="example"><p class="detail">{{.Detail}}</p>
{{if .Ops}}<table>
<tr>{{range $.AnomalyOps}}<th>{{.}}</th>{{end}}</tr>
{{range .Ops}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{if .HiddenOps}}<p class="details">and {{.HiddenOps}} more operations</p>{{end}}{{end}}
{{if .Window}}<p class="details">World events from {{.Window}}:{{if not .Events}} none.{{end}}</p>
{{if .Events}}<table>
{{range .Events}}<tr class="{{.Kind}}"><td class="num">{{.At}}</td><td><code>{{.Text}}</code>{{range .Details}}<div class="details">{{.}}</div>{{end}}</td><td class="kind">{{.Kind}}</td></tr>
{{end}}</table>{{end}}{{end}}</div>
{{end}}{{end}}{{end}}
{{if .Porcupine}}<h2>Linearizability</h2>
<p>porcupine's view of each partition it found no linearization of: the operations on a timeline and the longest partial linearizations (hover for states).</p>
{{range .Porcupine}}<h3>{{.Partition}}</h3>
<p><a href="{{.Page}}">{{.Page}}</a></p>
<iframe src="{{.Page}}" title="porcupine: {{.Partition}}" style="width:100%; height:480px; border:1px solid #ddd;"></iframe>
{{end}}{{end}}
<h2>Latency</h2>
<p>Completion − invoke of operations that completed ok; failed and indeterminate ones are counted, not timed.</p>
<table>
<tr>{{range .Latency.Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Latency.Rows}}<tr>{{range $i, $c := .}}{{if eq $i 0}}<td>{{$c}}</td>{{else}}<td class="num">{{$c}}</td>{{end}}{{end}}</tr>
{{end}}</table>
{{range .Notes}}<p class="details">{{.}}</p>
{{end}}
<h2>Charts</h2>
{{if .NoHistory}}<p>This scenario's clients keep no operation history, so there is no throughput or latency to chart: the chart shows the faults alone. Shaded: faults in force; dashed lines: world events.</p>
{{else}}<p>Windows of {{.Window}} of run time; an operation counts in the window it completed in. Shaded: faults in force; dashed lines: world events.</p>{{end}}
{{range .Charts}}<figure><img src="{{.Src}}" alt="{{.Title}}"><figcaption>{{.Title}} (also <a href="{{.PNG}}">{{.PNG}}</a>)</figcaption></figure>
{{end}}
<h2>Fault timeline</h2>
<table>
<tr><th>time</th><th>event</th><th>kind</th></tr>
{{range .Events}}<tr class="{{.Kind}}"><td class="num">{{.At}}</td><td><code>{{.Text}}</code>{{range .Details}}<div class="details">{{.}}</div>{{end}}</td><td class="kind">{{.Kind}}</td></tr>
{{else}}<tr><td colspan="3">no world events</td></tr>
{{end}}</table>
{{if .Unread}}<p class="details">Lines that could not be read:</p>
<ul>{{range .Unread}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}

<h2>Counters</h2>
<table>
<tr><th>counter</th><th>value</th></tr>
{{range .Counters}}<tr><td>{{index . 0}}</td><td class="num">{{index . 1}}</td></tr>
{{else}}<tr><td colspan="2">none</td></tr>
{{end}}</table>
</body>
</html>
`))
