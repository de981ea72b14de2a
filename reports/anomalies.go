package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
)

// A failing run's page explains its anomalies: each example with the
// operations it involves, as the history has them, and the world events
// around those operations, so that a reader sees what the clients were
// told next to what the faults did.

// faultContextBefore and faultContextAfter are how far around an example's
// operations the page lists world events.
const (
	faultContextBefore = 2 * time.Second
	faultContextAfter  = time.Second
)

// anomalyExamplesMax bounds the examples the page explains per anomaly,
// and anomalyOpsMax the operations it lists per example.
const (
	anomalyExamplesMax = 3
	anomalyOpsMax      = 12
)

type htmlAnomaly struct {
	Checker, Kind string
	Count         int
	Examples      []htmlExample
}

type htmlExample struct {
	Detail string
	Ops    [][]string
	// HiddenOps counts the operations not listed.
	HiddenOps int
	Events    []htmlEvent
	// Window is the time range the events were taken from.
	Window string
}

// anomalyOpsHeader heads the table of an example's operations.
var anomalyOpsHeader = []string{"op", "time", "process", "type", "f", "what"}

// explainAnomalies builds the page's anomaly section from the checkers'
// report, the history and the world events.
func explainAnomalies(report *checkers.Report, h history.History, events []WorldEvent) []htmlAnomaly {
	if report == nil {
		return nil
	}
	byIndex := make(map[int]history.Op, len(h))
	for _, op := range h {
		byIndex[op.Index] = op
	}
	var out []htmlAnomaly
	for _, v := range report.Verdicts {
		for _, a := range v.Anomalies {
			ha := htmlAnomaly{Checker: v.Checker, Kind: a.Kind, Count: a.Count}
			for _, ex := range a.Examples[:min(len(a.Examples), anomalyExamplesMax)] {
				ha.Examples = append(ha.Examples, explainExample(ex, byIndex, events))
			}
			out = append(out, ha)
		}
	}
	return out
}

func explainExample(ex checkers.Example, byIndex map[int]history.Op, events []WorldEvent) htmlExample {
	he := htmlExample{Detail: ex.Detail, HiddenOps: max(len(ex.Ops)-anomalyOpsMax, 0)}
	first, last := time.Duration(-1), time.Duration(-1)
	for i, index := range ex.Ops {
		op, ok := byIndex[index]
		if !ok {
			continue
		}
		at := time.Duration(op.Time)
		if first < 0 || at < first {
			first = at
		}
		last = max(last, at)
		if i < anomalyOpsMax {
			he.Ops = append(he.Ops, []string{strconv.Itoa(op.Index), formatSeconds(at), strconv.Itoa(op.Process),
				string(op.Type), string(op.F), describeOp(op)})
		}
	}
	if first < 0 {
		return he
	}
	from, to := max(first-faultContextBefore, 0), last+faultContextAfter
	he.Window = fmt.Sprintf("%s to %s", formatSeconds(from), formatSeconds(to))
	for _, e := range events {
		if e.At >= from && e.At <= to {
			he.Events = append(he.Events, newHTMLEvent(e))
		}
	}
	return he
}

// describeOpRecordsMax bounds the records a poll's description lists.
const describeOpRecordsMax = 6

// describeOp says what an operation carried: a send's record, a poll's
// records, an error.
func describeOp(op history.Op) string {
	var parts []string
	if r := op.Record; r != nil {
		where := r.TP().String()
		if r.Offset >= 0 {
			where += fmt.Sprintf("@%d", r.Offset)
		}
		parts = append(parts, fmt.Sprintf("%q to %s", r.Value, where))
	}
	if n := len(op.Records); n > 0 {
		var recs []string
		for _, r := range op.Records[:min(n, describeOpRecordsMax)] {
			recs = append(recs, fmt.Sprintf("%s@%d %q", r.TP(), r.Offset, r.Value))
		}
		if n > describeOpRecordsMax {
			recs = append(recs, fmt.Sprintf("+%d more", n-describeOpRecordsMax))
		}
		parts = append(parts, strings.Join(recs, ", "))
	}
	if op.Error != "" {
		parts = append(parts, "error: "+op.Error)
	}
	return strings.Join(parts, "; ")
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
}

// porcupinePageName is the file a partition's porcupine page is written to.
func porcupinePageName(partition string) string {
	return "porcupine-" + strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '_'
		}
		return r
	}, partition) + ".html"
}
