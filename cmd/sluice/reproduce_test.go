package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// simSummary is the part of sim run's --json output these tests read.
type simSummary struct {
	OK            bool     `json:"-"`
	TraceHash     string   `json:"trace_hash"`
	Reproduce     string   `json:"reproduce"`
	SavedTo       string   `json:"saved_to"`
	Reproduced    *bool    `json:"reproduced"`
	FaultsApplied int      `json:"faults_applied"`
	FaultWarnings []string `json:"fault_warnings"`
	Checks        []struct {
		Name string `json:"name"`
		OK   bool   `json:"ok"`
	} `json:"checks"`
}

// simJSON runs sluice with --json and decodes the one summary it prints.
func simJSON(t *testing.T, dir string, args ...string) (int, simSummary) {
	t.Helper()
	code, out := run(t, dir, append(args, "--json")...)
	var s simSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("sluice %v exited %d with output that is not one JSON summary: %v\n%s", args, code, err, out)
	}
	return code, s
}

// reproduceArgs turns a printed reproduce line into arguments.
func reproduceArgs(t *testing.T, line string) []string {
	t.Helper()
	fields := strings.Fields(line)
	if len(fields) < 3 || fields[0] != "sluice" || fields[1] != "sim" || fields[2] != "run" {
		t.Fatalf("reproduce line %q is not a sim run", line)
	}
	return fields[1:]
}

// checkReproduces runs the printed line and the saved replay file of a run
// and asserts both give its trace hash.
func checkReproduces(t *testing.T, dir string, orig simSummary, saved string) {
	t.Helper()
	_, again := simJSON(t, dir, reproduceArgs(t, orig.Reproduce)...)
	if again.TraceHash != orig.TraceHash {
		t.Errorf("the printed line %q gave trace hash %s, the run gave %s", orig.Reproduce, again.TraceHash, orig.TraceHash)
	}
	_, replay := simJSON(t, dir, "sim", "replay", saved)
	if replay.TraceHash != orig.TraceHash {
		t.Errorf("sim replay %s gave trace hash %s, the run gave %s", saved, replay.TraceHash, orig.TraceHash)
	}
	if replay.Reproduced == nil || !*replay.Reproduced {
		t.Errorf("sim replay %s does not say it reproduced the run", saved)
	}
}

// TestReproductionOptionByOption proves, for every option that changes a
// run, that the option changes the trace (so dropping it would be caught)
// and that the printed reproduce line and the replay file both carry it.
func TestReproductionOptionByOption(t *testing.T) {
	dir := t.TempDir()
	schedule := filepath.Join(dir, "schedule.json")
	os.WriteFile(schedule, []byte(`{"actions":[{"at":"1s","op":"kill","node":"server"},{"at":"1.5s","op":"restart","node":"server"}]}`), 0o644)
	scenarioFile := filepath.Join(dir, "scenario.yaml")
	os.WriteFile(scenarioFile, []byte("scenario: counter\nfaults:\n  profile: {kinds: [pause], interval_mean: 500ms}\n"), 0o644)
	base := []string{"sim", "run", "--scenario", "counter", "--seed", "3", "--run", "3s", "--drain", "1s"}
	cases := []struct {
		option string
		args   []string
	}{
		{"scenario", []string{"--scenario", "single-broker"}},
		{"seed", []string{"--seed", "4"}},
		{"param", []string{"--scenario", "single-broker", "--param", "acks=1"}},
		{"bug", []string{"--bug", "ack-before-sync"}},
		{"faults", []string{"--faults", schedule}},
		{"run", []string{"--run", "2500ms"}},
		{"drain", []string{"--drain", "1500ms"}},
		{"events-max", []string{"--events-max", "2000"}},
		{"swarm", []string{"--swarm"}},
		{"scenario-file", []string{"--scenario-file", scenarioFile}},
	}
	saved := filepath.Join(dir, "base.json")
	_, ref := simJSON(t, dir, append(base, "--save-run", saved)...)
	checkReproduces(t, dir, ref, saved)
	for _, c := range cases {
		t.Run(c.option, func(t *testing.T) {
			saved := filepath.Join(dir, c.option+".json")
			// Later flags win, so each case overrides one base option.
			_, s := simJSON(t, dir, append(append(base, c.args...), "--save-run", saved)...)
			if s.TraceHash == ref.TraceHash {
				t.Fatalf("--%s did not change the trace: the test cannot tell whether it is reproduced", c.option)
			}
			checkReproduces(t, dir, s, saved)
		})
	}
}

