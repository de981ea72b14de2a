// Package broker is a Kafka-style broker node: an actor that serves Kafka's
// wire protocol over the sim.Network seam and keeps partitions in Kafka's
// on-disk log format over the sim.FS seam, so that the same code serves
// kcat on a real socket and a seeded client in the simulator.
//
// Each Kafka API key is served by one file named after it
// (00_produce.go, 01_fetch.go, ...), which opens with the versions it serves.
package broker

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/slab"
)

// probeRestartAfterFatal marks the broker's own restart after an error it
// cannot serve through (a failed log directory, a lost listener).
var probeRestartAfterFatal = sim.DeclareProbe("broker/restart-after-fatal",
	"the broker stopped on an error it could not serve through and started again")

// Config configures a broker node.
type Config struct {
	// NodeID is the broker's id (node.id).
	NodeID int32
	// Listen is the address the broker serves on, e.g. ":9092".
	Listen string
	// Advertised is the "host:port" clients are told to connect to; empty
	// means the node's name and the listen port.
	Advertised string
	// ClusterID names the cluster in metadata.
	ClusterID string
	// DataDir is the log directory inside the node's file system.
	DataDir string
	// NumPartitions is num.partitions: the partition count of topics made
	// by auto-creation or by CreateTopics asking for -1.
	NumPartitions int32
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// MinInsyncReplicas is min.insync.replicas.
	MinInsyncReplicas int
	// Log holds the defaults of every partition log; topic configs
	// override them.
	Log storage.Config
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// FetchMaxBytes is fetch.max.bytes: the most record bytes one fetch
	// answer holds, whatever the request asks.
	FetchMaxBytes int
	// FetchPartitionMaxBytes caps each partition's share of a fetch
	// answer, whatever the request asks (as replica.fetch.max.bytes does
	// for followers). A partition's first batch is served whole even when
	// larger (KIP-74).
	FetchPartitionMaxBytes int
	// SendQueueBytesMax is the node-wide budget of answer bytes not yet
	// taken by the network (queued for sending, or held behind an earlier
	// answer on the same connection). A fetch reads records only while
	// the budget has room for a whole batch, so clients that never read
	// cannot pin unbounded memory; past it, fetches are answered without
	// records.
	SendQueueBytesMax int
	// ConnSendQueueBytesMax bounds the bytes queued on one connection; a
	// connection that passes it is reset.
	ConnSendQueueBytesMax int
	// WriteTimeout resets a connection whose answers make no progress onto
	// the network for this long.
	WriteTimeout time.Duration
	// QueuedRequestBytesMax is queued.max.request.bytes: the bytes of
	// received requests waiting to be served; a connection whose request
	// does not fit stops being read until others are served.
	QueuedRequestBytesMax int
	// ConnectionsIdleMax is connections.max.idle.ms: a connection with no
	// request or answer for this long is closed.
	ConnectionsIdleMax time.Duration
	// ConnectionsMax is max.connections and ConnectionsPerIPMax
	// max.connections.per.ip: a connection beyond either is closed at once.
	ConnectionsMax      int
	ConnectionsPerIPMax int
	// Cluster is the broker's cluster membership (cluster.go); its zero
	// value, with no controllers, is a single broker keeping its topics
	// in topics.json.
	Cluster ClusterConfig
	Bugs    faults.Bugs
	// Groups configures the group coordinator: offsets.topic.num.partitions
	// and the group.* configs.
	Groups group.Config
}

// DefaultConfig is Kafka's defaults for one broker.
func DefaultConfig() Config {
	return Config{
		NodeID:                 1,
		Listen:                 ":9092",
		ClusterID:              "sluice",
		DataDir:                "kafka-logs",
		NumPartitions:          1,
		AutoCreateTopics:       true,
		MinInsyncReplicas:      1,
		Log:                    storage.DefaultConfig(),
		RetentionCheckInterval: 5 * time.Minute,
		FetchMaxBytes:          55 << 20,
		FetchPartitionMaxBytes: 1 << 20,
		SendQueueBytesMax:      256 << 20,
		ConnSendQueueBytesMax:  128 << 20,
		WriteTimeout:           30 * time.Second,
		QueuedRequestBytesMax:  128 << 20,
		ConnectionsIdleMax:     10 * time.Minute,
		ConnectionsMax:         4096,
		ConnectionsPerIPMax:    1024,
		Groups:                 group.DefaultConfig(),
		Cluster:                DefaultClusterConfig(),
	}
}

