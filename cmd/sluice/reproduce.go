package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

// reproduceCommand is the sim run line that reproduces a recipe; faultsFile
// is the schedule file the run read, if any. It names every field of the
// recipe: TestReproductionOptionByOption proves, option by option, that the
// line and the replay file reproduce the trace hash.
func reproduceCommand(r scenario.Recipe, faultsFile, scenarioFile string, determinism bool) string {
	parts := []string{"sluice sim run", "--scenario", r.Scenario, "--seed", fmt.Sprint(r.Seed)}
	for _, b := range r.Bugs {
		parts = append(parts, "--bug", b)
	}
	for _, name := range sortedParamNames(r.Params) {
		parts = append(parts, "--param", name+"="+r.Params[name])
	}
	parts = append(parts, "--run", r.Run.String(), "--drain", r.Drain.String())
	if r.EventsMax > 0 {
		parts = append(parts, "--events-max", fmt.Sprint(r.EventsMax))
	}
	if r.Swarm {
		parts = append(parts, "--swarm")
	}
	if scenarioFile != "" { // for its fault profile or schedule: every other field is named above
		parts = append(parts, "--scenario-file", shellQuote(scenarioFile))
	}
	if faultsFile != "" {
		parts = append(parts, "--faults", shellQuote(faultsFile))
	}
	if determinism {
		parts = append(parts, "--check-determinism")
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes a path for a command line when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// savedRun is a run written to disk: its recipe and the fault schedule
// itself, so that replaying it needs no other file, and the trace hash it
// gave, so that a replay can say whether it reproduced the run.
type savedRun struct {
	scenario.Recipe
	Version   string           `json:"sluice_version"`
	TraceHash string           `json:"trace_hash"`
	Failed    []scenario.Check `json:"failed,omitempty"`
	Schedule  faults.Schedule  `json:"schedule"`
}

// saveRun writes a run's replay file.
func saveRun(name string, res scenario.Result) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	data, err := json.MarshalIndent(savedRun{
		Recipe: res.Recipe, Version: version, TraceHash: res.TraceHash,
		Failed: res.Failed(), Schedule: res.Schedule,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	if err := os.WriteFile(name, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	return nil
}

// failurePath is where a failing seed's run is saved.
func failurePath(dir string, res scenario.Result) string {
	return filepath.Join(dir, fmt.Sprintf("%s-seed%d.json", res.Scenario, res.Seed))
}

// loadRun reads a replay file; errors name the file and what is wrong.
func loadRun(name string) (savedRun, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return savedRun{}, err
	}
	var saved struct {
		savedRun
		Schedule json.RawMessage `json:"schedule"`
	}
	if err := json.Unmarshal(data, &saved); err != nil {
		return savedRun{}, fmt.Errorf("%s: not a saved run: %s", name, faults.DescribeJSONError(data, err))
	}
	if saved.Scenario == "" {
		return savedRun{}, fmt.Errorf("%s: not a saved run: no \"scenario\"", name)
	}
	if len(saved.Schedule) == 0 {
		return savedRun{}, fmt.Errorf("%s: not a saved run: no \"schedule\"", name)
	}
	schedule, err := faults.Parse(saved.Schedule, nil)
	if err != nil {
		return savedRun{}, fmt.Errorf("%s: %w", name, err)
	}
	run := saved.savedRun
	run.Schedule = schedule
	return run, nil
}
