package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/collector/config"
)

// A node's configuration as Kafka's server.properties spells it: which
// roles the process plays (a broker, a controller, or both side by side:
// KRaft's combined mode), where each listens and keeps its files, and the
// broker's defaults. Keys sluice has no use for are warned about and
// ignored, so a file written for Apache Kafka runs; a value sluice cannot
// honour is refused naming the key and its line.

// nodeConfig is one sluice process: an optional broker and an optional
// controller.
type nodeConfig struct {
	broker     broker.Config
	brokerRole bool
	// dataDir is the broker's log directory (log.dirs).
	dataDir string
	// controllerRole hosts a controller with controller's settings,
	// keeping its raft log under metadataDir (metadata.log.dir, by
	// default the log directory).
	controllerRole bool
	controller     controller.Config
	metadataDir    string
}

// serverPropertiesBytesMax bounds the file read: a server.properties is a
// few kilobytes.
const serverPropertiesBytesMax = 1 << 20

// controllerLogDirName is the controller's raft log directory inside
// metadataDir. Not Kafka's __cluster_metadata-0: a broker sharing the
// directory would take that name for a stray partition of its own.
const controllerLogDirName = "controller"

// readServerPropertiesFile reads and applies a server.properties file.
func readServerPropertiesFile(name string) (nodeConfig, []string, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nodeConfig{}, nil, err
	}
	if info.Size() > serverPropertiesBytesMax {
		return nodeConfig{}, nil, fmt.Errorf("%s: larger than %d bytes", name, serverPropertiesBytesMax)
	}
	text, err := os.ReadFile(name)
	if err != nil {
		return nodeConfig{}, nil, err
	}
	return parseServerProperties(name, string(text))
}

// serverSettings are the file's values before they are checked together.
type serverSettings struct {
	nodeID, brokerID  int64
	roles             []string
	voters            []controller.Voter
	listeners         map[string]string // by listener name
	listenerOrder     []string
	advertised        map[string]string
	controllerNames   []string
	protocols         map[string]string // listener.security.protocol.map
	retentionMs       int64             // -2: not set
	retentionMinutes  int64
	retentionHours    int64
	rollMs, rollHours int64
	flushMessages     int64 // 0: not set
	flushMs           int64 // -1: not set
}

