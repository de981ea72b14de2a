package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the sluice binary as a real agent, configured by Flume
// files, and talk to it over TCP as telnet or nc would.

// syncBuffer is a process's standard error, read while it is written.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type realAgent struct {
	cmd *exec.Cmd
	log *syncBuffer
}

func startRealAgent(t *testing.T, args ...string) *realAgent {
	t.Helper()
	a := &realAgent{log: &syncBuffer{}}
	a.cmd = exec.Command(sluiceBinary(t), append([]string{"agent"}, args...)...)
	a.cmd.Stderr = a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Signal(syscall.SIGKILL)
			a.cmd.Wait()
		}
	})
	return a
}

func waitListening(t *testing.T, addr string, a *realAgent) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The agent must say it listens there: a dial alone could reach
		// another process that took the port.
		announced := strings.Contains(a.log.String(), ":"+port+"\n") && strings.Contains(a.log.String(), "listening on")
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		if err == nil && announced {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not listen on %s in 10 s:\n%s", addr, a.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loggedBodies reads the logger sink's lines from the agent's standard
// error: the text column of each "Event: { ... }" line.
func loggedBodies(log string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "Event: { headers:") {
			continue
		}
		i := strings.LastIndex(line, "   ")
		out = append(out, strings.TrimSuffix(strings.TrimLeft(line[i:], " "), " }"))
	}
	return out
}

func waitLogged(t *testing.T, a *realAgent, want int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := loggedBodies(a.log.String())
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sendLines writes lines on one connection and reads one answer per line.
func sendLines(t *testing.T, addr string, lines []string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		for _, l := range lines {
			fmt.Fprintf(c, "%s\n", l)
		}
	}()
	var answers []string
	r := bufio.NewReader(c)
	for range lines {
		a, err := r.ReadString('\n')
		if err != nil {
			break
		}
		answers = append(answers, strings.TrimSuffix(a, "\n"))
	}
	return answers
}

// seedConfig is a seed's Flume file with its port moved to a free one, so
// that the test does not collide with anything on the machine.
func seedConfig(t *testing.T, name, port string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "collector", "config", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(text), ".port = 4141", ".port = "+port, 1)
	if out == string(text) {
		t.Fatalf("%s has no port 4141 to move", name)
	}
	path := filepath.Join(t.TempDir(), "flume.conf")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// TestAgentRunsSeedNetcatMemoryLogger runs the seed's netcat -> memory ->
// logger file with Flume's own command line, sends lines over TCP, reads
// the OKs and the logger sink's output, reads the counters from /metrics,
// and stops the agent with SIGTERM.
func TestAgentRunsSeedNetcatMemoryLogger(t *testing.T) {
	port, monitor := freePort(t), freePort(t)
	conf := seedConfig(t, "seed-netcat-memory-logger.conf", port)
	a := startRealAgent(t, "--conf", "conf", "--conf-file", conf, "--name", "agent1",
		"-Dflume.root.logger=INFO,console", "-Dflume.monitoring.type=http", "-Dflume.monitoring.port="+monitor)
	waitListening(t, "127.0.0.1:"+port, a)
	lines := []string{"Hello Flume!", "Test message", "from telnet"}
	for i := 0; i < 40; i++ {
		lines = append(lines, fmt.Sprintf("line-%02d", i))
	}
	answers := sendLines(t, "127.0.0.1:"+port, lines)
	if len(answers) != len(lines) || strings.Count(strings.Join(answers, ","), "OK") != len(lines) {
		t.Fatalf("answers %v for %d lines", answers, len(lines))
	}
	got := waitLogged(t, a, len(lines))
	if strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Fatalf("logged %v\nwant %v\n%s", got, lines, a.log)
	}
	if !strings.Contains(a.log.String(), "Event: { headers:{} body: 48 65 6C 6C 6F 20 46 6C 75 6D 65 21             Hello Flume! }") {
		t.Fatalf("no Flume-format event line:\n%s", a.log)
	}

	resp, err := http.Get("http://127.0.0.1:" + monitor + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics map[string]map[string]string
	err = json.NewDecoder(resp.Body).Decode(&metrics)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := fmt.Sprint(len(lines))
	if metrics["SOURCE.r1"]["EventAcceptedCount"] != n || metrics["CHANNEL.c1"]["EventTakeSuccessCount"] != n ||
		metrics["SINK.k1"]["EventDrainSuccessCount"] != n || metrics["CHANNEL.c1"]["ChannelCapacity"] != "1000" {
		t.Fatalf("/metrics: %v", metrics)
	}

	resp, err = http.Get("http://127.0.0.1:" + monitor + "/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"# TYPE flume_channel_channel_size gauge\nflume_channel_channel_size{agent=\"agent1\",name=\"c1\"} 0\n",
		"# TYPE flume_channel_event_put_success_count counter\nflume_channel_event_put_success_count{agent=\"agent1\",name=\"c1\"} " + n + "\n",
		"flume_sink_event_drain_success_count{agent=\"agent1\",name=\"k1\"} " + n + "\n",
	} {
		if !strings.Contains(string(prom), want) {
			t.Fatalf("Prometheus format lacks %q:\n%s", want, prom)
		}
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, a.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not stop within 30 s of SIGTERM:\n%s", a.log)
	}
	if !strings.Contains(a.log.String(), "agent agent1 stopped") {
		t.Fatalf("no graceful stop in the log:\n%s", a.log)
	}
}

