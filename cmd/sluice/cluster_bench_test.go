package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkClusterProduceAcksAll measures an idempotent franz-go producer
// with acks=all writing 100-byte records to a topic with replication
// factor 3 and min.insync.replicas 2 on a local cluster of real processes
// (`sluice cluster up --brokers 3`, each node broker and controller): first
// the peak rate, unthrottled, then a run paced at half of it, whose
// latencies are what a producer below saturation sees. Latency runs from
// the moment the schedule says a record is due (not when it was handed to
// the client), so a stall that delays later sends counts against them.
// It runs once per flush policy: group commit (every broker syncs before
// it counts a write as its own) and none (Kafka's default: replication
// alone), so that the difference is the disks' share of the latency.
// SLUICE_BENCH_BINARY names another sluice binary to run the cluster with,
// to compare builds on the same machine in turn.
//
//	go test -run '^$' -bench BenchmarkClusterProduceAcksAll -benchtime 1x ./cmd/sluice/
func BenchmarkClusterProduceAcksAll(b *testing.B) {
	for _, flush := range []string{"group", "none"} {
		b.Run("flush="+flush, func(b *testing.B) { benchClusterProduce(b, flush) })
	}
}

func benchClusterProduce(b *testing.B, flush string) {
	bootstrap := startBenchCluster(b, flush)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(benchClusterTopic),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(benchBufferedRecordsMax))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	createBenchTopic(b, cl)
	value := make([]byte, benchRecordBytes)
	// Warm up: leaders elected, producer id assigned, connections open.
	acked := measureProduce(b, cl, value, 0, benchWarmup).acked
	b.ResetTimer()
	for range b.N {
		peak := measureProduce(b, cl, value, 0, benchPhase)
		paced := measureProduce(b, cl, value, peak.recordsPerSec/2, benchPhase)
		acked += peak.acked + paced.acked
		b.ReportMetric(peak.recordsPerSec, "peak-records/s")
		b.ReportMetric(paced.recordsPerSec, "records/s")
		b.ReportMetric(quantileMs(paced.latencyUs, 50), "p50-ms")
		b.ReportMetric(quantileMs(paced.latencyUs, 99), "p99-ms")
		b.ReportMetric(quantileMs(paced.handedLatencyUs, 50), "handed-p50-ms")
		b.ReportMetric(quantileMs(paced.handedLatencyUs, 99), "handed-p99-ms")
		b.Logf("flush=%s: peak %.0f records/s (p50 %.2f ms, p99 %.2f ms); paced at %.0f records/s: %.0f records/s, "+
			"from due p50 %.2f ms, p99 %.2f ms, max %.2f ms; from hand-off p50 %.2f ms, p99 %.2f ms",
			flush, peak.recordsPerSec, quantileMs(peak.latencyUs, 50), quantileMs(peak.latencyUs, 99),
			peak.recordsPerSec/2, paced.recordsPerSec, quantileMs(paced.latencyUs, 50), quantileMs(paced.latencyUs, 99),
			float64(paced.latencyUs.Max())/1000, quantileMs(paced.handedLatencyUs, 50), quantileMs(paced.handedLatencyUs, 99))
	}
	b.StopTimer()
	checkHighWatermarks(b, cl, acked)
}

// checkHighWatermarks fails the benchmark unless the partitions' high
// watermarks (what every ISR member holds) add up to the records
// acknowledged: a figure for answers the cluster did not mean is no figure.
func checkHighWatermarks(b *testing.B, cl *kgo.Client, acked int64) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), benchClusterTopic)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			b.Fatalf("end offset of %s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		total += o.Offset
	})
	if total != acked {
		b.Fatalf("the high watermarks add up to %d records, the producer had %d acknowledged", total, acked)
	}
}

const (
	benchClusterTopic       = "bench-acks-all"
	benchRecordBytes        = 100
	benchBufferedRecordsMax = 10000
	benchWarmup             = 2 * time.Second
	benchPhase              = 5 * time.Second
	// benchTick is how often the paced run hands the records due to the
	// client.
	benchTick = time.Millisecond
)

// quantileMs is a latency histogram's quantile q (a percentage) in milliseconds.
func quantileMs(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1000
}

