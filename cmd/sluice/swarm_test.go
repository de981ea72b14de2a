package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// swarmArgs is a small, quick swarm over both scenarios that fails some
// seeds: the counter scenario with a planted bug.
var swarmArgs = []string{"sim", "swarm", "--scenario", "counter", "--seeds", "24", "--parallel", "2",
	"--run", "3s", "--drain", "1s", "--bug", "dedupe-off", "--check-determinism", "--sample", "3"}

// withoutTimings decodes a swarm summary and zeroes what depends on the
// machine's speed, leaving what the seeds decided.
func withoutTimings(t *testing.T, out string) swarmSummary {
	t.Helper()
	var s swarmSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not a JSON summary: %v\n%s", err, out)
	}
	for i := range s.Scenarios {
		s.Scenarios[i].EventsPerSec, s.Scenarios[i].Dilation, s.Scenarios[i].SeedsPerCoreHour = 0, 0, 0
	}
	for i := range s.Failures {
		s.Failures[i].WallTime = 0
	}
	return s
}

// TestSwarmShardsMergeToTheWholeSummary runs a swarm whole and as four
// shards: merging the shards gives the whole run's summary, and a missing
// or repeated shard is reported.
func TestSwarmShardsMergeToTheWholeSummary(t *testing.T) {
	dir := t.TempDir()
	code, whole := runStdout(t, dir, append(swarmArgs, "--json", "--out", filepath.Join(dir, "whole.jsonl"))...)
	if code != 1 {
		t.Fatalf("a swarm with a planted bug exited %d:\n%s", code, whole)
	}
	want := withoutTimings(t, whole)
	if want.Seeds != 24 || want.Failed == 0 || want.Passed == 0 {
		t.Fatalf("want 24 seeds, some failing and some passing: %+v", want)
	}
	var shards []string
	for i := 1; i <= 4; i++ {
		file := filepath.Join(dir, "shard"+string(rune('0'+i))+".jsonl")
		run(t, dir, append(swarmArgs, "--shard", string(rune('0'+i))+"/4", "--out", file)...)
		shards = append(shards, file)
	}
	code, merged := runStdout(t, dir, append([]string{"sim", "merge", "--json"}, shards...)...)
	if code != 1 {
		t.Fatalf("merge exited %d:\n%s", code, merged)
	}
	got := withoutTimings(t, merged)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("merged shards:\n%s\nwhole swarm:\n%s", gotJSON, wantJSON)
	}
	_, text := run(t, dir, append([]string{"sim", "merge"}, shards...)...)
	if !strings.Contains(text, "24 seeds: ") || !strings.Contains(text, "reproduce: sluice sim run --scenario counter") {
		t.Fatalf("merged text summary:\n%s", text)
	}
	code, text = run(t, dir, "sim", "merge", shards[0], shards[1], shards[3])
	if code != 1 || !strings.Contains(text, "MISSING shard 3/4") {
		t.Fatalf("a missing shard: exit %d\n%s", code, text)
	}
	code, text = run(t, dir, "sim", "merge", shards[0], shards[0])
	if code != 2 || !strings.Contains(text, "are both shard 1/4") {
		t.Fatalf("a repeated shard: exit %d\n%s", code, text)
	}
}

