package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/workloads/scenario"
)

// TestRunSummarySplitsSimulatingFromJudging: a run's wall time is split
// into running the world and the end-of-run audits and checks, each with
// its own dilation; a split that was not measured, or that cannot be
// right, is left out.
func TestRunSummarySplitsSimulatingFromJudging(t *testing.T) {
	res := scenario.Result{SimTime: 40 * time.Second}
	s := newRunSummary(res, nil, 400*time.Millisecond, "", "")
	s.noteSimulated(100 * time.Millisecond)
	if s.Dilation != 100 || s.SimulatedDilation != 400 || s.SimulatedTime != 100*time.Millisecond {
		t.Fatalf("dilation %v, simulating %v at %v; want 100, 100ms at 400", s.Dilation, s.SimulatedTime, s.SimulatedDilation)
	}
	var out bytes.Buffer
	if err := s.writeText(&out, false); err != nil {
		t.Fatal(err)
	}
	if want := "simulating 100ms (dilation 400x), then audits and checks 300ms"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}
	for _, simulated := range []time.Duration{0, 500 * time.Millisecond} {
		s := newRunSummary(res, nil, 400*time.Millisecond, "", "")
		s.noteSimulated(simulated)
		out.Reset()
		if err := s.writeText(&out, false); err != nil {
			t.Fatal(err)
		}
		if s.SimulatedTime != 0 || strings.Contains(out.String(), "simulating") {
			t.Errorf("simulating %v of a 400ms run: noted %v:\n%s", simulated, s.SimulatedTime, out.String())
		}
	}
}
