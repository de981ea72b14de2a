package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"unicode"

	"github.com/sluice-sim/sluice/collector"
)

// wantsPrometheus reports whether a /metrics request asks for
// Prometheus's text format (?format=prometheus, or a scraper's Accept
// header) rather than Flume's JSON.
func wantsPrometheus(r *http.Request) bool {
	if r.URL.Query().Get("format") == "prometheus" {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "openmetrics") || strings.Contains(accept, "version=0.0.4")
}

// agentGauges are the counters that go up and down.
var agentGauges = map[string]bool{"ChannelSize": true, "ChannelCapacity": true, "ChannelFillPercentage": true, "OpenConnectionCount": true}

// writeAgentPrometheus writes the agent's counters in Prometheus's text
// format: flume_<kind>_<counter in snake case>{name="<component>"}, one
// family per counter, components sorted.
func writeAgentPrometheus(w io.Writer, agent string, m map[string]collector.Metrics) {
	type sample struct{ name, value string }
	type family struct {
		kind    string
		samples []sample
	}
	families := map[string]*family{}
	for key, counters := range m {
		kind, name, _ := strings.Cut(key, ".")
		for counter, value := range counters {
			if counter == "Type" {
				continue
			}
			f := "flume_" + strings.ToLower(kind) + "_" + snakeCase(counter)
			if families[f] == nil {
				families[f] = &family{kind: "counter"}
				if agentGauges[counter] {
					families[f].kind = "gauge"
				}
			}
			families[f].samples = append(families[f].samples, sample{name: name, value: value})
		}
	}
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		fam := families[f]
		fmt.Fprintf(w, "# TYPE %s %s\n", f, fam.kind)
		sort.Slice(fam.samples, func(i, j int) bool { return fam.samples[i].name < fam.samples[j].name })
		for _, s := range fam.samples {
			fmt.Fprintf(w, "%s{agent=%q,name=%q} %s\n", f, agent, s.name, s.value)
		}
	}
}

// snakeCase turns Flume's counter names into Prometheus's style:
// EventPutSuccessCount becomes event_put_success_count.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
