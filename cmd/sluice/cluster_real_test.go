package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A local cluster of real processes, as CI runs it: `sluice cluster up
// --brokers 3`, kcat's view of it, and an idempotent acks=all producer
// writing to an RF 3, min ISR 2 topic while the leader of a partition is
// killed with SIGKILL and started again from its server.properties.
// Every acknowledged record must then be read back exactly once, at the
// offset it was acknowledged with, in the order it was sent.

const (
	clusterTopic      = "replicated"
	clusterPartitions = 3
	clusterRecords    = 3000
	clusterWaitMax    = 30 * time.Second
)

// localCluster is a running `sluice cluster up`.
type localCluster struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	file   clusterFile
	exe    string
	// restart is the killed leader's second life.
	restart *restart
}

func startLocalCluster(t *testing.T, args ...string) *localCluster {
	t.Helper()
	c := &localCluster{t: t, dir: t.TempDir(), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{}),
		exe: sluiceBinary(t), restart: &restart{done: make(chan struct{})}}
	c.cmd = exec.Command(c.exe, append([]string{"cluster", "up", "--data", c.dir}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	waitUntil(t, clusterWaitMax, "cluster up to print its bootstrap address", func() bool {
		select {
		case <-c.exited:
			t.Fatalf("cluster up exited: %v\n%s%s", c.cmd.ProcessState, c.stdout, c.stderr)
		default:
		}
		return strings.Contains(c.stdout.String(), "cluster.json: ")
	})
	file, err := readClusterFile(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	c.file = file
	return c
}

// kill ends the supervisor and every node still running, whatever
// happened to the test.
func (c *localCluster) kill() {
	for _, n := range c.file.Nodes {
		if processIs(n.PID, n.Config) {
			syscall.Kill(n.PID, syscall.SIGKILL)
		}
	}
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *localCluster) node(id int32) clusterNode {
	for _, n := range c.file.Nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %d in cluster.json", id)
	return clusterNode{}
}

func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kcatPartitionLine is one partition in `kcat -L`.
var kcatPartitionLine = regexp.MustCompile(`partition (\d+), leader (-?\d+), replicas: ([\d,]*), isrs: ([\d,]*)`)

// kcatPartitions is each partition's "leader|replicas|isr" as kcat -L
// lists them.
func kcatPartitions(t *testing.T, bootstrap, topic string) map[string]string {
	out := kcat(t, "", "-L", "-b", bootstrap, "-t", topic)
	got := map[string]string{}
	for _, m := range kcatPartitionLine.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2] + "|" + m[3] + "|" + m[4]
	}
	return got
}

func TestClusterUpKillLeaderLosesNoAcknowledgedRecord(t *testing.T) {
	c := startLocalCluster(t, "--brokers", "3")
	if len(c.file.Nodes) != 3 || strings.Count(c.file.Bootstrap, ",") != 2 {
		t.Fatalf("cluster.json: %+v", c.file)
	}
	meta := kcat(t, "", "-L", "-b", c.file.Bootstrap)
	for _, n := range c.file.Nodes {
		if n.Role != "broker,controller" || !strings.Contains(meta, fmt.Sprintf("broker %d at %s", n.ID, n.Address)) {
			t.Fatalf("node %d (%s at %s) is not listed by kcat -L:\n%s", n.ID, n.Role, n.Address, meta)
		}
	}
	if !strings.Contains(meta, " 3 brokers:") {
		t.Fatalf("kcat -L does not list three brokers:\n%s", meta)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.file.Bootstrap, ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(clusterTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		// Look for the new leader soon after the old one dies, not after
		// franz-go's default 5 s.
		kgo.MetadataMinAge(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createReplicatedTopic(t, cl)
	waitUntil(t, clusterWaitMax, "a leader and a full ISR for every partition", func() bool {
		return fullISR(kcatPartitions(t, c.file.Bootstrap, clusterTopic))
	})

	sent := produceWhile(t, cl, func(acked int) {
		if acked == clusterRecords/4 {
			go c.killAndRestartLeader(0)
		}
	})
	c.waitRestarted()
	// Partition 0 lost its leader mid-stream: writes to it went on after
	// the kill, acknowledged by a new leader with the ISR down to two.
	killedAt := c.restart.killedAt
	after, stall := 0, time.Duration(0)
	var last time.Time
	for _, r := range sent {
		if r.partition != 0 || r.offset < 0 {
			continue
		}
		if r.ackedAt.After(killedAt) {
			after++
			if !last.IsZero() && last.Before(killedAt) {
				stall = r.ackedAt.Sub(last)
			}
		}
		last = r.ackedAt
	}
	t.Logf("partition 0: %d records acknowledged after its leader was killed; no acknowledgement for %v across the failover", after, stall.Round(time.Millisecond))
	if after == 0 {
		t.Fatalf("no record of partition 0 was acknowledged after its leader was killed: the test did not write through a failover")
	}
	waitUntil(t, clusterWaitMax, "the restarted broker back in every ISR", func() bool {
		return fullISR(kcatPartitions(t, c.file.Bootstrap, clusterTopic))
	})
	checkReadBack(t, c.file.Bootstrap, sent)

	// The supervisor reported the killed node, restarting none.
	victim := c.victim()
	if want := fmt.Sprintf("node %d (pid %d) exited: signal: killed; not restarted", victim.ID, victim.PID); !strings.Contains(c.stderr.String(), want) {
		t.Fatalf("cluster up did not report %q:\n%s", want, c.stderr)
	}
	c.stopRestarted()
	code, out := run(t, c.dir, "cluster", "down", "--data", c.dir)
	if code != 0 || !strings.Contains(out, "stopped the cluster of 3 nodes") {
		t.Fatalf("cluster down: exit %d: %s", code, out)
	}
	select {
	case <-c.exited:
	case <-time.After(clusterWaitMax):
		t.Fatalf("cluster up still runs after cluster down")
	}
	if !c.cmd.ProcessState.Success() {
		t.Fatalf("cluster up exited %v:\n%s", c.cmd.ProcessState, c.stderr)
	}
	for _, n := range c.file.Nodes {
		if processAlive(n.PID) {
			t.Fatalf("node %d (pid %d) still runs after cluster down", n.ID, n.PID)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, clusterFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster.json left behind: %v", err)
	}
}

func createReplicatedTopic(t *testing.T, cl *kgo.Client) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = clusterTopic, clusterPartitions, 3
	minISR := "2"
	rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "min.insync.replicas", Value: &minISR}}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: error code %d", clusterTopic, code)
	}
}

