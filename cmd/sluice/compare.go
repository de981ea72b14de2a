package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The phases every Kafka-speaking system runs, in order, with the same
// franz-go client and record sizes.
const (
	phaseProduceAcks1      = "produce-100B-acks1"
	phaseProduceIdempotent = "produce-100B-idempotent"
	phaseConsume           = "consume-100B"
	phaseProduceLarge      = "produce-100KiB"
)

// comparePhase is one line of work measured on every system that can do it.
type comparePhase struct {
	name  string
	title string
}

var comparePhases = []comparePhase{
	{phaseProduceAcks1, "produce 100 B, acks=1"},
	{phaseProduceIdempotent, "produce 100 B, acks=all, idempotent"},
	{phaseConsume, "consume 100 B"},
	{phaseProduceLarge, "produce 100 KiB, acks=all"},
}

// Record sizes: Kafka's perf tests' usual small record, and a large one
// that makes the disk, not the request rate, the limit.
const (
	compareSmallRecordBytes = 100
	compareLargeRecordBytes = 100 << 10
)

// compareLingerMs is the producers' linger.ms: Kafka's default since
// Kafka 4, and what sluice bench's example passes.
const compareLingerMs = 5

// compareConsumeBatchBytes is the batch size of the topic the consume phase
// reads: Kafka's default batch.size, the batches a perf-test producer
// writes, as BenchmarkConsume reads them.
const compareConsumeBatchBytes = 16 << 10

// compareConsumeTopic is the topic filled, untimed, for the consume phase.
const compareConsumeTopic = "consume-100B"

// Every Kafka-speaking server first takes an untimed tenth of --records.
const (
	compareWarmUpTopic = "warm-up"
	compareWarmUpShare = 10
)

// Limits on the flags, so that a typo fails instead of running for a day.
const (
	compareRoundsMax  = 100
	compareRecordsMax = 100_000_000
)

// compareMeasureTimeout bounds one measurement: a system that stops
// answering fails the comparison instead of hanging it.
const compareMeasureTimeout = 3 * time.Minute

// compareReadyTimeout bounds how long a started server may take to listen.
const compareReadyTimeout = 15 * time.Second

// Redis's load: redis-benchmark's clients, each with this many XADDs
// pipelined: 1,024 in flight in all, deep enough that the server, not the
// round trip, sets the rate.
const (
	redisBenchClients  = 16
	redisBenchPipeline = 64
)

// compareSystem is sluice or a peer: how to measure it in one round.
type compareSystem struct {
	name  string // in JSON and --skip
	title string // in the table and the chart
	skip  string // the --skip word that leaves it out
	// tools are the programs it needs, each with its Debian package.
	tools []compareTool
	run   func(ctx context.Context, c *comparer) (map[string]compareSample, error)
}

type compareTool struct {
	program string
	pkg     string
}

// The reference systems: every ratio is sluice's rate over a peer's.
const (
	systemSluiceGroup = "sluice-group"
	systemSluiceNone  = "sluice-none"
)

func compareSystems() []compareSystem {
	redisTools := []compareTool{{"redis-server", "redis-server"}, {"redis-benchmark", "redis-tools"}}
	return []compareSystem{
		{name: systemSluiceGroup, title: "sluice --flush group",
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runKafka(ctx, c.startSluice("group"), true)
			}},
		{name: systemSluiceNone, title: "sluice --flush none", skip: "sluice-none",
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runKafka(ctx, c.startSluice("none"), true)
			}},
		{name: "kfake", title: "kfake (memory)", skip: "kfake",
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runKafka(ctx, c.startKfake(false, false), true)
			}},
		{name: "kfake-disk", title: "kfake (data dir)", skip: "kfake-disk",
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runKafka(ctx, c.startKfake(true, false), true)
			}},
		{name: "kfake-sync", title: "kfake (data dir, synced writes)", skip: "kfake-sync",
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				// Synced writes change kfake's writes, not its reads (those
				// are kfake's with a data directory), and filling its
				// consume topic would take most of a round.
				return c.runKafka(ctx, c.startKfake(true, true), false)
			}},
		{name: "redis-everysec", title: "Redis Streams (AOF everysec)", skip: "redis", tools: redisTools,
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runRedis(ctx, "everysec")
			}},
		{name: "redis-always", title: "Redis Streams (AOF always)", skip: "redis", tools: redisTools,
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runRedis(ctx, "always")
			}},
		{name: "fio", title: "fio (1 MiB writes, fsync each)", skip: "fio", tools: []compareTool{{"fio", "fio"}},
			run: func(ctx context.Context, c *comparer) (map[string]compareSample, error) {
				return c.runFio(ctx)
			}},
	}
}

