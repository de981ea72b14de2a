package main

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
)

// These tests consume through consumer groups from a real sluice broker
// with real clients: franz-go's group consumer, kcat -G (librdkafka) and
// kafka-python's KafkaConsumer.

// groupBrokerArgs make a broker whose groups start at once (no initial
// rebalance delay) with a small __consumer_offsets.
var groupBrokerArgs = []string{"--group-initial-rebalance-delay", "0", "--offsets-topic-partitions", "5"}

// groupConsumer is a franz-go group consumer that records what it reads and
// commits after each poll.
type groupConsumer struct {
	name string
	cl   *kgo.Client
	mu   sync.Mutex
	// read holds the offsets read, by partition.
	read     map[int32][]int64
	assigned map[int32]bool
	// revocations counts the rebalances that took partitions away.
	revocations int
	done        chan struct{}
}

func startGroupMember(t *testing.T, name, addr, groupID, topic string, extra ...kgo.Opt) *groupConsumer {
	t.Helper()
	m := &groupConsumer{name: name, read: map[int32][]int64{}, assigned: map[int32]bool{}, done: make(chan struct{})}
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("%s: commit on revoke: %v", name, err)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(r[topic]) > 0 {
				m.revocations++
			}
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.revocations++
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		})}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go m.poll(t)
	return m
}

func (m *groupConsumer) poll(t *testing.T) {
	defer close(m.done)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fetches := m.cl.PollFetches(ctx)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		recs := fetches.Records()
		m.mu.Lock()
		for _, r := range recs {
			m.read[r.Partition] = append(m.read[r.Partition], r.Offset)
		}
		m.mu.Unlock()
		if len(recs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := m.cl.CommitRecords(ctx, recs...); err != nil {
				t.Logf("%s: commit: %v", m.name, err)
			}
			cancel()
		}
	}
}