// TestSwarmFailureReproducesAndShrinks takes a failure a swarm printed,
// reproduces its trace hash from the printed line, and shrinks it to a
// smaller schedule that replays.
func TestSwarmFailureReproducesAndShrinks(t *testing.T) {
	dir := t.TempDir()
	_, out := runStdout(t, dir, append(swarmArgs, "--json")...)
	s := withoutTimings(t, out)
	if len(s.Failures) == 0 {
		t.Fatal("no failure to reproduce")
	}
	var f swarmRecord
	for _, r := range s.Failures { // the failure with the most faults shrinks the most
		if f.SavedTo == "" || sumFired(r) > sumFired(f) {
			f = r
		}
	}
	if !strings.Contains(f.Reproduce, "--swarm") || !strings.Contains(f.Reproduce, "--bug dedupe-off") {
		t.Fatalf("reproduce line %q lacks the swarm's options", f.Reproduce)
	}
	_, again := simJSON(t, dir, reproduceArgs(t, f.Reproduce)...)
	if again.TraceHash != f.TraceHash {
		t.Fatalf("%q gave trace hash %s, the swarm's seed %s", f.Reproduce, again.TraceHash, f.TraceHash)
	}
	saved := filepath.Join(dir, f.SavedTo)
	code, text := run(t, dir, "sim", "shrink", saved)
	if code != 0 || !strings.Contains(text, "shrunk:") {
		t.Fatalf("shrink exited %d:\n%s", code, text)
	}
	before, err := loadRun(saved)
	if err != nil {
		t.Fatal(err)
	}
	after, err := loadRun(shrunkPath(saved))
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Schedule.Actions) >= len(before.Schedule.Actions) && after.Run >= before.Run {
		t.Fatalf("shrinking kept %d of %d actions and run %v of %v", len(after.Schedule.Actions), len(before.Schedule.Actions), after.Run, before.Run)
	}
	_, replay := simJSON(t, dir, "sim", "replay", shrunkPath(saved))
	if replay.Reproduced == nil || !*replay.Reproduced || len(replay.Checks) == 0 {
		t.Fatalf("the shrunk run does not replay: %+v", replay)
	}
	failing := false
	for _, c := range replay.Checks {
		failing = failing || !c.OK
	}
	if !failing {
		t.Fatal("the shrunk run passes")
	}
	if code, text := run(t, dir, "sim", "shrink", filepath.Join(dir, "nope.json")); code != 2 {
		t.Fatalf("shrink of a missing file exited %d:\n%s", code, text)
	}
}

func sumFired(r swarmRecord) int {
	n := 0
	for _, c := range r.FaultsFired {
		n += c
	}
	return n
}

// TestShrinkRefusesAPassingRun: there is nothing to shrink in a run that
// passes, and the command says so with exit 1.
func TestShrinkRefusesAPassingRun(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "pass.json")
	if code, out := run(t, dir, "sim", "run", "--seed", "2", "--run", "2s", "--drain", "1s", "--save-run", saved); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out := run(t, dir, "sim", "shrink", saved)
	if code != 1 || !strings.Contains(out, "does not fail") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(shrunkPath(saved)); err == nil {
		t.Fatal("a passing run was written as shrunk")
	}
}

// TestSwarmStopsAndTimesOut: --max-failures stops starting seeds once that
// many failed, and --seed-timeout fails a seed whose worker runs too long.
func TestSwarmStopsAndTimesOut(t *testing.T) {
	dir := t.TempDir()
	code, out := runStdout(t, dir, "sim", "swarm", "--scenario", "counter", "--bug", "dedupe-off", "--seeds", "60",
		"--run", "3s", "--drain", "1s", "--max-failures", "2", "--json")
	s := withoutTimings(t, out)
	if code != 1 || s.Failed < 2 || s.NotRun == 0 || s.Seeds+s.NotRun != 60 {
		t.Fatalf("exit %d, %d seeds run, %d failed, %d not run", code, s.Seeds, s.Failed, s.NotRun)
	}
	code, out = runStdout(t, dir, "sim", "swarm", "--scenario", "counter", "--seeds", "2", "--parallel", "1",
		"--seed-timeout", "1ms", "--json")
	s = withoutTimings(t, out)
	if code != 1 || s.Failed != 2 || !strings.Contains(s.Failures[0].Error, "ran past --seed-timeout") {
		t.Fatalf("exit %d: %+v", code, s)
	}
}