// compareSkipWords are what --skip accepts.
func compareSkipWords() []string {
	var words []string
	for _, s := range compareSystems() {
		if s.skip != "" && !slices.Contains(words, s.skip) {
			words = append(words, s.skip)
		}
	}
	return words
}

type compareFlags struct {
	rounds       int
	records      int64
	largeRecords int64
	batchBytes   int
	out          string
	jsonOut      bool
	skip         []string
}

func newCompareCommand() *cobra.Command {
	f := compareFlags{rounds: 5, records: 1_000_000, largeRecords: 4_000, out: "compare-out"}
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Measure sluice side by side with kfake, Redis Streams and fio on this machine",
		Long: `Run sluice's broker and its peers on this machine, one after another, in
alternating rounds, and report each one's median rate and sluice's ratio
to it. Every Kafka-speaking system is its own process, started fresh each
round on a new temporary directory, and measured with the same franz-go
client (sluice bench's producer and consumer) in four phases:

  produce 100 B, acks=1                --records records, linger.ms 5
  produce 100 B, acks=all, idempotent  --records records, linger.ms 5
  consume 100 B                        --records records, written untimed
                                       in 16 KiB batches (Kafka's batch.size)
  produce 100 KiB, acks=all            --large-records records, linger.ms 5

The producers batch up to franz-go's default of about 1 MB, or
--batch-bytes (16384 is the Java client's default). Each server first
takes an untimed tenth of --records, so that no phase times a cold start.

The systems: sluice with --flush group (fsync before acknowledging, group
commit: the reference of every ratio) and --flush none; franz-go's kfake in
memory, with a data directory, and with a data directory and synced writes
(an fsync per batch; its reads are those of the data directory, so it
skips the consume phase); Redis Streams from Debian's redis-server with AOF
appendfsync everysec and always, loaded by redis-benchmark with 100-byte
XADDs (16 clients, 64 pipelined each) (produce 100 B, acks=1 only); and fio writing the 100 KiB
phase's bytes sequentially in 1 MiB writes with an fsync after each
(produce 100 KiB only).

Ratios are sluice's median bytes a second over the peer's: above 1, sluice
is faster. --out gets compare.txt (the table), compare.json, and the ratios
as a bar chart, ratios.png and ratios.svg. --json prints the JSON instead of
the table. A system whose program is missing stops the run before it
starts, naming the Debian package; --skip leaves systems out.`,
		Example: `  make compare                        # installs redis-server, redis-tools and fio, then runs this
  sluice compare --rounds 5 --out compare-out
  sluice compare --skip redis,fio --records 200000 --large-records 500 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			systems, err := f.check()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCompare(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f, systems)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.rounds, "rounds", f.rounds, "rounds: each measures every system once, in a rotated order")
	fl.Int64Var(&f.records, "records", f.records, "100-byte records each small-record phase produces and consumes")
	fl.Int64Var(&f.largeRecords, "large-records", f.largeRecords, "100 KiB records the large-record phase produces")
	fl.IntVar(&f.batchBytes, "batch-bytes", 0, "the producers' batch.size; 0 keeps franz-go's default (1,000,012 bytes)")
	fl.StringVar(&f.out, "out", f.out, "directory for compare.txt, compare.json, ratios.png and ratios.svg")
	fl.BoolVar(&f.jsonOut, "json", false, "print the results as JSON instead of the table")
	fl.StringSliceVar(&f.skip, "skip", nil, "systems to leave out: "+strings.Join(compareSkipWords(), ", "))
	cmd.AddCommand(newCompareKfakeCommand())
	return cmd
}

// check validates the flags and returns the systems to run, or a usage
// error naming every missing program and its Debian package.
func (f compareFlags) check() ([]compareSystem, error) {
	switch {
	case f.rounds < 1 || f.rounds > compareRoundsMax:
		return nil, usageError("--rounds %d: want 1 to %d", f.rounds, compareRoundsMax)
	case f.records < 1 || f.records > compareRecordsMax:
		return nil, usageError("--records %d: want 1 to %d", f.records, compareRecordsMax)
	case f.largeRecords < 1 || f.largeRecords > compareRecordsMax/100:
		return nil, usageError("--large-records %d: want 1 to %d", f.largeRecords, compareRecordsMax/100)
	case f.batchBytes < 0 || f.batchBytes > benchRecordBytesMax:
		return nil, usageError("--batch-bytes %d: want 0 (the client's default) to %d", f.batchBytes, benchRecordBytesMax)
	case f.out == "":
		return nil, usageError("--out: want a directory")
	}
	words := compareSkipWords()
	for _, s := range f.skip {
		if !slices.Contains(words, s) {
			return nil, usageError("--skip %q: not a system (known: %s)", s, strings.Join(words, ", "))
		}
	}
	var systems []compareSystem
	var missing []string
	for _, s := range compareSystems() {
		if slices.Contains(f.skip, s.skip) {
			continue
		}
		for _, t := range s.tools {
			if _, err := exec.LookPath(t.program); err != nil {
				msg := fmt.Sprintf("%s is not installed (Debian package %s: sudo apt-get install -y %s); install it, or leave it out with --skip %s",
					t.program, t.pkg, t.pkg, s.skip)
				if !slices.Contains(missing, msg) { // both Redis systems need the same programs
					missing = append(missing, msg)
				}
			}
		}
		systems = append(systems, s)
	}
	if len(missing) > 0 {
		return nil, usageError("%s", strings.Join(missing, "\n"))
	}
	return systems, nil
}

// compareSample is one measurement: a system's rate in one phase.
type compareSample struct {
	recordsPerSec float64
	bytesPerSec   float64
}

// comparer runs the measurements of one comparison.
type comparer struct {
	flags    compareFlags
	binary   string // this program, to start brokers and kfake as processes
	progress io.Writer
	round    int
	system   string
}

func runCompare(ctx context.Context, out, errOut io.Writer, f compareFlags, systems []compareSystem) error {
	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start brokers with: %w", err)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("create --out %s: %w", f.out, err)
	}
	c := &comparer{flags: f, binary: binary, progress: errOut}
	result := newCompareResult(f, systems)
	begin := time.Now()
	samples := map[string]map[string][]compareSample{} // system, phase
	for round := range f.rounds {
		c.round = round + 1
		// Rotating the order each round keeps any system from always
		// running first, on a cooler machine, or last.
		for i := range systems {
			s := systems[(i+round)%len(systems)]
			c.system = s.title
			got, err := s.run(ctx, c)
			if err != nil {
				return benchFailed(errOut, fmt.Errorf("round %d, %s: %w", c.round, s.title, err))
			}
			if samples[s.name] == nil {
				samples[s.name] = map[string][]compareSample{}
			}
			for phase, sample := range got {
				samples[s.name][phase] = append(samples[s.name][phase], sample)
			}
		}
	}
	result.ElapsedSec = time.Since(begin).Seconds()
	result.fill(systems, samples)
	return writeCompare(out, f, result)
}

// logSample prints one measurement as it is made: a comparison takes
// minutes.
func (c *comparer) logSample(phase string, s compareSample) {
	title := phase
	for _, p := range comparePhases {
		if p.name == phase {
			title = p.title
		}
	}
	records := "—"
	if s.recordsPerSec > 0 {
		records = formatCount(s.recordsPerSec)
	}
	fmt.Fprintf(c.progress, "round %d/%d  %-32s %-42s %12s records/s %9.1f MB/s\n", c.round, c.flags.rounds,
		c.system, title, records, s.bytesPerSec/(1<<20))
}

// kafkaServer starts a Kafka-speaking server on a fresh directory and
// returns its address and how to stop it.
type kafkaServer func(ctx context.Context, dir string) (addr string, stop func(), err error)

func (c *comparer) startSluice(flush string) kafkaServer {
	return func(ctx context.Context, dir string) (string, func(), error) {
		return c.startServer(ctx, dir, func(addr string) []string {
			return []string{"broker", "--data", filepath.Join(dir, "data"), "--listen", addr, "--flush", flush}
		})
	}
}

func (c *comparer) startKfake(dataDir, syncWrites bool) kafkaServer {
	return func(ctx context.Context, dir string) (string, func(), error) {
		return c.startServer(ctx, dir, func(addr string) []string {
			args := []string{"compare", "kfake", "--listen", addr}
			if dataDir {
				args = append(args, "--data", filepath.Join(dir, "data"))
			}
			if syncWrites {
				args = append(args, "--sync-writes")
			}
			return args
		})
	}
}

// startServer runs this program with the arguments for a free loopback
// address and waits until it listens.
func (c *comparer) startServer(ctx context.Context, dir string, args func(addr string) []string) (string, func(), error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return "", nil, err
	}
	p, err := startCompareProcess(ctx, dir, c.binary, args(addr)...)
	if err != nil {
		return "", nil, err
	}
	if err := p.waitListening(addr); err != nil {
		p.stop()
		return "", nil, err
	}
	return addr, p.stop, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// compareProcess is a server the comparison started; its output goes to
// a log file that errors quote.
type compareProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

func startCompareProcess(ctx context.Context, dir, program string, args ...string) (*compareProcess, error) {
	logPath := filepath.Join(dir, filepath.Base(program)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the comparison, however the comparison ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", program, err)
	}
	p := &compareProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *compareProcess) waitListening(addr string) error {
	deadline := time.Now().Add(compareReadyTimeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening (%v):\n%s", p.cmd, p.waitErr, p.logTail())
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s:\n%s", p.cmd, addr, compareReadyTimeout, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server: its data is thrown away with its directory.
func (p *compareProcess) stop() {
	p.cmd.Process.Kill()
	<-p.exited
}

func (p *compareProcess) logTail() string {
	if tail := logTail(p.logPath); tail != "" {
		return tail
	}
	return "(no log)"
}

// runKafka starts a Kafka-speaking server and runs the phases on it: all
// four, or the three produce phases when consume is false.
func (c *comparer) runKafka(ctx context.Context, start kafkaServer, consume bool) (map[string]compareSample, error) {
	dir, err := os.MkdirTemp("", "sluice-compare-")
	if err != nil {
		return nil, fmt.Errorf("create a directory for the server: %w", err)
	}
	defer os.RemoveAll(dir)
	addr, stop, err := start(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := createCompareTopics(ctx, addr); err != nil {
		return nil, err
	}
	// A fresh process grows its heap and buffers on its first requests;
	// an untimed warm-up keeps that out of the first phase.
	warmUp := max(c.flags.records/compareWarmUpShare, 1)
	if _, err := compareProduce(ctx, addr, compareWarmUpTopic, warmUp, compareSmallRecordBytes, c.flags.batchBytes, false); err != nil {
		return nil, fmt.Errorf("warm up: %w", err)
	}
	got := map[string]compareSample{}
	small, large, batch := c.flags.records, c.flags.largeRecords, c.flags.batchBytes
	steps := []struct {
		phase string
		run   func() (compareSample, error)
	}{
		{phaseProduceAcks1, func() (compareSample, error) {
			return compareProduce(ctx, addr, phaseProduceAcks1, small, compareSmallRecordBytes, batch, false)
		}},
		{phaseProduceIdempotent, func() (compareSample, error) {
			return compareProduce(ctx, addr, phaseProduceIdempotent, small, compareSmallRecordBytes, batch, true)
		}},
		{phaseConsume, func() (compareSample, error) {
			// The fill is not timed: only the consumer is.
			_, err := compareProduce(ctx, addr, compareConsumeTopic, small, compareSmallRecordBytes, compareConsumeBatchBytes, false)
			if err != nil {
				return compareSample{}, fmt.Errorf("fill %s: %w", compareConsumeTopic, err)
			}
			return compareConsume(ctx, addr, compareConsumeTopic, small)
		}},
		{phaseProduceLarge, func() (compareSample, error) {
			return compareProduce(ctx, addr, phaseProduceLarge, large, compareLargeRecordBytes, batch, true)
		}},
	}
	for _, step := range steps {
		if step.phase == phaseConsume && !consume {
			continue
		}
		s, err := step.run()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", step.phase, err)
		}
		got[step.phase] = s
		c.logSample(step.phase, s)
	}
	return got, nil
}

// createCompareTopics creates each phase's topic with one partition before
// any clock starts, so that no phase times a topic's creation.
func createCompareTopics(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	for _, name := range []string{compareWarmUpTopic, phaseProduceAcks1, phaseProduceIdempotent, compareConsumeTopic, phaseProduceLarge} {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, t)
	}
	ctx, cancel := context.WithTimeout(ctx, compareReadyTimeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics on %s: %w", addr, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s on %s: %w", t.Topic, addr, err)
		}
	}
	return nil
}

// compareProduce runs sluice bench produce's code on one phase's topic;
// batchBytes 0 keeps the client's default batch size.
func compareProduce(ctx context.Context, addr, topic string, records int64, recordBytes, batchBytes int, idempotent bool) (compareSample, error) {
	props := []string{"bootstrap.servers=" + addr, "acks=1", "enable.idempotence=false"}
	if idempotent {
		props = []string{"bootstrap.servers=" + addr, "acks=all", "enable.idempotence=true"}
	}
	props = append(props, "linger.ms="+strconv.Itoa(compareLingerMs))
	if batchBytes > 0 {
		props = append(props, "batch.size="+strconv.Itoa(batchBytes))
	}
	f := benchProduceFlags{topic: topic, numRecords: records, recordSize: recordBytes, throughput: -1,
		props: props, reportIntervalMs: int64(compareMeasureTimeout / time.Millisecond), jsonOut: true}
	opts, err := f.clientOptions()
	if err != nil {
		return compareSample{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, compareMeasureTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := runBenchProduce(ctx, &out, &errOut, f, opts); err != nil {
		return compareSample{}, fmt.Errorf("%v %s", err, strings.TrimSpace(errOut.String()))
	}
	var r produceResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return compareSample{}, fmt.Errorf("read the producer's result: %w", err)
	}
	return compareSample{recordsPerSec: r.RecordsPerSec, bytesPerSec: r.MBPerSec * (1 << 20)}, nil
}

// compareConsume runs sluice bench consume's code over a topic.
func compareConsume(ctx context.Context, addr, topic string, records int64) (compareSample, error) {
	f := benchConsumeFlags{bootstrap: addr, topic: topic, messages: records, timeoutMs: 10_000, jsonOut: true}
	ctx, cancel := context.WithTimeout(ctx, compareMeasureTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := runBenchConsume(ctx, &out, &errOut, f); err != nil {
		return compareSample{}, fmt.Errorf("%v %s", err, strings.TrimSpace(errOut.String()))
	}
	var r consumeResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return compareSample{}, fmt.Errorf("read the consumer's result: %w", err)
	}
	return compareSample{recordsPerSec: r.MessagesPerSec, bytesPerSec: r.MBPerSec * (1 << 20)}, nil
}

// runRedis starts redis-server with an append-only file synced as
// appendfsync says and loads it with pipelined 100-byte XADDs.
func (c *comparer) runRedis(ctx context.Context, appendfsync string) (map[string]compareSample, error) {
	dir, err := os.MkdirTemp("", "sluice-compare-redis-")
	if err != nil {
		return nil, fmt.Errorf("create a directory for redis-server: %w", err)
	}
	defer os.RemoveAll(dir)
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := startCompareProcess(ctx, dir, "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", appendfsync, "--daemonize", "no")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := p.waitListening(addr); err != nil {
		return nil, err
	}
	s, err := c.redisBenchmark(ctx, port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", phaseProduceAcks1, err)
	}
	c.logSample(phaseProduceAcks1, s)
	return map[string]compareSample{phaseProduceAcks1: s}, nil
}

func (c *comparer) redisBenchmark(ctx context.Context, port string) (compareSample, error) {
	value := strings.Repeat("A", compareSmallRecordBytes)
	ctx, cancel := context.WithTimeout(ctx, compareMeasureTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", port,
		"-c", strconv.Itoa(redisBenchClients), "-P", strconv.Itoa(redisBenchPipeline),
		"-n", strconv.FormatInt(c.flags.records, 10), "--csv", "XADD", "compare", "*", "v", value)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return compareSample{}, fmt.Errorf("redis-benchmark: %v\n%s%s", err, out.String(), errOut.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[len(rows)-1]) < 2 {
		return compareSample{}, fmt.Errorf("redis-benchmark printed no rate (%v):\n%s", err, out.String())
	}
	rps, err := strconv.ParseFloat(rows[len(rows)-1][1], 64)
	if err != nil || rps <= 0 {
		return compareSample{}, fmt.Errorf("redis-benchmark's rate %q: not a rate", rows[len(rows)-1][1])
	}
	return compareSample{recordsPerSec: rps, bytesPerSec: rps * compareSmallRecordBytes}, nil
}

// runFio writes the large-record phase's bytes, rounded up to MiB, in
// sequential 1 MiB writes with an fsync after each: what the disk gives a
// writer that makes every MiB durable before the next.
func (c *comparer) runFio(ctx context.Context) (map[string]compareSample, error) {
	dir, err := os.MkdirTemp("", "sluice-compare-fio-")
	if err != nil {
		return nil, fmt.Errorf("create a directory for fio: %w", err)
	}
	defer os.RemoveAll(dir)
	mib := (c.flags.largeRecords*compareLargeRecordBytes + (1<<20 - 1)) >> 20
	ctx, cancel := context.WithTimeout(ctx, compareMeasureTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fio", "--name=compare", "--directory="+dir, "--rw=write", "--bs=1M",
		"--fsync=1", "--ioengine=psync", fmt.Sprintf("--size=%dM", mib), "--output-format=json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fio: %v\n%s", err, errOut.String())
	}
	var r struct {
		Jobs []struct {
			Write struct {
				BwBytes float64 `json:"bw_bytes"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || len(r.Jobs) == 0 || r.Jobs[0].Write.BwBytes <= 0 {
		return nil, fmt.Errorf("fio printed no write rate (%v):\n%s", err, out.String())
	}
	s := compareSample{bytesPerSec: r.Jobs[0].Write.BwBytes}
	c.logSample(phaseProduceLarge, s)
	return map[string]compareSample{phaseProduceLarge: s}, nil
}

