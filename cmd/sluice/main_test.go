package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the built binary and returns its exit status and output.
func run(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestSimRunExitStatuses(t *testing.T) {
	dir := t.TempDir()
	code, out := run(t, dir, "sim", "run", "--seed", "3", "--run", "4s", "--drain", "2s")
	if code != 0 || !strings.Contains(out, "trace hash") || !strings.Contains(out, "time dilation") {
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
