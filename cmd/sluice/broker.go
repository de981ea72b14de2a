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
	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
)

func newBrokerCommand() *cobra.Command {
	var (
		configPath   string
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

--config reads Kafka's server.properties: node.id (or broker.id),
process.roles (broker, controller, or broker,controller: both side by side
in one process), controller.quorum.voters (1@host:port,2@host:port,...),
listeners and advertised.listeners (the controller's listener is the one
controller.listener.names names), log.dirs (one directory),
metadata.log.dir, num.partitions, default.replication.factor,
min.insync.replicas, unclean.leader.election.enable,
log.flush.interval.messages, log.flush.interval.ms, log.segment.bytes,
log.retention.ms/minutes/hours/bytes, and the replica.* and connection
limits. A file without process.roles is one broker on its own. Unknown keys
are warned about and ignored (a ZooKeeper-era file runs); a bad value stops
the start with exit status 2, naming the key and its line. Flags given on
the command line win over the file. Without a flush key the broker keeps
sluice's group commit; set log.flush.interval.messages=9223372036854775807
(Kafka's default) or --flush none for Kafka's no-fsync behaviour.

--data is locked while the broker runs (a .lock file in it): a second broker
on the same directory exits with status 1, naming the holder. So does a
broker whose --listen address is taken.

On SIGINT or SIGTERM it stops cleanly: it stops accepting, flushes every log
and writes the recovery-point checkpoint, so the next start re-scans nothing
(bounded by 30 s; a second signal ends it at once).`,
		Example: `  sluice broker --data /var/lib/sluice --listen 127.0.0.1:9092
  kcat -b 127.0.0.1:9092 -L
  sluice broker --data ./data --listen :9092 --advertise myhost:9092 --flush none
  sluice broker --data ./data --admin 127.0.0.1:9644   # curl 127.0.0.1:9644/metrics
  sluice broker --config config/server.properties
  sluice broker --config server.properties --listen 127.0.0.1:19092   # the flag wins`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nc := nodeConfig{broker: defaultBrokerConfig(), brokerRole: true}
			if configPath != "" {
				var warnings []string
				var err error
				nc, warnings, err = readServerPropertiesFile(configPath)
				for _, w := range warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "sluice: warning:", w)
				}
				if err != nil {
					return usageError("--config: %v", err)
				}
			}
			// Without a file every flag applies (its default is the
			// default); with one, only the flags given win over it.
			given := func(name string) bool { return configPath == "" || cmd.Flags().Changed(name) }
			cfg := &nc.broker
			if given("flush") {
				policy, err := parseFlushFlag(flush)
				if err != nil {
					return usageError("--flush: %v", err)
				}
				cfg.Log.Flush = policy
			}
			planted, err := faults.ParseBugs(bugs)
			if err != nil {
				return usageError("--bug: %v", err)
			}
			cfg.Bugs, cfg.Log.Bugs = planted, planted
			if given("data") {
				nc.dataDir = dataDir
			}
			if given("node-id") {
				cfg.NodeID = nodeID
			}
			if given("listen") {
				cfg.Listen, cfg.Advertised = listen, defaultAdvertised(listen)
			}
			if cmd.Flags().Changed("advertise") {
				cfg.Advertised = advertise
			}
			if given("num-partitions") {
				cfg.NumPartitions = partitions
			}
			if given("auto-create-topics") {
				cfg.AutoCreateTopics = autoCreate
			}
			if segmentBytes > 0 {
				cfg.Log.SegmentBytes = segmentBytes
				cfg.Log.MaxBatchBytes = int(min(int64(cfg.Log.MaxBatchBytes), segmentBytes/2))
			}
			if retention != 0 {
				cfg.Log.RetentionAge = retention
			}
			applyLimitFlags(given, cfg, limits)
			if limits.Groups.Partitions < 1 {
				return usageError("--offsets-topic-partitions %d: want at least 1", limits.Groups.Partitions)
			}
			cfg.Groups.Partitions, cfg.Groups.InitialRebalanceDelay = limits.Groups.Partitions, limits.Groups.InitialRebalanceDelay
			cfg.Groups.OffsetsRetention = limits.Groups.OffsetsRetention
			if nc.brokerRole && nc.dataDir == "" {
				return usageError("no log directory: give --data, or log.dirs in --config")
			}
			return runNode(cmd, nc, admin)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "Kafka's server.properties: node.id, process.roles, controller.quorum.voters, listeners, log.dirs, ... (flags given win over it)")
	fl.StringVar(&dataDir, "data", "", "log directory (log.dirs; required without --config)")
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
	return cmd
}

