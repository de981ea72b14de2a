package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a Kafka-protocol broker the way Kafka's perf-test tools do",
		Long: `Produce or consume as fast as a broker allows (or at a set rate) and print
what kafka-producer-perf-test and kafka-consumer-perf-test print, so that
figures compare line for line. The client is franz-go; any broker speaking
Kafka's protocol can be measured, sluice's or Kafka's.`,
		Example: `  sluice bench produce --topic perf --num-records 1000000 --record-size 100 \
    --throughput -1 --producer-props bootstrap.servers=localhost:9092 acks=all linger.ms=5
  sluice bench consume --bootstrap-server localhost:9092 --topic perf --messages 1000000
  sluice bench channels --events 1000000 --event-size 100,1024`,
	}
	cmd.AddCommand(newBenchProduceCommand(), newBenchConsumeCommand(), newBenchChannelsCommand())
	return cmd
}

// Latency histograms hold microseconds from 1 µs to an hour, to three
// significant digits (as reports/latency.go's do).
const (
	benchLatencyUsLowest  = 1
	benchLatencyUsHighest = int64(time.Hour / time.Microsecond)
	benchLatencySigFigs   = 3
)

// exitBenchFailed is the status of a run that could not send or read
// every record (2 is a usage error).
const exitBenchFailed = 1

// benchFailed prints err and returns it with exitBenchFailed: main prints
// no message for status 1.
func benchFailed(errOut io.Writer, err error) error {
	fmt.Fprintln(errOut, "sluice:", err)
	return &exitError{code: exitBenchFailed, err: err}
}

// benchRecordsMax bounds --num-records and --messages: the count is held
// in memory only as counters, but a typo of a few more zeros should fail.
const benchRecordsMax = 1_000_000_000_000

// benchRecordBytesMax is the largest --record-size: Kafka's default
// max.request.size.
const benchRecordBytesMax = 1 << 20

type benchProduceFlags struct {
	topic            string
	numRecords       int64
	recordSize       int
	throughput       float64
	props            []string
	reportIntervalMs int64
	jsonOut          bool
}