// compareResult is what --json prints and compare.json holds.
type compareResult struct {
	Rounds           int          `json:"rounds"`
	Records          int64        `json:"records"`
	RecordBytes      int          `json:"record_bytes"`
	LargeRecords     int64        `json:"large_records"`
	LargeRecordBytes int          `json:"large_record_bytes"`
	BatchBytes       int          `json:"batch_bytes"` // 0: the client's default
	LingerMs         int          `json:"linger_ms"`
	ConsumeBatchSize int          `json:"consume_batch_bytes"`
	CPUs             int          `json:"cpus"`
	LoadAverage      string       `json:"load_average"`
	ElapsedSec       float64      `json:"elapsed_sec"`
	Skipped          []string     `json:"skipped"`
	Rows             []compareRow `json:"rows"`
}

// compareRow is one system in one phase. Ratios are sluice's median bytes
// a second (--flush group, --flush none) over this row's.
type compareRow struct {
	Phase               string    `json:"phase"`
	PhaseTitle          string    `json:"phase_title"`
	System              string    `json:"system"`
	SystemTitle         string    `json:"system_title"`
	RecordsPerSecMedian float64   `json:"records_per_sec_median,omitempty"`
	MBPerSecMedian      float64   `json:"mb_per_sec_median"`
	MBPerSecRounds      []float64 `json:"mb_per_sec_rounds"`
	RatioGroup          float64   `json:"sluice_group_ratio"`
	RatioNone           float64   `json:"sluice_none_ratio,omitempty"`
}