// parseServerProperties applies the text of a server.properties file to
// the defaults. It returns the warnings (one line each) and an error
// listing every refused value.
func parseServerProperties(name, text string) (nodeConfig, []string, error) {
	props, err := config.ReadProperties(text)
	if err != nil {
		return nodeConfig{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	nc := nodeConfig{broker: defaultBrokerConfig()}
	s := serverSettings{nodeID: -1, brokerID: -1, listeners: map[string]string{}, advertised: map[string]string{},
		retentionMs: -2, retentionMinutes: -2, retentionHours: -2, rollMs: -2, rollHours: -2, flushMs: -1}
	var warnings, problems []string
	for _, p := range props {
		apply, known := serverKeys[p.Key]
		if !known {
			warnings = append(warnings, fmt.Sprintf("%s:%d: unknown key %s, ignored", name, p.Line, p.Key))
			continue
		}
		if err := apply(&nc, &s, p.Value); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %s=%s: %v", name, p.Line, p.Key, p.Value, err))
		}
	}
	if len(problems) == 0 {
		if err := s.resolve(&nc); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(problems) > 0 {
		return nodeConfig{}, warnings, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nc, warnings, nil
}

// defaultBrokerConfig is the broker of a bare `sluice broker`: Kafka's
// defaults with group commit.
func defaultBrokerConfig() broker.Config {
	cfg := broker.DefaultConfig()
	cfg.DataDir = "."
	cfg.Log.Flush = storage.FlushPolicy{Mode: storage.FlushGroupCommit}
	return cfg
}

type serverKey func(nc *nodeConfig, s *serverSettings, value string) error

var serverKeys = map[string]serverKey{
	"node.id":   func(_ *nodeConfig, s *serverSettings, v string) error { return intIn(v, 0, math.MaxInt32, &s.nodeID) },
	"broker.id": func(_ *nodeConfig, s *serverSettings, v string) error { return intIn(v, 0, math.MaxInt32, &s.brokerID) },
	"process.roles": func(_ *nodeConfig, s *serverSettings, v string) error {
		s.roles = splitList(v)
		for _, r := range s.roles {
			if r != "broker" && r != "controller" {
				return fmt.Errorf("role %q: want broker, controller or both", r)
			}
		}
		if len(s.roles) == 0 {
			return fmt.Errorf("no role")
		}
		return nil
	},
	"controller.quorum.voters": func(_ *nodeConfig, s *serverSettings, v string) error {
		voters, err := parseVoters(v)
		s.voters = voters
		return err
	},
	"listeners": func(_ *nodeConfig, s *serverSettings, v string) error {
		m, order, err := parseListeners(v)
		s.listeners, s.listenerOrder = m, order
		return err
	},
	"advertised.listeners": func(_ *nodeConfig, s *serverSettings, v string) error {
		m, _, err := parseListeners(v)
		s.advertised = m
		return err
	},
	"controller.listener.names": func(_ *nodeConfig, s *serverSettings, v string) error {
		s.controllerNames = splitList(v)
		if len(s.controllerNames) == 0 {
			return fmt.Errorf("no listener name")
		}
		return nil
	},
	"listener.security.protocol.map": func(_ *nodeConfig, s *serverSettings, v string) error {
		s.protocols = map[string]string{}
		for _, pair := range splitList(v) {
			name, proto, ok := strings.Cut(pair, ":")
			if !ok || name == "" || proto == "" {
				return fmt.Errorf("%q: want NAME:PROTOCOL", pair)
			}
			s.protocols[name] = proto
		}
		return nil
	},
	"inter.broker.listener.name": func(*nodeConfig, *serverSettings, string) error { return nil },
	"log.dirs":                   logDirs,
	"log.dir":                    logDirs,
	"metadata.log.dir": func(nc *nodeConfig, _ *serverSettings, v string) error {
		if v == "" {
			return fmt.Errorf("empty")
		}
		nc.metadataDir = v
		return nil
	},
	"num.partitions": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return int32In(v, 1, math.MaxInt32, &nc.broker.NumPartitions)
	},
	"default.replication.factor": func(nc *nodeConfig, _ *serverSettings, v string) error {
		var n int64
		err := intIn(v, 1, math.MaxInt16, &n)
		nc.broker.Cluster.DefaultReplicationFactor = int16(n)
		return err
	},
	"min.insync.replicas": func(nc *nodeConfig, _ *serverSettings, v string) error {
		var n int64
		err := intIn(v, 1, math.MaxInt16, &n)
		nc.broker.MinInsyncReplicas = int(n)
		return err
	},
	"unclean.leader.election.enable": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return boolValue(v, &nc.broker.Cluster.UncleanLeaderElection)
	},
	"offsets.topic.num.partitions": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return int32In(v, 1, math.MaxInt32, &nc.broker.Groups.Partitions)
	},
	"offsets.topic.replication.factor": func(nc *nodeConfig, _ *serverSettings, v string) error {
		var n int64
		err := intIn(v, 1, math.MaxInt16, &n)
		nc.broker.Groups.ReplicationFactor = int16(n)
		return err
	},
	"auto.create.topics.enable": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return boolValue(v, &nc.broker.AutoCreateTopics)
	},
	"log.flush.interval.messages": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, 1, math.MaxInt64, &s.flushMessages)
	},
	"log.flush.interval.ms": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, 0, math.MaxInt64, &s.flushMs)
	},
	"log.segment.bytes": func(nc *nodeConfig, _ *serverSettings, v string) error {
		// Kafka's floor; a batch may be at most half a segment here.
		return int64In(v, 14, math.MaxInt32, &nc.broker.Log.SegmentBytes)
	},
	"log.retention.ms": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, -1, math.MaxInt64, &s.retentionMs)
	},
	"log.retention.minutes": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, -1, math.MaxInt32, &s.retentionMinutes)
	},
	"log.retention.hours": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, -1, math.MaxInt32, &s.retentionHours)
	},
	"log.retention.bytes": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return int64In(v, -1, math.MaxInt64, &nc.broker.Log.RetentionBytes)
	},
	"log.retention.check.interval.ms": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return millis(v, 1, &nc.broker.RetentionCheckInterval)
	},
	"log.roll.ms": func(_ *nodeConfig, s *serverSettings, v string) error { return intIn(v, 1, math.MaxInt64, &s.rollMs) },
	"log.roll.hours": func(_ *nodeConfig, s *serverSettings, v string) error {
		return intIn(v, 1, math.MaxInt32, &s.rollHours)
	},
	"message.max.bytes": func(nc *nodeConfig, _ *serverSettings, v string) error {
		var n int64
		err := intIn(v, 0, math.MaxInt32, &n)
		nc.broker.Log.MaxBatchBytes = int(n)
		return err
	},
	"replica.lag.time.max.ms": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return millis(v, 1, &nc.broker.Cluster.ReplicaLagTimeMax)
	},
	"replica.fetch.wait.max.ms": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return millis(v, 0, &nc.broker.Cluster.ReplicaFetchWaitMax)
	},
	"replica.fetch.backoff.ms": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return millis(v, 0, &nc.broker.Cluster.ReplicaFetchBackoff)
	},
	"fetch.max.bytes": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return intValueIn(v, 1024, math.MaxInt32, &nc.broker.FetchMaxBytes)
	},
	"queued.max.request.bytes": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return intValueIn(v, 1, math.MaxInt32, &nc.broker.QueuedRequestBytesMax)
	},
	"connections.max.idle.ms": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return millis(v, 0, &nc.broker.ConnectionsIdleMax)
	},
	"max.connections": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return intValueIn(v, 0, math.MaxInt32, &nc.broker.ConnectionsMax)
	},
	"max.connections.per.ip": func(nc *nodeConfig, _ *serverSettings, v string) error {
		return intValueIn(v, 0, math.MaxInt32, &nc.broker.ConnectionsPerIPMax)
	},
}