func (m *groupConsumer) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.assigned {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func (m *groupConsumer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, offs := range m.read {
		n += len(offs)
	}
	return n
}

func (m *groupConsumer) leave() {
	m.cl.Close() // leaves the group after committing nothing more
	<-m.done
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produceN writes n records to each partition of topic, values "<p>-<i>".
func produceN(t *testing.T, addr, topic string, partitions int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// committed returns a group's committed offset per partition of topic.
func committed(t *testing.T, addr, groupID, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", groupID, err)
	}
	out := map[int32]int64{}
	for p, o := range offsets[topic] {
		if o.Err != nil {
			t.Fatalf("offset of %s-%d: %v", topic, p, o.Err)
		}
		out[p] = o.At
	}
	return out
}

func wantCommitted(t *testing.T, what string, got map[int32]int64, partitions int32, want int64) {
	t.Helper()
	for p := range partitions {
		if got[p] != want {
			t.Fatalf("%s: committed offsets %v, want %d on each of %d partitions", what, got, want, partitions)
		}
	}
}

// TestFranzGoGroupSharesLeavesAndKeepsOffsetsAcrossRestart: two franz-go
// group members split a 4-partition topic, each partition read by exactly
// one of them; when one leaves the other takes its partitions and goes on
// from its commits; the committed offsets survive a kill -9 of the broker.
func TestFranzGoGroupSharesLeavesAndKeepsOffsetsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := startRealBroker(t, dir, "", groupBrokerArgs...)
	const topic, groupID, partitions = "events", "readers", 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()

	a := startGroupMember(t, "a", b.addr, groupID, topic)
	waitFor(t, "a assigned every partition", 20*time.Second, func() bool { return len(a.partitions()) == partitions })
	bm := startGroupMember(t, "b", b.addr, groupID, topic)
	waitFor(t, "the partitions split between a and b", 30*time.Second, func() bool {
		return len(a.partitions()) == 2 && len(bm.partitions()) == 2
	})
	produceN(t, b.addr, topic, partitions, 100)
	waitFor(t, "400 records read", 30*time.Second, func() bool { return a.count()+bm.count() == 400 })
	for _, m := range []*groupConsumer{a, bm} {
		for _, p := range m.partitions() {
			if len(m.read[p]) != 100 {
				t.Errorf("%s read %d records of its partition %d, want 100", m.name, len(m.read[p]), p)
			}
		}
	}
	waitFor(t, "every record committed", 20*time.Second, func() bool {
		got := committed(t, b.addr, groupID, topic)
		return got[0] == 100 && got[1] == 100 && got[2] == 100 && got[3] == 100
	})

	bParts := bm.partitions()
	bm.leave()
	waitFor(t, "a takes b's partitions", 30*time.Second, func() bool { return len(a.partitions()) == partitions })
	before := a.count()
	produceN(t, b.addr, topic, partitions, 50)
	waitFor(t, "a reads the next 200", 30*time.Second, func() bool { return a.count() == before+200 })
	for _, p := range bParts {
		if offs := a.read[p]; len(offs) != 50 || offs[0] != 100 {
			t.Fatalf("a read %d records of b's partition %d starting at %v: want the 50 after b's commit at 100", len(offs), p, offs[:min(1, len(offs))])
		}
	}
	waitFor(t, "every record committed", 20*time.Second, func() bool {
		got := committed(t, b.addr, groupID, topic)
		return got[0] == 150 && got[1] == 150 && got[2] == 150 && got[3] == 150
	})
	a.leave()

	b.kill()
	b = startRealBroker(t, dir, b.addr, groupBrokerArgs...)
	wantCommitted(t, "after kill -9 and restart", committed(t, b.addr, groupID, topic), partitions, 150)
	// A new member starts from the committed offsets: it reads only what
	// is produced now.
	c := startGroupMember(t, "c", b.addr, groupID, topic)
	defer c.leave()
	waitFor(t, "c assigned", 20*time.Second, func() bool { return len(c.partitions()) == partitions })
	produceN(t, b.addr, topic, partitions, 1)
	waitFor(t, "c reads the 4 new records", 20*time.Second, func() bool { return c.count() >= 4 })
	time.Sleep(300 * time.Millisecond)
	for p, offs := range c.read {
		if len(offs) != 1 || offs[0] != 150 {
			t.Fatalf("after the restart the group read %v of partition %d, want only offset 150", offs, p)
		}
	}
}

// TestKcatGroupConsumesAndCommits: kcat -G (librdkafka's balanced
// consumer) reads a topic through a group, commits, and a second run of
// the same group reads only what came after.
func TestKcatGroupConsumesAndCommits(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--group-initial-rebalance-delay", "0")
	const topic, groupID, partitions = "orders", "mygroup", 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	produceN(t, b.addr, topic, partitions, 25)

	read := kcatGroup(t, b.addr, groupID, topic)
	if len(read) != 100 {
		t.Fatalf("kcat -G read %d records, want 100", len(read))
	}
	wantValues(t, read, partitions, 0, 25)
	wantCommitted(t, "after kcat -G", committed(t, b.addr, groupID, topic), partitions, 25)

	produceN(t, b.addr, topic, partitions, 30) // values <p>-0..29 again, at offsets 25..54
	again := kcatGroup(t, b.addr, groupID, topic)
	if len(again) != 120 {
		t.Fatalf("second kcat -G read %d records, want the 120 new ones", len(again))
	}
	wantCommitted(t, "after the second kcat -G", committed(t, b.addr, groupID, topic), partitions, 55)
}

// kcatGroup runs kcat -G until it has read every assigned partition to
// its end, and returns the values read.
func kcatGroup(t *testing.T, addr, groupID, topic string) []string {
	t.Helper()
	out := kcat(t, "", "-b", addr, "-G", groupID, "-e", "-q", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", topic)
	var values []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			values = append(values, line)
		}
	}
	return values
}

func wantValues(t *testing.T, values []string, partitions int32, from, to int) {
	t.Helper()
	seen := map[string]int{}
	for _, v := range values {
		seen[v]++
	}
	for p := range partitions {
		for i := from; i < to; i++ {
			if v := fmt.Sprintf("%d-%d", p, i); seen[v] != 1 {
				t.Fatalf("value %s read %d times, want once", v, seen[v])
			}
		}
	}
}

// TestKafkaPythonGroupConsumer: kafka-python's KafkaConsumer with a
// group_id reads a topic, commits, and a second consumer of the group
// reads only what came after. Debian's python3-kafka (.ci/run installs it).
func TestKafkaPythonGroupConsumer(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Fatal("kafka-python is not installed (Debian: apt-get install python3-kafka); .ci/run installs it")
	}
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions = "clicks", "py", 2
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	produceN(t, b.addr, topic, partitions, 10)

	script := `
import sys
from kafka import KafkaConsumer
c = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3],
                  auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=4000)
n = 0
for msg in c:
    print(msg.value.decode())
    n += 1
c.commit()
c.close()
`
	run := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, "-c", script, b.addr, topic, groupID).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka-python consumer: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	first := run()
	if len(first) != 20 {
		t.Fatalf("kafka-python read %d records, want 20: %v", len(first), first)
	}
	wantValues(t, first, partitions, 0, 10)
	wantCommitted(t, "after kafka-python", committed(t, b.addr, groupID, topic), partitions, 10)
	produceN(t, b.addr, topic, partitions, 3)
	if second := run(); len(second) != 6 {
		t.Fatalf("second kafka-python consumer read %v, want the 6 new records", second)
	}
}

