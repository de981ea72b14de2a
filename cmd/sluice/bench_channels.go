package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/collector"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
)

type benchChannelsFlags struct {
	events      int
	takers      int
	eventSizes  string
	channels    string
	batch       int
	inFlightMax int
	dir         string
	dataDirs    int
	jsonOut     bool
	killAfter   string
}

func newBenchChannelsCommand() *cobra.Command {
	var f benchChannelsFlags
	cmd := &cobra.Command{
		Use:   "channels [--events N] [--event-size 100,1024] [--channels memory,file,spillable,kafka]",
		Short: "Compare the collector's channels on this machine's disk: events/s, MB/s, latency",
		Long: `Move events through each channel type as a source and a sink would, on
the real clock and disk: a producer commits transactions of --batch puts
(up to --in-flight commits at once, so the file channel's group commit can
share a sync among them), a consumer takes and commits transactions of
--batch takes (--takers of them in flight at once, as several sinks on one
channel would), and the channel never holds more than its capacity (10,000
events). Each event's latency runs from the start of its put's commit to
its take's commit. The file channel answers a put commit after the fsync
that covers its record (concurrent commits share one) and a commit of
takes alone when its record is written, its fsync following: the disk's
sync latency bounds a producer with few commits in flight (--in-flight),
not the consumer.

The kafka channel needs a broker: the comparison starts this binary's
"sluice broker" (group commit: an fsync before each acknowledgement) on a
free loopback port with its data under --dir, for the whole run, and
stops it at the end. Each kafka row has a topic and consumer group of its
own; its clock starts once a first event went round, so that the
group's first join (the broker's 3 s initial rebalance delay) is not
counted, as an agent's channel is up before its traffic.

The table has one row per channel and event size: events/s, MB/s of
bodies, and latency percentiles in milliseconds (HdrHistogram). --json
prints the same rows as JSON. The file channel writes under --dir (a new
temporary directory when not given, removed afterwards), in --data-dirs
directories there (Flume's comma-separated dataDirs: each a log of its
own, transactions taking them in turn, their fsyncs running side by side);
the spillable channel's overflow too.

--kill-after D adds a crash test per row: a real agent process (this
binary's "agent": a netcat source answering OK per event, the channel
under test, a file_roll sink that syncs each batch) takes lines from four
clients for D, is killed with SIGKILL, restarted on the same directories
and drained, then stopped. The table gains ACKED (lines answered OK before
the kill), LOST (acknowledged lines missing from the sink's files) and DUP
(lines the sink wrote more than once: redelivery after the restart, which
at-least-once allows). The file channel should lose nothing; the memory
channel loses what it held; the kafka channel, whose events are in the
broker, nothing (the restarted agent's member waits out its predecessor's
6 s session before it reads on).`,
		Example: `  sluice bench channels
  sluice bench channels --events 1000000 --event-size 1024 --channels memory,file
  sluice bench channels --event-size 1024 --takers 16
  sluice bench channels --channels file --event-size 1024 --in-flight 64
  sluice bench channels --channels memory,file --event-size 1024 --data-dirs 4
  sluice bench channels --json --dir /mnt/fast/bench
  sluice bench channels --kill-after 3s --channels memory,file,spillable --event-size 1024
  sluice bench channels --channels memory,file,spillable,kafka --event-size 1024`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sizes, err := parseBenchSizes(f.eventSizes)
			if err != nil {
				return usageError("--event-size: %v", err)
			}
			kinds, err := parseBenchChannels(f.channels)
			if err != nil {
				return usageError("--channels: %v", err)
			}
			switch {
			case f.events < 1 || f.events > benchChannelEventsMax:
				return usageError("--events %d: want 1..%d", f.events, benchChannelEventsMax)
			case f.batch < 1 || f.batch > benchChannelCapacity:
				return usageError("--batch %d: want 1..%d", f.batch, benchChannelCapacity)
			case f.inFlightMax < 1 || f.inFlightMax > 1024:
				return usageError("--in-flight %d: want 1..1024", f.inFlightMax)
			case f.takers < 1 || f.takers > 1024:
				return usageError("--takers %d: want 1..1024", f.takers)
			case f.dataDirs < 1 || f.dataDirs > config.DataDirsMax:
				return usageError("--data-dirs %d: want 1..%d", f.dataDirs, config.DataDirsMax)
			}
			if _, err := parseKillAfter(f.killAfter); err != nil {
				return usageError("--kill-after: %v", err)
			}
			return runBenchChannels(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, kinds, sizes)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.events, "events", 200000, "events to move through each channel, per event size")
	fl.StringVar(&f.eventSizes, "event-size", "100,1024", "event body sizes in bytes, comma-separated")
	fl.StringVar(&f.channels, "channels", "memory,file", "channel types to measure: memory, file, spillable, kafka (on a sluice broker this command starts)")
	fl.IntVar(&f.batch, "batch", 100, "events per transaction (a source's and a sink's batchSize)")
	fl.IntVar(&f.inFlightMax, "in-flight", 16, "put commits in flight at once")
	fl.IntVar(&f.takers, "takers", 1, "take commits in flight at once (as several sinks on one channel)")
	fl.StringVar(&f.dir, "dir", "", "directory for the file channels (default: a new temporary directory)")
	fl.IntVar(&f.dataDirs, "data-dirs", 1, "data directories of the file channel (and the spillable channel's overflow), each a log of its own, under --dir")
	fl.BoolVar(&f.jsonOut, "json", false, "print the results as JSON")
	fl.StringVar(&f.killAfter, "kill-after", "", "also run each channel in a real agent, kill -9 it after this long (e.g. 3s) and count the acknowledged events lost")
	return cmd
}

