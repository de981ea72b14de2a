package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimCompareChannelsCommand: the table, the JSON rows, the report's
// files, the refusals of bad flags, and the help's example.
func TestSimCompareChannelsCommand(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := runSluice(t, "sim", "compare-channels", "--seeds", "1", "--channels", "memory,file", "--report", dir)
	if err != nil || !strings.Contains(out, "SEEDS LOSING") || !strings.Contains(out, "UNACKED LOST") || !strings.Contains(out, "│ memory") || !strings.Contains(out, "│ file") {
		t.Fatalf("%v:\n%s\n%s", err, out, errOut)
	}
	for _, name := range []string{"channel-compare.json", "channel-outcomes.png", "channel-outcomes.svg", "channel-latency.png", "channel-latency.svg"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() < 100 {
			t.Fatalf("report file %s: %v", name, err)
		}
	}
	out, _, err = runSluice(t, "sim", "compare-channels", "--seed", "2", "--seeds", "1", "--channels", "spillable,kafka", "--json")
	var rows []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 || rows[0]["channel"] != "spillable" || rows[0]["acked"].(float64) <= 0 ||
		rows[1]["channel"] != "kafka" || rows[1]["acked"].(float64) <= 0 || rows[1]["unacked_lost"] == nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, bad := range [][]string{{"--channels", "jdbc"}, {"--seeds", "0"}, {"--param", "channel=file"}, {"--bug", "no-such-bug"}} {
		_, errOut, err := runSluice(t, append([]string{"sim", "compare-channels"}, bad...)...)
		if err == nil || !strings.Contains(errOut, bad[0]) {
			t.Errorf("%v: %v\n%s", bad, err, errOut)
		}
	}
	help, _, _ := runSluice(t, "sim", "compare-channels", "--help")
	if !strings.Contains(help, "Examples:") || !strings.Contains(help, "sluice sim compare-channels --seeds") {
		t.Fatalf("help without an example:\n%s", help)
	}
}