func newBenchProduceCommand() *cobra.Command {
	var f benchProduceFlags
	cmd := &cobra.Command{
		Use:   "produce --topic T --num-records N --record-size S --throughput R --producer-props K=V...",
		Short: "Produce records and print kafka-producer-perf-test's lines",
		Long: `Produce --num-records records of --record-size bytes to --topic, at most
--throughput records a second (-1: as fast as the broker takes them), and
print what kafka-producer-perf-test prints: a line per reporting interval

  N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.

and a total with the latency percentiles (from an HdrHistogram):

  N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.

A record's latency runs from its send to its acknowledgement. --json prints
the total as one JSON object instead of the lines.

--producer-props takes Kafka's producer properties, as many as follow it:
bootstrap.servers (required), acks (0, 1, all or -1; default all),
linger.ms, batch.size, compression.type (none, gzip, snappy, lz4, zstd),
delivery.timeout.ms (default two minutes, after which a record fails),
enable.idempotence (default true, as in Kafka 3; only with acks=all),
max.in.flight.requests.per.connection and client.id.`,
		Example: `  sluice bench produce --topic perf --num-records 1000000 --record-size 100 \
    --throughput -1 --producer-props bootstrap.servers=localhost:9092 acks=all linger.ms=5`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Kafka's tool takes every word after --producer-props as a
			// property; cobra leaves the words after the first as arguments.
			if len(args) > 0 && !cmd.Flags().Changed("producer-props") {
				return usageError("unexpected arguments %q (producer properties follow --producer-props)", args)
			}
			f.props = append(f.props, args...)
			opts, err := f.clientOptions()
			if err != nil {
				return usageError("%v", err)
			}
			return runBenchProduce(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "topic to produce to (required)")
	fl.Int64Var(&f.numRecords, "num-records", 0, "records to produce (required)")
	fl.IntVar(&f.recordSize, "record-size", 0, "bytes in each record's value (required)")
	fl.Float64Var(&f.throughput, "throughput", 0, "records a second at most; -1 for no limit (required)")
	fl.StringArrayVar(&f.props, "producer-props", nil, "producer properties K=V, as many as follow (bootstrap.servers is required)")
	fl.Int64Var(&f.reportIntervalMs, "reporting-interval", 5000, "milliseconds between progress lines")
	fl.BoolVar(&f.jsonOut, "json", false, "print the total as one JSON object")
	return cmd
}

// producerPropsSupported are the producer properties --producer-props
// understands; any other is refused rather than silently ignored.
var producerPropsSupported = []string{"acks", "batch.size", "bootstrap.servers", "client.id",
	"compression.type", "delivery.timeout.ms", "enable.idempotence", "linger.ms", "max.in.flight.requests.per.connection"}

// clientOptions checks the flags and turns the producer properties into
// franz-go's options.
func (f benchProduceFlags) clientOptions() ([]kgo.Opt, error) {
	switch {
	case f.topic == "":
		return nil, errors.New("--topic is required")
	case f.numRecords <= 0 || f.numRecords > benchRecordsMax:
		return nil, fmt.Errorf("--num-records %d: want 1 to %d", f.numRecords, int64(benchRecordsMax))
	case f.recordSize <= 0 || f.recordSize > benchRecordBytesMax:
		return nil, fmt.Errorf("--record-size %d: want 1 to %d bytes", f.recordSize, benchRecordBytesMax)
	case f.throughput == 0 || (f.throughput < 0 && f.throughput != -1):
		return nil, fmt.Errorf("--throughput %v: want records a second, or -1 for no limit", f.throughput)
	case f.reportIntervalMs <= 0:
		return nil, fmt.Errorf("--reporting-interval %d: want milliseconds above 0", f.reportIntervalMs)
	}
	props := map[string]string{}
	for _, kv := range f.props {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--producer-props %q: want KEY=VALUE", kv)
		}
		if !slices.Contains(producerPropsSupported, k) {
			return nil, fmt.Errorf("--producer-props %s: not supported (supported: %s)", k, strings.Join(producerPropsSupported, ", "))
		}
		props[k] = v
	}
	if props["bootstrap.servers"] == "" {
		return nil, errors.New("--producer-props bootstrap.servers=HOST:PORT is required")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(props["bootstrap.servers"], ",")...),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(f.topic)}
	acks, idempotent, err := producerAcks(props["acks"], props["enable.idempotence"])
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.RequiredAcks(acks))
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	more, err := producerTuning(props)
	if err != nil {
		return nil, err
	}
	return append(opts, more...), nil
}

// producerAcks reads acks and enable.idempotence with Kafka 3's defaults
// (acks=all, idempotent); idempotence needs acks=all.
func producerAcks(acks, idempotence string) (kgo.Acks, bool, error) {
	idempotent := true
	if idempotence != "" {
		v, err := strconv.ParseBool(idempotence)
		if err != nil {
			return kgo.Acks{}, false, fmt.Errorf("enable.idempotence=%s: want true or false", idempotence)
		}
		idempotent = v
	}
	switch acks {
	case "", "all", "-1":
		return kgo.AllISRAcks(), idempotent, nil
	case "1", "0":
		if idempotence == "true" {
			return kgo.Acks{}, false, fmt.Errorf("enable.idempotence=true needs acks=all, not acks=%s", acks)
		}
		if acks == "1" {
			return kgo.LeaderAck(), false, nil
		}
		return kgo.NoAck(), false, nil
	}
	return kgo.Acks{}, false, fmt.Errorf("acks=%s: want 0, 1, all or -1", acks)
}

// producerTuning reads the batching, compression and naming properties.
func producerTuning(props map[string]string) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if v, ok := props["linger.ms"]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("linger.ms=%s: want milliseconds, 0 or more", v)
		}
		opts = append(opts, kgo.ProducerLinger(time.Duration(ms)*time.Millisecond))
	}
	if v, ok := props["batch.size"]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("batch.size=%s: want bytes above 0", v)
		}
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(n)))
	}
	if v, ok := props["max.in.flight.requests.per.connection"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("max.in.flight.requests.per.connection=%s: want a count above 0", v)
		}
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(n))
	}
	if v, ok := props["compression.type"]; ok {
		codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
			"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
		codec, ok := codecs[v]
		if !ok {
			return nil, fmt.Errorf("compression.type=%s: want none, gzip, snappy, lz4 or zstd", v)
		}
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	} else {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression())) // Kafka's default
	}
	// Kafka's delivery.timeout.ms defaults to two minutes: a run against a
	// broker that is down fails rather than retrying for ever.
	deliveryMs := int64(120_000)
	if v, ok := props["delivery.timeout.ms"]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("delivery.timeout.ms=%s: want milliseconds above 0", v)
		}
		deliveryMs = ms
	}
	opts = append(opts, kgo.RecordDeliveryTimeout(time.Duration(deliveryMs)*time.Millisecond))
	if v, ok := props["client.id"]; ok {
		opts = append(opts, kgo.ClientID(v))
	}
	return opts, nil
}

