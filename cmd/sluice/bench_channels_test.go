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
	f := benchChannelsFlags{events: 3000, batch: 100, inFlightMax: 16, takers: 2, dir: t.TempDir(), jsonOut: true}
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
	for _, bad := range [][]string{{"--channels", "jdbc"}, {"--event-size", "0"}, {"--events", "0"}, {"--batch", "20000"}} {
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
// real disk: go test -bench ChannelsRealDisk -run '^$' ./cmd/sluice/
func BenchmarkChannelsRealDisk(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, run := range []struct {
			kind   string
			takers int
		}{{"memory", 1}, {"file", 1}, {"file", 16}} {
			kind := run.kind
			b.Run(fmt.Sprintf("%s-%dB-%dtakers", kind, size, run.takers), func(b *testing.B) {
				b.SetBytes(int64(size))
				r, err := benchOneChannel(context.Background(), kind, size, max(b.N, 100), 100, 16, run.takers, b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.EventsPerSec, "events/s")
				b.ReportMetric(r.LatencyP99Ms, "p99-ms")
			})
		}
	}
}