func newCompareResult(f compareFlags, systems []compareSystem) compareResult {
	r := compareResult{Rounds: f.rounds, Records: f.records, RecordBytes: compareSmallRecordBytes,
		LargeRecords: f.largeRecords, LargeRecordBytes: compareLargeRecordBytes, BatchBytes: f.batchBytes,
		LingerMs: compareLingerMs, ConsumeBatchSize: compareConsumeBatchBytes, CPUs: runtime.NumCPU(),
		LoadAverage: loadAverage(), Skipped: []string{}}
	for _, s := range compareSystems() {
		if !slices.ContainsFunc(systems, func(t compareSystem) bool { return t.name == s.name }) {
			r.Skipped = append(r.Skipped, s.name)
		}
	}
	return r
}

// loadAverage is the machine's load when the comparison starts: on a
// shared machine, what else ran shapes the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(b))
	return strings.Join(fields[:min(3, len(fields))], " ")
}

// fill turns the samples into rows: medians per system and phase, in phase
// then system order, and the ratios.
func (r *compareResult) fill(systems []compareSystem, samples map[string]map[string][]compareSample) {
	for _, phase := range comparePhases {
		medianOf := func(system string) float64 {
			return median(bytesRates(samples[system][phase.name]))
		}
		group, none := medianOf(systemSluiceGroup), medianOf(systemSluiceNone)
		for _, s := range systems {
			got := samples[s.name][phase.name]
			if len(got) == 0 {
				continue
			}
			row := compareRow{Phase: phase.name, PhaseTitle: phase.title, System: s.name, SystemTitle: s.title,
				MBPerSecMedian: median(bytesRates(got)) / (1 << 20)}
			for _, g := range got {
				row.MBPerSecRounds = append(row.MBPerSecRounds, g.bytesPerSec/(1<<20))
			}
			row.RecordsPerSecMedian = median(recordRates(got))
			bytesMedian := median(bytesRates(got))
			row.RatioGroup = group / bytesMedian
			if none > 0 {
				row.RatioNone = none / bytesMedian
			}
			r.Rows = append(r.Rows, row)
		}
	}
}