func logDirs(nc *nodeConfig, _ *serverSettings, v string) error {
	dirs := splitList(v)
	switch len(dirs) {
	case 0:
		return fmt.Errorf("no directory")
	case 1:
		nc.dataDir = dirs[0]
		return nil
	}
	return fmt.Errorf("%d directories: sluice keeps one log directory per broker", len(dirs))
}

// resolve checks the settings together and fills in what depends on
// several keys: the roles, listeners and the flush and retention rules.
func (s *serverSettings) resolve(nc *nodeConfig) error {
	id := s.nodeID
	if s.brokerID >= 0 {
		if id >= 0 && id != s.brokerID {
			return fmt.Errorf("node.id=%d and broker.id=%d differ", id, s.brokerID)
		}
		id = s.brokerID
	}
	if id >= 0 {
		nc.broker.NodeID = int32(id)
	}
	if err := s.resolveRoles(nc); err != nil {
		return err
	}
	if err := s.resolveListeners(nc); err != nil {
		return err
	}
	if err := s.resolveFlush(nc); err != nil {
		return err
	}
	s.resolveRetention(nc)
	if nc.dataDir == "" && nc.brokerRole {
		return fmt.Errorf("log.dirs is missing")
	}
	if nc.controllerRole {
		if nc.metadataDir == "" {
			nc.metadataDir = nc.dataDir
		}
		if nc.metadataDir == "" {
			return fmt.Errorf("a controller needs metadata.log.dir or log.dirs")
		}
	}
	return nil
}

