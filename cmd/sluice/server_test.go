package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests hold the real broker to what a server owes its operator:
// one process per data directory, a clear exit when it cannot listen, a
// clean shutdown on SIGTERM, and a logged reason for refused writes.

// runBounded runs the sluice binary and returns its exit status and
// output; a run longer than limit fails the test (a broker that should
// have exited but retries forever).
func runBounded(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sluice %v still running after %v:\n%s", args, limit, out.String())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestSecondBrokerOnLockedDirectoryExits(t *testing.T) {
	dir := t.TempDir()
	first := startRealBroker(t, dir, "")
	code, out := runBounded(t, 20*time.Second, "broker", "--data", dir, "--listen", freeAddr(t))
	want := fmt.Sprintf("sluice: data directory %s is in use by pid %d (listening on %s)\n", dir, first.cmd.Process.Pid, first.addr)
	if code != 1 || out != want {
		t.Fatalf("second broker on a locked directory exited %d with:\n%q\nwant status 1 and %q", code, out, want)
	}
	// The first broker still serves.
	if c, err := net.DialTimeout("tcp", first.addr, time.Second); err != nil {
		t.Fatalf("the first broker stopped serving: %v", err)
	} else {
		c.Close()
	}
	// Once it is gone, the lock is free again (the kernel releases it).
	first.kill()
	startRealBroker(t, dir, "")
}

func TestBrokerOnUsedPortExits(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	code, out := runBounded(t, 20*time.Second, "broker", "--data", t.TempDir(), "--listen", addr)
	// One clear message last, after nothing but the broker's own log lines.
	want := fmt.Sprintf("sluice: listen %s: address already in use\n", addr)
	if code != 1 || !strings.HasSuffix(out, want) || strings.Count(out, "sluice: ") != 1 {
		t.Fatalf("broker on a used port exited %d with:\n%q\nwant status 1 and %q", code, out, want)
	}
}

// TestSigtermFlushesAndCheckpoints: with --flush none nothing reaches disk
// on its own, so only the shutdown path can put the recovery point at the
// log end. After SIGTERM the checkpoint must cover every partition's end,
// and a restart must serve every record.
func TestSigtermFlushesAndCheckpoints(t *testing.T) {
	dir := t.TempDir()
	b := startRealBroker(t, dir, "", "--flush", "none")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("st"), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, "st", 2)
	const records = 1000
	var sent []*kgo.Record
	for i := 0; i < records; i++ {
		sent = append(sent, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%13)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(context.Background(), sent...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	ends := map[string]int64{}
	for _, r := range sent {
		ends[fmt.Sprintf("st %d", r.Partition)] = max(ends[fmt.Sprintf("st %d", r.Partition)], r.Offset+1)
	}
	if len(ends) != 2 {
		t.Fatalf("records landed in %d of 2 partitions", len(ends))
	}

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("broker exited with %v after SIGTERM:\n%s", err, b.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("broker still running 30 s after SIGTERM")
	}
	if !strings.Contains(b.log.String(), "stopped cleanly") {
		t.Fatalf("broker log does not say it stopped cleanly:\n%s", b.log)
	}
	data, err := os.ReadFile(filepath.Join(dir, "recovery-point-offset-checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2+len(ends) {
		t.Fatalf("checkpoint has %d lines, want %d:\n%s", len(lines), 2+len(ends), data)
	}
	for _, line := range lines[2:] {
		var topic string
		var partition int32
		var offset int64
		fmt.Sscanf(line, "%s %d %d", &topic, &partition, &offset)
		key := fmt.Sprintf("%s %d", topic, partition)
		if want, ok := ends[key]; !ok || offset != want {
			t.Fatalf("checkpoint line %q: the log ends at %d; a restart would re-scan from %d", line, want, offset)
		}
	}

	restarted := startRealBroker(t, dir, b.addr, "--flush", "none")
	got := consumeAll(t, restarted.addr, "st", records)
	n := 0
	for p, rs := range got {
		for i, r := range rs {
			if r.offset != int64(i) {
				t.Fatalf("partition %d: record %d read at offset %d", p, i, r.offset)
			}
			n++
		}
	}
	if n != records {
		t.Fatalf("read %d records after a clean restart, wrote %d", n, records)
	}
}

// TestTooLargeBatchLoggedOncePerTopic: a segment of 4 KiB lets a batch be
// at most 2 KiB; batches of 3 KiB are refused, and the broker says why
// once per topic, not once per request.
func TestTooLargeBatchLoggedOncePerTopic(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--segment-bytes", "4096")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Incompressible, so that no codec brings the batch under the limit.
	value := make([]byte, 3<<10)
	rand.NewChaCha8([32]byte{1}).Read(value)
	for _, topic := range []string{"big1", "big2"} {
		for i := 0; i < 3; i++ {
			err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: value}).FirstErr()
			if !errors.Is(err, kerr.MessageTooLarge) {
				t.Fatalf("a 3 KiB batch to %s with 4 KiB segments: %v, want MESSAGE_TOO_LARGE", topic, err)
			}
		}
	}
	b.kill()
	log := b.log.String()
	for _, topic := range []string{"big1", "big2"} {
		if n := strings.Count(log, "topic "+topic+": refused a produced batch"); n != 1 {
			t.Errorf("topic %s: the refusal is logged %d times, want once:\n%s", topic, n, log)
		}
	}
	if !strings.Contains(log, "record batch too large") || !strings.Contains(log, "message.max.bytes") {
		t.Errorf("the log does not say which limit refused the batch:\n%s", log)
	}
}