func bytesRates(samples []compareSample) []float64 {
	var v []float64
	for _, s := range samples {
		v = append(v, s.bytesPerSec)
	}
	return v
}

func recordRates(samples []compareSample) []float64 {
	var v []float64
	for _, s := range samples {
		v = append(v, s.recordsPerSec)
	}
	return v
}

// median is the middle value, or the mean of the middle two; 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeCompare writes the table, the JSON and the chart to --out and
// prints the table (or, with --json, the JSON).
func writeCompare(out io.Writer, f compareFlags, r compareResult) error {
	var table bytes.Buffer
	if err := writeCompareTable(&table, r); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the results: %w", err)
	}
	js = append(js, '\n')
	for _, file := range []struct {
		name string
		data []byte
	}{{"compare.txt", table.Bytes()}, {"compare.json", js}} {
		path := filepath.Join(f.out, file.name)
		if err := os.WriteFile(path, file.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := writeCompareChart(f.out, r); err != nil {
		return err
	}
	if f.jsonOut {
		_, err = out.Write(js)
	} else {
		_, err = out.Write(table.Bytes())
	}
	return err
}

func writeCompareTable(w io.Writer, r compareResult) error {
	header := []string{"PHASE", "SYSTEM", "RECORDS/S", "MB/S", "MB/S EACH ROUND", "SLUICE GROUP ÷", "SLUICE NONE ÷"}
	var rows [][]string
	for _, row := range r.Rows {
		records := "—"
		if row.RecordsPerSecMedian > 0 {
			records = formatCount(row.RecordsPerSecMedian)
		}
		var rounds []string
		for _, v := range row.MBPerSecRounds {
			rounds = append(rounds, strconv.FormatFloat(v, 'f', 1, 64))
		}
		rows = append(rows, []string{row.PhaseTitle, row.SystemTitle, records,
			strconv.FormatFloat(row.MBPerSecMedian, 'f', 1, 64), strings.Join(rounds, " "),
			formatRatio(row.RatioGroup), formatRatio(row.RatioNone)})
	}
	batch := "franz-go's default"
	if r.BatchBytes > 0 {
		batch = strconv.Itoa(r.BatchBytes) + " B"
	}
	fmt.Fprintf(w, "sluice compare: medians of %d round(s); %d × %d B and %d × %d KiB records; batch.size %s, linger.ms %d; %d CPUs, load average %s at the start; %.0f s\n",
		r.Rounds, r.Records, r.RecordBytes, r.LargeRecords, r.LargeRecordBytes>>10, batch, r.LingerMs, r.CPUs, r.LoadAverage, r.ElapsedSec)
	// Headers are written as they should read (auto-formatting would
	// print "RECORDS / S"); numbers are right-aligned.
	align := tw.MakeAlign(len(header), tw.AlignRight).Set(0, tw.AlignLeft).Set(1, tw.AlignLeft)
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("comparison table: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("comparison table: %w", err)
	}
	fmt.Fprintln(w, "ratios: sluice's median bytes/s over the row's (above 1: sluice is faster); MB = 2^20 bytes")
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(r.Skipped, ", "))
	}
	return nil
}

