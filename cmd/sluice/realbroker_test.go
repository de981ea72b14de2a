package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run the sluice binary as a real broker and talk to it with
// real clients: Debian's kcat (librdkafka) and franz-go.

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func sluiceBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// realBroker is a sluice broker process.
type realBroker struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
}

func startRealBroker(t *testing.T, dir, addr string, args ...string) *realBroker {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	b := &realBroker{t: t, addr: addr, dir: dir, log: &syncBuffer{}}
	all := append([]string{"broker", "--data", dir, "--listen", addr}, args...)
	b.cmd = exec.Command(sluiceBinary(t), all...)
	b.cmd.Stderr = b.log
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.kill() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not listen on %s in 10 s:\n%s", addr, b.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown work happens.
func (b *realBroker) kill() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Signal(syscall.SIGKILL)
		b.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	testPorts.Lock()
	defer testPorts.Unlock()
	span := testPortHigh - testPortLow
	if testPorts.next == 0 {
		testPorts.next = os.Getpid() * 7919 % span
	}
	for range span {
		port := testPortLow + testPorts.next%span
		testPorts.next++
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	t.Fatalf("no free loopback port in [%d, %d)", testPortLow, testPortHigh)
	return ""
}

// Test servers take their ports below the kernel's ephemeral range and
// below the one cluster up draws from, each port once per test process: a
// port the kernel hands out (127.0.0.1:0) can be handed out again, to
// another test's server or as the source port of any outgoing connection,
// before the server meant for it binds it. A test once posted HTTP to
// another test's broker that way and was reset.
const (
	testPortLow  = 10000
	testPortHigh = 20000
)

var testPorts struct {
	sync.Mutex
	next int
}

func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestKcatListsProducesAndConsumes(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--num-partitions", "3")
	var in strings.Builder
	const records = 300
	for i := 0; i < records; i++ {
		fmt.Fprintf(&in, "key-%d:value-%d\n", i%17, i)
	}
	kcat(t, in.String(), "-b", b.addr, "-P", "-t", "kc", "-K:")

	meta := kcat(t, "", "-b", b.addr, "-L", "-t", "kc")
	if !strings.Contains(meta, `topic "kc" with 3 partitions`) {
		t.Fatalf("kcat -L does not show the topic with 3 partitions:\n%s", meta)
	}
	out := kcat(t, "", "-b", b.addr, "-C", "-t", "kc", "-e", "-o", "beginning", "-f", "%p|%o|%k|%s\n")
	perPartition := map[string][]int{}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "|")
		if len(parts) != 4 {
			continue
		}
		var n, offset int
		fmt.Sscanf(parts[3], "value-%d", &n)
		fmt.Sscanf(parts[1], "%d", &offset)
		if parts[2] != fmt.Sprintf("key-%d", n%17) {
			t.Fatalf("record %q came back with key %q", parts[3], parts[2])
		}
		if offset != len(perPartition[parts[0]]) {
			t.Fatalf("partition %s: offset %d after %d records", parts[0], offset, len(perPartition[parts[0]]))
		}
		perPartition[parts[0]] = append(perPartition[parts[0]], n)
		seen++
	}
	if seen != records {
		t.Fatalf("read %d records back, wrote %d:\n%s", seen, records, out)
	}
	for p, values := range perPartition {
		for i := 1; i < len(values); i++ {
			if values[i] <= values[i-1] {
				t.Fatalf("partition %s out of write order: %d after %d", p, values[i], values[i-1])
			}
		}
	}
	if len(perPartition) < 2 {
		t.Fatalf("17 keys landed in %d partition(s)", len(perPartition))
	}
}

type acked struct {
	partition int32
	offset    int64
	value     string
}

func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: error code %d", name, code)
	}
}

// consumeAll reads every partition of topic from the beginning until it
// holds want records or 20 s pass.
func consumeAll(t *testing.T, addr, topic string, want int) map[int32][]acked {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int32][]acked{}
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], acked{r.Partition, r.Offset, string(r.Value)})
			n++
		})
	}
	return got
}

func TestFranzGoIdempotentAcksAll(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("fg"), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "fg", 4)
	const records = 2000
	var sent []*kgo.Record
	for i := 0; i < records; i++ {
		sent = append(sent, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%31)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(context.Background(), sent...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := map[int32][]acked{}
	for _, r := range sent {
		want[r.Partition] = append(want[r.Partition], acked{r.Partition, r.Offset, string(r.Value)})
	}
	got := consumeAll(t, b.addr, "fg", records)
	if len(want) != 4 {
		t.Fatalf("records landed in %d of 4 partitions", len(want))
	}
	for p, w := range want {
		g := got[p]
		if len(g) != len(w) {
			t.Fatalf("partition %d: read %d records, %d acknowledged", p, len(g), len(w))
		}
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("partition %d record %d: read %+v, acknowledged %+v", p, i, g[i], w[i])
			}
		}
	}
}