// fullISR reports whether kcat lists every partition with a leader, three
// replicas and all three in the ISR.
func fullISR(parts map[string]string) bool {
	if len(parts) != clusterPartitions {
		return false
	}
	for _, p := range parts {
		f := strings.Split(p, "|")
		if f[0] == "-1" || len(strings.Split(f[1], ",")) != 3 || len(strings.Split(f[2], ",")) != 3 {
			return false
		}
	}
	return true
}

// sentRecord is a produced record: its partition and sequence in that
// partition, and where it was acknowledged (offset -1: not acknowledged).
type sentRecord struct {
	partition int32
	seq       int
	offset    int64
	err       error
	ackedAt   time.Time
}

func (r sentRecord) value() string { return fmt.Sprintf("p%d-%06d", r.partition, r.seq) }

// produceWhile sends clusterRecords records round-robin over the
// partitions, a few in flight at once, telling onAck each acknowledgement
// count, and waits for every answer.
func produceWhile(t *testing.T, cl *kgo.Client, onAck func(acked int)) []*sentRecord {
	t.Helper()
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	inflight := make(chan struct{}, 32)
	records := make([]*sentRecord, clusterRecords)
	for i := range records {
		r := &sentRecord{partition: int32(i % clusterPartitions), seq: i / clusterPartitions, offset: -1}
		records[i] = r
		inflight <- struct{}{}
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Partition: r.partition, Value: []byte(r.value())}, func(kr *kgo.Record, err error) {
			defer wg.Done()
			defer func() { <-inflight }()
			mu.Lock()
			defer mu.Unlock()
			r.err = err
			if err == nil {
				r.offset, r.ackedAt = kr.Offset, time.Now()
				acked++
				onAck(acked)
			}
		})
		time.Sleep(time.Millisecond) // a steady stream across the failover
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(clusterWaitMax):
		t.Fatalf("the producer had answers outstanding after %v", clusterWaitMax)
	}
	failed := 0
	for _, r := range records {
		if r.err != nil {
			failed++
		}
	}
	t.Logf("%d records sent, %d acknowledged, %d failed", len(records), acked, failed)
	if acked < clusterRecords/2 {
		t.Fatalf("only %d of %d records acknowledged", acked, clusterRecords)
	}
	return records
}

// restart is the killed leader and its second life, started by the test
// from the node's server.properties.
type restart struct {
	mu       sync.Mutex
	killedAt time.Time
	victim   clusterNode
	cmd      *exec.Cmd
	err      error
	done     chan struct{}
}