func formatRatio(v float64) string {
	if v <= 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

// formatCount prints a rate with thousands separators: 1,234,567.
func formatCount(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// Chart geometry: a row of two bars per phase and peer, the legend in a
// strip under the plot.
const (
	compareChartWidth        = 9 * vg.Inch
	compareChartRowHeight    = 0.42 * vg.Inch
	compareChartBase         = 1.5 * vg.Inch
	compareChartLegendHeight = 0.45 * vg.Inch
	compareChartDPI          = 120
	// compareChartMargin keeps labels off the image's edges.
	compareChartMargin = vg.Length(8)
)

// writeCompareChart draws sluice's ratios to every other row as horizontal
// bars, one row per phase and peer, with a dashed line at 1, as PNG and SVG.
func writeCompareChart(dir string, r compareResult) error {
	p, legend, rows, err := compareChart(r)
	if err != nil || rows == 0 {
		return err // no rows: sluice alone, no ratio to draw
	}
	height := compareChartBase + compareChartRowHeight*vg.Length(rows)
	png := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(compareChartWidth, height), vgimg.UseDPI(compareChartDPI))}
	svg := vgsvg.New(compareChartWidth, height)
	for _, out := range []struct {
		name   string
		canvas vg.CanvasWriterTo
	}{{"ratios.png", png}, {"ratios.svg", svg}} {
		m := compareChartMargin // in points
		dc := draw.Crop(draw.New(out.canvas), m, -m, m, -m)
		p.Draw(draw.Crop(dc, 0, 0, compareChartLegendHeight, 0))
		legend.Draw(draw.Crop(dc, 0, 0, 0, compareChartLegendHeight-(height-2*m)))
		path := filepath.Join(dir, out.name)
		if err := writeCanvas(path, out.canvas); err != nil {
			return err
		}
	}
	return nil
}