// produceStats are a run's counts and latencies; callbacks of the client
// update them concurrently.
type produceStats struct {
	mu           sync.Mutex
	out          io.Writer
	quiet        bool
	start        time.Time
	count        int64
	bytes        int64
	failed       int64
	firstErr     error
	latencyMsMax float64
	latencyMsSum float64
	latencies    *hdrhistogram.Histogram
	window       produceWindow
	interval     time.Duration
}

// produceWindow is one reporting interval's share of the counts.
type produceWindow struct {
	start        time.Time
	count        int64
	bytes        int64
	latencyMsSum float64
	latencyMsMax float64
}

func (s *produceStats) record(sent time.Time, size int, err error) {
	now := time.Now()
	latency := now.Sub(sent)
	latencyMs := float64(latency) / float64(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.count++
	s.bytes += int64(size)
	s.latencyMsSum += latencyMs
	s.latencyMsMax = max(s.latencyMsMax, latencyMs)
	us := min(max(latency.Microseconds(), benchLatencyUsLowest), benchLatencyUsHighest)
	s.latencies.RecordValue(us) // within the histogram's range: no error
	w := &s.window
	w.count++
	w.bytes += int64(size)
	w.latencyMsSum += latencyMs
	w.latencyMsMax = max(w.latencyMsMax, latencyMs)
	if now.Sub(w.start) >= s.interval {
		s.printWindow(now)
		s.window = produceWindow{start: now}
	}
}

// printWindow prints kafka-producer-perf-test's progress line.
func (s *produceStats) printWindow(now time.Time) {
	if s.quiet {
		return
	}
	w := s.window
	elapsed := now.Sub(w.start).Seconds()
	fmt.Fprintf(s.out, "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n",
		w.count, float64(w.count)/elapsed, float64(w.bytes)/elapsed/(1<<20), w.latencyMsSum/float64(max(w.count, 1)), w.latencyMsMax)
}

// produceResult is the total of a run, as --json prints it.
type produceResult struct {
	Records         int64   `json:"records"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	MBPerSec        float64 `json:"mb_per_sec"`
	LatencyMsAvg    float64 `json:"latency_ms_avg"`
	LatencyMsMax    float64 `json:"latency_ms_max"`
	LatencyMsP50    float64 `json:"latency_ms_p50"`
	LatencyMsP95    float64 `json:"latency_ms_p95"`
	LatencyMsP99    float64 `json:"latency_ms_p99"`
	LatencyMsP999   float64 `json:"latency_ms_p99_9"`
	Failed          int64   `json:"failed"`
	ElapsedMs       float64 `json:"elapsed_ms"`
	RecordSizeBytes int     `json:"record_size_bytes"`
}

func (s *produceStats) total(recordSize int) produceResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := time.Since(s.start).Seconds()
	pct := func(q float64) float64 { return float64(s.latencies.ValueAtQuantile(q)) / 1000 }
	return produceResult{
		Records: s.count, RecordsPerSec: float64(s.count) / elapsed, MBPerSec: float64(s.bytes) / elapsed / (1 << 20),
		LatencyMsAvg: s.latencyMsSum / float64(max(s.count, 1)), LatencyMsMax: s.latencyMsMax,
		LatencyMsP50: pct(50), LatencyMsP95: pct(95), LatencyMsP99: pct(99), LatencyMsP999: pct(99.9),
		Failed: s.failed, ElapsedMs: elapsed * 1000, RecordSizeBytes: recordSize,
	}
}

// printProduceTotal prints kafka-producer-perf-test's total line: whole
// milliseconds for the percentiles, as Kafka's tool prints them.
func printProduceTotal(w io.Writer, r produceResult) {
	fmt.Fprintf(w, "%d records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n",
		r.Records, r.RecordsPerSec, r.MBPerSec, r.LatencyMsAvg, r.LatencyMsMax,
		int64(r.LatencyMsP50), int64(r.LatencyMsP95), int64(r.LatencyMsP99), int64(r.LatencyMsP999))
}

func runBenchProduce(ctx context.Context, out, errOut io.Writer, f benchProduceFlags, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return usageError("producer: %v", err)
	}
	defer cl.Close()
	// Kafka's tool sends one random payload of capital letters again and
	// again; so does this.
	payload := make([]byte, f.recordSize)
	rng := rand.New(rand.NewSource(1))
	for i := range payload {
		payload[i] = byte('A' + rng.Intn(26))
	}
	now := time.Now()
	s := &produceStats{out: out, quiet: f.jsonOut, start: now, window: produceWindow{start: now},
		interval:  time.Duration(f.reportIntervalMs) * time.Millisecond,
		latencies: hdrhistogram.New(benchLatencyUsLowest, benchLatencyUsHighest, benchLatencySigFigs)}
	if ctx == nil {
		ctx = context.Background()
	}
	for i := range f.numRecords {
		if f.throughput > 0 {
			due := s.start.Add(time.Duration(float64(i) / f.throughput * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
		}
		sent := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: payload}, func(_ *kgo.Record, err error) {
			s.record(sent, len(payload), err)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return benchFailed(errOut, fmt.Errorf("flush: %w", err))
	}
	r := s.total(f.recordSize)
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printProduceTotal(out, r)
	}
	if s.failed > 0 {
		return benchFailed(errOut, fmt.Errorf("%d of %d records failed; the first: %w", s.failed, f.numRecords, s.firstErr))
	}
	return nil
}

type benchConsumeFlags struct {
	bootstrap  string
	topic      string
	messages   int64
	timeoutMs  int64
	fromLatest bool
	hideHeader bool
	jsonOut    bool
}

func newBenchConsumeCommand() *cobra.Command {
	var f benchConsumeFlags
	cmd := &cobra.Command{
		Use:   "consume --bootstrap-server B --topic T --messages N",
		Short: "Consume records and print kafka-consumer-perf-test's summary",
		Long: `Consume --messages records of --topic from every partition, from the start
(--from-latest: from the end), and print what kafka-consumer-perf-test
prints:

  start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  2026-01-02 15:04:05:000, 2026-01-02 15:04:06:000, 95.3674, 95.3674, 1000000, 1000000.0000, 0, 1000, 95.3674, 1000000.0000

The consumer reads partitions directly, without a group, so the
rebalance time is 0. A MB is 2^20 bytes of keys and values. If no record
comes for --timeout milliseconds before --messages arrived, it prints the
summary of what came and fails. --json prints the summary as one JSON
object.`,
		Example: `  sluice bench consume --bootstrap-server localhost:9092 --topic perf --messages 1000000
  sluice bench channels --events 1000000 --event-size 100,1024`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case f.bootstrap == "":
				return usageError("--bootstrap-server is required")
			case f.topic == "":
				return usageError("--topic is required")
			case f.messages <= 0 || f.messages > benchRecordsMax:
				return usageError("--messages %d: want 1 to %d", f.messages, int64(benchRecordsMax))
			case f.timeoutMs <= 0:
				return usageError("--timeout %d: want milliseconds above 0", f.timeoutMs)
			}
			return runBenchConsume(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bootstrap, "bootstrap-server", "", "brokers to start from, HOST:PORT[,HOST:PORT...] (required)")
	fl.StringVar(&f.topic, "topic", "", "topic to consume (required)")
	fl.Int64Var(&f.messages, "messages", 0, "records to consume (required)")
	fl.Int64Var(&f.timeoutMs, "timeout", 10000, "milliseconds to wait for the next record before giving up")
	fl.BoolVar(&f.fromLatest, "from-latest", false, "start at the end of each partition instead of its start")
	fl.BoolVar(&f.hideHeader, "hide-header", false, "print the summary without its header line")
	fl.BoolVar(&f.jsonOut, "json", false, "print the summary as one JSON object")
	return cmd
}

// consumeResult is kafka-consumer-perf-test's summary, as --json prints it.
type consumeResult struct {
	StartTime       string  `json:"start_time"`
	EndTime         string  `json:"end_time"`
	MB              float64 `json:"data_consumed_mb"`
	MBPerSec        float64 `json:"mb_per_sec"`
	Messages        int64   `json:"data_consumed_messages"`
	MessagesPerSec  float64 `json:"messages_per_sec"`
	RebalanceTimeMs int64   `json:"rebalance_time_ms"`
	FetchTimeMs     int64   `json:"fetch_time_ms"`
	FetchMBPerSec   float64 `json:"fetch_mb_per_sec"`
	FetchMsgPerSec  float64 `json:"fetch_messages_per_sec"`
}

// kafkaPerfTime formats t as kafka-consumer-perf-test's dates,
// yyyy-MM-dd HH:mm:ss:SSS (Go's layouts take fractions only after a dot).
func kafkaPerfTime(t time.Time) string {
	return fmt.Sprintf("%s:%03d", t.Format("2006-01-02 15:04:05"), t.Nanosecond()/int(time.Millisecond))
}

const consumeHeader = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"

func runBenchConsume(ctx context.Context, out, errOut io.Writer, f benchConsumeFlags) error {
	reset := kgo.NewOffset().AtStart()
	if f.fromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(f.bootstrap, ",")...),
		kgo.ConsumeTopics(f.topic), kgo.ConsumeResetOffset(reset))
	if err != nil {
		return usageError("consumer: %v", err)
	}
	defer cl.Close()
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	last := start
	var messages, bytes int64
	var timedOut bool
	for messages < f.messages {
		pollCtx, cancel := context.WithDeadline(ctx, last.Add(time.Duration(f.timeoutMs)*time.Millisecond))
		fetches := cl.PollRecords(pollCtx, int(min(f.messages-messages, 1<<20)))
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && fetchErr == nil {
				fetchErr = fmt.Errorf("consume %s[%d]: %w", topic, partition, err)
			}
		})
		if fetchErr != nil {
			return benchFailed(errOut, fetchErr)
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			bytes += int64(len(r.Key) + len(r.Value))
		})
		if n > 0 {
			messages += int64(n)
			last = time.Now()
			continue
		}
		if time.Since(last) >= time.Duration(f.timeoutMs)*time.Millisecond {
			timedOut = true
			break
		}
	}
	r := consumeSummary(start, last, messages, bytes)
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		if !f.hideHeader {
			fmt.Fprintln(out, consumeHeader)
		}
		fmt.Fprintf(out, "%s, %s, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f\n", r.StartTime, r.EndTime, r.MB, r.MBPerSec,
			r.Messages, r.MessagesPerSec, r.RebalanceTimeMs, r.FetchTimeMs, r.FetchMBPerSec, r.FetchMsgPerSec)
	}
	if timedOut {
		fmt.Fprintf(errOut, "WARNING: Exiting before consuming the expected number of messages: timeout (%d ms) exceeded. You can use the --timeout option to increase the timeout.\n", f.timeoutMs)
		return benchFailed(errOut, fmt.Errorf("consumed %d of %d records", messages, f.messages))
	}
	return nil
}

// consumeSummary computes the summary as Kafka's tool does: rates over the
// time from the start to the last record.
func consumeSummary(start, end time.Time, messages, bytes int64) consumeResult {
	elapsedMs := max(end.Sub(start).Milliseconds(), 1)
	secs := float64(elapsedMs) / 1000
	mb := float64(bytes) / (1 << 20)
	return consumeResult{
		StartTime: kafkaPerfTime(start), EndTime: kafkaPerfTime(end),
		MB: mb, MBPerSec: mb / secs, Messages: messages, MessagesPerSec: float64(messages) / secs,
		RebalanceTimeMs: 0, FetchTimeMs: elapsedMs, FetchMBPerSec: mb / secs, FetchMsgPerSec: float64(messages) / secs,
	}
}
