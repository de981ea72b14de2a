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

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

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
	Bugs                   faults.Bugs
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
	listener sim.Listener
	pids     *producerIDs
	stats    stats
	ready    bool
	// recoveryPoints are the recovery points read at start, by partition
	// directory name.
	recoveryPoints map[string]int64
	checkpointing  bool
	// startRecovery sums the recovery reports of the logs a start opens;
	// nil once the start has opened them.
	startRecovery *recoveryTally
	// starts counts the broker's starts, this one included.
	starts int32
}

// stats are the broker's counters.
type stats struct {
	requests     map[int16]int64
	appends      int64
	fetchedBytes int64
}

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
	b := &Broker{env: env, cfg: cfg, conns: make(map[uint64]*clientConn)}
	b.stats.requests = make(map[int16]int64)
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
	b.loadRecoveryPoints()
	b.startRecovery = &recoveryTally{startMono: b.env.Clock.Mono()}
	reg, err := loadTopics(b)
	tally := b.startRecovery
	b.startRecovery = nil
	if err != nil {
		b.fatal(err)
		return
	}
	b.env.Log.Logf("%s", tally.summary(b.env.Clock.Mono()))
	b.topics = reg
	b.pids, err = loadProducerIDs(b.env.FS, b.cfg.DataDir)
	if err != nil {
		b.fatal(err)
		return
	}
	b.listener, err = b.env.Net.Listen(b.cfg.Listen, sim.ConnOptions{}, b.accept)
	if err != nil {
		b.fatal(fmt.Errorf("listen on %s: %w", b.cfg.Listen, err))
		return
	}
	b.ready = true
	b.env.Log.Logf("broker %d serving on %s, %d topics", b.cfg.NodeID, b.cfg.Listen, len(b.topics.byName))
	b.scheduleMaintenance()
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
		s.Requests[kmsg.NameForKey(key)] = n
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
// reading its log directory afresh.
func (b *Broker) fatal(err error) {
	b.env.Log.Logf("broker %d stopping: %v; starting again in %v", b.cfg.NodeID, err, restartDelay)
	b.ready = false
	for _, cc := range b.sortedConns() {
		cc.close()
	}
	if b.listener != nil {
		b.listener.Close()
		b.listener = nil
	}
	if b.topics != nil {
		b.topics.closeAll()
		b.topics = nil
	}
	b.env.Clock.AfterFunc(restartDelay, b.open)
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