// Broker is the broker actor.
type Broker struct {
	env    sim.Env
	cfg    Config
	host   string
	port   int32
	topics *topicRegistry
	// conns are the open client connections, by id so that closing them
	// all happens in a deterministic order.
	conns    map[uint64]*clientConn
	nextConn uint64
	// connsPerIP counts the open connections by remote host.
	connsPerIP map[string]int
	// heldAnswerBytes are the bytes of answers waiting behind an earlier
	// answer on their connection, counted against SendQueueBytesMax.
	heldAnswerBytes int
	refusedLog      rateLimitedLog
	listener        sim.Listener
	pids            *producerIDs
	stats           stats
	fetchBuffers    fetchBuffers
	produceSpares   produceSpares
	// The slabs the per-request values are cut from.
	requestSlab     slab.Slab[request]
	produceCallSlab slab.Slab[produceCall]
	ready           bool
	// recoveryPoints are the recovery points read at start, by partition
	// directory name.
	recoveryPoints map[string]int64
	checkpointing  bool
	// logStarts is the log-start-offset checkpoint (maintenance.go).
	logStarts logStartCheckpoint
	// startRecovery sums the recovery reports of the logs a start opens;
	// nil once the start has opened them.
	startRecovery *recoveryTally
	// starts counts the broker's starts, this one included.
	starts int32
	// lifecycle is the shutdown and start-failure state (shutdown.go).
	lifecycle lifecycle
	// tooLargeLogged names the topics whose refusal of an oversized batch
	// has been logged, so that a client retrying one does not flood the
	// log.
	tooLargeLogged map[string]bool
	// recordsCompactedSeen is what the logs' compactions had removed at
	// the last maintenance round (maintenance.go).
	recordsCompactedSeen int64
	// groups is the group coordinator (coordinator.go).
	groups *coordinator
	// cluster is the broker's cluster membership; nil for a single broker.
	cluster *clusterMember
}

// stats are the broker's counters.
type stats struct {
	// requests count requests by API key (an array: counted per
	// request, a map's hashing showed).
	requests     [requestKeysMax]int64
	appends      int64
	fetchedBytes int64
}

// requestKeysMax bounds the API keys counted; every key served is below
// it (servedRange).
const requestKeysMax = 128

// Start returns the start function of a broker; onStart, if not nil, is
// given the broker when it starts (for tests and tools that read its
// state).
func Start(cfg Config, onStart func(*Broker)) sim.Start {
	return func(env sim.Env) {
		b, err := newBroker(env, cfg)
		if err != nil {
			env.Log.Logf("broker %d: %v", cfg.NodeID, err)
			return
		}
		if onStart != nil {
			onStart(b)
		}
		b.open()
	}
}

func newBroker(env sim.Env, cfg Config) (*Broker, error) {
	b := &Broker{env: env, cfg: cfg, conns: make(map[uint64]*clientConn), connsPerIP: make(map[string]int), tooLargeLogged: map[string]bool{}}
	host, port, err := advertised(env.Node, cfg)
	if err != nil {
		return nil, err
	}
	b.host, b.port = host, port
	return b, nil
}

// advertised splits the advertised address, defaulting to the node name
// and the listen port.
func advertised(node string, cfg Config) (string, int32, error) {
	addr := cfg.Advertised
	if addr == "" {
		_, port, ok := splitHostPort(cfg.Listen)
		if !ok {
			return "", 0, fmt.Errorf("listen address %q is not host:port", cfg.Listen)
		}
		addr = node + ":" + port
	}
	host, portText, ok := splitHostPort(addr)
	if !ok {
		return "", 0, fmt.Errorf("advertised address %q is not host:port", addr)
	}
	port, err := strconv.ParseInt(portText, 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("advertised port %q: %w", portText, err)
	}
	return host, int32(port), nil
}

// splitHostPort splits "host:port" (the host may be empty or a bracketed
// IPv6 address).
func splitHostPort(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || i == len(addr)-1 {
		return "", "", false
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], true
}

// open loads the topics and their logs, then starts serving.
func (b *Broker) open() {
	if b.lifecycle.stopping {
		return
	}
	if err := b.env.FS.MkdirAll(b.cfg.DataDir); err != nil {
		b.fatal(fmt.Errorf("create log directory %s: %w", b.cfg.DataDir, err))
		return
	}
	name := path.Join(b.cfg.DataDir, startsFile)
	starts, err := readSealedInt(b.env.FS, name)
	if err != nil {
		b.fatal(err)
		return
	}
	// The count is durable before anything is served under it, so no
	// two starts lead with the same epoch.
	writeSealedInt(b.env.FS, name, starts+1, func(err error) {
		if err != nil {
			b.fatal(fmt.Errorf("record this start in %s: %w", name, err))
			return
		}
		b.starts = int32(min(starts+1, math.MaxInt32))
		b.serve()
	})
}

