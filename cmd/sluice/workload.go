package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/sim/osenv"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

type workloadFlags struct {
	bootstrap   string
	topic       string
	partitions  int32
	rate        float64
	duration    time.Duration
	drain       time.Duration
	acks        string
	idempotence bool
	concurrency int
	linger      time.Duration
	historyFile string
	check       bool
	jsonOut     bool
}

func newWorkloadCommand() *cobra.Command {
	var f workloadFlags
	cmd := &cobra.Command{
		Use:   "workload",
		Short: "Run the checked producer/consumer workload against a real Kafka-protocol broker",
		Long: `Run the same workload the simulated scenarios run — a producer writing
unique values and a consumer reading every partition back, both recording a
history — against a real broker (sluice broker, Kafka, Redpanda), over real
sockets and the real clock. After --duration it drains (waits for every send,
reads every partition to its end and again from the beginning), writes the
history and judges it with the checkers, as 'sluice check' would.

Sends are paced at --rate on a fixed schedule and batched per partition as a
Kafka producer batches them (--linger). A send that comes due while
--concurrency sends are still unanswered is skipped, not made up later; the
summary then says the client could not keep up, with the rate reached and the
rate asked for. The summary gives throughput and send and poll latency
percentiles (HDR histograms); --json prints it, with the checkers' report, as
one JSON object.

The producer is idempotent with --acks all (the default). Idempotence needs
acks=all, so --acks 1 or 0 must come with --idempotence=false; the two
together are refused rather than quietly weakened.

Exit status: 0 when the history is valid, 1 when it is not, 2 on bad usage
or when the broker cannot be reached.`,
		Example: `  sluice broker --data ./data --listen 127.0.0.1:9092 &
  sluice workload --bootstrap 127.0.0.1:9092 --topic checked --partitions 3 --duration 30s --history h.jsonl
  sluice check h.jsonl
  sluice workload --rate 20000 --duration 5s --json
  sluice workload --acks 1 --idempotence=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorkload(cmd, f, cmd.Flags().Changed("idempotence"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bootstrap, "bootstrap", "127.0.0.1:9092", "broker addresses, comma-separated")
	fl.StringVar(&f.topic, "topic", "sluice-workload", "topic to write and read (created if missing)")
	fl.Int32Var(&f.partitions, "partitions", 3, "partitions of the topic")
	fl.Float64Var(&f.rate, "rate", 1000, "sends per second")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to produce")
	fl.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "bound on the final drain")
	fl.StringVar(&f.acks, "acks", "all", "producer acks: all, 1 or 0 (1 and 0 need --idempotence=false)")
	fl.BoolVar(&f.idempotence, "idempotence", true, "idempotent producer (needs --acks all)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "bound on sends without an answer (default: half a second of --rate, at least 100)")
	fl.DurationVar(&f.linger, "linger", 5*time.Millisecond, "how long a batch waits for more records (linger.ms)")
	fl.StringVar(&f.historyFile, "history", "", "write the history (JSON lines) to this file")
	fl.BoolVar(&f.check, "check", true, "judge the history when done")
	fl.BoolVar(&f.jsonOut, "json", false, "print the summary and the checkers' report as one JSON object")
	return cmd
}

// producerConfig checks the producer flags. idempotenceSet says whether
// --idempotence was given: acks other than all with idempotence on are
// refused, since the producer would otherwise drop idempotence without a
// word.
func (f workloadFlags) producerConfig(idempotenceSet bool) (kafka.ProducerConfig, error) {
	pc := kafka.ProducerConfig{Linger: f.linger, DisableIdempotence: !f.idempotence, AllowAutoTopicCreation: true}
	switch f.acks {
	case "all", "-1":
	case "1":
		pc.Acks = kafka.AcksLeader
	case "0":
		pc.Acks = kafka.AcksNone
	default:
		return pc, usageError("--acks %q: want all, 1 or 0", f.acks)
	}
	if pc.Acks != kafka.AcksAll && f.idempotence {
		why := "is on by default"
		if idempotenceSet {
			why = "was asked for"
		}
		return pc, usageError("--acks %s: the idempotent producer needs acks=all, and idempotence %s; "+
			"add --idempotence=false to write with acks=%s and no idempotence", f.acks, why, f.acks)
	}
	if f.linger < 0 {
		return pc, usageError("--linger %v: want a duration of zero or more", f.linger)
	}
	return pc, nil
}

func runWorkload(cmd *cobra.Command, f workloadFlags, idempotenceSet bool) error {
	pc, err := f.producerConfig(idempotenceSet)
	if err != nil {
		return err
	}
	switch {
	case f.partitions < 1:
		return usageError("--partitions must be at least 1")
	case f.rate <= 0:
		return usageError("--rate %v: want a positive number of sends per second", f.rate)
	case f.concurrency < 0:
		return usageError("--concurrency %d: want a positive bound (or 0 for the default)", f.concurrency)
	case f.duration <= 0:
		return usageError("--duration %v: want a positive duration", f.duration)
	}
	concurrency := f.concurrency
	if concurrency == 0 {
		concurrency = max(100, int(f.rate/2))
	}
	bootstrap := strings.Split(f.bootstrap, ",")
	if err := ensureTopic(bootstrap, f.topic, f.partitions); err != nil {
		return usageError("%v", err)
	}
	partitions := make([]int32, f.partitions)
	for i := range partitions {
		partitions[i] = int32(i)
	}
	started := time.Now()
	recorder := &history.Log{Now: func() int64 { return int64(time.Since(started)) }}
	cfg := kafka.DriverConfig{
		Bootstrap: bootstrap, Topic: f.topic, Partitions: partitions, Rate: f.rate, Concurrency: concurrency,
		DrainTimeout: f.drain, Reread: true, Recorder: recorder, Producer: pc,
		Consumer: kafka.ConsumerConfig{FetchMaxWait: 100 * time.Millisecond},
	}
	run, err := driveWorkload(cmd.ErrOrStderr(), cfg, recorder, f.duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "drain: caught up %v, %d sends unsettled\n", run.drain.CaughtUp, run.drain.Unsettled)
	if f.historyFile != "" {
		if err := writeHistory(f.historyFile, run.history); err != nil {
			return err
		}
	}
	summary := summarize(f.rate, run)
	var verdict *checkers.Report
	if f.check {
		v := checkers.Check(run.history, checkers.DefaultOptions())
		verdict = &v
	}
	if err := printWorkload(cmd.OutOrStdout(), f.jsonOut, summary, verdict); err != nil {
		return err
	}
	if verdict != nil && (!verdict.Valid || verdict.Unknown || !run.drain.CaughtUp) {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("workload history is not valid")}
	}
	return nil
}

// workloadRun is what driving a workload produced.
type workloadRun struct {
	history history.History
	drain   kafka.DrainReport
	// stats are the driver's counters when producing stopped.
	stats kafka.DriverStats
	// produced is how long the driver produced.
	produced time.Duration
}

// driveWorkload runs the driver on a real node for duration (or until
// SIGINT/SIGTERM), showing progress, then drains it and returns the
// history.
func driveWorkload(progress io.Writer, cfg kafka.DriverConfig, recorder *history.Log, duration time.Duration) (workloadRun, error) {
	dir, err := os.MkdirTemp("", "sluice-workload")
	if err != nil {
		return workloadRun{}, err
	}
	defer os.RemoveAll(dir)
	node, err := osenv.NewNode(osenv.Options{Name: "workload", DataDir: dir, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		return workloadRun{}, err
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); node.Run(ctx) }()
	defer func() { stop(); wg.Wait() }()

	var driver *kafka.Driver
	node.Start(kafka.StartDriver(cfg, func(d *kafka.Driver) { driver = d }))
	signals, unnotify := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer unnotify()
	begin := time.Now()
	status := newStatusLine(progress)
	deadline := time.After(duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-deadline:
			running = false
		case <-signals.Done():
			running = false
		case <-tick.C:
			var s kafka.DriverStats
			node.Call(func() {
				if driver != nil {
					s = driver.Stats()
				}
			})
			status.show(fmt.Sprintf("%v: %d sent, %d ok, %d failed, %d unknown, %d records polled",
				time.Since(begin).Round(time.Second), s.Sent, s.OK, s.Failed, s.Unknown, s.Polled), false)
		}
	}
	status.done()
	var run workloadRun
	run.produced = time.Since(begin)
	done := make(chan kafka.DrainReport, 1)
	// One callback reads the counts and starts the drain, so that no send
	// slips in between and the counts match the history.
	node.Call(func() {
		if driver == nil {
			done <- kafka.DrainReport{Err: fmt.Errorf("the workload did not start")}
			return
		}
		run.stats = driver.Stats()
		driver.Drain(func(r kafka.DrainReport) { done <- r })
	})
	run.drain = <-done
	node.Call(func() { run.history = append(run.history, recorder.Ops...) })
	return run, nil
}

// ensureTopic creates the topic unless it exists.
func ensureTopic(bootstrap []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topic %s at %v: %w", topic, bootstrap, err)
	}
	if e := kerr.ErrorForCode(resp.Topics[0].ErrorCode); e != nil && e != kerr.TopicAlreadyExists {
		return fmt.Errorf("create topic %s: %w", topic, e)
	}
	return nil
}

// keptUpFraction is the share of the requested rate a run must reach for
// the summary not to say the client could not keep up.
const keptUpFraction = 0.95

// workloadSummary is what a run reached: its throughput and latencies.
type workloadSummary struct {
	RequestedRate  float64 `json:"requested_rate"`
	ProduceSeconds float64 `json:"produce_seconds"`
	// SendRate is the sends made per second of producing.
	SendRate float64 `json:"send_rate"`
	// AckRate is the acknowledged sends per second, from the first send
	// to the last acknowledgement.
	AckRate float64 `json:"ack_rate"`
	KeptUp  bool    `json:"kept_up"`
	Sent    int     `json:"sent"`
	// Skipped sends came due while --concurrency sends were unanswered.
	Skipped int `json:"skipped"`
	// Refused sends the producer's buffer had no room for.
	Refused int       `json:"refused"`
	Send    opSummary `json:"send"`
	Poll    opSummary `json:"poll"`
	Notes   []string  `json:"notes,omitempty"`
	latency *reports.Latencies
}

// opSummary is one operation kind's outcomes and ok latencies.
type opSummary struct {
	OK      int64   `json:"ok"`
	Fail    int64   `json:"fail"`
	Info    int64   `json:"info"`
	Pending int64   `json:"pending"`
	P50Ms   float64 `json:"p50_ms"`
	P90Ms   float64 `json:"p90_ms"`
	P99Ms   float64 `json:"p99_ms"`
	P999Ms  float64 `json:"p999_ms"`
	MaxMs   float64 `json:"max_ms"`
}

func newOpSummary(o reports.OpLatency) opSummary {
	p := o.Percentiles()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return opSummary{OK: o.OK, Fail: o.Fail, Info: o.Info, Pending: o.Pending,
		P50Ms: ms(p.P50), P90Ms: ms(p.P90), P99Ms: ms(p.P99), P999Ms: ms(p.P999), MaxMs: ms(p.Max)}
}

func summarize(rate float64, run workloadRun) workloadSummary {
	lat := reports.NewLatencies(run.history)
	s := workloadSummary{
		RequestedRate: rate, ProduceSeconds: run.produced.Seconds(),
		Sent: run.stats.Sent, Skipped: run.stats.Skipped, Refused: run.stats.Refused,
		Send: newOpSummary(lat.Send), Poll: newOpSummary(lat.Poll), latency: &lat,
	}
	if s.ProduceSeconds > 0 {
		s.SendRate = float64(s.Sent) / s.ProduceSeconds
	}
	if first, last, ok := ackSpan(run.history); ok && last > first {
		s.AckRate = float64(lat.Send.OK) / time.Duration(last-first).Seconds()
	}
	s.KeptUp = s.SendRate >= keptUpFraction*rate
	if !s.KeptUp {
		s.Notes = append(s.Notes, fmt.Sprintf("the client could not keep up: %.0f sends/s of %.0f requested "+
			"(%d sends skipped with --concurrency sends unanswered, %d refused by a full buffer)",
			s.SendRate, rate, s.Skipped, s.Refused))
	}
	return s
}

// ackSpan is the time from the first send's invoke to the last send's
// acknowledgement, on the history's clock.
func ackSpan(h history.History) (first, last int64, ok bool) {
	first = -1
	for _, op := range h {
		if op.F != history.Send {
			continue
		}
		if op.Type == history.Invoke && first < 0 {
			first = op.Time
		}
		if op.Type == history.OK {
			last, ok = op.Time, true
		}
	}
	return first, last, ok && first >= 0
}

// printWorkload writes the summary and the verdict (nil when not judged):
// tables and text for people, or one JSON object.
func printWorkload(out io.Writer, jsonOut bool, s workloadSummary, verdict *checkers.Report) error {
	if jsonOut {
		return json.NewEncoder(out).Encode(struct {
			Summary workloadSummary  `json:"summary"`
			Check   *checkers.Report `json:"check,omitempty"`
		}{s, verdict})
	}
	perSecond := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "/s" }
	header := []string{"rate requested", "send rate", "ack rate", "sends", "acked", "skipped", "refused", "seconds"}
	row := []string{
		perSecond(s.RequestedRate), perSecond(s.SendRate), perSecond(s.AckRate),
		strconv.Itoa(s.Sent), strconv.FormatInt(s.Send.OK, 10),
		strconv.Itoa(s.Skipped), strconv.Itoa(s.Refused), strconv.FormatFloat(s.ProduceSeconds, 'f', 1, 64),
	}
	if err := reports.WriteTable(out, header, [][]string{row}); err != nil {
		return err
	}
	if err := reports.WriteLatencyTable(out, *s.latency); err != nil {
		return err
	}
	for _, note := range s.Notes {
		fmt.Fprintln(out, note)
	}
	if verdict != nil {
		fmt.Fprint(out, verdict.Text())
	}
	return nil
}
