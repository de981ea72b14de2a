package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestBenchChannelsJSON runs the comparison small: one row per channel,
// every event moved, percentiles in order.
func TestBenchChannelsJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	f := benchChannelsFlags{events: 3000, batch: 100, inFlightMax: 16, takers: 2, dataDirs: 1, dir: t.TempDir(), jsonOut: true}
	if err := runBenchChannels(context.Background(), &out, &errOut, f, []string{"memory", "file", "spillable"}, []int{100, 1024}); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var rows []channelBenchResult
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows: %s", len(rows), out.String())
	}
	for i, r := range rows {
		wantKind := []string{"memory", "file", "spillable"}[i%3]
		if r.Channel != wantKind || r.Events != 3000 || r.EventsPerSec <= 0 || r.MBPerSec <= 0 ||
			r.LatencyP50Ms > r.LatencyP99Ms || r.LatencyP99Ms > r.LatencyMaxMs || r.LatencyMaxMs <= 0 {
			t.Fatalf("row %d: %+v", i, r)
		}
	}
}

// TestBenchChannelsCommand checks the table and the refusals of bad flags.
func TestBenchChannelsCommand(t *testing.T) {
	out, _, err := runSluice(t, "bench", "channels", "--events", "500", "--event-size", "64", "--dir", t.TempDir())
	if err != nil || !strings.Contains(out, "P99.9 MS") || !strings.Contains(out, "│ memory") || !strings.Contains(out, "│ file") {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, bad := range [][]string{{"--channels", "jdbc"}, {"--channels", "memory,kafka2"}, {"--event-size", "0"}, {"--events", "0"}, {"--batch", "20000"}, {"--kill-after", "soon"}} {
		_, errOut, err := runSluice(t, append([]string{"bench", "channels"}, bad...)...)
		if err == nil || !strings.Contains(errOut, bad[0]) {
			t.Errorf("%v: %v\n%s", bad, err, errOut)
		}
	}
	help, _, _ := runSluice(t, "bench", "channels", "--help")
	if !strings.Contains(help, "Examples:") || !strings.Contains(help, "sluice bench channels --events") {
		t.Fatalf("help without an example:\n%s", help)
	}
}

// BenchmarkChannelsRealDisk moves b.N events through each channel on the
// real disk, with 16 put commits in flight, as the command does by
// default, or 64 (where the file channel reaches the disk's sequential
// rate rather than the producer's window over a sync's round trip):
// go test -bench ChannelsRealDisk -run '^$' ./cmd/sluice/
func BenchmarkChannelsRealDisk(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, run := range []struct {
			kind             string
			inFlight, takers int
		}{{"memory", 16, 1}, {"file", 16, 1}, {"file", 16, 16}, {"file", 64, 1}} {
			kind := run.kind
			b.Run(fmt.Sprintf("%s-%dB-%dinflight-%dtakers", kind, size, run.inFlight, run.takers), func(b *testing.B) {
				b.SetBytes(int64(size))
				flags := benchChannelsFlags{events: max(b.N, 100), batch: 100, inFlightMax: run.inFlight, takers: run.takers, dataDirs: 1}
				r, err := benchOneChannel(context.Background(), kind, size, flags, b.TempDir(), "")
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.EventsPerSec, "events/s")
				b.ReportMetric(r.LatencyP99Ms, "p99-ms")
			})
		}
	}
}

// runBenchChannelsJSON runs "sluice bench channels --json" with args and
// returns its rows and output.
func runBenchChannelsJSON(t *testing.T, args ...string) ([]channelBenchResult, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runTo(t, t.TempDir(), &stdout, &stderr, append([]string{"bench", "channels"}, args...)...)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr.String())
	}
	var rows []channelBenchResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return rows, out
}

// TestBenchChannelsKillNine runs the kill -9 measurement with real agent
// processes: the file channel loses no acknowledged line, and the memory
// channel's count is reported (it may lose what it held).
func TestBenchChannelsKillNine(t *testing.T) {
	rows, out := runBenchChannelsJSON(t, "--events", "1000", "--event-size", "100",
		"--channels", "memory,file", "--kill-after", "1s", "--json", "--dir", t.TempDir())
	if len(rows) != 2 || rows[0].Channel != "memory" || rows[1].Channel != "file" || rows[0].Kill == nil || rows[1].Kill == nil {
		t.Fatalf("rows: %s", out)
	}
	for _, r := range rows {
		k := r.Kill
		if k.Acked == 0 || k.Lost < 0 || k.Lost > k.Acked || k.Duplicated < 0 || k.AckedPerSec <= 0 {
			t.Fatalf("%s: %+v", r.Channel, *k)
		}
		t.Logf("%s channel: %d acknowledged before kill -9, %d lost, %d duplicated, %d delivered, recovery %.2fs",
			r.Channel, k.Acked, k.Lost, k.Duplicated, k.Delivered, k.RecoverySeconds)
	}
	if file := rows[1].Kill; file.Lost != 0 || file.Delivered < file.Acked {
		t.Fatalf("the file channel lost %d of %d acknowledged lines on kill -9 (%d delivered)", file.Lost, file.Acked, file.Delivered)
	}
}

// TestBenchChannelsKillNineDataDirs runs the file channel's row with three
// data directories: its logs fill side by side, and a kill -9 loses no
// acknowledged line.
func TestBenchChannelsKillNineDataDirs(t *testing.T) {
	rows, out := runBenchChannelsJSON(t, "--events", "1000", "--event-size", "100",
		"--channels", "file", "--data-dirs", "3", "--kill-after", "1s", "--json", "--dir", t.TempDir())
	if len(rows) != 1 || rows[0].DataDirs != 3 || rows[0].Events != 1000 || rows[0].Kill == nil {
		t.Fatalf("rows: %s", out)
	}
	k := rows[0].Kill
	if k.Acked == 0 || k.Lost != 0 || k.Delivered < k.Acked {
		t.Fatalf("three data directories: %d of %d acknowledged lines lost on kill -9 (%d delivered)", k.Lost, k.Acked, k.Delivered)
	}
	t.Logf("%d acknowledged before kill -9, %d lost, %d duplicated", k.Acked, k.Lost, k.Duplicated)
}

// TestBenchChannelsKafka runs the kafka channel's row briefly: the command
// starts a real sluice broker (group commit) for it, moves every event
// through a topic of it, and in the kill -9 run the restarted agent's
// member reads on from its group's committed offsets: no acknowledged line
// is lost.
func TestBenchChannelsKafka(t *testing.T) {
	rows, out := runBenchChannelsJSON(t, "--events", "2000", "--event-size", "100",
		"--channels", "kafka", "--kill-after", "300ms", "--json", "--dir", t.TempDir())
	if len(rows) != 1 || rows[0].Channel != "kafka" || rows[0].Events != 2000 || rows[0].EventsPerSec <= 0 ||
		rows[0].LatencyP50Ms > rows[0].LatencyP99Ms || rows[0].Kill == nil {
		t.Fatalf("rows: %s", out)
	}
	k := rows[0].Kill
	if k.Acked == 0 || k.Lost != 0 || k.Delivered < k.Acked {
		t.Fatalf("the kafka channel lost %d of %d acknowledged lines on kill -9 (%d delivered)", k.Lost, k.Acked, k.Delivered)
	}
	t.Logf("kafka channel: %.0f events/s; kill -9: %d acknowledged, %d lost, %d duplicated, recovery %.2fs",
		rows[0].EventsPerSec, k.Acked, k.Lost, k.Duplicated, k.RecoverySeconds)
}
