package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// consumeBenchRecords is how many 100-byte records each round consumes
// from one partition.
const consumeBenchRecords = 1_000_000

const consumeBenchRecordBytes = 100

// consumeBenchBatchBytes is Kafka's default batch.size: the batches a
// perf-test producer writes, and so the batches a consumer reads.
const consumeBenchBatchBytes = 16 << 10

// BenchmarkConsume consumes the same million 100-byte records from one
// partition, with the same franz-go consumer, from the sluice broker (in
// process, over real sockets) and from franz-go's in-memory kfake, in
// alternating rounds; it reports records/s of each and their ratio.
// Records are uncompressed in batches of Kafka's default batch.size.
//
//	go test ./cmd/sluice -run '^$' -bench Consume -benchtime 5x
func BenchmarkConsume(b *testing.B) {
	benchmarkConsume(b, startBenchBroker(b, func(cfg *broker.Config) {
		cfg.NumPartitions, cfg.AutoCreateTopics = 1, true
	}))
}

// BenchmarkConsumeProcess is BenchmarkConsume with the broker in its own
// process (the built binary, --flush none), so that the client's garbage
// and the broker's are collected apart, as in production.
//
//	go test ./cmd/sluice -run '^$' -bench ConsumeProcess -benchtime 5x
func BenchmarkConsumeProcess(b *testing.B) { benchmarkConsume(b, startBenchBrokerProcess(b)) }

func benchmarkConsume(b *testing.B, sluiceAddr string) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	fillBenchTopic(b, sluiceAddr)
	fillBenchTopic(b, fake.ListenAddrs()[0])
	var sluiceTime, kfakeTime time.Duration
	b.ResetTimer()
	for range b.N {
		sluiceTime += consumeBenchTopic(b, sluiceAddr)
		kfakeTime += consumeBenchTopic(b, fake.ListenAddrs()[0])
	}
	records := float64(b.N * consumeBenchRecords)
	b.ReportMetric(records/sluiceTime.Seconds(), "sluice-records/s")
	b.ReportMetric(records/kfakeTime.Seconds(), "kfake-records/s")
	b.ReportMetric(kfakeTime.Seconds()/sluiceTime.Seconds(), "sluice/kfake")
}

// startBenchBroker runs a broker in this process with Kafka's defaults as
// configure changes them, and returns its address once it listens.
func startBenchBroker(b *testing.B, configure func(*broker.Config)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	node, err := osenv.NewNode(osenv.Options{Name: "bench", DataDir: b.TempDir(), Log: log.New(io.Discard, "", 0)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); node.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.Advertised, cfg.DataDir = addr, addr, "."
	configure(&cfg)
	node.Start(broker.Start(cfg, func(*broker.Broker) {}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("broker did not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startBenchBrokerProcess(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "broker", "--data", b.TempDir(), "--listen", addr, "--flush", "none")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("broker did not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fillBenchTopic(b *testing.B, addr string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(consumeBenchBatchBytes))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, consumeBenchRecordBytes)
	errs := make(chan error, 1)
	for range consumeBenchRecords {
		cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatalf("produce to %s: %v", addr, err)
	default:
	}
}

// consumeBenchTopic reads the whole topic with a new consumer and returns
// how long that took.
func consumeBenchTopic(b *testing.B, addr string) time.Duration {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin, got := time.Now(), 0
	for got < consumeBenchRecords {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			b.Fatal(fmt.Errorf("consume from %s after %d records: %w", addr, got, err))
		}
		got += fs.NumRecords()
	}
	return time.Since(begin)
}