// TestTwoKcatConsumersShareAGroup: two kcat -G consumers in one group
// split a 4-partition topic, each partition read by exactly one of them,
// and commit what they read when stopped.
func TestTwoKcatConsumersShareAGroup(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions = "shared", "pair", 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, topic, partitions)
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat); .ci/run installs it")
	}
	var outs [2]*syncBuffer
	var cmds [2]*exec.Cmd
	for i := range cmds {
		outs[i] = &syncBuffer{}
		cmds[i] = exec.Command(path, "-b", b.addr, "-G", groupID, "-q", "-u", "-f", "%s\n", "-X", "auto.offset.reset=earliest", topic)
		cmds[i].Stdout = outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
		defer cmds[i].Process.Kill()
	}
	adm := kadm.NewClient(cl)
	waitFor(t, "both kcat consumers in a stable group", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, groupID)
		return err == nil && groups[groupID].State == "Stable" && len(groups[groupID].Members) == 2
	})
	produceN(t, b.addr, topic, partitions, 25)
	lines := func(i int) []string { return strings.Fields(outs[i].String()) }
	waitFor(t, "100 records read", 30*time.Second, func() bool { return len(lines(0))+len(lines(1)) == 100 })
	owner := map[string]int{}
	for i := range cmds {
		mine := map[string]bool{}
		for _, v := range lines(i) {
			p, _, _ := strings.Cut(v, "-")
			mine[p] = true
			if o, ok := owner[p]; ok && o != i {
				t.Fatalf("partition %s read by both consumers", p)
			}
			owner[p] = i
		}
		if len(mine) != 2 {
			t.Fatalf("consumer %d read partitions %v, want 2 of the 4", i, mine)
		}
	}
	wantValues(t, append(lines(0), lines(1)...), partitions, 0, 25)
	for i := range cmds {
		cmds[i].Process.Signal(syscall.SIGTERM) // kcat closes its consumer: a last commit, then leave
		cmds[i].Wait()
	}
	wantCommitted(t, "after both kcat consumers stopped", committed(t, b.addr, groupID, topic), partitions, 25)
}

// saramaHandler records what a sarama group member reads and marks it
// consumed, so the group commits it.
type saramaHandler struct {
	mu   sync.Mutex
	read []string
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.mu.Lock()
		h.read = append(h.read, string(msg.Value))
		h.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (h *saramaHandler) values() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.read...)
}

// consumeWithSarama runs a sarama group member until it has read want
// records, then closes it (committing what it marked).
func consumeWithSarama(t *testing.T, addr, groupID, topic string, want int) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	group, err := sarama.NewConsumerGroup([]string{addr}, groupID, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	h := &saramaHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, fmt.Sprintf("sarama reads %d records", want), 30*time.Second, func() bool { return len(h.values()) >= want })
	time.Sleep(300 * time.Millisecond) // a few more auto-commit intervals; nothing more should arrive
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sarama consume: %v", err)
	}
	if err := group.Close(); err != nil {
		t.Fatalf("sarama close: %v", err)
	}
	return h.values()
}

// TestSaramaConsumerGroupCommitsAndResumes: sarama's consumer group reads
// a topic and commits; a new member of the group reads only what came
// after.
func TestSaramaConsumerGroupCommitsAndResumes(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions = "sarama-in", "sarama-readers", 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	produceN(t, b.addr, topic, partitions, 20)
	first := consumeWithSarama(t, b.addr, groupID, topic, 80)
	if len(first) != 80 {
		t.Fatalf("sarama read %d records, want 80", len(first))
	}
	wantValues(t, first, partitions, 0, 20)
	wantCommitted(t, "after sarama", committed(t, b.addr, groupID, topic), partitions, 20)
	produceN(t, b.addr, topic, partitions, 5)
	again := consumeWithSarama(t, b.addr, groupID, topic, 20)
	if len(again) != 20 {
		t.Fatalf("the second sarama member read %d records, want the 20 new ones", len(again))
	}
	wantValues(t, again, partitions, 0, 5) // produceN numbers each call's values from 0
	wantCommitted(t, "after the second sarama member", committed(t, b.addr, groupID, topic), partitions, 25)
}

