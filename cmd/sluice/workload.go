package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
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

Exit status: 0 when the history is valid, 1 when it is not, 2 on bad usage
or when the broker cannot be reached.`,
		Example: `  sluice broker --data ./data --listen 127.0.0.1:9092 &
  sluice workload --bootstrap 127.0.0.1:9092 --topic checked --partitions 3 --duration 30s --history h.jsonl
  sluice check h.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorkload(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bootstrap, "bootstrap", "127.0.0.1:9092", "broker addresses, comma-separated")
	fl.StringVar(&f.topic, "topic", "sluice-workload", "topic to write and read (created if missing)")
	fl.Int32Var(&f.partitions, "partitions", 3, "partitions of the topic")
	fl.Float64Var(&f.rate, "rate", 1000, "sends per second")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to produce")
	fl.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "bound on the final drain")
	fl.StringVar(&f.acks, "acks", "all", "producer acks: all, 1 or 0")
	fl.BoolVar(&f.idempotence, "idempotence", true, "idempotent producer (needs acks=all)")
	fl.StringVar(&f.historyFile, "history", "", "write the history (JSON lines) to this file")
	fl.BoolVar(&f.check, "check", true, "judge the history when done")
	fl.BoolVar(&f.jsonOut, "json", false, "print the checkers' report as JSON")
	return cmd
}

func runWorkload(cmd *cobra.Command, f workloadFlags) error {
	pc := kafka.ProducerConfig{Linger: 5 * time.Millisecond, DisableIdempotence: !f.idempotence, AllowAutoTopicCreation: true}
	switch f.acks {
	case "all", "-1":
	case "1":
		pc.Acks = kafka.AcksLeader
	case "0":
		pc.Acks = kafka.AcksNone
	default:
		return usageError("--acks %q: want all, 1 or 0", f.acks)
	}
	if f.partitions < 1 {
		return usageError("--partitions must be at least 1")
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
		Bootstrap: bootstrap, Topic: f.topic, Partitions: partitions, Rate: f.rate, Concurrency: 100,
		DrainTimeout: f.drain, Reread: true, Recorder: recorder, Producer: pc,
		Consumer: kafka.ConsumerConfig{FetchMaxWait: 100 * time.Millisecond},
	}
	h, report, err := driveWorkload(cmd.ErrOrStderr(), cfg, recorder, f.duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "drain: caught up %v, %d sends unsettled\n", report.CaughtUp, report.Unsettled)
	if f.historyFile != "" {
		if err := writeHistory(f.historyFile, h); err != nil {
			return err
		}
	}
	if !f.check {
		return nil
	}
	verdict := checkers.Check(h, checkers.DefaultOptions())
	out := cmd.OutOrStdout()
	if f.jsonOut {
		if err := json.NewEncoder(out).Encode(verdict); err != nil {
			return err
		}
	} else {
		fmt.Fprint(out, verdict.Text())
	}
	if !verdict.Valid || verdict.Unknown || !report.CaughtUp {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("workload history is not valid")}
	}
	return nil
}

// driveWorkload runs the driver on a real node for duration (or until
// SIGINT/SIGTERM), showing progress, then drains it and returns the
// history.
func driveWorkload(progress io.Writer, cfg kafka.DriverConfig, recorder *history.Log, duration time.Duration) (history.History, kafka.DrainReport, error) {
	dir, err := os.MkdirTemp("", "sluice-workload")
	if err != nil {
		return nil, kafka.DrainReport{}, err
	}
	defer os.RemoveAll(dir)
	node, err := osenv.NewNode(osenv.Options{Name: "workload", DataDir: dir, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, kafka.DrainReport{}, err
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
			fmt.Fprintf(progress, "\r%v: %d sent, %d ok, %d failed, %d unknown, %d records polled",
				time.Since(begin).Round(time.Second), s.Sent, s.OK, s.Failed, s.Unknown, s.Polled)
		}
	}
	fmt.Fprintln(progress)
	done := make(chan kafka.DrainReport, 1)
	node.Call(func() {
		if driver == nil {
			done <- kafka.DrainReport{Err: fmt.Errorf("the workload did not start")}
			return
		}
		driver.Drain(func(r kafka.DrainReport) { done <- r })
	})
	report := <-done
	var h history.History
	node.Call(func() { h = append(h, recorder.Ops...) })
	return h, report, nil
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