// TestKillNineKeepsAcknowledgedWrites kills the broker with SIGKILL while a
// producer writes with acks=all and group-commit flushing, restarts it on
// the same directory, and reads everything back: every acknowledged
// record must be there, at the offset it was acknowledged with.
func TestKillNineKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	b := startRealBroker(t, dir, "", "--flush", "group")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("k9"), kgo.RecordDeliveryTimeout(5*time.Second), kgo.RecordRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, "k9", 2)
	var mu sync.Mutex
	var ok []acked
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("v%d", i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					ok = append(ok, acked{r.Partition, r.Offset, string(r.Value)})
					mu.Unlock()
				}
			})
			if i%100 == 99 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(ok)
		mu.Unlock()
		if n >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records acknowledged in 20 s:\n%s", n, b.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.kill()
	cancel()
	cl.Close()
	wg.Wait()
	mu.Lock()
	acknowledged := append([]acked(nil), ok...)
	mu.Unlock()

	restarted := startRealBroker(t, dir, b.addr, "--flush", "group")
	got := consumeAll(t, restarted.addr, "k9", len(acknowledged))
	at := map[int32]map[int64]string{}
	for p, rs := range got {
		at[p] = map[int64]string{}
		for _, r := range rs {
			at[p][r.offset] = r.value
		}
	}
	for _, a := range acknowledged {
		if v, found := at[a.partition][a.offset]; !found || v != a.value {
			t.Fatalf("acknowledged %s at %d-%d; after kill -9 and restart it reads %q (found %v)",
				a.value, a.partition, a.offset, v, found)
		}
	}
	t.Logf("%d acknowledged records all present after kill -9", len(acknowledged))
}

// TestSaramaProducesAndConsumes: Shopify/IBM sarama, with its own protocol
// choices (an idempotent sync producer, a partition consumer), reads back
// what it wrote.
func TestSaramaProducesAndConsumes(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--num-partitions", "2")
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{b.addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v\n%s", err, b.log)
	}
	defer producer.Close()
	written := map[int32][]string{}
	for i := 0; i < 200; i++ {
		v := fmt.Sprintf("s%d", i)
		p, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "sar", Key: sarama.StringEncoder(fmt.Sprint(i % 5)), Value: sarama.StringEncoder(v)})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		written[p] = append(written[p], v)
	}
	consumer, err := sarama.NewConsumer([]string{b.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for p, want := range written {
		pc, err := consumer.ConsumePartition("sar", p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			select {
			case m := <-pc.Messages():
				if string(m.Value) != w || m.Offset != int64(i) {
					t.Fatalf("partition %d message %d: %q at %d, want %q", p, i, m.Value, m.Offset, w)
				}
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("partition %d: only %d of %d messages in 10 s", p, i, len(want))
			}
		}
		pc.Close()
	}
}

// TestMalformedFramesCloseOnlyThatConnection: a request for an API key the
// broker does not serve, a truncated request and an oversized frame each
// close their own connection with a logged reason; the broker goes on
// serving others.
func TestMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	frames := map[string][]byte{
		"unserved key": {0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, // key 999
		"truncated":    {0, 0, 0, 3, 0, 3, 0},                                   // shorter than a header
		"oversized":    {0x7f, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 1, 0, 0},           // 2 GiB announced
	}
	for name, frame := range frames {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(frame)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 64)); err == nil {
			t.Errorf("%s: the broker answered %d bytes instead of closing", name, n)
		}
		c.Close()
	}
	if meta := kcat(t, "", "-b", b.addr, "-L"); !strings.Contains(meta, "1 brokers") {
		t.Fatalf("broker stopped serving after malformed frames:\n%s", meta)
	}
	for _, reason := range []string{"not served", "shorter than a request header", "frame"} {
		if !strings.Contains(b.log.String(), reason) {
			t.Errorf("broker log does not give the reason %q:\n%s", reason, b.log)
		}
	}
}

// TestWorkloadAgainstRealBroker runs the checked workload over real
// sockets and the real clock; its history must pass the checkers, both at
// the end of the run and through 'sluice check'.
func TestWorkloadAgainstRealBroker(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	dir := t.TempDir()
	hist := filepath.Join(dir, "h.jsonl")
	code, out := run(t, dir, "workload", "--bootstrap", b.addr, "--topic", "w", "--partitions", "2",
		"--rate", "500", "--duration", "2s", "--history", hist)
	if code != 0 || !strings.Contains(out, "overall: valid") || !strings.Contains(out, "caught up true") {
		t.Fatalf("workload exited %d:\n%s\nbroker log:\n%s", code, out, b.log)
	}
	if code, out := run(t, dir, "check", hist); code != 0 {
		t.Fatalf("check of the workload's history exited %d:\n%s", code, out)
	}
}
