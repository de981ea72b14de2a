package checkers

import (
	"fmt"
	"slices"
	"strings"
)

// statsLineMax is the width at which Text wraps a verdict's statistics.
const statsLineMax = 96

// Text renders the report for a terminal: one block per checker with its
// outcome, statistics, anomalies with their examples, and notes.
// The output depends only on the report.
func (r Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "overall: %s\n", outcomeText(r.Valid, r.Unknown))
	for _, v := range r.Verdicts {
		b.WriteString(v.Text())
	}
	return b.String()
}

// Text renders one verdict as Report.Text does.
func (v Verdict) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s: %s\n", v.Checker, outcomeText(v.Valid, v.Unknown))
	writeStats(&b, v.Stats)
	for _, a := range v.Anomalies {
		fmt.Fprintf(&b, "  anomaly %s: %d\n", a.Kind, a.Count)
		for _, ex := range a.Examples {
			fmt.Fprintf(&b, "    - %s\n", ex.Detail)
		}
		if hidden := a.Count - len(a.Examples); hidden > 0 {
			fmt.Fprintf(&b, "    ... and %d more\n", hidden)
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func outcomeText(valid, unknown bool) string {
	switch {
	case valid:
		return "valid"
	case unknown:
		return "UNKNOWN"
	}
	return "INVALID"
}

func writeStats(b *strings.Builder, stats map[string]int64) {
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	line := "  stats:"
	for _, k := range keys {
		item := fmt.Sprintf(" %s=%d", k, stats[k])
		if len(line)+len(item) > statsLineMax {
			b.WriteString(line + "\n")
			line = "        "
		}
		line += item
	}
	if len(keys) > 0 {
		b.WriteString(line + "\n")
	}
}