// fileChannelAgents is one file with two agents over one file channel:
// "ingest" only takes lines in, "deliver" also logs them. Running ingest,
// killing it with SIGKILL and then running deliver shows what the channel
// kept.
const fileChannelAgents = `ingest.sources = r1
ingest.channels = c1
ingest.sources.r1.type = netcat
ingest.sources.r1.bind = 127.0.0.1
ingest.sources.r1.port = ${env:AGENT_PORT}
ingest.sources.r1.channels = c1
ingest.channels.c1.type = file
ingest.channels.c1.checkpointDir = ${env:AGENT_DIR}/checkpoint
ingest.channels.c1.dataDirs = ${env:AGENT_DIR}/data
ingest.channels.c1.maxFileSize = 65536

deliver.sources = r1
deliver.channels = c1
deliver.sinks = k1
deliver.sources.r1.type = netcat
deliver.sources.r1.bind = 127.0.0.1
deliver.sources.r1.port = ${env:AGENT_PORT}
deliver.sources.r1.channels = c1
deliver.channels.c1.type = file
deliver.channels.c1.checkpointDir = ${env:AGENT_DIR}/checkpoint
deliver.channels.c1.dataDirs = ${env:AGENT_DIR}/data
deliver.sinks.k1.type = logger
deliver.sinks.k1.batchSize = 100
deliver.sinks.k1.channel = c1
`

// TestAgentFileChannelKillNineLosesNothing: lines acknowledged by an agent
// with a file channel survive kill -9: the restarted agent's logger sink
// delivers every one of them.
func TestAgentFileChannelKillNineLosesNothing(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "flume.conf")
	if err := os.WriteFile(conf, []byte(fileChannelAgents), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	t.Setenv("AGENT_PORT", port)
	t.Setenv("AGENT_DIR", filepath.Join(dir, "channel"))
	addr := "127.0.0.1:" + port

	ingest := startRealAgent(t, "-f", conf, "-n", "ingest")
	waitListening(t, addr, ingest)
	var acked []string
	for batch := 0; batch < 5; batch++ {
		var lines []string
		for i := 0; i < 200; i++ {
			lines = append(lines, fmt.Sprintf("k%d-%03d", batch, i))
		}
		for i, a := range sendLines(t, addr, lines) {
			if a == "OK" {
				acked = append(acked, lines[i])
			}
		}
	}
	if len(acked) != 1000 {
		t.Fatalf("%d of 1000 lines acknowledged:\n%s", len(acked), ingest.log)
	}
	ingest.cmd.Process.Signal(syscall.SIGKILL)
	ingest.cmd.Wait()

	deliver := startRealAgent(t, "-f", conf, "-n", "deliver")
	got := waitLogged(t, deliver, len(acked))
	if strings.Join(got, "|") != strings.Join(acked, "|") {
		t.Fatalf("after kill -9 the restarted agent logged %d events, %d were acknowledged, in order:\nfirst got %v\n%s",
			len(got), len(acked), got[:min(5, len(got))], deliver.log)
	}
}

// TestAgentSeedKafkaSinkIntoSluiceBroker runs the seed's netcat -> memory
// -> KafkaSink file against a real sluice broker (its brokerList and port
// moved to this machine's) and reads the topic back with kcat.
func TestAgentSeedKafkaSinkIntoSluiceBroker(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat); .ci/run installs it")
	}
	b := startRealBroker(t, t.TempDir(), "")
	port := freePort(t)
	conf := seedConfig(t, "seed-netcat-memory-kafka.conf", port)
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(text), "m1:9092,m2:9092,m3:9092", b.addr, 1)
	if err := os.WriteFile(conf, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startRealAgent(t, "--conf-file", conf, "--name", "agent1")
	waitListening(t, "127.0.0.1:"+port, a)
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, fmt.Sprintf("User login: user%03d", i))
	}
	if answers := sendLines(t, "127.0.0.1:"+port, lines); strings.Count(strings.Join(answers, ","), "OK") != len(lines) {
		t.Fatalf("answers %v", answers)
	}
	deadline := time.Now().Add(20 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		// Until the sink's first batch creates the topic, kcat finds none.
		out, err := exec.Command("kcat", "-b", b.addr, "-C", "-t", "mylog", "-e", "-o", "beginning", "-f", "%s\n").Output()
		got = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if err == nil && len(got) >= len(lines) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Fatalf("kcat read %d records, want the %d lines in order:\n%v\nagent:\n%s", len(got), len(lines), got, a.log)
	}
}

// TestAgentBadInput: a bad file, agent or property exits 2 and says what
// and where.
func TestAgentBadInput(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "flume.conf")
	text := "a1.sources = r1\na1.channels = c1\na1.sinks = k1\na1.sources.r1.type = seq\na1.sources.r1.channels = c1\n" +
		"a1.channels.c1.type = memory\na1.sinks.k1.type = logger\na1.sinks.k1.channel = c9\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"agent", "-f", conf, "-n", "a1"}, "line 8: a1.sinks.k1.channel: unknown channel c9 (a1.channels lists c1)"},
		{[]string{"agent", "-f", conf, "-n", "a2"}, "no agent named a2 in the file (agents: a1)"},
		{[]string{"agent", "-f", conf, "-n", "a1", "-Dflume.monitoring.type=ganglia"}, `flume.monitoring.type "ganglia" is not supported`},
		{[]string{"agent", "-f", filepath.Join(dir, "missing.conf"), "-n", "a1"}, "--conf-file: open"},
		{[]string{"agent", "-n", "a1"}, `required flag(s) "conf-file" not set`},
	}
	for _, c := range cases {
		code, out := run(t, dir, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("sluice %s: exit %d, want 2 with %q:\n%s", strings.Join(c.args, " "), code, c.want, out)
		}
	}
}
