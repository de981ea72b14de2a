package main

import (
	"context"
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
//
//	go test -run '^$' -bench BenchmarkClusterProduceAcksAll -benchtime 1x ./cmd/sluice/
func BenchmarkClusterProduceAcksAll(b *testing.B) {
	bootstrap := startBenchCluster(b)
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
		b.ReportMetric(float64(paced.latencyUs.ValueAtQuantile(50))/1000, "p50-ms")
		b.ReportMetric(float64(paced.latencyUs.ValueAtQuantile(99))/1000, "p99-ms")
		b.Logf("peak %.0f records/s (p50 %.2f ms, p99 %.2f ms); paced at %.0f records/s: %.0f records/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			peak.recordsPerSec, float64(peak.latencyUs.ValueAtQuantile(50))/1000, float64(peak.latencyUs.ValueAtQuantile(99))/1000,
			peak.recordsPerSec/2, paced.recordsPerSec, float64(paced.latencyUs.ValueAtQuantile(50))/1000,
			float64(paced.latencyUs.ValueAtQuantile(99))/1000, float64(paced.latencyUs.Max())/1000)
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

// produceRun is one phase's outcome: acknowledged records per second and
// each acknowledged record's latency in microseconds.
type produceRun struct {
	acked         int64
	recordsPerSec float64
	latencyUs     *hdrhistogram.Histogram
}

// measureProduce produces for phase, unthrottled when ratePerSec is 0 (as
// many records in flight as the client buffers) and otherwise at
// ratePerSec, then waits for every answer. A failed record fails the
// benchmark: acks=all with a full ISR must not refuse.
func measureProduce(b *testing.B, cl *kgo.Client, value []byte, ratePerSec float64, phase time.Duration) produceRun {
	var (
		mu      sync.Mutex
		hist    = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		acked   atomic.Int64
		failure atomic.Value
	)
	produce := func(due time.Time) {
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failure.CompareAndSwap(nil, err)
				return
			}
			us := max(time.Since(due).Microseconds(), 1)
			mu.Lock()
			hist.RecordValue(min(us, hist.HighestTrackableValue()))
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
	return produceRun{acked: acked.Load(), recordsPerSec: float64(acked.Load()) / elapsed.Seconds(), latencyUs: hist}
}

// startBenchCluster starts `sluice cluster up --brokers 3` and returns its
// bootstrap address; the cluster stops when the benchmark ends.
func startBenchCluster(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd := exec.Command(sluiceBinary(b), "cluster", "up", "--brokers", "3", "--data", dir)
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