func (s *serverSettings) resolveRoles(nc *nodeConfig) error {
	if len(s.roles) == 0 {
		if len(s.voters) > 0 {
			return fmt.Errorf("controller.quorum.voters needs process.roles (broker, controller or broker,controller)")
		}
		nc.brokerRole = true // a ZooKeeper-era file: one broker
		return nil
	}
	for _, r := range s.roles {
		nc.brokerRole = nc.brokerRole || r == "broker"
		nc.controllerRole = nc.controllerRole || r == "controller"
	}
	if len(s.voters) == 0 {
		return fmt.Errorf("process.roles=%s needs controller.quorum.voters", strings.Join(s.roles, ","))
	}
	if s.nodeID < 0 && s.brokerID < 0 {
		return fmt.Errorf("process.roles needs node.id")
	}
	for _, v := range s.voters {
		nc.broker.Cluster.Controllers = append(nc.broker.Cluster.Controllers, v.Addr)
	}
	if !nc.controllerRole {
		return nil
	}
	self := uint64(nc.broker.NodeID)
	for _, v := range s.voters {
		if v.ID == self {
			nc.controller = controller.DefaultConfig(self, s.voters, "")
			nc.controller.Dir = controllerLogDirName
			return nil
		}
	}
	return fmt.Errorf("node.id=%d plays controller but is not in controller.quorum.voters", self)
}

// resolveListeners picks the broker's listener (every listener not named
// in controller.listener.names; sluice serves one) and the controller's.
func (s *serverSettings) resolveListeners(nc *nodeConfig) error {
	isController := map[string]bool{}
	for _, n := range s.controllerNames {
		isController[n] = true
	}
	var brokerNames, controllerNames []string
	for _, n := range s.listenerOrder {
		if proto, ok := s.protocols[n]; ok && proto != "PLAINTEXT" {
			return fmt.Errorf("listener %s speaks %s: sluice speaks PLAINTEXT only", n, proto)
		}
		if isController[n] {
			controllerNames = append(controllerNames, n)
		} else {
			brokerNames = append(brokerNames, n)
		}
	}
	if nc.controllerRole {
		if len(controllerNames) == 0 {
			return fmt.Errorf("a controller needs a listener named in controller.listener.names (%s) in listeners", strings.Join(s.controllerNames, ","))
		}
		nc.controller.Listen = s.listeners[controllerNames[0]]
	}
	if !nc.brokerRole {
		return nil
	}
	switch len(brokerNames) {
	case 0:
		if len(s.listenerOrder) > 0 {
			return fmt.Errorf("listeners has no broker listener (every one is named in controller.listener.names)")
		}
		nc.broker.Advertised = defaultAdvertised(nc.broker.Listen)
	case 1:
		nc.broker.Listen = s.listeners[brokerNames[0]]
		nc.broker.Advertised = defaultAdvertised(nc.broker.Listen)
	default:
		return fmt.Errorf("listeners names %d broker listeners (%s): sluice serves one", len(brokerNames), strings.Join(brokerNames, ","))
	}
	if len(brokerNames) == 1 {
		if a, ok := s.advertised[brokerNames[0]]; ok {
			nc.broker.Advertised = a
		}
	}
	return nil
}

func (s *serverSettings) resolveFlush(nc *nodeConfig) error {
	// Kafka's default for both is Long.MAX_VALUE: never.
	messages := s.flushMessages > 0 && s.flushMessages < math.MaxInt64
	interval := s.flushMs >= 0 && s.flushMs < math.MaxInt64
	switch {
	case messages && interval:
		return fmt.Errorf("log.flush.interval.messages and log.flush.interval.ms are both set: sluice flushes by one rule")
	case messages:
		nc.broker.Log.Flush = storage.FlushPolicy{Mode: storage.FlushEveryMessages, Messages: s.flushMessages}
	case s.flushMs == 0:
		return fmt.Errorf("log.flush.interval.ms=0: want a positive interval")
	case interval:
		nc.broker.Log.Flush = storage.FlushPolicy{Mode: storage.FlushEveryInterval, Interval: time.Duration(s.flushMs) * time.Millisecond}
	case s.flushMessages == math.MaxInt64 || s.flushMs == math.MaxInt64:
		nc.broker.Log.Flush = storage.FlushPolicy{Mode: storage.FlushNever}
	}
	return nil
}

