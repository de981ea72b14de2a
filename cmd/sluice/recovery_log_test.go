package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRecoverySummaryAfterKillNine kills the real broker with SIGKILL after
// acknowledged writes, tears the tail of one partition's segment as a
// write cut short would (a few bytes of a batch that never finished),
// restarts it and reads its log: one line for the partition recovery had
// to mend, none for the one it did not, and one summary line for the
// whole start. Every acknowledged record is still read back.
func TestRecoverySummaryAfterKillNine(t *testing.T) {
	dir := t.TempDir()
	b := startRealBroker(t, dir, "", "--flush", "group")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("rl"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, "rl", 2)
	const records = 200
	var sent []*kgo.Record
	for i := range records {
		sent = append(sent, &kgo.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(context.Background(), sent...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.kill()

	const tornBytes = 5
	tearSegmentTail(t, filepath.Join(dir, "rl-0"), tornBytes)
	restarted := startRealBroker(t, dir, b.addr, "--flush", "group")
	got := consumeAll(t, restarted.addr, "rl", records)
	restarted.kill() // its log is complete once the process is gone
	log := restarted.log.String()

	if n := len(got[0]) + len(got[1]); n != records {
		t.Fatalf("read %d of %d acknowledged records after the restart\n%s", n, records, log)
	}
	partitionLine := regexp.MustCompile(`recovery: partition rl-0: 1 segments scanned \(\d+ batches, \d+ bytes\), ` +
		fmt.Sprintf(`%d bytes truncated \(1 cuts\), \d+ indexes rebuilt, producer state rebuilt `, tornBytes))
	if !partitionLine.MatchString(log) {
		t.Fatalf("no recovery line for the torn partition rl-0 in the broker's log:\n%s", log)
	}
	if strings.Contains(log, "recovery: partition rl-1:") {
		t.Fatalf("a recovery line for rl-1, which recovery had nothing to mend:\n%s", log)
	}
	summary := regexp.MustCompile(`recovery: 2 partitions opened in [0-9.]+[µnm]?s, 1 recovered cleanly, 1 repaired ` +
		fmt.Sprintf(`\(0 with data lost or damaged\), %d bytes truncated`, tornBytes))
	if !summary.MatchString(log) {
		t.Fatalf("no recovery summary line in the broker's log:\n%s", log)
	}
}

// tearSegmentTail appends n bytes of a batch that never finished to the
// newest segment in a partition directory.
func tearSegmentTail(t *testing.T, partitionDir string, n int) {
	t.Helper()
	segments, err := filepath.Glob(filepath.Join(partitionDir, "*.log"))
	if err != nil || len(segments) == 0 {
		t.Fatalf("no segment in %s: %v", partitionDir, err)
	}
	sort.Strings(segments)
	f, err := os.OpenFile(segments[len(segments)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Zeros where the next batch header would start: a write cut short.
	if _, err := f.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