// TestSwarmReportPage: --report writes the swarm's page with its scenarios,
// its coverage (the kinds and probes its scenarios reach but never did
// highlighted) and its
// failures with their reproduce lines.
func TestSwarmReportPage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "swarm-report")
	code, text := runStdout(t, dir, append(swarmArgs, "--report", out)...)
	if code != 1 || !strings.Contains(text, "report:    "+filepath.Join(out, "swarm.html")) {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	page, err := os.ReadFile(filepath.Join(out, "swarm.html"))
	if err != nil {
		t.Fatal(err)
	}
	// counter draws no bit flips: its zero is plain, not a weak spot.
	for _, want := range []string{"<td>counter</td>", `<tr><td><code>corrupt</code>`,
		"counter/sync-failed-reload", "sluice sim run --scenario counter", "24 seeds: ", `<img src="data:image/svg`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("swarm.html lacks %q", want)
		}
	}
	for _, name := range []string{"swarm-coverage.png", "swarm-coverage.svg"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSwarmStopsOnSigtermAndKeepsWhatRan: a SIGTERM stops handing out
// seeds; the seeds in flight finish (their workers, in process groups of
// their own, are not hit) and the swarm writes --out and its summary of
// what ran, with the seeds not run, and exits 1.
func TestSwarmStopsOnSigtermAndKeepsWhatRan(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "part.jsonl")
	var stdout, stderr syncBuffer
	cmd := exec.Command(sluiceBinary(t), "sim", "swarm", "--scenario", "counter", "--seeds", "400", "--parallel", "2",
		"--out", out, "--json", "--failures-dir", dir)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Progress lines come at most so often, so counts may be skipped:
	// wait for any of three or more.
	finished := regexp.MustCompile(`(\d+)/400 seeds`)
	waitUntil(t, time.Minute, "a few seeds to finish", func() bool {
		for _, m := range finished.FindAllStringSubmatch(stderr.String(), -1) {
			if n, _ := strconv.Atoi(m[1]); n >= 3 {
				return true
			}
		}
		return false
	})
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v):\n%s", code, err, stderr.String())
	}
	s := withoutTimings(t, stdout.String())
	if !s.Interrupted || s.Seeds < 3 || s.NotRun == 0 || s.Seeds+s.NotRun != 400 || s.Failed != 0 {
		t.Fatalf("%d seeds run, %d failed, %d not run, interrupted %v:\n%s", s.Seeds, s.Failed, s.NotRun, s.Interrupted, stderr.String())
	}
	_, records, err := readSwarmFile(out)
	if err != nil || len(records) != s.Seeds {
		t.Fatalf("--out holds %d records of %d run: %v", len(records), s.Seeds, err)
	}
}

// A swarm reports as never hit only the probes its scenarios are known to
// reach, and as never fired the fault ops they are known to draw; the
// others are reported apart, not as weak spots (a cluster's ISR shrink, or
// bit flips, in a single-broker swarm).
func TestSwarmNeverHitIsWhatItsScenariosReach(t *testing.T) {
	spec := swarmSpec{Scenarios: []string{"single-broker"}, FirstSeed: 1, Seeds: 1}
	records := []swarmRecord{{Scenario: "single-broker", Seed: 1, OK: true,
		Probes: sim.ProbeCounts{"storage/torn-tail-cut": 2}}}
	s := summarizeSwarm(spec, records)
	if !slices.Contains(s.ProbesNeverHit, "storage/index-rebuilt") || slices.Contains(s.ProbesNeverHit, "storage/torn-tail-cut") {
		t.Errorf("never hit %v: want single-broker's index rebuild, not its torn tail, which a seed hit", s.ProbesNeverHit)
	}
	if slices.Contains(s.ProbesNeverHit, "broker/isr-shrunk") || !slices.Contains(s.ProbesNotReached, "broker/isr-shrunk") {
		t.Errorf("never hit %v, not reached %v: an ISR shrink is a cluster's, apart", s.ProbesNeverHit, s.ProbesNotReached)
	}
	var out strings.Builder
	if err := s.writeText(&out); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.FaultsNeverFired, "kill") || slices.Contains(s.FaultsNeverFired, "corrupt") || !slices.Contains(s.FaultsNotDrawn, "corrupt") {
		t.Errorf("faults never fired %v, not drawn %v: want kill (single-broker draws it), corrupt apart", s.FaultsNeverFired, s.FaultsNotDrawn)
	}
	if text := out.String(); strings.Contains(text, "isr-shrunk") || !strings.Contains(text, "not known to be reachable") {
		t.Errorf("summary:\n%s", text)
	}
}