// applyLimitFlags copies the connection and answer limits given as flags.
func applyLimitFlags(given func(string) bool, cfg *broker.Config, limits broker.Config) {
	if given("fetch-max-bytes") {
		cfg.FetchMaxBytes = limits.FetchMaxBytes
	}
	if given("fetch-partition-max-bytes") {
		cfg.FetchPartitionMaxBytes = limits.FetchPartitionMaxBytes
	}
	if given("send-queue-bytes-max") {
		cfg.SendQueueBytesMax = limits.SendQueueBytesMax
	}
	if given("connection-send-queue-bytes-max") {
		cfg.ConnSendQueueBytesMax = limits.ConnSendQueueBytesMax
	}
	if given("write-timeout") {
		cfg.WriteTimeout = limits.WriteTimeout
	}
	if given("queued-request-bytes-max") {
		cfg.QueuedRequestBytesMax = limits.QueuedRequestBytesMax
	}
	if given("connections-max-idle") {
		cfg.ConnectionsIdleMax = limits.ConnectionsIdleMax
	}
	if given("max-connections") {
		cfg.ConnectionsMax = limits.ConnectionsMax
	}
	if given("max-connections-per-ip") {
		cfg.ConnectionsPerIPMax = limits.ConnectionsPerIPMax
	}
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

// runNode runs what the node's roles say: a controller, a broker, or both
// side by side (each on its own loop). The broker stops first, so that
// its controlled shutdown still finds this controller serving.
func runNode(cmd *cobra.Command, nc nodeConfig, admin string) error {
	if !nc.controllerRole {
		return runBroker(cmd, nc.dataDir, nc.broker, admin)
	}
	stderr := cmd.ErrOrStderr()
	logger := log.New(stderr, "", log.LstdFlags|log.Lmicroseconds)
	if !nc.brokerRole || nc.metadataDir != nc.dataDir {
		lock, err := lockDataDir(nc.metadataDir, nc.controller.Listen)
		if err != nil {
			fmt.Fprintln(stderr, "sluice:", err)
			return &exitError{code: exitServeFailed, err: err}
		}
		defer lock.release()
	}
	stopController, err := hostController(nc.controller, nc.metadataDir, logger)
	if err != nil {
		return usageError("%v", err)
	}
	defer stopController()
	logger.Printf("controller %d starting: quorum listener %s, voters %s", nc.controller.ID, nc.controller.Listen, votersText(nc.controller.Voters))
	if nc.brokerRole {
		return runBroker(cmd, nc.dataDir, nc.broker, admin) // it takes the signals
	}
	signals, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	<-signals.Done()
	logger.Printf("controller %d stopping", nc.controller.ID)
	return nil
}

func votersText(voters []controller.Voter) string {
	var parts []string
	for _, v := range voters {
		parts = append(parts, fmt.Sprintf("%d@%s", v.ID, v.Addr))
	}
	return strings.Join(parts, ",")
}

// hostController runs a controller on a loop of its own, its files under
// dir; stop stops it and ends the loop.
func hostController(cfg controller.Config, dir string, logger *log.Logger) (stop func(), err error) {
	node, err := osenv.NewNode(osenv.Options{Name: fmt.Sprintf("controller-%d", cfg.ID), DataDir: dir, Log: logger})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); node.Run(ctx) }()
	var running *controller.Controller // touched only on the loop
	node.Start(controller.Process(cfg, func(c *controller.Controller) { running = c }))
	return func() {
		node.Call(func() {
			if running != nil {
				running.Stop()
			}
		})
		cancel()
		<-done
	}, nil
}

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
