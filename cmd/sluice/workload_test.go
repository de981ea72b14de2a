package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// workloadJSON is the part of 'sluice workload --json' the tests read.
type workloadJSON struct {
	Summary struct {
		RequestedRate float64 `json:"requested_rate"`
		SendRate      float64 `json:"send_rate"`
		AckRate       float64 `json:"ack_rate"`
		KeptUp        bool    `json:"kept_up"`
		Sent          int     `json:"sent"`
		Skipped       int     `json:"skipped"`
		Send          struct {
			OK    int64   `json:"ok"`
			P50Ms float64 `json:"p50_ms"`
			P99Ms float64 `json:"p99_ms"`
		} `json:"send"`
	} `json:"summary"`
	Check *struct {
		Valid bool `json:"valid"`
	} `json:"check"`
}

// TestWorkloadReachesTwentyThousandPerSecond is a generous-bound test of
// the workload's pacing: against a real broker with group commit, a
// 20,000 sends/s run must send and have acknowledged at least 95% of that
// rate, and its history must still pass the checkers.
func TestWorkloadReachesTwentyThousandPerSecond(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	const rate = 20000
	code, out := runBounded(t, 90*time.Second, "workload", "--bootstrap", b.addr, "--topic", "fast",
		"--rate", "20000", "--duration", "3s", "--json")
	if code != 0 {
		t.Fatalf("workload exited %d:\n%s", code, out)
	}
	var got workloadJSON
	if err := json.Unmarshal([]byte(lastLine(out)), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	s := got.Summary
	t.Logf("requested %d/s: sent %.0f/s, acknowledged %.0f/s, send p50 %.2f ms p99 %.2f ms",
		rate, s.SendRate, s.AckRate, s.Send.P50Ms, s.Send.P99Ms)
	if s.SendRate < 0.95*rate || s.AckRate < 0.95*rate || !s.KeptUp {
		t.Fatalf("asked for %d sends/s, sent %.0f/s and had %.0f/s acknowledged (%d skipped)", rate, s.SendRate, s.AckRate, s.Skipped)
	}
	if s.Send.OK != int64(s.Sent) || s.Send.P50Ms <= 0 || s.Send.P99Ms < s.Send.P50Ms {
		t.Fatalf("send outcomes and latencies do not add up: %+v", s)
	}
	if got.Check == nil || !got.Check.Valid {
		t.Fatalf("the history is not valid:\n%s", out)
	}
}

// TestWorkloadSaysWhenItCannotKeepUp: with one send allowed unanswered at
// a time, 5,000 sends/s is out of reach, and the summary must say so.
func TestWorkloadSaysWhenItCannotKeepUp(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	code, out := runBounded(t, 60*time.Second, "workload", "--bootstrap", b.addr, "--topic", "slow",
		"--rate", "5000", "--concurrency", "1", "--duration", "1s")
	if code != 0 || !strings.Contains(out, "the client could not keep up") || !strings.Contains(out, "of 5000 requested") {
		t.Fatalf("workload exited %d without saying it fell behind:\n%s", code, out)
	}
	for _, column := range []string{"SEND RATE", "P99.9", "send", "poll"} {
		if !strings.Contains(out, column) {
			t.Fatalf("summary lacks %q:\n%s", column, out)
		}
	}
}

// TestWorkloadRefusesAcksOneWithIdempotence: idempotence needs acks=all;
// the combination is refused rather than quietly weakened, and switching
// idempotence off explicitly makes it run.
func TestWorkloadRefusesAcksOneWithIdempotence(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"--acks", "1"}, {"--acks", "0", "--idempotence"}} {
		code, out := runBounded(t, 20*time.Second, append([]string{"workload", "--bootstrap", "127.0.0.1:1"}, args...)...)
		if code != 2 || !strings.Contains(out, "needs acks=all") || !strings.Contains(out, "--idempotence=false") {
			t.Fatalf("workload %v exited %d:\n%s", args, code, out)
		}
	}
	b := startRealBroker(t, t.TempDir(), "")
	code, out := runBounded(t, 60*time.Second, "workload", "--bootstrap", b.addr, "--topic", "leader",
		"--acks", "1", "--idempotence=false", "--rate", "500", "--duration", "1s", "--history", filepath.Join(dir, "h.jsonl"))
	if code != 0 || !strings.Contains(out, "overall: valid") {
		t.Fatalf("workload --acks 1 --idempotence=false exited %d:\n%s", code, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