// TestPlantedBugFailuresReproduce takes four planted bugs, each with
// non-default run and drain lengths and a schedule read from a file, finds
// a failing seed, and replays the failure from its printed line and from
// the file sim run saved.
func TestPlantedBugFailuresReproduce(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		scenario, bug string
	}{
		{"single-broker", "ack-before-sync"},
		{"single-broker", "dedupe-off"},
		{"counter", "dedupe-off"},
		{"controller-quorum", "raft-ack-before-sync"},
	} {
		t.Run(c.scenario+"/"+c.bug, func(t *testing.T) {
			const seedsMax = 12
			for seed := 1; seed <= seedsMax; seed++ {
				args := []string{"sim", "run", "--scenario", c.scenario, "--seed", strconv.Itoa(seed),
					"--run", "9s", "--drain", "3500ms", "--failures-dir", filepath.Join(dir, "failures")}
				schedule := filepath.Join(dir, c.scenario+"-"+c.bug+"-"+strconv.Itoa(seed)+".json")
				// The seed's own schedule, kept in a file and run from there.
				if code, out := run(t, dir, append(args, "--save-faults", schedule)...); code > 1 {
					t.Fatalf("exit %d:\n%s", code, out)
				}
				code, s := simJSON(t, dir, append(args, "--bug", c.bug, "--faults", schedule)...)
				if code == 0 {
					continue
				}
				if code != 1 || s.SavedTo == "" {
					t.Fatalf("a failing run exited %d and saved %q", code, s.SavedTo)
				}
				for _, want := range []string{"--run 9s", "--drain 3.5s", "--faults " + schedule, "--bug " + c.bug} {
					if !strings.Contains(s.Reproduce, want) {
						t.Errorf("reproduce line %q lacks %q", s.Reproduce, want)
					}
				}
				checkReproduces(t, dir, s, s.SavedTo)
				return
			}
			t.Fatalf("--bug %s was not caught in %d seeds", c.bug, seedsMax)
		})
	}
}

// TestReplayThatDivergesSaysSo edits a saved run's trace hash: the replay
// must fail its reproduction check rather than pass quietly.
func TestReplayThatDivergesSaysSo(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "run.json")
	if code, out := run(t, dir, "sim", "run", "--seed", "2", "--run", "2s", "--drain", "1s", "--save-run", saved); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	data, _ := os.ReadFile(saved)
	var fields map[string]any
	json.Unmarshal(data, &fields)
	fields["trace_hash"] = "0000000000000000"
	data, _ = json.Marshal(fields)
	os.WriteFile(saved, data, 0o644)
	code, out := run(t, dir, "sim", "replay", saved)
	if code != 1 || !strings.Contains(out, "reproduction") || !strings.Contains(out, "did not reproduce the run") {
		t.Fatalf("a replay with another trace hash exited %d:\n%s", code, out)
	}
}

// TestScheduleNoOpsAreWarnings runs a hand-written schedule whose actions
// cannot all act: each that does not is named, and the count says so.
func TestScheduleNoOpsAreWarnings(t *testing.T) {
	dir := t.TempDir()
	schedule := filepath.Join(dir, "s.json")
	os.WriteFile(schedule, []byte(`{"actions":[
		{"at":"1s","op":"power-loss","node":"server"},
		{"at":"1.2s","op":"power-loss","node":"server"},
		{"at":"1.5s","op":"restart","node":"server"},
		{"at":"1.6s","op":"restart","node":"server"},
		{"at":"1.7s","op":"heal"},
		{"at":"1.8s","op":"disk-heal","node":"server"},
		{"at":"1.9s","op":"resume","node":"server"},
		{"at":"60s","op":"kill","node":"server"}]}`), 0o644)
	code, s := simJSON(t, dir, "sim", "run", "--seed", "1", "--run", "3s", "--drain", "1s", "--faults", schedule)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if s.FaultsApplied != 2 {
		t.Errorf("%d actions applied, want 2 (the first power loss and restart)", s.FaultsApplied)
	}
	want := []string{
		"actions[1] (power-loss server at 1.2s): no effect: server is already down",
		"actions[3] (restart server at 1.6s): no effect: server is running",
		"actions[4] (heal at 1.7s): no effect: no partition or block is in force",
		"actions[5] (disk-heal server at 1.8s): no effect: server's disk has no fault to heal",
		"actions[6] (resume server at 1.9s): no effect: server is not paused",
		"actions[7] (kill server at 1m0s): falls after the run ends at 4s",
	}
	if strings.Join(s.FaultWarnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(s.FaultWarnings, "\n"), strings.Join(want, "\n"))
	}
	_, text := run(t, dir, "sim", "run", "--seed", "1", "--run", "3s", "--drain", "1s", "--faults", schedule)
	if !strings.Contains(text, "faults     2 of 8 actions applied") || !strings.Contains(text, "warning    actions[7]") {
		t.Errorf("text output does not count or name the no-ops:\n%s", text)
	}
}
