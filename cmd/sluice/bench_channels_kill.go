package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	"time"

	"github.com/sluice-sim/sluice/collector"
)

// The kill -9 measurement: a real agent process (netcat source with an OK
// per event, the channel under test, a file_roll sink that syncs each
// batch) takes lines from clients, is killed with SIGKILL while they send,
// is restarted on the same directories and drained; every line
// acknowledged before the kill must be in the sink's files afterwards.

// channelKillResult is what one kill -9 run found.
type channelKillResult struct {
	KillAfterSeconds float64 `json:"kill_after_seconds"`
	Acked            int     `json:"acked"`
	AckedPerSec      float64 `json:"acked_per_sec"`
	Delivered        int     `json:"delivered"`
	Lost             int     `json:"lost"`
	Duplicated       int     `json:"duplicated"`
	// RecoverySeconds runs from the restart until the channel is empty.
	RecoverySeconds float64 `json:"recovery_seconds"`
}

const (
	killClients = 4
	// killWindowLines bounds the lines a client has sent and not yet seen
	// answered: the netcat source answers in order, so a client more than
	// this far ahead waits.
	killWindowLines   = 2000
	killAgentReadyMax = 20 * time.Second
	killDrainMax      = 60 * time.Second
	killStopMax       = 40 * time.Second
	killBatch         = 100
)

// benchKillChannel runs the kill -9 measurement for one channel type and
// event size under dir.
func benchKillChannel(ctx context.Context, kind string, size int, killAfter time.Duration, dataDirs int, dir, brokerAddr string) (channelKillResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return channelKillResult{}, fmt.Errorf("find the sluice binary: %w", err)
	}
	addrs, err := freeLoopbackPorts(2)
	if err != nil {
		return channelKillResult{}, err
	}
	conf := filepath.Join(dir, "flume.conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return channelKillResult{}, err
	}
	topic := benchKafkaTopic("kill", size)
	if err := os.WriteFile(conf, []byte(killAgentConfig(kind, size, addrs[0], dir, brokerAddr, topic, dataDirs)), 0o644); err != nil {
		return channelKillResult{}, err
	}
	_, monitorPort, _ := net.SplitHostPort(addrs[1])
	run := func(n int) (*agentProcess, error) {
		return startAgentProcess(ctx, exe, filepath.Join(dir, fmt.Sprintf("agent-%d.log", n)), addrs[0],
			"agent", "-f", conf, "-n", "a1", "--no-reload-conf",
			"-Dflume.monitoring.type=http", "-Dflume.monitoring.port="+monitorPort)
	}

	first, err := run(1)
	if err != nil {
		return channelKillResult{}, err
	}
	acked, err := sendUntilKilled(addrs[0], size, killAfter, first.kill)
	if err != nil {
		return channelKillResult{}, fmt.Errorf("%w\n%s", err, logTail(first.logName))
	}

	restarted := time.Now()
	second, err := run(2)
	if err != nil {
		return channelKillResult{}, err
	}
	var drainErr error
	if kind == "kafka" {
		drainErr = waitKafkaGroupCaughtUp(ctx, brokerAddr, topic, topic, killDrainMax)
	}
	if drainErr == nil {
		drainErr = waitChannelEmpty(ctx, "http://"+addrs[1]+"/metrics")
	}
	recovery := time.Since(restarted)
	if err := second.stop(killStopMax); err != nil {
		return channelKillResult{}, fmt.Errorf("restarted agent: %w\n%s", err, logTail(second.logName))
	}
	if drainErr != nil {
		return channelKillResult{}, fmt.Errorf("restarted agent: %w\n%s", drainErr, logTail(second.logName))
	}
	delivered, err := readRolledLines(filepath.Join(dir, "out"))
	if err != nil {
		return channelKillResult{}, err
	}
	r := channelKillResult{KillAfterSeconds: killAfter.Seconds(), RecoverySeconds: recovery.Seconds()}
	for _, ids := range acked {
		r.Acked += len(ids)
		for _, id := range ids {
			if delivered[id] == 0 {
				r.Lost++
			}
		}
	}
	for _, n := range delivered {
		r.Delivered += n
		r.Duplicated += n - 1
	}
	r.AckedPerSec = float64(r.Acked) / killAfter.Seconds()
	return r, nil
}

// killAgentConfig is the agent a1: netcat on addr -> channel c1 of kind ->
// file_roll into dir/out, never rolling. A kafka channel keeps its events
// in topic of the broker at brokerAddr, read by the group of that name.
func killAgentConfig(kind string, size int, addr, dir, brokerAddr, topic string, dataDirs int) string {
	host, port, _ := net.SplitHostPort(addr)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("a1.sources = r1")
	p("a1.channels = c1")
	p("a1.sinks = k1")
	p("a1.sources.r1.type = netcat")
	p("a1.sources.r1.bind = %s", host)
	p("a1.sources.r1.port = %s", port)
	p("a1.sources.r1.max-line-length = %d", size+64)
	p("a1.sources.r1.channels = c1")
	switch kind {
	case "memory":
		p("a1.channels.c1.type = memory")
		p("a1.channels.c1.capacity = %d", benchChannelCapacity)
	case "file":
		p("a1.channels.c1.type = file")
		p("a1.channels.c1.capacity = %d", benchChannelCapacity)
	case "spillable":
		p("a1.channels.c1.type = SPILLABLEMEMORY")
		p("a1.channels.c1.memoryCapacity = %d", benchChannelCapacity/2)
		p("a1.channels.c1.overflowCapacity = %d", benchChannelCapacity/2)
	case "kafka":
		p("a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel")
		p("a1.channels.c1.capacity = %d", benchChannelCapacity)
		p("a1.channels.c1.kafka.bootstrap.servers = %s", brokerAddr)
		p("a1.channels.c1.kafka.topic = %s", topic)
		p("a1.channels.c1.kafka.consumer.group.id = %s", topic)
		p("a1.channels.c1.kafka.consumer.session.timeout.ms = %d", benchKafkaSessionTimeout.Milliseconds())
	}
	if kind == "file" || kind == "spillable" {
		p("a1.channels.c1.checkpointDir = %s", filepath.Join(dir, "checkpoint"))
		p("a1.channels.c1.dataDirs = %s", strings.Join(collector.DataDirsUnder(dir, dataDirs), ","))
		p("a1.channels.c1.minimumRequiredSpace = %d", 1<<20)
	}
	p("a1.channels.c1.transactionCapacity = %d", killBatch)
	p("a1.sinks.k1.type = file_roll")
	p("a1.sinks.k1.sink.directory = %s", filepath.Join(dir, "out"))
	p("a1.sinks.k1.sink.rollInterval = 0")
	p("a1.sinks.k1.batchSize = %d", killBatch)
	p("a1.sinks.k1.channel = c1")
	return b.String()
}