// compareChart builds the ratio plot, its legend and its row count.
func compareChart(r compareResult) (*plot.Plot, plot.Legend, int, error) {
	var labels []string
	var group, none plotter.Values
	top := 1.0
	for _, row := range r.Rows {
		if row.System == systemSluiceGroup {
			continue
		}
		ratioNone := row.RatioNone
		if row.System == systemSluiceNone {
			ratioNone = 0 // itself
		}
		labels = append(labels, row.PhaseTitle+" · "+row.SystemTitle)
		group = append(group, row.RatioGroup)
		none = append(none, ratioNone)
		top = max(top, row.RatioGroup, ratioNone)
	}
	legend := plot.NewLegend()
	if len(labels) == 0 {
		return nil, legend, 0, nil
	}
	// Bars are drawn bottom up; reversing keeps the table's order top down.
	slices.Reverse(labels)
	slices.Reverse(group)
	slices.Reverse(none)
	p := plot.New()
	p.Title.Text = "sluice ÷ peer, median bytes/s (above 1: sluice is faster)"
	p.X.Label.Text = "ratio"
	p.X.Min, p.X.Max = 0, top*1.05
	barWidth := compareChartRowHeight * 0.4
	for i, series := range []struct {
		name   string
		values plotter.Values
	}{{"sluice --flush group ÷ peer", group}, {"sluice --flush none ÷ peer", none}} {
		bars, err := plotter.NewBarChart(series.values, barWidth)
		if err != nil {
			return nil, legend, 0, fmt.Errorf("ratio chart: %w", err)
		}
		bars.Horizontal = true
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(1-2*i) * barWidth / 2
		p.Add(bars)
		legend.Add(series.name, bars)
	}
	one, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(labels)) - 0.5}})
	if err != nil {
		return nil, legend, 0, fmt.Errorf("ratio chart: %w", err)
	}
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	p.NominalY(labels...)
	legend.Left = false
	return p, legend, len(labels), nil
}