// produceRun is one phase's outcome: acknowledged records per second and
// each acknowledged record's latency in microseconds, counted from when
// the schedule said it was due and from when it was handed to the client.
// The difference is the producing loop's own lateness (its tick, and the
// CPU it waited for), not the cluster's; a stall of the client's buffer
// (Produce blocking on a full buffer) counts in both.
type produceRun struct {
	acked           int64
	recordsPerSec   float64
	latencyUs       *hdrhistogram.Histogram
	handedLatencyUs *hdrhistogram.Histogram
}

// measureProduce produces for phase, unthrottled when ratePerSec is 0 (as
// many records in flight as the client buffers) and otherwise at
// ratePerSec, then waits for every answer. A failed record fails the
// benchmark: acks=all with a full ISR must not refuse.
func measureProduce(b *testing.B, cl *kgo.Client, value []byte, ratePerSec float64, phase time.Duration) produceRun {
	var (
		mu         sync.Mutex
		hist       = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		handedHist = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		acked      atomic.Int64
		failure    atomic.Value
	)
	produce := func(due time.Time) {
		handed := time.Now()
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failure.CompareAndSwap(nil, err)
				return
			}
			now := time.Now()
			us := max(now.Sub(due).Microseconds(), 1)
			handedUs := max(now.Sub(handed).Microseconds(), 1)
			mu.Lock()
			hist.RecordValue(min(us, hist.HighestTrackableValue()))
			handedHist.RecordValue(min(handedUs, handedHist.HighestTrackableValue()))
			mu.Unlock()
			acked.Add(1)
		})
	}
	start := time.Now()
	if ratePerSec == 0 {
		for time.Since(start) < phase {
			produce(time.Now()) // blocks while the client holds its maximum
		}
	} else {
		interval := time.Duration(float64(time.Second) / ratePerSec)
		sent := 0
		for now := start; now.Sub(start) < phase; now = time.Now() {
			for due := start.Add(time.Duration(sent) * interval); !due.After(now); due = start.Add(time.Duration(sent) * interval) {
				produce(due)
				sent++
			}
			time.Sleep(benchTick)
		}
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if err, _ := failure.Load().(error); err != nil {
		b.Fatalf("an acks=all record failed: %v", err)
	}
	return produceRun{acked: acked.Load(), recordsPerSec: float64(acked.Load()) / elapsed.Seconds(), latencyUs: hist, handedLatencyUs: handedHist}
}

// startBenchCluster starts `sluice cluster up --brokers 3 --flush flush`
// and returns its bootstrap address; the cluster stops when the benchmark
// ends.
func startBenchCluster(b *testing.B, flush string) string {
	b.Helper()
	dir := b.TempDir()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	bin := os.Getenv("SLUICE_BENCH_BINARY")
	if bin == "" {
		bin = sluiceBinary(b)
	}
	cmd := exec.Command(bin, "cluster", "up", "--brokers", "3", "--data", dir, "--flush", flush)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var file clusterFile
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // stops every node cleanly
		select {
		case <-exited:
		case <-time.After(clusterWaitMax):
			cmd.Process.Kill()
			<-exited
		}
		for _, n := range file.Nodes {
			if processIs(n.PID, n.Config) {
				syscall.Kill(n.PID, syscall.SIGKILL)
			}
		}
	})
	for deadline := time.Now().Add(clusterWaitMax); !strings.Contains(stdout.String(), "cluster.json: "); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			b.Fatalf("cluster up exited: %v\n%s%s", cmd.ProcessState, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("cluster up printed no bootstrap address within %v\n%s%s", clusterWaitMax, stdout, stderr)
		}
	}
	f, err := readClusterFile(dir)
	if err != nil {
		b.Fatal(err)
	}
	file = f
	return file.Bootstrap
}

// createBenchTopic creates the benchmark's topic: three partitions, RF 3,
// min.insync.replicas 2.
func createBenchTopic(b *testing.B, cl *kgo.Client) {
	b.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = benchClusterTopic, clusterPartitions, 3
	minISR := "2"
	rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "min.insync.replicas", Value: &minISR}}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		b.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != 0 {
		b.Fatalf("create topic %s: error code %d", benchClusterTopic, code)
	}
}
