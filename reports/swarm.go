package reports

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// A swarm's page: verdicts and speed per scenario, which fault kinds fired
// in how many seeds, which probes were hit and which never were, and every
// failure with the command that reproduces it. Like a run's page it is one
// self-contained file.

// Swarm is what a swarm's page shows, in plain types.
type Swarm struct {
	Title     string
	Scenarios []SwarmScenario
	// Faults and Probes count seeds per fault op and per probe; a count of
	// zero is a kind or probe no seed reached.
	Faults   []Count
	Probes   []Count
	Failures []SwarmFailure
	// Closing is the summary line, "N seeds: P passed, F failed".
	Closing string
}

// SwarmScenario is one scenario's row.
type SwarmScenario struct {
	Name                   string
	Seeds, Passed, Failed  int
	EventsPerSec, Dilation float64
	SeedsPerCoreHour       float64
}

// Count is a name and how many seeds it concerns, with what it means.
// Weak marks a zero the swarm should not have: a fault kind its scenarios
// draw that never acted, or a probe they are known to reach that no seed
// hit.
type Count struct {
	Name  string
	Help  string
	Seeds int
	Weak  bool
}

// SwarmFailure is one failing seed.
type SwarmFailure struct {
	Scenario  string
	Seed      uint64
	Why       string
	Reproduce string
	Replay    string
}

// SwarmHTMLName is the swarm page's file name.
const SwarmHTMLName = "swarm.html"

// Files lists the swarm report's files: the page and its coverage chart.
func (s Swarm) Files() []File {
	chart := s.coverageChart()
	return []File{
		{Name: SwarmHTMLName, Write: s.writeHTML},
		{Name: chart.Name + ".png", Write: chart.WritePNG},
		{Name: chart.Name + ".svg", Write: chart.WriteSVG},
	}
}

// coverageChart draws the seeds each fault kind and probe reached.
func (s Swarm) coverageChart() Chart {
	return Chart{Name: "swarm-coverage", Title: "Seeds that reached each fault kind and probe", build: s.coverageFigure}
}

// coverageFigure draws one bar per fault kind, then one per probe, in two
// colours. Its title is short: the page's heading names the scenarios,
// which do not fit across a chart.
func (s Swarm) coverageFigure() (figure, error) {
	counts := append(append([]Count{}, s.Faults...), s.Probes...)
	p := newPlot(s.coverageChart().Title, "", "seeds (log scale)")
	faults := make(plotter.Values, len(counts))
	probes := make(plotter.Values, len(counts))
	names := make([]string, len(counts))
	for i, c := range counts {
		names[i] = c.Name
		if i < len(s.Faults) {
			faults[i] = coverageHeight(c.Seeds)
		} else {
			probes[i] = coverageHeight(c.Seeds)
		}
	}
	// Each name has one bar, a fault kind's or a probe's: both series
	// share the slots, zero where the other has its bar.
	legend, err := addBars(p, vg.Points(10), func(int) vg.Length { return 0 },
		barSeries{"fault kinds", faults, colorBlue}, barSeries{"probes", probes, colorOrange})
	if err != nil {
		return figure{}, fmt.Errorf("coverage chart: %w", err)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 1.2
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = -1, -0.5
	p.Y.Min, p.Y.Tick.Marker = 0, coverageTicks{}
	return figure{plot: p, legend: legend}, nil
}

// coverageHeight is a bar's height for a count of seeds: log10(2n), on a
// log scale that starts at half a seed, so that a path one seed of
// thousands reached still shows as a bar, and one none reached shows none.
func coverageHeight(seeds int) float64 {
	if seeds <= 0 {
		return 0
	}
	return math.Log10(2 * float64(seeds))
}

// coverageTicks labels coverageHeight's axis with counts of seeds at 1, 2
// and 5 times each power of ten.
type coverageTicks struct{}

// Ticks implements plot.Ticker.
func (coverageTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	// A bound on decades: no swarm runs 10^12 seeds.
	for e := 0; e < 12; e++ {
		for _, m := range []int{1, 2, 5} {
			n := m * int(math.Pow10(e))
			if v := coverageHeight(n); v >= lo-1e-9 && v <= hi+1e-9 {
				ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(n)})
			}
		}
	}
	return ticks
}

func (s Swarm) writeHTML(w io.Writer) error {
	var svg bytes.Buffer
	if err := s.coverageChart().WriteSVG(&svg); err != nil {
		return fmt.Errorf("swarm page: %w", err)
	}
	page := struct {
		Swarm
		Chart template.URL
	}{s, template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg.Bytes()))}
	if err := swarmTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("write swarm page: %w", err)
	}
	return nil
}

var swarmTemplate = template.Must(template.New("swarm").Funcs(template.FuncMap{
	"f0": func(v float64) string { return fmt.Sprintf("%.0f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: "Liberation Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: #fde0dd; } tr.never td { background: #fff3cd; }
code { font-family: "Liberation Mono", monospace; font-size: 0.9em; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p><strong>{{.Closing}}</strong></p>

<h2>Scenarios</h2>
<p>Rates are over each seed's own wall time, one core each.</p>
<table>
<tr><th>scenario</th><th>seeds</th><th>passed</th><th>failed</th><th>events/s</th><th>time dilation</th><th>seeds per core-hour</th></tr>
{{range .Scenarios}}<tr{{if .Failed}} class="fail"{{end}}><td>{{.Name}}</td><td class="num">{{.Seeds}}</td><td class="num">{{.Passed}}</td><td class="num">{{.Failed}}</td><td class="num">{{f0 .EventsPerSec}}</td><td class="num">{{f0 .Dilation}}×</td><td class="num">{{f0 .SeedsPerCoreHour}}</td></tr>
{{end}}</table>

<h2>Coverage</h2>
<p>How many seeds each fault kind acted in and each probe (a rare path of the code) was hit in. A highlighted zero is a fault kind these scenarios draw that never acted, or a path they are known to reach that this swarm never exercised: a test that passed without reaching it says nothing about it. A zero left plain is a kind or path none of these scenarios is known to draw or reach.</p>
<figure><img src="{{.Chart}}" alt="coverage"></figure>
<table>
<tr><th>fault kind</th><th>seeds</th></tr>
{{range .Faults}}<tr{{if .Weak}} class="never"{{end}}><td><code>{{.Name}}</code></td><td class="num">{{.Seeds}}</td></tr>
{{end}}</table>
<table>
<tr><th>probe</th><th>what it marks</th><th>seeds</th></tr>
{{range .Probes}}<tr{{if .Weak}} class="never"{{end}}><td><code>{{.Name}}</code></td><td>{{.Help}}</td><td class="num">{{.Seeds}}</td></tr>
{{end}}</table>

<h2>Failures</h2>
{{if .Failures}}<table>
<tr><th>scenario</th><th>seed</th><th>what failed</th><th>reproduce</th></tr>
{{range .Failures}}<tr class="fail"><td>{{.Scenario}}</td><td class="num">{{.Seed}}</td><td>{{.Why}}</td><td><code>{{.Reproduce}}</code>{{if .Replay}}<br><code>sluice sim replay {{.Replay}}</code>{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
</body>
</html>
`))
