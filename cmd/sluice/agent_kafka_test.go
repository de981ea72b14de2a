package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAgentKafkaSourceFromSluiceBroker runs a real agent whose kafka
// source (Flume's class name and keys) reads a topic of a real sluice
// broker that kcat produced to, into a memory channel and a logger sink:
// every line kcat wrote is logged, in order (one partition), and the
// group's offsets are committed after the channel commits.
func TestAgentKafkaSourceFromSluiceBroker(t *testing.T) {
	runKafkaSourceAgent(t, "a1.channels.c1.type = memory\n")
}

// TestAgentKafkaChannelOnSluiceBroker is the same agent with a kafka
// channel on the same broker between its source and sink.
func TestAgentKafkaChannelOnSluiceBroker(t *testing.T) {
	runKafkaSourceAgent(t, `a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = BROKER
a1.channels.c1.kafka.topic = orders-channel
a1.channels.c1.kafka.consumer.group.id = flume-channel
`)
}

func runKafkaSourceAgent(t *testing.T, channel string) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is not installed (Debian: apt-get install kcat); .ci/run installs it")
	}
	b := startRealBroker(t, t.TempDir(), "")
	var lines []string
	for i := 0; i < 100; i++ {
		lines = append(lines, fmt.Sprintf("order-%03d", i))
	}
	produce := exec.Command("kcat", "-b", b.addr, "-P", "-t", "orders")
	produce.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	conf := filepath.Join(t.TempDir(), "kafka-source.conf")
	text := fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = %s
a1.sources.r1.kafka.topics = orders
a1.sources.r1.kafka.consumer.group.id = flume-orders
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.batchSize = 30
a1.sources.r1.batchDurationMillis = 200
a1.sources.r1.channels = c1
%sa1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`, b.addr, strings.ReplaceAll(channel, "BROKER", b.addr))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startRealAgent(t, "--conf-file", conf, "--name", "a1")
	got := waitLogged(t, a, len(lines))
	if !slices.Equal(got, lines) {
		t.Fatalf("logger logged %d events, want the %d lines in order: %v\nagent:\n%s", len(got), len(lines), got[:min(5, len(got))], a.log)
	}
	if !strings.Contains(a.log.String(), "topic=orders") {
		t.Fatalf("the events carry no topic header:\n%s", a.log)
	}
	// The group's offset reaches the log end once the last poll's channel
	// commit is done.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command(sluiceBinary(t), "groups", "--bootstrap-server", b.addr, "--describe", "--group", "flume-orders", "--json").Output()
		var desc struct {
			Partitions []groupPartition `json:"partitions"`
		}
		if err == nil && json.Unmarshal(out, &desc) == nil && len(desc.Partitions) == 1 && desc.Partitions[0].Committed == int64(len(lines)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group flume-orders did not commit offset %d: %v %s\nagent:\n%s", len(lines), err, out, a.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
