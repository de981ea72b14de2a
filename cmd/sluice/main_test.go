package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// run runs the built binary and returns its exit status and output,
// standard output and error together.
func run(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := runTo(t, dir, &out, &out, args...)
	return code, out.String()
}

// runStdout runs the built binary and returns its exit status and its
// standard output alone.
func runStdout(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := runTo(t, dir, &out, io.Discard, args...)
	return code, out.String()
}

func runTo(t *testing.T, dir string, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestSimRunExitStatuses(t *testing.T) {
	dir := t.TempDir()
	code, out := run(t, dir, "sim", "run", "--seed", "3", "--run", "4s", "--drain", "2s")
	if code != 0 || !strings.Contains(out, "trace hash") || !strings.Contains(out, "time dilation") ||
		!strings.Contains(out, "then audits and checks") {
		t.Fatalf("a passing run exited %d:\n%s", code, out)
	}
	code, out = run(t, dir, "sim", "run", "--seed", "1", "--run", "4s", "--drain", "2s", "--bug", "dedupe-off")
	if code != 1 || !strings.Contains(out, "FAILED no-double-apply") ||
		!strings.Contains(out, "reproduce: sluice sim run --scenario counter --seed 1 --bug dedupe-off") {
		t.Fatalf("a failing run exited %d:\n%s", code, out)
	}
	saved := filepath.Join(dir, "sluice-failures", "counter-seed1.json")
	if _, err := os.Stat(saved); err != nil {
		t.Fatalf("failing run not saved: %v", err)
	}
	code, out = run(t, dir, "sim", "replay", saved)
	if code != 1 || !strings.Contains(out, "FAILED no-double-apply") {
		t.Fatalf("replay of a failing run exited %d:\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"sim", "run", "--scenario", "nope"},
		{"sim", "run", "--bug", "nope"},
		{"sim", "run", "--seeds", "0"},
		{"sim", "run", "--no-such-flag"},
	} {
		if code, out := run(t, dir, bad...); code != 2 {
			t.Errorf("%v exited %d, want 2:\n%s", bad, code, out)
		}
	}
}

func TestInvalidFaultFileNamesEntryAndField(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "faults.json")
	os.WriteFile(file, []byte(`{"actions":[{"at":"1s","op":"kill","node":"server"},{"at":"2s","op":"kill","node":"b9"}]}`), 0o644)
	code, out := run(t, dir, "sim", "run", "--faults", file)
	if code != 2 || !strings.Contains(out, `actions[1] (op "kill" at 2s): field "node": unknown node "b9"`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestDeterminismCheckAndJSON(t *testing.T) {
	dir := t.TempDir()
	code, out := run(t, dir, "sim", "run", "--seed", "5", "--run", "3s", "--drain", "1s", "--check-determinism", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var summary struct {
		TraceHash     string `json:"trace_hash"`
		Deterministic *bool  `json:"deterministic"`
		Events        uint64 `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if summary.Deterministic == nil || !*summary.Deterministic || summary.TraceHash == "" || summary.Events == 0 {
		t.Fatalf("summary %+v", summary)
	}
	code, out = run(t, dir, "sim", "run", "--seed", "3", "--run", "3s", "--drain", "1s", "--check-determinism", "--bug", "map-order")
	if code != 1 || !strings.Contains(out, "runs diverge at event #") || !strings.Contains(out, "send c") {
		t.Fatalf("nondeterminism not reported (exit %d):\n%s", code, out)
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	hist := filepath.Join(dir, "h.jsonl")
	code, out := run(t, dir, "sim", "run", "--scenario", "single-broker", "--seed", "2", "--param", "faults=none",
		"--run", "3s", "--drain", "5s", "--history", hist)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, out := run(t, dir, "check", hist); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("check of a good history exited %d:\n%s", code, out)
	}
	// Plant a lost write: drop every poll that returned one acknowledged
	// value, which sits below later polled offsets.
	data, _ := os.ReadFile(hist)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var victim string
	for _, l := range lines {
		if strings.Contains(l, `"type":"ok","f":"send"`) && strings.Contains(l, `"offset":5}`) {
			var op struct{ Record struct{ Value string } }
			json.Unmarshal([]byte(l), &op)
			victim = op.Record.Value
			break
		}
	}
	if victim == "" {
		t.Fatal("no acknowledged send at offset 5")
	}
	var kept []string
	for _, l := range lines {
		if strings.Contains(l, `"f":"poll"`) && strings.Contains(l, `"value":"`+victim+`"`) {
			continue
		}
		kept = append(kept, l)
	}
	os.WriteFile(hist, []byte(strings.Join(kept, "\n")+"\n"), 0o644)
	code, out = run(t, dir, "check", hist)
	if code != 1 || !strings.Contains(out, "lost-write") {
		t.Fatalf("check of a history with a lost write exited %d:\n%s", code, out)
	}
	os.WriteFile(hist, []byte("{not json\n"), 0o644)
	if code, out := run(t, dir, "check", hist); code != 2 || !strings.Contains(out, "line 1") {
		t.Fatalf("check of a malformed history exited %d:\n%s", code, out)
	}
}

// TestReportOfARunWithoutHistory: the counter scenario's clients keep no
// history, so its report charts the faults alone, says why, and still
// shows the determinism verdict and a result.json.
func TestReportOfARunWithoutHistory(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "rep")
	code, text := run(t, dir, "sim", "run", "--scenario", "counter", "--seed", "3", "--run", "3s", "--drain", "1s",
		"--check-determinism", "--report", out)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	for _, name := range []string{"fault-timeline.png", "fault-timeline.svg", "result.json"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("report file %s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "throughput.png")); err == nil {
		t.Error("an empty throughput chart was written for a run without history")
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{"keep no operation history", "<td>determinism</td>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if svg, _ := os.ReadFile(filepath.Join(out, "fault-timeline.svg")); !strings.Contains(string(svg), "faults until 3s") {
		t.Error("the time axis does not name the run's phases")
	}
	var result struct {
		TraceHash     string `json:"trace_hash"`
		Deterministic *bool  `json:"deterministic"`
	}
	data, _ := os.ReadFile(filepath.Join(out, "result.json"))
	if err := json.Unmarshal(data, &result); err != nil || result.TraceHash == "" || result.Deterministic == nil {
		t.Errorf("result.json: %v\n%s", err, data)
	}
}

func TestReportFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "rep")
	code, text := run(t, dir, "sim", "run", "--scenario", "single-broker", "--seed", "4", "--run", "3s", "--drain", "5s", "--report", out)
	if code != 0 || !strings.Contains(text, "report:    "+filepath.Join(out, "report.html")) {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	for _, name := range []string{"report.html", "latency.txt", "throughput.png", "throughput.svg", "send-latency.png", "latency-percentiles.svg"} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil || st.Size() == 0 {
			t.Fatalf("report file %s: %v", name, err)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{"single-broker", "no-corrupt-reads", "linearizable", "<img src=\"data:image/svg"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestBadInputMessagesAndExitCodes checks, for each kind of bad input, the
// exit status and that the message says what is wrong and where.
func TestBadInputMessagesAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := write("empty.jsonl", "")
	array := write("array.json", `[{"at":"1s","op":"heal"}]`)
	blank := write("blank.json", "\n")
	syntax := write("syntax.json", "{\"actions\": [\n  {\"at\": \"1s\" \"op\": \"heal\"}\n]}")
	notRun := write("notrun.json", `{"seed": 3}`)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sim", "nope"}, 2, `unknown command "nope" for "sluice sim" (known: bugs, compare-channels, hunt, list, merge, mutate, replay, run, shrink, swarm)`},
		{[]string{"sim"}, 2, "sluice sim needs a subcommand (known: bugs, compare-channels, hunt, list, merge, mutate, replay, run, shrink, swarm)"},
		{[]string{"nope"}, 2, `unknown command "nope" for "sluice"`},
		{[]string{"check", empty}, 2, "the history holds no operation"},
		{[]string{"sim", "run", "--faults", array}, 2, `found an array`},
		{[]string{"sim", "run", "--faults", blank}, 2, `fault schedule: empty: want {"actions"`},
		{[]string{"sim", "run", "--faults", syntax}, 2, `line 2, column 15: invalid character`},
		{[]string{"sim", "run", "--run", "-5s"}, 2, "--run -5s: want a positive duration"},
		{[]string{"sim", "run", "--drain", "-1s"}, 2, "--drain -1s: want a positive duration"},
		{[]string{"sim", "replay", notRun}, 2, `not a saved run: no "scenario"`},
	}
	for _, c := range cases {
		code, out := run(t, dir, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("sluice %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
		if strings.Contains(out, "Go value") || strings.Contains(out, "json: cannot") {
			t.Errorf("sluice %s leaks the decoder's words:\n%s", strings.Join(c.args, " "), out)
		}
	}
}

// TestCheckNamesWellFormedness makes sure a history's format verdict is
// named for what it checks, so "history: valid" never stands under
// "overall: INVALID".
func TestCheckNamesWellFormedness(t *testing.T) {
	dir := t.TempDir()
	hist := filepath.Join(dir, "h.jsonl")
	os.WriteFile(hist, []byte(`{"index":0,"time":1,"process":0,"type":"invoke","f":"send","record":{"topic":"t","partition":0,"value":"a","offset":-1}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","record":{"topic":"t","partition":0,"value":"a","offset":0}}
{"index":2,"time":3,"process":0,"type":"ok","f":"send","record":{"topic":"t","partition":0,"value":"b","offset":1}}
`), 0o644)
	code, out := run(t, dir, "check", hist)
	if code != 1 || !strings.Contains(out, "well-formed: INVALID") || strings.Contains(out, "\nhistory: ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestDocumentedHistoriesAreValid runs sluice check on the history examples
// the README and check --help show, so the documented format stays true.
func TestDocumentedHistoriesAreValid(t *testing.T) {
	dir := t.TempDir()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, afterHeading, _ := strings.Cut(string(readme), "### Histories")
	_, block, _ := strings.Cut(afterHeading, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	_, help := run(t, dir, "check", "--help")
	var helpLines []string
	for _, line := range strings.Split(help, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, `{"index"`) {
			helpLines = append(helpLines, line)
		}
	}
	for name, text := range map[string]string{"README.md": block, "check --help": strings.Join(helpLines, "\n")} {
		if strings.Count(text, `"index"`) < 4 {
			t.Fatalf("%s: no history example found:\n%s", name, text)
		}
		file := filepath.Join(dir, "example.jsonl")
		os.WriteFile(file, []byte(text), 0o644)
		if code, out := run(t, dir, "check", file); code != 0 {
			t.Errorf("the history example of %s is not valid (exit %d):\n%s", name, code, out)
		}
	}
}

// TestFailingRunReportExplains looks for a seed on which a planted bug
// breaks linearizability and checks that its report explains the failure:
// the anomalies with the operations involved and the world events around
// them, and porcupine's page of the partition, beside the report and
// framed in it.
func TestFailingRunReportExplains(t *testing.T) {
	dir := t.TempDir()
	out := failingReport(t, dir)
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{"<h2>Anomalies</h2>", "<th>process</th>", "World events from", "<h2>Linearizability</h2>", "<iframe src=\"porcupine-"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(out, "porcupine-*.html"))
	if len(pages) == 0 {
		t.Fatal("no porcupine page beside the report")
	}
	viz, _ := os.ReadFile(pages[0])
	if !strings.Contains(string(viz), "<script") || len(viz) < 1000 {
		t.Errorf("%s is not porcupine's page (%d bytes)", pages[0], len(viz))
	}
}

// failingReport finds a seed on which a planted bug breaks
// linearizability, writes its report and returns the report's directory.
func failingReport(t *testing.T, dir string) string {
	t.Helper()
	const seedsMax = 12
	for seed := 1; seed <= seedsMax; seed++ {
		out := filepath.Join(dir, fmt.Sprintf("rep%d", seed))
		code, s := simJSON(t, dir, "sim", "run", "--scenario", "single-broker", "--seed", strconv.Itoa(seed),
			"--bug", "ack-before-sync", "--report", out)
		for _, c := range s.Checks {
			if code == 1 && c.Name == "linearizable" && !c.OK {
				return out
			}
		}
	}
	t.Fatalf("ack-before-sync broke linearizability on none of %d seeds", seedsMax)
	return ""
}

// TestReadmeExamplesHold runs the README's example commands whose comments
// say they fail or are caught, and checks that they do: a seed the README
// names must still show what the README says it shows.
func TestReadmeExamplesHold(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	checked := 0
	for _, line := range strings.Split(string(readme), "\n") {
		command, comment, ok := strings.Cut(line, "#")
		if !ok || !strings.HasPrefix(command, "bin/sluice sim run ") ||
			!(strings.Contains(comment, "caught") || strings.Contains(comment, "fails")) {
			continue
		}
		args := strings.Fields(strings.TrimPrefix(command, "bin/sluice "))
		var kept []string
		for i := 0; i < len(args); i++ {
			if args[i] == "--report" { // the example's report is not what is checked
				i++
				continue
			}
			kept = append(kept, args[i])
		}
		if code, out := run(t, dir, kept...); code != 1 {
			t.Errorf("the README says %q fails, but it exited %d:\n%s", strings.TrimSpace(command), code, out)
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("found %d README examples that say they fail", checked)
	}
}

// TestDemoSeedShowsTheFaults: make demo's seed must pass and apply what a
// demo promises: a power loss, a kill, a failing disk and a partition.
func TestDemoSeedShowsTheFaults(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var seed, scenario string
	for _, line := range strings.Split(string(makefile), "\n") {
		name, value, ok := strings.Cut(line, "?=")
		switch name = strings.TrimSpace(name); {
		case ok && name == "SEED":
			seed = strings.TrimSpace(value)
		case ok && name == "SCENARIO":
			scenario = strings.TrimSpace(value)
		}
	}
	if seed == "" || scenario == "" {
		t.Fatalf("the Makefile sets no SEED or SCENARIO (%q, %q)", seed, scenario)
	}
	var s struct {
		FaultsFired map[string]int `json:"faults_fired"`
		Checks      []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	code, out := run(t, t.TempDir(), "sim", "run", "--scenario", scenario, "--seed", seed, "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != 0 {
		t.Fatalf("demo seed %s exited %d: %v\n%s", seed, code, err, out)
	}
	for _, op := range []string{"power-loss", "kill", "fail-syncs", "partition"} {
		if s.FaultsFired[op] == 0 {
			t.Errorf("demo seed %s applies no %s: %v", seed, op, s.FaultsFired)
		}
	}
}