func writeCanvas(path string, canvas vg.CanvasWriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// newCompareKfakeCommand serves franz-go's kfake as a process of its own,
// so that it is measured as the sluice broker is: apart from the client's
// garbage collector.
func newCompareKfakeCommand() *cobra.Command {
	var listen, dataDir string
	var syncWrites bool
	cmd := &cobra.Command{
		Use:   "kfake --listen 127.0.0.1:PORT [--data DIR [--sync-writes]]",
		Short: "Serve franz-go's in-memory Kafka (kfake) on one port, as compare runs it",
		Long: `Serve franz-go's kfake, one broker, until interrupted. It creates topics on
first use with one partition. --data persists its state to a directory
(kfake.DataDir) and --sync-writes fsyncs every batch (kfake.SyncWrites).`,
		Example: `  sluice compare kfake --listen 127.0.0.1:9092 --data /tmp/kfake --sync-writes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, portText, err := net.SplitHostPort(listen)
			port, perr := strconv.Atoi(portText)
			if err != nil || perr != nil || port <= 0 || port > 65535 {
				return usageError("--listen %q: want 127.0.0.1:PORT", listen)
			}
			if syncWrites && dataDir == "" {
				return usageError("--sync-writes needs --data")
			}
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}
			if dataDir != "" {
				opts = append(opts, kfake.DataDir(dataDir))
			}
			if syncWrites {
				opts = append(opts, kfake.SyncWrites())
			}
			cluster, err := kfake.NewCluster(opts...)
			if err != nil {
				return fmt.Errorf("start kfake: %w", err)
			}
			defer cluster.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintln(cmd.OutOrStdout(), cluster.ListenAddrs()[0])
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on, 127.0.0.1:PORT (required)")
	cmd.Flags().StringVar(&dataDir, "data", "", "directory kfake persists to (default: memory only)")
	cmd.Flags().BoolVar(&syncWrites, "sync-writes", false, "fsync every batch (needs --data)")
	return cmd
}