// agentProcess is a sluice agent run as a child process, its output in
// logName.
type agentProcess struct {
	cmd     *exec.Cmd
	logName string
	exited  chan struct{}
	waitErr error
}

// startAgentProcess starts exe with args and waits until it says it
// listens on addr and a connection there succeeds.
func startAgentProcess(ctx context.Context, exe, logName, addr string, args ...string) (*agentProcess, error) {
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &agentProcess{cmd: exec.Command(exe, args...), logName: logName, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(killAgentReadyMax)
	for time.Now().Before(deadline) {
		text, _ := os.ReadFile(logName)
		if strings.Contains(string(text), "listening on "+addr) {
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-p.exited:
			return nil, fmt.Errorf("agent exited (%v) before listening on %s:\n%s", p.waitErr, addr, logTail(logName))
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.kill()
	return nil, fmt.Errorf("agent did not listen on %s within %v:\n%s", addr, killAgentReadyMax, logTail(logName))
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *agentProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits up to limit for a clean exit.
func (p *agentProcess) stop(limit time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("exited with %v", p.waitErr)
		}
		return nil
	case <-time.After(limit):
		p.kill()
		return fmt.Errorf("did not stop within %v of SIGTERM", limit)
	}
}

// sendUntilKilled runs killClients connections sending lines for
// killAfter, then calls kill and returns, per client, the ids of the lines
// answered OK.
func sendUntilKilled(addr string, size int, killAfter time.Duration, kill func()) ([][]string, error) {
	acked := make([][]string, killClients)
	conns := make([]net.Conn, killClients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			for _, open := range conns[:i] {
				open.Close()
			}
			return nil, fmt.Errorf("connect to the netcat source: %w", err)
		}
		conns[i] = c
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acked[i] = sendLinesUntil(c, i, size, stop)
		}()
	}
	time.Sleep(killAfter)
	kill()
	close(stop)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	for i := range acked {
		if len(acked[i]) > 0 {
			return acked, nil
		}
	}
	return nil, errors.New("no line was acknowledged before the kill")
}

// sendLinesUntil writes lines "c<client>-<seq> xxx…" (size bytes before
// the newline) on c, at most killWindowLines unanswered, and returns the
// ids of those answered OK once the connection ends.
func sendLinesUntil(c net.Conn, client, size int, stop <-chan struct{}) []string {
	tokens := make(chan struct{}, killWindowLines)
	for i := 0; i < killWindowLines; i++ {
		tokens <- struct{}{}
	}
	sentIDs := make(chan string, killWindowLines)
	go func() {
		defer close(sentIDs)
		w := bufio.NewWriterSize(c, 64<<10)
		line := make([]byte, 0, size+1)
		for seq := 0; ; seq++ {
			select {
			case <-tokens:
			default:
				if w.Flush() != nil {
					return
				}
				select {
				case <-tokens:
				case <-stop:
					return
				}
			}
			id := fmt.Sprintf("c%d-%d", client, seq)
			line = append(line[:0], id...)
			line = append(line, ' ')
			for len(line) < size {
				line = append(line, 'x')
			}
			line = append(line, '\n')
			sentIDs <- id
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	var acked []string
	r := bufio.NewReader(c)
	for {
		answer, err := r.ReadString('\n')
		if err != nil {
			break
		}
		id, ok := <-sentIDs
		if !ok {
			break
		}
		if answer == "OK\n" {
			acked = append(acked, id)
		}
		tokens <- struct{}{}
	}
	for range sentIDs { // let the writer see its connection end
	}
	return acked
}

// waitChannelEmpty polls the agent's /metrics until channel c1 holds
// nothing and its sink has drained.
func waitChannelEmpty(ctx context.Context, url string) error {
	deadline := time.Now().Add(killDrainMax)
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := client.Get(url)
		if err == nil {
			var m map[string]map[string]string
			decodeErr := json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if decodeErr == nil && resp.StatusCode == http.StatusOK {
				size := m["CHANNEL.c1"]["ChannelSize"]
				if size == "0" {
					return nil
				}
				last = "ChannelSize " + size
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("channel not drained within %v (%s)", killDrainMax, last)
}

// readRolledLines counts each line id in the file_roll sink's files.
func readRolledLines(dir string) (map[string]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the sink's directory: %w", err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), benchEventBytesMax+64)
		for sc.Scan() {
			id, _, _ := strings.Cut(sc.Text(), " ")
			counts[id]++
		}
		err = sc.Err()
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
	}
	return counts, nil
}

func parseKillAfter(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 100*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("%q is not a duration in 100ms..1h", s)
	}
	return d, nil
}
