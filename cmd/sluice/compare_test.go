package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCompareCommand runs the sluice binary with env added to this process's and
// returns its output and exit status.
func runCompareCommand(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run sluice %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// One tiny round against kfake alone, which needs no Debian package: every
// phase has a row for sluice (both flush policies) and each kfake, each
// with a rate, and the ratios are sluice's median over the row's; the
// table, the JSON and the chart are written to --out, and --json prints
// the same JSON.
func TestCompareSluiceWithKfake(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := runCompareCommand(t, nil, "compare", "--rounds", "1", "--records", "2000",
		"--large-records", "10", "--skip", "redis,fio", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("compare exited %d:\n%s%s", code, stdout, stderr)
	}
	var r compareResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json printed no JSON: %v\n%s", err, stdout)
	}
	if want := []string{"redis-everysec", "redis-always", "fio"}; !slices.Equal(r.Skipped, want) {
		t.Errorf("skipped %v, want %v", r.Skipped, want)
	}
	checkCompareRows(t, r)
	if !strings.Contains(stderr, "round 1/1  kfake (memory)") {
		t.Errorf("no progress line for kfake:\n%s", stderr)
	}
	files := readCompareFiles(t, out)
	if files["compare.json"] != stdout {
		t.Errorf("compare.json differs from what --json printed")
	}
	for _, want := range []string{"PHASE", "consume 100 B", "sluice --flush group", "kfake (data dir, synced writes)", "1.00×", "skipped: redis-everysec, redis-always, fio"} {
		if !strings.Contains(files["compare.txt"], want) {
			t.Errorf("compare.txt lacks %q:\n%s", want, files["compare.txt"])
		}
	}
	if !strings.HasPrefix(files["ratios.png"], "\x89PNG\r\n\x1a\n") {
		t.Errorf("ratios.png is not a PNG")
	}
	if !strings.Contains(files["ratios.svg"], "<svg") || !strings.Contains(files["ratios.svg"], "kfake (memory)") {
		t.Errorf("ratios.svg is not an SVG naming kfake")
	}
}

// checkCompareRows checks that each phase has the expected systems in
// order, with rates, and ratios that are sluice's median over the row's.
func checkCompareRows(t *testing.T, r compareResult) {
	t.Helper()
	want := map[string][]string{
		phaseProduceAcks1:      {"sluice-group", "sluice-none", "kfake", "kfake-disk", "kfake-sync"},
		phaseProduceIdempotent: {"sluice-group", "sluice-none", "kfake", "kfake-disk", "kfake-sync"},
		phaseConsume:           {"sluice-group", "sluice-none", "kfake", "kfake-disk"},
		phaseProduceLarge:      {"sluice-group", "sluice-none", "kfake", "kfake-disk", "kfake-sync"},
	}
	got := map[string][]string{}
	reference := map[string]map[string]float64{} // phase, system: MB/s
	for _, row := range r.Rows {
		got[row.Phase] = append(got[row.Phase], row.System)
		if row.MBPerSecMedian <= 0 || row.RecordsPerSecMedian <= 0 || len(row.MBPerSecRounds) != 1 {
			t.Errorf("%s %s: no rate in one round: %+v", row.Phase, row.System, row)
		}
		if reference[row.Phase] == nil {
			reference[row.Phase] = map[string]float64{}
		}
		reference[row.Phase][row.System] = row.MBPerSecMedian
	}
	for phase, systems := range want {
		if !slices.Equal(got[phase], systems) {
			t.Errorf("phase %s has rows %v, want %v", phase, got[phase], systems)
		}
	}
	for _, row := range r.Rows {
		group, none := reference[row.Phase][systemSluiceGroup], reference[row.Phase][systemSluiceNone]
		if !closeTo(row.RatioGroup, group/row.MBPerSecMedian) || !closeTo(row.RatioNone, none/row.MBPerSecMedian) {
			t.Errorf("%s %s: ratios %v and %v, want %v and %v", row.Phase, row.System,
				row.RatioGroup, row.RatioNone, group/row.MBPerSecMedian, none/row.MBPerSecMedian)
		}
	}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

func readCompareFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{"compare.txt", "compare.json", "ratios.png", "ratios.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("--out lacks %s: %v", name, err)
		}
		files[name] = string(b)
	}
	return files
}

// With Redis and fio missing from PATH, compare refuses to start and names
// each missing program, its Debian package and the --skip that leaves it
// out; skipping them removes their complaint.
func TestCompareNamesMissingProgramsAndTheirPackages(t *testing.T) {
	emptyPath := "PATH=" + t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, code := runCompareCommand(t, []string{emptyPath}, "compare", "--out", out)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, exitUsage, stderr)
	}
	for _, want := range []string{
		"redis-server is not installed (Debian package redis-server: sudo apt-get install -y redis-server); install it, or leave it out with --skip redis",
		"redis-benchmark is not installed (Debian package redis-tools: sudo apt-get install -y redis-tools)",
		"fio is not installed (Debian package fio: sudo apt-get install -y fio); install it, or leave it out with --skip fio",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Count(stderr, "redis-server is not installed") != 1 {
		t.Errorf("redis-server named more than once:\n%s", stderr)
	}
	_, stderr, _ = runCompareCommand(t, []string{emptyPath}, "compare", "--skip", "redis", "--out", out)
	if strings.Contains(stderr, "redis") || !strings.Contains(stderr, "fio is not installed") {
		t.Errorf("with --skip redis, want fio named and Redis not:\n%s", stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused comparison created --out: %v", err)
	}
}

// Bad flags fail with status 2 and a message naming the flag.
func TestCompareRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", "--rounds", "0"}, "--rounds 0: want 1 to 100"},
		{[]string{"compare", "--records", "0"}, "--records 0: want 1 to"},
		{[]string{"compare", "--batch-bytes", "-1"}, "--batch-bytes -1: want 0"},
		{[]string{"compare", "--skip", "kafka"}, `--skip "kafka": not a system (known: sluice-none, kfake, kfake-disk, kfake-sync, redis, fio)`},
		{[]string{"compare", "kfake", "--listen", "127.0.0.1:1", "--sync-writes"}, "--sync-writes needs --data"},
		{[]string{"compare", "kfake", "--listen", "nowhere"}, `--listen "nowhere": want 127.0.0.1:PORT`},
	} {
		_, stderr, code := runCompareCommand(t, nil, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("sluice %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr, exitUsage, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		values []float64
		want   float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.values); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.values, got, tc.want)
		}
	}
}
