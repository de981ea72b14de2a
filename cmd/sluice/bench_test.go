package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kafka-producer-perf-test's total line and kafka-consumer-perf-test's
// summary, as Kafka's tools print them.
var (
	produceTotalLine   = regexp.MustCompile(`^(\d+) records sent, (\d+\.\d{6}) records/sec \((\d+\.\d{2}) MB/sec\), (\d+\.\d{2}) ms avg latency, (\d+\.\d{2}) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$`)
	produceWindowLine  = regexp.MustCompile(`^\d+ records sent, \d+\.\d records/sec \(\d+\.\d{2} MB/sec\), \d+\.\d ms avg latency, \d+\.\d ms max latency\.$`)
	consumeSummaryLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}), (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}), (\d+\.\d{4}), (\d+\.\d{4}), (\d+), (\d+\.\d{4}), 0, (\d+), (\d+\.\d{4}), (\d+\.\d{4})$`)
)

func runSluice(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// Both tools run against the real broker and print Kafka's lines: the
// produce total with its percentiles in order, progress lines, and the
// consumer's header and summary counting every record produced.
func TestBenchProduceAndConsumePrintKafkasLines(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--flush", "none")
	const records, size = 20000, 100
	out, errOut, err := runSluice(t, "bench", "produce", "--topic", "perf", "--num-records", strconv.Itoa(records),
		"--record-size", strconv.Itoa(size), "--throughput", "40000", "--reporting-interval", "100",
		"--producer-props", "bootstrap.servers="+b.addr, "acks=all", "linger.ms=5")
	if err != nil {
		t.Fatalf("bench produce: %v\n%s%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !produceWindowLine.MatchString(l) {
			t.Errorf("progress line does not parse: %q", l)
		}
	}
	if len(lines) < 2 {
		t.Errorf("no progress line in a run of about half a second at 100 ms intervals:\n%s", out)
	}
	m := produceTotalLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("total line does not parse: %q", lines[len(lines)-1])
	}
	if m[1] != strconv.Itoa(records) {
		t.Errorf("total says %s records sent, want %d", m[1], records)
	}
	rate, _ := strconv.ParseFloat(m[2], 64)
	if rate <= 0 || rate > 40000*1.1 {
		t.Errorf("rate %v records/s is not within the --throughput limit of 40000", rate)
	}
	p := make([]int, 4)
	for i := range p {
		p[i], _ = strconv.Atoi(m[6+i])
	}
	maxMs, _ := strconv.ParseFloat(m[5], 64)
	if p[0] > p[1] || p[1] > p[2] || p[2] > p[3] || float64(p[3]) > maxMs+1 {
		t.Errorf("percentiles %v out of order or past the max %v ms", p, maxMs)
	}

	out, errOut, err = runSluice(t, "bench", "consume", "--bootstrap-server", b.addr, "--topic", "perf",
		"--messages", strconv.Itoa(records))
	if err != nil {
		t.Fatalf("bench consume: %v\n%s%s", err, out, errOut)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != consumeHeader {
		t.Fatalf("consume output is not a header and a summary:\n%s", out)
	}
	c := consumeSummaryLine.FindStringSubmatch(lines[1])
	if c == nil {
		t.Fatalf("summary does not parse: %q", lines[1])
	}
	if c[5] != strconv.Itoa(records) {
		t.Errorf("summary counts %s records, want %d", c[5], records)
	}
	mb, _ := strconv.ParseFloat(c[3], 64)
	if want := float64(records*size) / (1 << 20); mb < want-0.001 || mb > want+0.001 {
		t.Errorf("summary counts %v MB, want %.4f", mb, want)
	}
}

// --json prints one object with the same figures; a consume that runs out
// of records before --messages fails after its timeout, with Kafka's
// warning.
func TestBenchJSONAndConsumeTimeout(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--flush", "none")
	out, errOut, err := runSluice(t, "bench", "produce", "--topic", "j", "--num-records", "500", "--record-size", "10",
		"--throughput", "-1", "--json", "--producer-props", "bootstrap.servers="+b.addr, "acks=1")
	if err != nil {
		t.Fatalf("bench produce --json: %v\n%s%s", err, out, errOut)
	}
	var r produceResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.Records != 500 || r.Failed != 0 || r.LatencyMsP50 <= 0 || r.LatencyMsP50 > r.LatencyMsP999 {
		t.Errorf("--json result %+v: want 500 records, none failed, ordered percentiles", r)
	}
	out, errOut, err = runSluice(t, "bench", "consume", "--bootstrap-server", b.addr, "--topic", "j",
		"--messages", "501", "--timeout", "1500", "--json")
	if err == nil {
		t.Fatalf("a consume of more records than the topic holds succeeded:\n%s", out)
	}
	var c consumeResult
	if jerr := json.Unmarshal([]byte(out), &c); jerr != nil || c.Messages != 500 {
		t.Errorf("summary of the short consume %q (%v): want 500 messages", out, jerr)
	}
	if !strings.Contains(errOut, "timeout (1500 ms) exceeded") {
		t.Errorf("no timeout warning: %q", errOut)
	}
}

// A run against a broker that is not there fails with status 1 once
// delivery.timeout.ms passed, naming how many records failed.
func TestBenchProduceFailsWithoutABroker(t *testing.T) {
	out, errOut, err := runSluice(t, "bench", "produce", "--topic", "t", "--num-records", "5", "--record-size", "1",
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+freeAddr(t), "delivery.timeout.ms=1500")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitBenchFailed {
		t.Fatalf("exit %v, want status %d\n%s%s", err, exitBenchFailed, out, errOut)
	}
	if !strings.Contains(errOut, "5 of 5 records failed") {
		t.Errorf("stderr does not say the records failed: %q", errOut)
	}
}

// Bad input names what is wrong.
func TestBenchRefusesBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1", "--producer-props", "acks=1"}, "bootstrap.servers"},
		{[]string{"produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1", "--producer-props", "bootstrap.servers=x:1", "buffer.memory=1"}, "buffer.memory: not supported"},
		{[]string{"produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1", "--producer-props", "bootstrap.servers=x:1", "acks=2"}, "acks=2"},
		{[]string{"produce", "--topic", "t", "--num-records", "0", "--record-size", "1", "--throughput", "-1", "--producer-props", "bootstrap.servers=x:1"}, "--num-records 0"},
		{[]string{"produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--producer-props", "bootstrap.servers=x:1"}, "--throughput"},
		{[]string{"consume", "--topic", "t", "--messages", "1"}, "--bootstrap-server is required"},
		{[]string{"consume", "--bootstrap-server", "x:1", "--topic", "t"}, "--messages 0"},
	}
	for _, tc := range cases {
		cmd := newRootCommand()
		var errOut bytes.Buffer
		cmd.SetOut(&errOut)
		cmd.SetErr(&errOut)
		cmd.SetArgs(append([]string{"bench"}, tc.args...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}
