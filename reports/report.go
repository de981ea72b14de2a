package reports

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
)

// CheckLine is one judgement on a run.
type CheckLine struct {
	Name   string
	OK     bool
	Detail string
}

// RunInfo is what a run reports about itself, in plain types so that this
// package needs nothing from the packages that run scenarios.
type RunInfo struct {
	Scenario string
	Seed     uint64
	Params   map[string]string
	Bugs     []string
	SimTime  time.Duration
	// FaultsEnd is when the fault phase ended and the drain began (the
	// run's --run length); zero when unknown.
	FaultsEnd time.Duration
	Events    uint64
	TraceHash string
	Checks    []CheckLine
	Stats     map[string]int64
	// WorldEvents are the world's action lines ("2.285989s kill b1").
	WorldEvents []string
	// CheckReport is what the checkers found, when they ran: the page
	// explains its anomalies and links porcupine's pages.
	CheckReport *checkers.Report
}

// OK reports whether every check held.
func (r RunInfo) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Options shape a report.
type Options struct {
	// Window is the time series' window width; zero means DefaultWindow.
	Window time.Duration
}

// Report is everything a run's report shows, computed once.
type Report struct {
	Run       RunInfo
	Latencies Latencies
	Series    Series
	// Events are the parsed WorldEvents lines, in time order.
	Events []WorldEvent
	// HistoryOps counts the lines of the clients' history.
	HistoryOps int

	history history.History
}

// NewReport measures h and assembles the report of a run.
func NewReport(run RunInfo, h history.History, o Options) (Report, error) {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	series, err := NewSeries(h, o.Window)
	if err != nil {
		return Report{}, fmt.Errorf("report of %s seed %d: %w", run.Scenario, run.Seed, err)
	}
	return Report{
		Run:        run,
		Latencies:  NewLatencies(h),
		Series:     series,
		Events:     ParseWorldEvents(run.WorldEvents),
		HistoryOps: len(h),
		history:    h,
	}, nil
}

// File is one file of a report: its name and how to write it.
type File struct {
	Name  string
	Write func(w io.Writer) error
}

// HTMLName is the report page's file name.
const HTMLName = "report.html"

// Files lists what a report directory holds: the page (with its charts
// inline), each chart as PNG and SVG, and the latency table as text. The
// caller creates the files; this package touches none.
func (r Report) Files() []File {
	files := []File{
		{Name: HTMLName, Write: func(w io.Writer) error { return WriteHTML(w, r) }},
		{Name: "latency.txt", Write: func(w io.Writer) error { return WriteLatencyTable(w, r.Latencies) }},
	}
	for _, c := range r.Charts() {
		files = append(files,
			File{Name: c.Name + ".png", Write: c.WritePNG},
			File{Name: c.Name + ".svg", Write: c.WriteSVG},
		)
	}
	for _, v := range r.Visualizations() {
		files = append(files, File{Name: porcupinePageName(v.Partition), Write: func(w io.Writer) error {
			_, err := w.Write(v.HTML)
			return err
		}})
	}
	return files
}

// Visualizations are porcupine's pages of the run's nonlinearizable
// partitions.
func (r Report) Visualizations() []checkers.Visualization {
	if r.Run.CheckReport == nil {
		return nil
	}
	var out []checkers.Visualization
	for _, v := range r.Run.CheckReport.Verdicts {
		out = append(out, v.Visualizations...)
	}
	return out
}

// sortedKeys lists a map's keys in order, so no map order reaches output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
