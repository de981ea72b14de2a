package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
)

func newBrokerCommand() *cobra.Command {
	var (
		dataDir      string
		listen       string
		advertise    string
		nodeID       int32
		flush        string
		partitions   int32
		segmentBytes int64
		retention    time.Duration
		autoCreate   bool
		bugs         []string
		admin        string
		limits       = broker.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Serve Kafka's protocol on a real socket, with a log directory on real files",
		Long: `Run one broker node over real sockets and files. It speaks Kafka's wire
protocol (ApiVersions, Metadata, CreateTopics, DeleteTopics, Produce, Fetch,
ListOffsets, InitProducerId, and consumer groups with committed offsets in
__consumer_offsets), so kcat, franz-go and sarama can use it, and it keeps
partitions in Kafka's on-disk format under --data.

--flush says when it fsyncs: 'group' (before acknowledging a write; the
default here), 'none' (never: Kafka's default, relying on replication),
'messages:N' (every N messages) or 'interval:DURATION'.

A produced record batch may be at most message.max.bytes (1 MiB, Kafka's
default; a topic's max.message.bytes overrides it). --segment-bytes lowers the
limit to half a segment, so a small segment refuses batches a client's default
batch size (16 KiB in the Java client, about 1 MB in franz-go and librdkafka) can
reach: the client sees MESSAGE_TOO_LARGE and the broker logs the reason once
per topic.

--data is locked while the broker runs (a .lock file in it): a second broker
on the same directory exits with status 1, naming the holder. So does a
broker whose --listen address is taken.

On SIGINT or SIGTERM it stops cleanly: it stops accepting, flushes every log
and writes the recovery-point checkpoint, so the next start re-scans nothing
(bounded by 30 s; a second signal ends it at once).`,
		Example: `  sluice broker --data /var/lib/sluice --listen 127.0.0.1:9092
  kcat -b 127.0.0.1:9092 -L
  sluice broker --data ./data --listen :9092 --advertise myhost:9092 --flush none
  sluice broker --data ./data --admin 127.0.0.1:9644   # curl 127.0.0.1:9644/metrics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, err := parseFlushFlag(flush)
			if err != nil {
				return usageError("--flush: %v", err)
			}
			planted, err := faults.ParseBugs(bugs)
			if err != nil {
				return usageError("--bug: %v", err)
			}
			cfg := broker.DefaultConfig()
			cfg.NodeID, cfg.Listen, cfg.Advertised = nodeID, listen, advertise
			if cfg.Advertised == "" {
				cfg.Advertised = defaultAdvertised(listen)
			}
			cfg.NumPartitions, cfg.AutoCreateTopics, cfg.DataDir = partitions, autoCreate, "."
			cfg.Log.Flush = policy
			cfg.Bugs, cfg.Log.Bugs = planted, planted
			if segmentBytes > 0 {
				cfg.Log.SegmentBytes = segmentBytes
				cfg.Log.MaxBatchBytes = int(min(int64(cfg.Log.MaxBatchBytes), segmentBytes/2))
			}
			if retention != 0 {
				cfg.Log.RetentionAge = retention
			}
			cfg.FetchMaxBytes, cfg.FetchPartitionMaxBytes = limits.FetchMaxBytes, limits.FetchPartitionMaxBytes
			cfg.SendQueueBytesMax, cfg.ConnSendQueueBytesMax = limits.SendQueueBytesMax, limits.ConnSendQueueBytesMax
			cfg.WriteTimeout, cfg.QueuedRequestBytesMax = limits.WriteTimeout, limits.QueuedRequestBytesMax
			cfg.ConnectionsIdleMax = limits.ConnectionsIdleMax
			cfg.ConnectionsMax, cfg.ConnectionsPerIPMax = limits.ConnectionsMax, limits.ConnectionsPerIPMax
			if limits.Groups.Partitions < 1 {
				return usageError("--offsets-topic-partitions %d: want at least 1", limits.Groups.Partitions)
			}
			cfg.Groups.Partitions, cfg.Groups.InitialRebalanceDelay = limits.Groups.Partitions, limits.Groups.InitialRebalanceDelay
			cfg.Groups.OffsetsRetention = limits.Groups.OffsetsRetention
			return runBroker(cmd, dataDir, cfg, admin)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data", "", "log directory (required)")
	fl.StringVar(&listen, "listen", ":9092", "address to serve on")
	fl.StringVar(&advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address, localhost for a wildcard)")
	fl.Int32Var(&nodeID, "node-id", 1, "broker id (node.id)")
	fl.StringVar(&flush, "flush", "group", "fsync policy: group, none, messages:N, interval:DURATION")
	fl.Int32Var(&partitions, "num-partitions", 1, "partitions of auto-created topics (num.partitions)")
	fl.Int64Var(&segmentBytes, "segment-bytes", 0, "segment size (segment.bytes; default 1 GiB); a batch may be at most half of it")
	fl.DurationVar(&retention, "retention", 0, "retention by age (retention.ms; default 7 days, negative keeps forever)")
	fl.BoolVar(&autoCreate, "auto-create-topics", true, "create topics on first use (auto.create.topics.enable)")
	fl.StringSliceVar(&bugs, "bug", nil, "planted bug to switch on (see 'sluice sim bugs')")
	fl.IntVar(&limits.FetchMaxBytes, "fetch-max-bytes", limits.FetchMaxBytes, "most record bytes in one fetch answer, whatever the client asks (fetch.max.bytes)")
	fl.IntVar(&limits.FetchPartitionMaxBytes, "fetch-partition-max-bytes", limits.FetchPartitionMaxBytes, "most record bytes of one partition in a fetch answer; a larger first batch still comes whole")
	fl.IntVar(&limits.SendQueueBytesMax, "send-queue-bytes-max", limits.SendQueueBytesMax, "node-wide budget of answer bytes not yet taken by the network; past it fetches get no records (the node resets connections past 512 MiB whatever this says)")
	fl.IntVar(&limits.ConnSendQueueBytesMax, "connection-send-queue-bytes-max", limits.ConnSendQueueBytesMax, "bytes queued on one connection before it is reset")
	fl.DurationVar(&limits.WriteTimeout, "write-timeout", limits.WriteTimeout, "reset a connection whose answers make no progress for this long (0: never)")
	fl.IntVar(&limits.QueuedRequestBytesMax, "queued-request-bytes-max", limits.QueuedRequestBytesMax, "bytes of received requests waiting to be served (queued.max.request.bytes)")
	fl.DurationVar(&limits.ConnectionsIdleMax, "connections-max-idle", limits.ConnectionsIdleMax, "close a connection idle this long (connections.max.idle.ms; 0: never)")
	fl.IntVar(&limits.ConnectionsMax, "max-connections", limits.ConnectionsMax, "connections beyond this are closed at once (max.connections; 0: no cap)")
	fl.IntVar(&limits.ConnectionsPerIPMax, "max-connections-per-ip", limits.ConnectionsPerIPMax, "connections from one address beyond this are closed at once (max.connections.per.ip; 0: no cap)")
	fl.Int32Var(&limits.Groups.Partitions, "offsets-topic-partitions", limits.Groups.Partitions, "partitions of __consumer_offsets, made on the first FindCoordinator (offsets.topic.num.partitions)")
	fl.DurationVar(&limits.Groups.InitialRebalanceDelay, "group-initial-rebalance-delay", limits.Groups.InitialRebalanceDelay, "how long an empty group's first rebalance waits for more members (group.initial.rebalance.delay.ms)")
	fl.DurationVar(&limits.Groups.OffsetsRetention, "offsets-retention", limits.Groups.OffsetsRetention, "an empty group's offsets, and the group, are deleted this long after it emptied or last committed (offsets.retention.minutes; 0: never)")
	fl.StringVar(&admin, "admin", "", "serve /metrics (Prometheus text format) and /debug/pprof on this address, e.g. 127.0.0.1:9644")
	cmd.MarkFlagRequired("data")
	return cmd
}

func parseFlushFlag(s string) (storage.FlushPolicy, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "group":
		return storage.FlushPolicy{Mode: storage.FlushGroupCommit}, nil
	case "none":
		return storage.FlushPolicy{Mode: storage.FlushNever}, nil
	case "messages":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 1 {
			return storage.FlushPolicy{}, fmt.Errorf("messages:%s: want a positive count", arg)
		}
		return storage.FlushPolicy{Mode: storage.FlushEveryMessages, Messages: n}, nil
	case "interval":
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return storage.FlushPolicy{}, fmt.Errorf("interval:%s: want a positive duration such as 100ms", arg)
		}
		return storage.FlushPolicy{Mode: storage.FlushEveryInterval, Interval: d}, nil
	}
	return storage.FlushPolicy{}, fmt.Errorf("unknown policy %q (want group, none, messages:N or interval:DURATION)", s)
}

// defaultAdvertised is the listen address, with a wildcard host replaced
// by localhost so that clients can connect to what they are told.
func defaultAdvertised(listen string) string {
	i := strings.LastIndexByte(listen, ':')
	if i < 0 {
		return listen
	}
	host := listen[:i]
	if host == "" || host == "0.0.0.0" || host == "[::]" {
		host = "localhost"
	}
	return host + listen[i:]
}

// shutdownTimeout bounds a clean shutdown: flushing every log and writing
// the recovery-point checkpoint. Past it the process ends anyway, as a
// kill would end it; the next start recovers.
const shutdownTimeout = 30 * time.Second

// exitServeFailed is the status of a broker that could not serve. main
// prints no message for status 1 (a check prints its own verdict), so
// runBroker prints it.
const exitServeFailed = 1

func runBroker(cmd *cobra.Command, dataDir string, cfg broker.Config, admin string) error {
	stderr := cmd.ErrOrStderr()
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	failed := func(err error) error {
		fmt.Fprintln(stderr, "sluice:", err)
		return &exitError{code: exitServeFailed, err: err}
	}
	lock, err := lockDataDir(dataDir, cfg.Listen)
	if err != nil {
		return failed(err)
	}
	defer lock.release()
	node, err := osenv.NewNode(osenv.Options{Name: fmt.Sprintf("broker-%d", cfg.NodeID), DataDir: dataDir, Log: logger})
	if err != nil {
		return usageError("%v", err)
	}
	signals, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	loop, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); node.Run(loop) }()
	defer func() { stopLoop(); <-loopDone }()

	startFailed := make(chan error, 1)
	var running *broker.Broker // touched only on the loop
	node.Start(broker.Start(cfg, func(b *broker.Broker) {
		running = b
		b.ExitOnStartFailure(func(err error) { startFailed <- err })
	}))
	if admin != "" {
		srv, err := serveAdmin(admin, snapshotOnLoop(node, func() *broker.Broker { return running }), logger)
		if err != nil {
			return failed(err)
		}
		defer srv.Close()
		logger.Printf("serving /metrics and /debug/pprof at http://%s", srv.Addr)
	}
	select {
	case err := <-startFailed:
		return failed(startFailure(cfg, err))
	case <-signals.Done():
	}
	stopSignals() // a second signal ends the process at once
	stopped := make(chan error, 1)
	begin := time.Now()
	node.Post(func() {
		if running == nil {
			stopped <- nil
			return
		}
		running.Stop(func(err error) { stopped <- err })
	})
	select {
	case err := <-stopped:
		if err != nil {
			logger.Printf("broker %d stopped after %v, not cleanly: %v", cfg.NodeID, time.Since(begin).Round(time.Millisecond), err)
			return failed(err)
		}
		logger.Printf("broker %d stopped cleanly in %v: logs flushed, recovery points checkpointed", cfg.NodeID, time.Since(begin).Round(time.Millisecond))
	case <-time.After(shutdownTimeout):
		logger.Printf("broker %d: clean shutdown took more than %v; stopping without it", cfg.NodeID, shutdownTimeout)
		return failed(fmt.Errorf("shutdown did not finish in %v", shutdownTimeout))
	}
	return nil
}

// startFailure words a failure to start for the operator: a taken port is
// said the way the system says it, not wrapped three times.
func startFailure(cfg broker.Config, err error) error {
	if errors.Is(err, sim.ErrAddrInUse) {
		return fmt.Errorf("listen %s: %w", cfg.Listen, sim.ErrAddrInUse)
	}
	return err
}