// startsFile counts the broker's starts. Every start is a new leadership
// of every partition, and the count is its leader epoch: a leadership that
// wrote nothing leaves no trace in the logs' epoch caches, so the logs alone
// would hand its epoch out again.
const startsFile = "broker-starts"

// serve loads the topics and their logs, then listens.
func (b *Broker) serve() {
	if b.lifecycle.stopping {
		return
	}
	b.loadRecoveryPoints()
	b.startRecovery = &recoveryTally{startMono: b.env.Clock.Mono()}
	reg, err := b.loadRegistry()
	tally := b.startRecovery
	b.startRecovery = nil
	if err != nil {
		b.fatal(err)
		return
	}
	if tally.partitions > 0 { // a first start has nothing to recover
		b.env.Log.Logf("%s", tally.summary(b.env.Clock.Mono()))
	}
	b.topics = reg
	b.startCoordinator()
	b.pids, err = loadProducerIDs(b.env.FS, b.cfg.DataDir)
	if err != nil {
		b.fatal(err)
		return
	}
	opts := sim.ConnOptions{
		SendQueueBytesMax:   b.cfg.ConnSendQueueBytesMax,
		WriteTimeout:        b.cfg.WriteTimeout,
		QueuedFrameBytesMax: b.cfg.QueuedRequestBytesMax,
	}
	// The network's error names the address.
	b.listener, err = b.env.Net.Listen(b.cfg.Listen, opts, b.accept)
	if err != nil {
		b.fatal(err)
		return
	}
	b.ready, b.lifecycle.served = true, true
	b.env.Log.Logf("broker %d serving on %s, %d topics", b.cfg.NodeID, b.cfg.Listen, len(b.topics.byName))
	b.scheduleMaintenance()
	b.joinCluster()
}

// Stats are a broker's counters since it started.
type Stats struct {
	// Requests counts requests by API name.
	Requests     map[string]int64
	Appends      int64
	FetchedBytes int64
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	s := Stats{Requests: map[string]int64{}, Appends: b.stats.appends, FetchedBytes: b.stats.fetchedBytes}
	for key, n := range b.stats.requests {
		if n > 0 {
			s.Requests[kmsg.NameForKey(int16(key))] = n
		}
	}
	return s
}

// Serving reports whether the broker has opened its logs and listens.
func (b *Broker) Serving() bool { return b.ready }

// restartDelay is how long a broker that could not start waits before it
// tries again, as a supervisor restarting a failed service would.
const restartDelay = time.Second

// fatal reports an error the broker cannot serve through: it stops
// serving, closes every connection and starts over after restartDelay,
// reading its log directory afresh. A broker told to exit on a start
// failure (ExitOnStartFailure) that never served ends instead.
func (b *Broker) fatal(err error) {
	b.lifecycle.stops++
	b.leaveCluster()
	b.stopServing()
	if b.topics != nil {
		b.topics.closeAll()
		b.topics = nil
	}
	if b.lifecycle.stopping {
		return
	}
	if exit := b.lifecycle.exitOnStartFailure; exit != nil && !b.lifecycle.served {
		b.lifecycle.stopping = true
		exit(err)
		return
	}
	b.env.Log.Logf("broker %d stopping: %v; starting again in %v", b.cfg.NodeID, err, restartDelay)
	b.env.Hit(probeRestartAfterFatal)
	b.env.Clock.AfterFunc(restartDelay, b.open)
}

// fatalSoon calls fatal from a timer, outside the call that found err,
// unless the broker stopped for another reason in between: two stops
// would start it twice.
func (b *Broker) fatalSoon(err error) {
	stops := b.lifecycle.stops
	b.env.Clock.AfterFunc(0, func() {
		if b.lifecycle.stops == stops {
			b.fatal(err)
		}
	})
}

// stopServing stops accepting and closes every connection.
func (b *Broker) stopServing() {
	b.ready = false
	for _, cc := range b.sortedConns() {
		cc.close()
	}
	if b.listener != nil {
		b.listener.Close()
		b.listener = nil
	}
}

func (b *Broker) sortedConns() []*clientConn {
	ids := make([]uint64, 0, len(b.conns))
	for id := range b.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	conns := make([]*clientConn, len(ids))
	for i, id := range ids {
		conns[i] = b.conns[id]
	}
	return conns
}