// killAndRestartLeader kills the leader of partition with SIGKILL, lets
// the cluster fail over, and starts it again from its server.properties.
func (c *localCluster) killAndRestartLeader(partition int) {
	r := c.restart
	defer close(r.done)
	fail := func(err error) {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}
	leader, err := leaderOf(c.file.Bootstrap, clusterTopic, int32(partition))
	if err != nil {
		fail(err)
		return
	}
	victim := c.node(leader)
	r.mu.Lock()
	r.killedAt = time.Now()
	r.mu.Unlock()
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		fail(fmt.Errorf("kill -9 %d: %w", victim.PID, err))
		return
	}
	time.Sleep(3 * time.Second) // past the controller's 2 s session timeout: a failover happens
	out, err := os.OpenFile(victim.Log, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fail(err)
		return
	}
	defer out.Close()
	cmd := exec.Command(c.exe, "broker", "--config", victim.Config)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		fail(err)
		return
	}
	r.mu.Lock()
	r.victim, r.cmd = victim, cmd
	r.mu.Unlock()
}

func (c *localCluster) waitRestarted() {
	select {
	case <-c.restart.done:
	case <-time.After(clusterWaitMax):
		c.t.Fatalf("the leader was not killed and restarted within %v", clusterWaitMax)
	}
	c.restart.mu.Lock()
	defer c.restart.mu.Unlock()
	if c.restart.err != nil {
		c.t.Fatal(c.restart.err)
	}
	cmd := c.restart.cmd
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

func (c *localCluster) victim() clusterNode {
	c.restart.mu.Lock()
	defer c.restart.mu.Unlock()
	return c.restart.victim
}

// stopRestarted stops the restarted node cleanly; it must exit 0.
func (c *localCluster) stopRestarted() {
	cmd := c.restart.cmd
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("the restarted node exited with %v:\n%s", err, logTail(c.victim().Log))
		}
	case <-time.After(clusterWaitMax):
		c.t.Fatalf("the restarted node did not stop within %v", clusterWaitMax)
	}
}

func leaderOf(bootstrap, topic string, partition int32) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.Partition == partition && p.Leader >= 0 {
				return p.Leader, nil
			}
		}
	}
	return 0, fmt.Errorf("no leader of %s-%d in Metadata", topic, partition)
}

// checkReadBack reads every partition to its end and checks that every
// acknowledged record is there exactly once, at its acknowledged offset,
// and that each partition holds its records in the order they were sent,
// none twice.
func checkReadBack(t *testing.T, bootstrap string, sent []*sentRecord) {
	t.Helper()
	ends := endOffsets(t, bootstrap)
	offsets := map[string]map[int32]kgo.Offset{clusterTopic: {}}
	for p := range int32(clusterPartitions) {
		offsets[clusterTopic][p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ConsumePartitions(offsets))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type readRecord struct {
		offset int64
		value  string
	}
	read := map[int32][]readRecord{}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWaitMax)
	defer cancel()
	caughtUp := func() bool {
		for p, end := range ends {
			if n := len(read[p]); n == 0 && end > 0 || n > 0 && read[p][n-1].offset+1 < end {
				return false
			}
		}
		return true
	}
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back: not at the ends %v within %v", ends, clusterWaitMax)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read[r.Partition] = append(read[r.Partition], readRecord{r.Offset, string(r.Value)})
		})
	}
	at := map[string]int64{}
	total := 0
	for p := range int32(clusterPartitions) {
		lastSeq := -1
		for _, r := range read[p] {
			if _, dup := at[r.value]; dup {
				t.Fatalf("partition %d: %s read twice (offsets %d and %d)", p, r.value, at[r.value], r.offset)
			}
			at[r.value] = r.offset
			var rp, seq int
			if _, err := fmt.Sscanf(r.value, "p%d-%d", &rp, &seq); err != nil || int32(rp) != p {
				t.Fatalf("partition %d: unexpected record %q at %d", p, r.value, r.offset)
			}
			if seq <= lastSeq {
				t.Fatalf("partition %d: %s at offset %d after sequence %d: out of send order", p, r.value, r.offset, lastSeq)
			}
			lastSeq = seq
			total++
		}
	}
	acked := 0
	for _, r := range sent {
		if r.offset < 0 {
			continue
		}
		acked++
		offset, ok := at[r.value()]
		if !ok {
			t.Fatalf("acknowledged record %s (partition %d offset %d) was lost", r.value(), r.partition, r.offset)
		}
		if offset != r.offset {
			t.Fatalf("acknowledged record %s at offset %d reads back at %d", r.value(), r.offset, offset)
		}
	}
	t.Logf("read back %d records; all %d acknowledged ones exactly once, in order", total, acked)
}

// endOffsets is each partition's high watermark, by ListOffsets.
func endOffsets(t *testing.T, bootstrap string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := map[int32]int64{}
	for p := range int32(clusterPartitions) {
		leader, err := leaderOf(bootstrap, clusterTopic, p)
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = clusterTopic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		part := resp.Topics[0].Partitions[0]
		if part.ErrorCode != 0 {
			t.Fatalf("list offsets of partition %d at broker %d: error %d", p, leader, part.ErrorCode)
		}
		ends[p] = part.Offset
	}
	return ends
}