// resolveRetention applies Kafka's precedence: ms over minutes over hours.
func (s *serverSettings) resolveRetention(nc *nodeConfig) {
	for _, r := range []struct{ n, unit int64 }{{s.retentionMs, 1}, {s.retentionMinutes, 60_000}, {s.retentionHours, 3_600_000}} {
		if r.n == -2 {
			continue
		}
		if r.n < 0 {
			nc.broker.Log.RetentionAge = -1
		} else {
			nc.broker.Log.RetentionAge = time.Duration(r.n*r.unit) * time.Millisecond
		}
		break
	}
	if s.rollMs > 0 {
		nc.broker.Log.SegmentAge = time.Duration(s.rollMs) * time.Millisecond
	} else if s.rollHours > 0 {
		nc.broker.Log.SegmentAge = time.Duration(s.rollHours) * time.Hour
	}
	nc.broker.Log.MaxBatchBytes = int(min(int64(nc.broker.Log.MaxBatchBytes), nc.broker.Log.SegmentBytes/2))
}

// parseVoters reads "1@host:port,2@host:port".
func parseVoters(v string) ([]controller.Voter, error) {
	var voters []controller.Voter
	seen := map[uint64]bool{}
	for _, entry := range splitList(v) {
		idText, addr, ok := strings.Cut(entry, "@")
		id, err := strconv.ParseUint(idText, 10, 31)
		if !ok || err != nil || id == 0 || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("%q: want ID@HOST:PORT with an id from 1", entry)
		}
		if seen[id] {
			return nil, fmt.Errorf("voter %d listed twice", id)
		}
		seen[id] = true
		voters = append(voters, controller.Voter{ID: id, Addr: addr})
	}
	if len(voters) == 0 {
		return nil, fmt.Errorf("no voters")
	}
	return voters, nil
}

// parseListeners reads "NAME://host:port,...": an empty host is every
// address.
func parseListeners(v string) (map[string]string, []string, error) {
	m := map[string]string{}
	var order []string
	for _, entry := range splitList(v) {
		name, addr, ok := strings.Cut(entry, "://")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("%q: want NAME://HOST:PORT", entry)
		}
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return nil, nil, fmt.Errorf("%q: no port", entry)
		}
		if _, err := strconv.ParseUint(addr[i+1:], 10, 16); err != nil {
			return nil, nil, fmt.Errorf("%q: port %q is not a number up to 65535", entry, addr[i+1:])
		}
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("listener %s named twice", name)
		}
		m[name] = addr
		order = append(order, name)
	}
	if len(order) == 0 {
		return nil, nil, fmt.Errorf("no listener")
	}
	return m, order, nil
}

func splitList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func intIn(v string, lo, hi int64, dst *int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	if n < lo || n > hi {
		return fmt.Errorf("out of range [%d, %d]", lo, hi)
	}
	*dst = n
	return nil
}

func int64In(v string, lo, hi int64, dst *int64) error { return intIn(v, lo, hi, dst) }

func int32In(v string, lo, hi int64, dst *int32) error {
	var n int64
	if err := intIn(v, lo, hi, &n); err != nil {
		return err
	}
	*dst = int32(n)
	return nil
}

func intValueIn(v string, lo, hi int64, dst *int) error {
	var n int64
	if err := intIn(v, lo, hi, &n); err != nil {
		return err
	}
	*dst = int(n)
	return nil
}

func millis(v string, lo int64, dst *time.Duration) error {
	var n int64
	if err := intIn(v, lo, math.MaxInt64/int64(time.Millisecond), &n); err != nil {
		return err
	}
	*dst = time.Duration(n) * time.Millisecond
	return nil
}

func boolValue(v string, dst *bool) error {
	switch v {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return fmt.Errorf("want true or false")
	}
	return nil
}
