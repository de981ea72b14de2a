package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// checkKafkaCounters reads /metrics: the kafka source shows Flume's
// KafkaSourceCounter names, and once a poll found nothing (it waited
// batchDurationMillis for records) time spent fetching; a kafka channel
// shows KafkaChannelCounter's; the Prometheus format carries them too.
func checkKafkaCounters(t *testing.T, url string, kafkaChannel bool) {
	t.Helper()
	var m map[string]map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n := m["SOURCE.r1"]["KafkaEmptyCount"]; (n != "" && n != "0") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	src := m["SOURCE.r1"]
	if src["KafkaCommitTimer"] == "" || src["KafkaEmptyCount"] == "0" || src["KafkaEventGetTimer"] == "" || src["KafkaEventGetTimer"] == "0" {
		t.Fatalf("kafka source counters: %v", src)
	}
	ch := m["CHANNEL.c1"]
	if _, shown := ch["KafkaEventSendTimer"]; shown != kafkaChannel {
		t.Fatalf("channel counters (kafka channel %v): %v", kafkaChannel, ch)
	}
	if kafkaChannel && (ch["KafkaEventGetTimer"] == "" || ch["KafkaCommitTimer"] == "" || ch["RollbackCount"] == "") {
		t.Fatalf("kafka channel counters: %v", ch)
	}
	resp, err := http.Get(url + "?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(prom), "# TYPE flume_source_kafka_event_get_timer counter\n") {
		t.Fatalf("Prometheus format lacks the kafka source's timer:\n%s", prom)
	}
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
	monitor := freePort(t)
	a := startRealAgent(t, "--conf-file", conf, "--name", "a1", "-Dflume.monitoring.type=http", "-Dflume.monitoring.port="+monitor)
	got := waitLogged(t, a, len(lines))
	if !slices.Equal(got, lines) {
		t.Fatalf("logger logged %d events, want the %d lines in order: %v\nagent:\n%s", len(got), len(lines), got[:min(5, len(got))], a.log)
	}
	if !strings.Contains(a.log.String(), "topic=orders") {
		t.Fatalf("the events carry no topic header:\n%s", a.log)
	}
	checkKafkaCounters(t, "http://127.0.0.1:"+monitor+"/metrics", strings.Contains(channel, "KafkaChannel"))
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
