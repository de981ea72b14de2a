package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/storage"
)

// TestServerPropertiesSeedFile: the three-broker tutorial's file (a
// ZooKeeper-era broker) is accepted as one broker, zookeeper.connect
// warned about with its line.
func TestServerPropertiesSeedFile(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "seed_002_server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	nc, warnings, err := parseServerProperties("server.properties", string(text))
	if err != nil {
		t.Fatal(err)
	}
	if !nc.brokerRole || nc.controllerRole || nc.broker.NodeID != 1 || nc.dataDir != "/root/kafka/logs" || len(nc.broker.Cluster.Controllers) != 0 {
		t.Fatalf("seed file read as roles broker=%v controller=%v, id %d, dir %q, controllers %v",
			nc.brokerRole, nc.controllerRole, nc.broker.NodeID, nc.dataDir, nc.broker.Cluster.Controllers)
	}
	want := []string{"server.properties:8: unknown key zookeeper.connect, ignored"}
	if !reflect.DeepEqual(warnings, want) {
		t.Fatalf("warnings %q, want %q", warnings, want)
	}
}

// TestServerPropertiesCombinedNode reads a KRaft combined-mode file as
// Kafka's quickstart writes it.
func TestServerPropertiesCombinedNode(t *testing.T) {
	text := `process.roles=broker,controller
node.id=2
controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097
listeners=PLAINTEXT://:9094,CONTROLLER://127.0.0.1:9095
advertised.listeners=PLAINTEXT://localhost:9094
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
num.network.threads=3
log.dirs=/tmp/kraft-combined-logs
metadata.log.dir=/tmp/kraft-metadata
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=true
log.flush.interval.messages=10000
log.segment.bytes=1073741824
log.retention.hours=168
log.retention.minutes=60
log.retention.bytes=-1
replica.lag.time.max.ms=10000
offsets.topic.num.partitions=10
offsets.topic.replication.factor=2
`
	nc, warnings, err := parseServerProperties("server.properties", text)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"server.properties:9: unknown key num.network.threads, ignored"}; !reflect.DeepEqual(warnings, want) {
		t.Fatalf("warnings %q, want %q", warnings, want)
	}
	b := nc.broker
	checks := []struct {
		what      string
		got, want any
	}{
		{"roles", [2]bool{nc.brokerRole, nc.controllerRole}, [2]bool{true, true}},
		{"node id", b.NodeID, int32(2)},
		{"controllers", b.Cluster.Controllers, []string{"127.0.0.1:9093", "127.0.0.1:9095", "127.0.0.1:9097"}},
		{"broker listen", b.Listen, ":9094"},
		{"advertised", b.Advertised, "localhost:9094"},
		{"controller listen", nc.controller.Listen, "127.0.0.1:9095"},
		{"controller id", nc.controller.ID, uint64(2)},
		{"voters", len(nc.controller.Voters), 3},
		{"controller log", nc.controller.Dir, controllerLogDirName},
		{"data dir", nc.dataDir, "/tmp/kraft-combined-logs"},
		{"metadata dir", nc.metadataDir, "/tmp/kraft-metadata"},
		{"partitions", b.NumPartitions, int32(3)},
		{"replication factor", b.Cluster.DefaultReplicationFactor, int16(3)},
		{"min insync", b.MinInsyncReplicas, 2},
		{"unclean", b.Cluster.UncleanLeaderElection, true},
		{"flush", b.Log.Flush, storage.FlushPolicy{Mode: storage.FlushEveryMessages, Messages: 10000}},
		{"segment", b.Log.SegmentBytes, int64(1 << 30)},
		{"retention (minutes win over hours)", b.Log.RetentionAge, time.Hour},
		{"retention bytes", b.Log.RetentionBytes, int64(-1)},
		{"lag", b.Cluster.ReplicaLagTimeMax, 10 * time.Second},
		{"offsets topic partitions", b.Groups.Partitions, int32(10)},
		{"offsets topic replication factor", b.Groups.ReplicationFactor, int16(2)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestServerPropertiesRolesAndDefaults: a controller alone keeps its log
// in log.dirs when metadata.log.dir is not given; Kafka's never-flush
// value is no fsync; retention in ms wins; a broker alone needs no
// controller listener.
func TestServerPropertiesRolesAndDefaults(t *testing.T) {
	ctl, _, err := parseServerProperties("c.properties", `process.roles=controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
log.dirs=/var/ctl`)
	if err != nil {
		t.Fatal(err)
	}
	if ctl.brokerRole || !ctl.controllerRole || ctl.metadataDir != "/var/ctl" || ctl.controller.Voters[0] != (controller.Voter{ID: 1, Addr: "127.0.0.1:9093"}) {
		t.Fatalf("controller alone: broker=%v controller=%v metadata dir %q voters %v", ctl.brokerRole, ctl.controllerRole, ctl.metadataDir, ctl.controller.Voters)
	}
	b, _, err := parseServerProperties("b.properties", `process.roles=broker
node.id=4
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092
controller.listener.names=CONTROLLER
log.dirs=/var/b
log.flush.interval.messages=9223372036854775807
log.retention.ms=-1
log.retention.hours=1
log.segment.bytes=1000`)
	if err != nil {
		t.Fatal(err)
	}
	if b.controllerRole || b.broker.Listen != "127.0.0.1:9092" || b.broker.Log.Flush.Mode != storage.FlushNever ||
		b.broker.Log.RetentionAge != -1 || b.broker.Log.MaxBatchBytes != 500 {
		t.Fatalf("broker alone: controller=%v listen %q flush %v retention %v max batch %d",
			b.controllerRole, b.broker.Listen, b.broker.Log.Flush, b.broker.Log.RetentionAge, b.broker.Log.MaxBatchBytes)
	}
	bare, _, err := parseServerProperties("bare.properties", "log.dirs=/d\n")
	if err != nil {
		t.Fatal(err)
	}
	if bare.broker.Log.Flush.Mode != storage.FlushGroupCommit || bare.broker.Listen != ":9092" || bare.broker.Advertised != "localhost:9092" {
		t.Fatalf("bare file: flush %v listen %q advertised %q", bare.broker.Log.Flush, bare.broker.Listen, bare.broker.Advertised)
	}
}

// TestServerPropertiesBadValues: every refusal names the file, the line,
// the key and its value, and says what is wanted.
func TestServerPropertiesBadValues(t *testing.T) {
	cases := []struct{ text, want string }{
		{"log.dirs=/d\nnum.partitions=many", "f:2: num.partitions=many: not an integer"},
		{"log.dirs=/d\nnum.partitions=0", "f:2: num.partitions=0: out of range [1, 2147483647]"},
		{"log.dirs=/d\nmin.insync.replicas=-1", "f:2: min.insync.replicas=-1: out of range"},
		{"log.dirs=/d\nunclean.leader.election.enable=yes", "f:2: unclean.leader.election.enable=yes: want true or false"},
		{"log.dirs=/d\ndefault.replication.factor=40000", "f:2: default.replication.factor=40000: out of range [1, 32767]"},
		{"log.dirs=/d\nlog.segment.bytes=3000000000", "f:2: log.segment.bytes=3000000000: out of range"},
		{"log.dirs=/a,/b", "f:1: log.dirs=/a,/b: 2 directories: sluice keeps one log directory per broker"},
		{"log.dirs=/d\nprocess.roles=broker,zookeeper", `f:2: process.roles=broker,zookeeper: role "zookeeper"`},
		{"log.dirs=/d\ncontroller.quorum.voters=1@h:1,x@h:2", `f:2: controller.quorum.voters=1@h:1,x@h:2: "x@h:2": want ID@HOST:PORT`},
		{"log.dirs=/d\ncontroller.quorum.voters=1@h:1,1@h:2", "voter 1 listed twice"},
		{"log.dirs=/d\nlisteners=PLAINTEXT:9092", `f:2: listeners=PLAINTEXT:9092: "PLAINTEXT:9092": want NAME://HOST:PORT`},
		{"log.dirs=/d\nlisteners=PLAINTEXT://:http", `port "http" is not a number`},
		{"log.dirs=/d\nlog.flush.interval.ms=0", "log.flush.interval.ms=0: want a positive interval"},
		{"log.dirs=/d\nlog.flush.interval.ms=10\nlog.flush.interval.messages=5", "both set"},
		{"log.dirs=/d\nbroker.id=1\nnode.id=2", "f: node.id=2 and broker.id=1 differ"},
		{"node.id=1", "f: log.dirs is missing"},
		{"log.dirs=/d\ncontroller.quorum.voters=1@h:1", "controller.quorum.voters needs process.roles"},
		{"log.dirs=/d\nprocess.roles=broker", "process.roles=broker needs controller.quorum.voters"},
		{"log.dirs=/d\nprocess.roles=broker,controller\nnode.id=4\ncontroller.quorum.voters=1@h:1\nlisteners=PLAINTEXT://:1,CONTROLLER://:2\ncontroller.listener.names=CONTROLLER",
			"node.id=4 plays controller but is not in controller.quorum.voters"},
		{"log.dirs=/d\nprocess.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@h:1\nlisteners=PLAINTEXT://:1",
			"a controller needs a listener named in controller.listener.names"},
		{"log.dirs=/d\nlisteners=PLAINTEXT://:1,SSL://:2", "listeners names 2 broker listeners (PLAINTEXT,SSL): sluice serves one"},
		{"log.dirs=/d\nlisteners=SSL://:2\nlistener.security.protocol.map=SSL:SSL", "listener SSL speaks SSL: sluice speaks PLAINTEXT only"},
	}
	for _, c := range cases {
		_, _, err := parseServerProperties("f", c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.text, err, c.want)
		}
	}
	// Every bad line is reported, not only the first.
	_, _, err := parseServerProperties("f", "log.dirs=/d\nnum.partitions=x\nmin.insync.replicas=y")
	if err == nil || !strings.Contains(err.Error(), "f:2: num.partitions") || !strings.Contains(err.Error(), "f:3: min.insync.replicas") {
		t.Fatalf("two bad lines: %v", err)
	}
}

// TestServerPropertiesCommandLine runs the binary: a bad value exits 2
// naming key and line, after the warnings; a flag given wins over the
// file (the broker serves on --listen, not on the file's listener).
func TestServerPropertiesCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.properties")
	os.WriteFile(bad, []byte("log.dirs="+dir+"\nfancy.key=1\nnum.partitions=lots\n"), 0o644)
	code, out := run(t, dir, "broker", "--config", bad)
	want := fmt.Sprintf("sluice: warning: %s:2: unknown key fancy.key, ignored\nsluice: --config: %s:3: num.partitions=lots: not an integer\n", bad, bad)
	if code != exitUsage || out != want {
		t.Fatalf("bad file: exit %d with\n%q\nwant %d and\n%q", code, out, exitUsage, want)
	}
	code, out = run(t, dir, "broker", "--config", filepath.Join(dir, "missing.properties"))
	if code != exitUsage || !strings.Contains(out, "missing.properties: no such file") {
		t.Fatalf("missing file: exit %d with %q", code, out)
	}

	fileAddr, flagAddr := freeAddr(t), freeAddr(t)
	good := filepath.Join(dir, "server.properties")
	os.WriteFile(good, []byte(fmt.Sprintf("broker.id=7\nlog.dirs=%s\nlisteners=PLAINTEXT://%s\n", filepath.Join(dir, "logs"), fileAddr)), 0o644)
	startRealBroker(t, dir, flagAddr, "--config", good)
	if c, err := net.DialTimeout("tcp", fileAddr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("the broker serves on the file's %s though --listen said %s", fileAddr, flagAddr)
	}
	meta := kcat(t, "", "-L", "-b", flagAddr)
	if !strings.Contains(meta, "broker 7 at "+flagAddr) {
		t.Fatalf("kcat -L does not show broker 7 (the file's id) at %s:\n%s", flagAddr, meta)
	}

	// The tutorial's file runs as it is, its log directory moved by --data.
	seed, err := filepath.Abs(filepath.Join("testdata", "seed_002_server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := freeAddr(t)
	startRealBroker(t, t.TempDir(), seedAddr, "--config", seed)
	if meta := kcat(t, "", "-L", "-b", seedAddr); !strings.Contains(meta, "broker 1 at "+seedAddr) {
		t.Fatalf("the seed's broker.id=1 broker is not listed:\n%s", meta)
	}
}