// TestKilledKcatMemberIsReplacedAfterItsSession: a kcat -G member killed
// with SIGKILL never leaves; once its session times out the coordinator
// hands its partitions to a new member, which resumes from the committed
// offsets: nothing committed is read again and nothing is skipped.
func TestKilledKcatMemberIsReplacedAfterItsSession(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions = "handover", "survivors", 2
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat); .ci/run installs it")
	}
	produceN(t, b.addr, topic, partitions, 50)
	first := &syncBuffer{}
	killed := exec.Command(path, "-b", b.addr, "-G", groupID, "-q", "-u", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=100", topic)
	killed.Stdout = first
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	defer killed.Process.Kill()
	waitFor(t, "the first member reads 100", 30*time.Second, func() bool { return len(strings.Fields(first.String())) == 100 })
	waitFor(t, "the first member commits them", 20*time.Second, func() bool {
		got := committed(t, b.addr, groupID, topic)
		return got[0] == 50 && got[1] == 50
	})
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	produceN(t, b.addr, topic, partitions, 20) // values <p>-0..19 again, at offsets 50..69

	began := time.Now()
	second := kcatGroup(t, b.addr, groupID, topic)
	if len(second) != 40 {
		t.Fatalf("the new member read %d records, want the 40 after the committed offsets", len(second))
	}
	wantValues(t, second, partitions, 0, 20)
	wantCommitted(t, "after the new member", committed(t, b.addr, groupID, topic), partitions, 70)
	t.Logf("the new member was assigned and done in %v (the killed member's session is 6 s)", time.Since(began).Round(100*time.Millisecond))
}

// BenchmarkOffsetCommit: one synchronous commit of one partition's offset
// (kadm, outside any group's generation) to an in-process sluice broker,
// per operation, under group commit (each commit waits for its fsync) and
// with --flush none.
func BenchmarkOffsetCommit(b *testing.B) {
	for _, flush := range []storage.FlushMode{storage.FlushGroupCommit, storage.FlushNever} {
		b.Run("flush="+flush.String(), func(b *testing.B) {
			addr := startBenchBroker(b, func(cfg *broker.Config) {
				// A small __consumer_offsets.
				cfg.Log.Flush = storage.FlushPolicy{Mode: flush}
				cfg.Groups.Partitions = 5
			})
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			ctx := context.Background()
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bench"); err != nil {
				b.Fatal(err)
			}
			commit := func(at int64) {
				offsets := kadm.Offsets{}
				offsets.Add(kadm.Offset{Topic: "bench", Partition: 0, At: at, LeaderEpoch: -1})
				resp, err := adm.CommitOffsets(ctx, "bench-group", offsets)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					b.Fatalf("commit: %v", err)
				}
			}
			commit(0) // creates __consumer_offsets and finds the coordinator
			b.ResetTimer()
			for i := range b.N {
				commit(int64(i))
			}
		})
	}
}

// TestFranzGoStaticMemberRestartsWithoutRebalance: a static member
// (group.instance.id, KIP-345) that restarts within its session gets its
// partitions back under a new member id, and the other member keeps its
// own without a rebalance.
func TestFranzGoStaticMemberRestartsWithoutRebalance(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions = "static", "statics", 4
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	// The range balancer: franz-go's cooperative-sticky leader recomputes
	// its plan after a restart (KIP-814) and may ask for a rebalance of
	// its own; range gives the same plan, so any rebalance would be the
	// coordinator's.
	rangeOnly := kgo.Balancers(kgo.RangeBalancer())
	a := startGroupMember(t, "a", b.addr, groupID, topic, kgo.InstanceID("a"), rangeOnly)
	waitFor(t, "a assigned every partition", 20*time.Second, func() bool { return len(a.partitions()) == partitions })
	other := startGroupMember(t, "other", b.addr, groupID, topic, rangeOnly)
	defer other.leave()
	waitFor(t, "the partitions split", 30*time.Second, func() bool {
		return len(a.partitions()) == 2 && len(other.partitions()) == 2
	})
	aParts, otherParts := a.partitions(), other.partitions()
	_, generationBefore := other.cl.GroupMetadata()
	other.mu.Lock()
	revocationsBefore := other.revocations
	other.mu.Unlock()

	a.leave() // a static member does not leave the group when it closes
	again := startGroupMember(t, "a again", b.addr, groupID, topic, kgo.InstanceID("a"), rangeOnly)
	defer again.leave()
	waitFor(t, "a back with its partitions", 20*time.Second, func() bool { return len(again.partitions()) == 2 })
	time.Sleep(2 * time.Second) // several heartbeats: a rebalance would show by now
	if got := again.partitions(); fmt.Sprint(got) != fmt.Sprint(aParts) {
		t.Fatalf("the restarted static member got %v, had %v", got, aParts)
	}
	now := other.partitions()
	other.mu.Lock()
	revocations := other.revocations
	other.mu.Unlock()
	_, generation := other.cl.GroupMetadata()
	if generation != generationBefore || revocations != revocationsBefore || fmt.Sprint(now) != fmt.Sprint(otherParts) {
		t.Fatalf("the other member was rebalanced: generation %d (before %d), %d revocations (before %d), partitions %v (had %v)",
			generation, generationBefore, revocations, revocationsBefore, now, otherParts)
	}
}