// TestClusterUpSeparateControllersStopsOnSigterm runs controllers as
// processes of their own and stops the cluster with SIGTERM to the
// supervisor: every node stops cleanly and cluster.json goes away.
func TestClusterUpSeparateControllersStopsOnSigterm(t *testing.T) {
	c := startLocalCluster(t, "--brokers", "2", "--controllers", "1")
	roles := []string{}
	for _, n := range c.file.Nodes {
		roles = append(roles, fmt.Sprintf("%d:%s", n.ID, n.Role))
	}
	if got := strings.Join(roles, " "); got != "1:broker 2:broker 3:controller" {
		t.Fatalf("nodes %s, want brokers 1 and 2 and controller 3", got)
	}
	meta := kcat(t, "", "-L", "-b", c.file.Bootstrap)
	if !strings.Contains(meta, " 2 brokers:") {
		t.Fatalf("kcat -L does not list two brokers:\n%s", meta)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(clusterWaitMax):
		t.Fatalf("cluster up did not stop within %v of SIGTERM", clusterWaitMax)
	}
	if !c.cmd.ProcessState.Success() || !strings.Contains(c.stderr.String(), "terminated: stopping the cluster") {
		t.Fatalf("cluster up exited %v:\n%s", c.cmd.ProcessState, c.stderr)
	}
	for _, n := range c.file.Nodes {
		if processAlive(n.PID) {
			t.Fatalf("node %d (pid %d) still runs", n.ID, n.PID)
		}
		if log := logTail(n.Log); !strings.Contains(log, "stopped cleanly") && !strings.Contains(log, "controller 3 stopping") {
			t.Fatalf("node %d did not stop cleanly:\n%s", n.ID, log)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, clusterFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster.json left behind: %v", err)
	}
}

// TestClusterUpRestartsOnFailure: with --restart on-failure the supervisor
// starts a node killed with SIGKILL again on its directory, writes its new
// pid to cluster.json, and the broker serves Metadata again; a node that
// stops cleanly on its own SIGTERM stays down.
func TestClusterUpRestartsOnFailure(t *testing.T) {
	c := startLocalCluster(t, "--brokers", "1", "--restart", "on-failure")
	victim := c.file.Nodes[0]
	syscall.Kill(victim.PID, syscall.SIGKILL)
	var restarted clusterNode
	waitUntil(t, clusterWaitMax, "cluster.json to name the restarted node's pid", func() bool {
		file, err := readClusterFile(c.dir)
		if err != nil || file.Nodes[0].PID == victim.PID || !processAlive(file.Nodes[0].PID) {
			return false
		}
		c.file, restarted = file, file.Nodes[0]
		return true
	})
	want := fmt.Sprintf("node %d (pid %d) exited: signal: killed; restarting it in 1s", victim.ID, victim.PID)
	if !strings.Contains(c.stderr.String(), want) {
		t.Fatalf("cluster up did not report %q:\n%s", want, c.stderr)
	}
	waitUntil(t, clusterWaitMax, "the restarted broker to answer Metadata", func() bool {
		_, err := metadataBrokers([]string{restarted.Address})
		return err == nil
	})

	syscall.Kill(restarted.PID, syscall.SIGTERM)
	waitUntil(t, clusterWaitMax, "the supervisor to see the node stop", func() bool {
		return strings.Contains(c.stderr.String(), fmt.Sprintf("node %d (pid %d) exited: exit status 0; not restarted", restarted.ID, restarted.PID))
	})
	select {
	case <-c.exited:
	case <-time.After(clusterWaitMax):
		t.Fatalf("cluster up did not end once its only node stopped cleanly:\n%s", c.stderr)
	}
}

func TestClusterBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"cluster"}, "sluice cluster needs a subcommand (known: down, up)"},
		{[]string{"cluster", "up"}, `required flag(s) "data" not set`},
		{[]string{"cluster", "up", "--data", dir, "--brokers", "0"}, "--brokers 0: want 1 to 32"},
		{[]string{"cluster", "up", "--data", dir, "--replication-factor", "4"}, "--replication-factor 4: want 1 to the broker count 3"},
		{[]string{"cluster", "up", "--data", dir, "--flush", "sometimes"}, `--flush: unknown policy "sometimes"`},
		{[]string{"cluster", "up", "--data", dir, "--restart", "always"}, `--restart "always": want no or on-failure`},
		{[]string{"cluster", "down", "--data", dir}, "no cluster.json in " + dir + ": no cluster runs from there"},
	}
	for _, c := range cases {
		code, out := run(t, dir, c.args...)
		if code != exitUsage || !strings.Contains(out, c.want) {
			t.Errorf("sluice %v: exit %d with %q; want %d and %q", c.args, code, out, exitUsage, c.want)
		}
	}
}