const (
	benchChannelEventsMax = 100_000_000
	benchChannelCapacity  = 10000
	benchEventBytesMax    = 1 << 20
)

func parseBenchSizes(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > benchEventBytesMax {
			return nil, fmt.Errorf("%q is not a size in 1..%d", part, benchEventBytesMax)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseBenchChannels(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch part {
		case "memory", "file", "spillable", "kafka":
			out = append(out, part)
		default:
			return nil, fmt.Errorf("%q is not a channel type (memory, file, spillable, kafka)", part)
		}
	}
	return out, nil
}

// channelBenchResult is one row of the comparison.
type channelBenchResult struct {
	Channel      string  `json:"channel"`
	EventBytes   int     `json:"event_bytes"`
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	LatencyP999  float64 `json:"latency_p999_ms"`
	LatencyMaxMs float64 `json:"latency_max_ms"`
	// DataDirs is the file channel's (or overflow's) data directories.
	DataDirs int `json:"data_dirs,omitempty"`
	// Kill is the kill -9 run's count, with --kill-after.
	Kill *channelKillResult `json:"kill_9,omitempty"`
}

func runBenchChannels(ctx context.Context, out, errOut io.Writer, f benchChannelsFlags, kinds []string, sizes []int) error {
	dir := f.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-bench-channels-")
		if err != nil {
			return benchFailed(errOut, err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	killAfter, err := parseKillAfter(f.killAfter)
	if err != nil {
		return usageError("--kill-after: %v", err)
	}
	brokerAddr := ""
	if slices.Contains(kinds, "kafka") {
		exe, err := os.Executable()
		if err != nil {
			return benchFailed(errOut, fmt.Errorf("find the sluice binary for the kafka channel's broker: %w", err))
		}
		brokerDir := filepath.Join(dir, fmt.Sprintf("broker-%d", time.Now().UnixNano()))
		broker, err := startChannelBenchBroker(ctx, exe, brokerDir)
		if err != nil {
			return benchFailed(errOut, fmt.Errorf("the kafka channel's broker: %w", err))
		}
		defer os.RemoveAll(brokerDir)
		defer broker.stop()
		brokerAddr = broker.addr
	}
	var results []channelBenchResult
	for _, size := range sizes {
		for _, kind := range kinds {
			runDir := filepath.Join(dir, fmt.Sprintf("%s-%d-%d", kind, size, time.Now().UnixNano()))
			r, err := benchOneChannel(ctx, kind, size, f, runDir, brokerAddr)
			os.RemoveAll(runDir)
			if err != nil {
				return benchFailed(errOut, fmt.Errorf("%s channel, %d-byte events: %w", kind, size, err))
			}
			if killAfter > 0 {
				killDir := runDir + "-kill"
				k, err := benchKillChannel(ctx, kind, size, killAfter, f.dataDirs, killDir, brokerAddr)
				os.RemoveAll(killDir)
				if err != nil {
					return benchFailed(errOut, fmt.Errorf("%s channel, %d-byte events, kill -9: %w", kind, size, err))
				}
				r.Kill = &k
			}
			results = append(results, r)
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	rows := make([][]string, len(results))
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for i, r := range results {
		rows[i] = []string{r.Channel, strconv.Itoa(r.EventBytes), strconv.Itoa(r.Events),
			strconv.FormatFloat(r.EventsPerSec, 'f', 0, 64), strconv.FormatFloat(r.MBPerSec, 'f', 1, 64),
			ms(r.LatencyP50Ms), ms(r.LatencyP99Ms), ms(r.LatencyP999), ms(r.LatencyMaxMs)}
		if r.Kill != nil {
			rows[i] = append(rows[i], strconv.Itoa(r.Kill.Acked), strconv.Itoa(r.Kill.Lost), strconv.Itoa(r.Kill.Duplicated))
		}
	}
	header := []any{"CHANNEL", "EVENT BYTES", "EVENTS", "EVENTS/S", "MB/S", "P50 MS", "P99 MS", "P99.9 MS", "MAX MS"}
	if killAfter > 0 {
		header = append(header, "KILL -9 ACKED", "LOST", "DUP")
	}
	// Written as it should read: auto-formatting would print "p99.9" as
	// "P 99 . 9".
	t := tablewriter.NewTable(out, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: tw.MakeAlign(len(header), tw.AlignRight).Set(0, tw.AlignLeft)}))
	t.Header(header...)
	for _, row := range rows {
		cells := make([]any, len(row))
		for i, c := range row {
			cells[i] = c
		}
		if err := t.Append(cells...); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	return t.Render()
}

// benchOneChannel runs one channel on a real node with f's events, batch,
// commits in flight, takers and data directories, and measures it; a
// kafka channel uses the broker at brokerAddr.
func benchOneChannel(ctx context.Context, kind string, size int, f benchChannelsFlags, dir, brokerAddr string) (channelBenchResult, error) {
	events := f.events
	node, err := osenv.NewNode(osenv.Options{Name: "bench", DataDir: dir, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		return channelBenchResult{}, err
	}
	result := make(chan error, 1)
	b := &channelBench{kind: kind, brokerAddr: brokerAddr, n: events, batch: f.batch, inFlightMax: f.inFlightMax, takersMax: f.takers,
		dataDirs: collector.DataDirsUnder("fc", f.dataDirs), body: make([]byte, size),
		hist: hdrhistogram.New(benchLatencyUsLowest, benchLatencyUsHighest, benchLatencySigFigs),
		done: func(err error) { result <- err }}
	node.Start(b.start)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() { node.Run(runCtx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	select {
	case err = <-result:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return channelBenchResult{}, err
	}
	secs := b.elapsed.Seconds()
	q := func(p float64) float64 { return float64(b.hist.ValueAtQuantile(p)) / 1000 }
	dataDirs := 0
	if kind == "file" || kind == "spillable" {
		dataDirs = f.dataDirs
	}
	return channelBenchResult{
		Channel: kind, EventBytes: size, Events: events, Seconds: secs, DataDirs: dataDirs,
		EventsPerSec: float64(events) / secs, MBPerSec: float64(events) * float64(size) / secs / 1e6,
		LatencyP50Ms: q(50), LatencyP99Ms: q(99), LatencyP999: q(99.9), LatencyMaxMs: float64(b.hist.Max()) / 1000,
	}, nil
}

// channelBench is an actor on the bench node: a producer committing
// batches of puts and a consumer committing batches of takes. The channel
// is a queue in commit order and puts commit in the order they are made,
// so the k-th event taken is the k-th put, and its latency is measured
// from when that put's commit began.
type channelBench struct {
	kind        string
	brokerAddr  string
	dataDirs    []string
	env         sim.Env
	ch          collector.Channel
	n, batch    int
	inFlightMax int
	body        []byte
	hist        *hdrhistogram.Histogram
	done        func(error)

	// sentAt holds, per batch put, when its commit began.
	sentAt   []time.Duration
	put      int
	inFlight int
	taken    int
	// takers is the take commits in flight, at most takersMax; claimed
	// counts the events taken so far, committed or not.
	takers    int
	takersMax int
	claimed   int
	failed    bool
	// warming is set while a kafka channel's first event goes round.
	warming   bool
	began     time.Duration
	elapsed   time.Duration
	drainSoon bool
}

func (b *channelBench) start(env sim.Env) {
	b.env = env
	opened := func(ch collector.Channel, err error) {
		if err != nil {
			b.fail(err)
			return
		}
		b.ch = ch
		ch.OnPut(b.scheduleDrain)
		if b.kind == "kafka" {
			b.warmUp()
			return
		}
		b.began = env.Clock.Mono()
		b.pump()
	}
	switch b.kind {
	case "memory":
		cfg := collector.DefaultMemoryChannelConfig()
		cfg.Capacity, cfg.TransactionCapacity = benchChannelCapacity, b.batch
		opened(collector.NewMemoryChannel("c1", env, cfg), nil)
	case "file":
		cfg := collector.DefaultFileChannelConfig("fc")
		cfg.Capacity, cfg.TransactionCapacity, cfg.DataDirs = benchChannelCapacity, b.batch, b.dataDirs
		collector.OpenFileChannel("c1", env, cfg, func(f *collector.FileChannel, err error) { opened(f, err) })
	case "spillable":
		cfg := collector.SpillableChannelConfig{MemoryCapacity: benchChannelCapacity / 2, OverflowCapacity: benchChannelCapacity / 2,
			TransactionCapacity: b.batch, KeepAlive: 3 * time.Second, Overflow: collector.DefaultFileChannelConfig("fc")}
		cfg.Overflow.DataDirs = b.dataDirs
		collector.OpenSpillableChannel("c1", env, cfg, func(s *collector.SpillableChannel, err error) { opened(s, err) })
	case "kafka":
		topic := benchKafkaTopic("inproc", len(b.body))
		k, err := collector.OpenKafkaChannel("c1", env, collector.KafkaChannelConfig{
			Bootstrap: []string{b.brokerAddr}, Topic: topic, Group: topic, ParseAsFlumeEvent: true,
			SessionTimeout: benchKafkaSessionTimeout, Capacity: benchChannelCapacity, TransactionCapacity: b.batch})
		opened(k, err)
	}
}

func (b *channelBench) fail(err error) {
	if !b.failed {
		b.failed = true
		b.done(err)
	}
}

// pump commits batches of puts while commits in flight and the events
// the channel holds leave room.
func (b *channelBench) pump() {
	for !b.failed && b.put < b.n && b.inFlight < b.inFlightMax {
		k := min(b.batch, b.n-b.put)
		if b.put+k-b.taken > benchChannelCapacity {
			return // the consumer's next commit calls pump again
		}
		tx := b.ch.Begin()
		for i := 0; i < k; i++ {
			if err := tx.Put(collector.Event{Body: b.body}); err != nil {
				b.fail(err)
				return
			}
		}
		b.sentAt = append(b.sentAt, b.env.Clock.Mono())
		b.put += k
		b.inFlight++
		tx.Commit(func(err error) {
			b.inFlight--
			if err != nil {
				b.fail(fmt.Errorf("put commit: %w", err))
				return
			}
			b.env.Clock.AfterFunc(0, b.pump)
		})
	}
}

func (b *channelBench) scheduleDrain() {
	if !b.drainSoon {
		b.drainSoon = true
		b.env.Clock.AfterFunc(0, b.drain)
	}
}

// benchWarmUpMax bounds how long a kafka channel's first event may take
// to go round: its member's join to the group.
const benchWarmUpMax = 60 * time.Second

// warmUp puts one event, not counted, whose take (in drain) starts the
// clock.
func (b *channelBench) warmUp() {
	b.warming = true
	tx := b.ch.Begin()
	if err := tx.Put(collector.Event{Body: b.body}); err != nil {
		b.fail(err)
		return
	}
	tx.Commit(func(err error) {
		if err != nil {
			b.fail(fmt.Errorf("warm-up put: %w", err))
		}
	})
	b.env.Clock.AfterFunc(benchWarmUpMax, func() {
		if b.warming {
			b.fail(fmt.Errorf("the channel gave no event back within %v", benchWarmUpMax))
		}
	})
}

// finishWarmUp takes the warm-up event, then starts the clock and the
// producer.
func (b *channelBench) finishWarmUp() {
	tx := b.ch.Begin()
	_, ok, err := tx.Take()
	if err != nil || !ok {
		tx.Rollback()
		if err != nil {
			b.fail(err)
		}
		return // the next read-ahead calls drain again
	}
	tx.Commit(func(err error) {
		if err != nil {
			b.fail(fmt.Errorf("warm-up take: %w", err))
			return
		}
		b.warming = false
		b.began = b.env.Clock.Mono()
		b.pump()
	})
}

// drain commits one batch of takes and records each event's latency.
func (b *channelBench) drain() {
	b.drainSoon = false
	if b.warming {
		if !b.failed {
			b.finishWarmUp()
		}
		return
	}
	if b.takers >= b.takersMax || b.failed || b.claimed >= b.n {
		return
	}
	tx := b.ch.Begin()
	k := 0
	for k < b.batch {
		_, ok, err := tx.Take()
		if err != nil {
			b.fail(err)
			return
		}
		if !ok {
			break
		}
		k++
	}
	if k == 0 {
		tx.Rollback()
		return
	}
	first := b.claimed
	b.claimed += k
	b.takers++
	if b.takers < b.takersMax {
		b.scheduleDrain() // another taker may start on what is left
	}
	tx.Commit(func(err error) {
		b.takers--
		if err != nil {
			b.fail(fmt.Errorf("take commit: %w", err))
			return
		}
		now := b.env.Clock.Mono()
		for i := 0; i < k; i++ {
			sent := b.sentAt[(first+i)/b.batch]
			b.hist.RecordValue(max(int64((now-sent)/time.Microsecond), benchLatencyUsLowest))
		}
		b.taken += k
		if b.taken == b.n {
			b.elapsed = now - b.began
			b.ch.Stop(func() { b.done(nil) })
			return
		}
		b.env.Clock.AfterFunc(0, b.pump)
		b.scheduleDrain()
	})
}
