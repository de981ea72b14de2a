package collector

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// lineClient is a netcat client actor: it sends lines and collects the
// answers.
type lineClient struct {
	c       sim.Conn
	replies bytes.Buffer
	closed  error
	isDown  bool
}

func (l *lineClient) OnOpen(sim.Conn)               {}
func (l *lineClient) OnFrame(_ sim.Conn, f []byte)  { l.replies.Write(f) }
func (l *lineClient) OnClose(_ sim.Conn, err error) { l.closed, l.isDown = err, true }
func (l *lineClient) send(s string)                 { l.c.Send([]byte(s)) }
func (l *lineClient) answers() []string             { return strings.Fields(l.replies.String()) }
func (l *lineClient) replyLines() []string {
	return strings.Split(strings.TrimSuffix(l.replies.String(), "\n"), "\n")
}
func (l *lineClient) count(word string) (n int) {
	for _, a := range l.replyLines() {
		if a == word {
			n++
		}
	}
	return n
}

// agentWorld is a simulated world with an agent node and a client node.
type agentWorld struct {
	w       *world.World
	agent   *Agent
	events  []string
	client  sim.Env
	log     bytes.Buffer
	fatal   error
	starts  int
	cfgText string
}

func newAgentWorld(t *testing.T, seed uint64, text, name string) *agentWorld {
	t.Helper()
	cfg, err := config.Parse(text, name, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	aw := &agentWorld{cfgText: text}
	aw.w = world.New(world.Config{Seed: seed, Log: &aw.log})
	eventLog := sim.LoggerFunc(func(format string, args ...any) {
		aw.events = append(aw.events, fmt.Sprintf(format, args...))
	})
	aw.w.AddNode("collector", func(env sim.Env) {
		aw.starts++
		aw.agent = nil
		Start(cfg, Options{EventLog: eventLog, OnFatal: func(err error) { aw.fatal = err }},
			func(a *Agent) { aw.agent = a })(env)
	})
	aw.w.AddNode("client", func(env sim.Env) { aw.client = env })
	aw.run(100 * time.Millisecond)
	if aw.agent == nil {
		t.Fatalf("agent did not start: %v\n%s", aw.fatal, aw.log.String())
	}
	return aw
}

func (aw *agentWorld) run(d time.Duration) { aw.w.Run(aw.w.Now()+d, 0) }

func (aw *agentWorld) dial(port int) *lineClient {
	l := &lineClient{}
	l.c = aw.client.Net.Dial(fmt.Sprintf("collector:%d", port), sim.ConnOptions{Framing: sim.FrameStream}, l)
	return l
}

// bodies returns the bodies the logger sink logged, decoded from the
// dump's text column.
func (aw *agentWorld) bodies() []string {
	var out []string
	for _, e := range aw.events {
		i := strings.LastIndex(e, "   ")
		out = append(out, strings.TrimSuffix(strings.TrimLeft(e[i:], " "), " }"))
	}
	return out
}

func readSeed(t *testing.T, name string) string {
	t.Helper()
	text, err := os.ReadFile("config/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// TestSeedNetcatMemoryLogger runs the seed's netcat -> memory -> logger
// configuration unmodified: every line is answered OK after its commit and
// logged by the logger sink in Flume's format, in order.
func TestSeedNetcatMemoryLogger(t *testing.T) {
	aw := newAgentWorld(t, 1, readSeed(t, "seed-netcat-memory-logger.conf"), "agent1")
	cl := aw.dial(4141)
	var want []string
	for i := 0; i < 50; i++ {
		line := fmt.Sprintf("line-%d", i)
		want = append(want, line)
		cl.send(line + "\n")
		if i%7 == 0 {
			aw.run(3 * time.Millisecond)
		}
	}
	cl.send("Hello Flume!\r\n")
	want = append(want, "Hello Flume!.")
	aw.run(10 * time.Second)
	if got := cl.count("OK"); got != 51 {
		t.Fatalf("%d OK answers for 51 lines: %q", got, cl.replies.String())
	}
	if got := aw.bodies(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("logged %v\nwant %v", got, want)
	}
	wantLast := "{ headers:{} body: 48 65 6C 6C 6F 20 46 6C 75 6D 65 21 0D          Hello Flume!. }"
	if last := aw.events[len(aw.events)-1]; last != "Event: "+wantLast {
		t.Fatalf("logger format:\n got %q\nwant %q", last, "Event: "+wantLast)
	}
	m := aw.agent.Metrics()
	if m["SOURCE.r1"]["EventAcceptedCount"] != "51" || m["SOURCE.r1"]["EventReceivedCount"] != "51" ||
		m["CHANNEL.c1"]["EventPutSuccessCount"] != "51" || m["CHANNEL.c1"]["EventTakeSuccessCount"] != "51" ||
		m["CHANNEL.c1"]["ChannelSize"] != "0" || m["CHANNEL.c1"]["ChannelFillPercentage"] != "0.0" ||
		m["SINK.k1"]["EventDrainSuccessCount"] != "51" || m["CHANNEL.c1"]["ChannelCapacity"] != "1000" {
		t.Fatalf("metrics %v", m)
	}
}

func TestNetcatMaxLineLength(t *testing.T) {
	text := strings.Replace(readSeed(t, "seed-netcat-memory-logger.conf"), "agent1.sources.r1.channels = c1",
		"agent1.sources.r1.channels = c1\nagent1.sources.r1.max-line-length = 10", 1)
	aw := newAgentWorld(t, 2, text, "agent1")
	cl := aw.dial(4141)
	cl.send("aa\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\ncc\n")
	aw.run(8 * time.Second)
	want := "OK\nFAILED: Event exceeds the maximum length (10 chars, including newline)\n"
	if cl.replies.String() != want || !cl.isDown {
		t.Fatalf("answers %q (closed %v), want %q and a closed connection", cl.replies.String(), cl.isDown, want)
	}
	if got := aw.bodies(); len(got) != 1 || got[0] != "aa" {
		t.Fatalf("logged %v", got)
	}
	if aw.agent.Metrics()["SOURCE.r1"]["EventReadFail"] != "1" {
		t.Fatalf("metrics %v", aw.agent.Metrics()["SOURCE.r1"])
	}
}

const fullChannelConf = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 0.0.0.0
a1.sources.r1.port = 5000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 5
a1.channels.c1.transactionCapacity = 5
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = kafka
a1.sinks.k1.kafka.bootstrap.servers = nowhere:9092
a1.sinks.k1.kafka.topic = t
a1.sinks.k1.batchSize = 5
a1.sinks.k1.channel = c1
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1
`

// TestFullChannelFailsAfterKeepAlive: the only sink cannot deliver (its
// broker does not exist), so the channel stays full; the first five lines
// fill it and are answered OK, each later put fails after keep-alive with
// a FAILED answer and the ChannelWriteFail counter.
func TestFullChannelFailsAfterKeepAlive(t *testing.T) {
	aw := newAgentWorld(t, 3, fullChannelConf, "a1")
	cl := aw.dial(5000)
	for i := 0; i < 12; i++ {
		cl.send(fmt.Sprintf("x%d\n", i))
	}
	aw.run(20 * time.Second)
	ok, failed := cl.count("OK"), 0
	for _, l := range cl.replyLines() {
		if strings.HasPrefix(l, "FAILED: ") && strings.Contains(l, "channel full") {
			failed++
		}
	}
	if ok != 5 || failed != 7 {
		t.Fatalf("%d OK, %d FAILED of 12, want 5 and 7: %q", ok, failed, cl.replies.String())
	}
	if w := aw.agent.Metrics()["SOURCE.r1"]["ChannelWriteFail"]; w != "7" {
		t.Fatalf("ChannelWriteFail %s, want 7", w)
	}
}

const fanOutConf = `a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 1000
a1.sources.r1.batchSize = 50
a1.sources.r1.channels = c1 c2
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c2.type = file
a1.channels.c2.checkpointDir = /var/flume/cp
a1.channels.c2.dataDirs = /var/flume/data
a1.channels.c2.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = logger
a1.sinks.k2.batchSize = 100
a1.sinks.k2.channel = c2
`

// TestReplicatingFanOut: the replicating selector puts every event of the
// seq source into both channels; each sink drains its own.
func TestReplicatingFanOut(t *testing.T) {
	aw := newAgentWorld(t, 4, fanOutConf, "a1")
	aw.run(60 * time.Second)
	m := aw.agent.Metrics()
	if m["SOURCE.r1"]["EventAcceptedCount"] != "1000" || m["SINK.k1"]["EventDrainSuccessCount"] != "1000" ||
		m["SINK.k2"]["EventDrainSuccessCount"] != "1000" || m["CHANNEL.c2"]["EventPutSuccessCount"] != "1000" {
		t.Fatalf("metrics %v", m)
	}
	got := aw.bodies()
	for i, b := range got {
		if b != fmt.Sprint(i) {
			t.Fatalf("logger event %d is %q", i, b)
		}
	}
	if _, err := aw.w.Node("collector").Disk().FS().Stat("var/flume/cp"); err != nil {
		t.Fatalf("file channel directories: %v", err)
	}
}

// TestFanOutIsNotAtomic shows Flume's known weak point, kept on purpose:
// when one required channel is full past keep-alive (its sink cannot
// deliver), the batch fails and the source retries it, duplicating it into
// the channel that committed.
func TestFanOutIsNotAtomic(t *testing.T) {
	text := strings.Replace(fanOutConf, "a1.channels.c1.capacity = 1000\n", "", 1)
	text = strings.Replace(text, "a1.sinks.k1.type = null\n",
		"a1.sinks.k1.type = kafka\na1.sinks.k1.kafka.bootstrap.servers = nowhere:9092\n", 1)
	aw := newAgentWorld(t, 4, text, "a1")
	aw.run(30 * time.Second)
	m := aw.agent.Metrics()
	if m["SOURCE.r1"]["ChannelWriteFail"] == "0" {
		t.Fatalf("source %v\nc1 %v", m["SOURCE.r1"], m["CHANNEL.c1"])
	}
	seen, dups := map[string]bool{}, 0
	for _, b := range aw.bodies() {
		if seen[b] {
			dups++
		}
		seen[b] = true
	}
	if dups == 0 {
		t.Fatalf("file channel side: %d distinct, no duplicates; want the retried batch twice", len(seen))
	}
}

const fileChannelNetcatConf = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 0.0.0.0
a1.sources.r1.port = 6000
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = /flume/cp
a1.channels.c1.dataDirs = /flume/data
a1.channels.c1.checkpointInterval = 2000
a1.channels.c1.maxFileSize = 4096
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`

// TestFileChannelAgentSurvivesPowerLoss: lines answered OK before a power
// loss are all logged by the time the restarted agent drained its
// channel; nothing is logged that was never sent. With Flume's
// comma-separated dataDirs too, every directory holding a log.
func TestFileChannelAgentSurvivesPowerLoss(t *testing.T) {
	threeDirs := strings.Replace(fileChannelNetcatConf, "dataDirs = /flume/data", "dataDirs = /flume/d1, /flume/d2 ,/flume/d3", 1)
	t.Run("dataDirs=1", func(t *testing.T) { agentSurvivesPowerLoss(t, fileChannelNetcatConf, []string{"flume/data"}) })
	t.Run("dataDirs=3", func(t *testing.T) { agentSurvivesPowerLoss(t, threeDirs, []string{"flume/d1", "flume/d2", "flume/d3"}) })
}

func agentSurvivesPowerLoss(t *testing.T, conf string, dataDirs []string) {
	for seed := uint64(1); seed <= 5; seed++ {
		aw := newAgentWorld(t, seed, conf, "a1")
		cl := aw.dial(6000)
		aw.run(time.Millisecond)
		sent := map[string]bool{}
		start := aw.w.Now()
		for i := 0; i < 300; i++ {
			line := fmt.Sprintf("s%d-%d", seed, i)
			sent[line] = true
			aw.w.At(start+time.Duration(i)*100*time.Microsecond, func() { cl.send(line + "\n") })
		}
		// The power goes while lines are still arriving.
		aw.w.Run(start+time.Duration(10+seed*3)*time.Millisecond, 0)
		acked := cl.count("OK")
		if acked == 0 || acked == 300 {
			t.Fatalf("seed %d: %d of 300 acknowledged at the power loss; want some in flight", seed, acked)
		}
		if err := aw.w.PowerLoss("collector"); err != nil {
			t.Fatal(err)
		}
		aw.run(time.Second)
		if err := aw.w.Restart("collector"); err != nil {
			t.Fatal(err)
		}
		aw.run(30 * time.Second)
		if aw.starts != 2 || aw.agent == nil {
			t.Fatalf("seed %d: agent did not restart: %v\n%s", seed, aw.fatal, aw.log.String())
		}
		logged := map[string]bool{}
		for _, b := range aw.bodies() {
			if !sent[b] {
				t.Fatalf("seed %d: logged %q, never sent", seed, b)
			}
			logged[b] = true
		}
		for i := 0; i < acked; i++ {
			if line := fmt.Sprintf("s%d-%d", seed, i); !logged[line] {
				t.Fatalf("seed %d: %s was acknowledged (%d OKs) but never logged after the power loss", seed, line, acked)
			}
		}
		for _, dir := range dataDirs {
			names, err := aw.w.Node("collector").Disk().FS().List(dir)
			if err != nil || len(names) == 0 {
				t.Fatalf("seed %d: data directory %s holds %v (%v), want its log files", seed, dir, names, err)
			}
		}
		t.Logf("seed %d: %d acknowledged before the power loss, %d distinct logged", seed, acked, len(logged))
	}
}

func TestUnsupportedComponentsAreRefusedWithTheirLine(t *testing.T) {
	text := strings.Replace(fanOutConf, "a1.sources.r1.channels = c1 c2",
		"a1.sources.r1.channels = c1 c2\na1.sources.r1.interceptors = f\na1.sources.r1.interceptors.f.type = com.example.Custom$Builder", 1)
	cfg, err := config.Parse(text, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fatal error
	w := world.New(world.Config{Seed: 1})
	w.AddNode("n", Start(cfg, Options{OnFatal: func(err error) { fatal = err }}, nil))
	w.Run(time.Second, 0)
	if fatal == nil || !strings.Contains(fatal.Error(), `line 8: interceptor f: type "com.example.Custom$Builder" is not supported`) {
		t.Fatalf("got %v", fatal)
	}
}

const failoverConf = `a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 200
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
a1.sinkgroups.g1.processor.maxpenalty = 10000
a1.sinks.k1.type = kafka
a1.sinks.k1.kafka.bootstrap.servers = nowhere:9092
a1.sinks.k1.kafka.topic = t
a1.sinks.k1.channel = c1
a1.sinks.k2.type = logger
a1.sinks.k2.batchSize = 50
a1.sinks.k2.channel = c1
`

// TestFailoverSinkGroup: the preferred sink (a Kafka sink to a broker that
// does not exist) fails its batch after the producer's delivery timeout;
// the group rolls back and hands the same events to the next sink, which
// delivers every one.
func TestFailoverSinkGroup(t *testing.T) {
	aw := newAgentWorld(t, 9, failoverConf, "a1")
	aw.run(5 * time.Minute)
	m := aw.agent.Metrics()
	if m["SINK.k1"]["RollbackCount"] == "0" || m["SINK.k1"]["EventDrainSuccessCount"] != "0" ||
		m["SINK.k2"]["EventDrainSuccessCount"] != "200" {
		t.Fatalf("k1 %v\nk2 %v", m["SINK.k1"], m["SINK.k2"])
	}
	seen := map[string]bool{}
	for _, b := range aw.bodies() {
		seen[b] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct events logged, want 200", len(seen))
	}
}

const loadBalanceConf = `a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2 k3
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 3000
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k1 k2 k3
a1.sinkgroups.g1.processor.type = load_balance
a1.sinkgroups.g1.processor.selector = round_robin
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinks.k3.type = logger
a1.sinks.k3.batchSize = 100
a1.sinks.k3.channel = c1
`

// TestLoadBalanceSinkGroup: round robin spreads the batches over the three
// sinks, which together drain every event exactly once.
func TestLoadBalanceSinkGroup(t *testing.T) {
	aw := newAgentWorld(t, 10, loadBalanceConf, "a1")
	aw.run(2 * time.Minute)
	m := aw.agent.Metrics()
	total := 0
	for _, k := range []string{"SINK.k1", "SINK.k2", "SINK.k3"} {
		var n int
		fmt.Sscan(m[k]["EventDrainSuccessCount"], &n)
		if n == 0 {
			t.Fatalf("%s drained nothing: %v", k, m)
		}
		total += n
	}
	if total != 3000 || m["CHANNEL.c1"]["EventTakeSuccessCount"] != "3000" {
		t.Fatalf("drained %d in all; channel %v", total, m["CHANNEL.c1"])
	}
}

// TestSeedNetcatMemoryKafka runs the seed's netcat -> memory -> KafkaSink
// file unmodified in the simulated world, with a sluice broker on the
// seed's first broker host, m1 (m2 and m3 do not exist, as a bootstrap
// list allows), and reads the topic back with a consumer.
func TestSeedNetcatMemoryKafka(t *testing.T) {
	text := readSeed(t, "seed-netcat-memory-kafka.conf")
	cfg, err := config.Parse(text, "agent1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	w := world.New(world.Config{Seed: 11, Log: &log})
	w.AddNode("m1", broker.Start(broker.DefaultConfig(), nil))
	var agent *Agent
	w.AddNode("collector", Start(cfg, Options{}, func(a *Agent) { agent = a }))
	var client sim.Env
	w.AddNode("client", func(env sim.Env) { client = env })
	w.Run(time.Second, 0)
	if agent == nil {
		t.Fatalf("agent did not start:\n%s", log.String())
	}
	cl := &lineClient{}
	cl.c = client.Net.Dial("collector:4141", sim.ConnOptions{Framing: sim.FrameStream}, cl)
	var want []string
	for i := 0; i < 200; i++ {
		want = append(want, fmt.Sprintf("User action %d", i))
		cl.send(want[i] + "\n")
	}
	w.Run(w.Now()+20*time.Second, 0)
	if n := cl.count("OK"); n != 200 {
		t.Fatalf("%d OKs for 200 lines", n)
	}
	co, err := kafka.NewConsumer(client, kafka.ConsumerConfig{Bootstrap: []string{"m1:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Assign([]kafka.TopicPartition{{Topic: "mylog", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	var poll func(kafka.PollResult)
	poll = func(r kafka.PollResult) {
		for _, rec := range r.Records {
			got = append(got, string(rec.Value))
		}
		if len(got) < len(want) {
			co.Poll(poll)
		}
	}
	co.Poll(poll)
	w.Run(w.Now()+20*time.Second, 0)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("topic mylog holds %d records, want the 200 lines in order; first %v\n%s", len(got), got[:min(len(got), 3)], log.String())
	}
	m := agent.Metrics()["SINK.k1"]
	if m["EventDrainSuccessCount"] != "200" || m["BatchCompleteCount"] == "0" {
		t.Fatalf("sink metrics %v", m)
	}
	// Flume's KafkaSinkCounter: the time producing batches took.
	if _, ok := m["KafkaEventSendTimer"]; !ok {
		t.Fatalf("sink metrics lack KafkaEventSendTimer: %v", m)
	}
	if k := agent.runners[0].members[0].counters.Kafka; k == nil || k.KafkaEventSendTimer <= 0 {
		t.Fatalf("kafka sink counters %+v", k)
	}
	if _, ok := agent.Metrics()["CHANNEL.c1"]["KafkaEventSendTimer"]; ok {
		t.Fatalf("a memory channel shows Kafka counters: %v", agent.Metrics()["CHANNEL.c1"])
	}
}

func TestStopDrainsAndCheckpoints(t *testing.T) {
	aw := newAgentWorld(t, 6, fileChannelNetcatConf, "a1")
	cl := aw.dial(6000)
	for i := 0; i < 100; i++ {
		cl.send(fmt.Sprintf("d%d\n", i))
	}
	aw.run(5 * time.Millisecond)
	stopped := false
	aw.agent.Stop(func() { stopped = true })
	aw.run(15 * time.Second)
	if !stopped {
		t.Fatal("Stop did not finish")
	}
	acked := cl.count("OK")
	if len(aw.bodies()) < acked {
		t.Fatalf("%d logged, %d acknowledged before stop", len(aw.bodies()), acked)
	}
	if _, err := aw.w.Node("collector").Disk().FS().Stat("flume/cp/checkpoint"); err != nil {
		t.Fatalf("no checkpoint after a graceful stop: %v", err)
	}
}

const multiplexConf = `a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 30
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = dc ts
a1.sources.r1.interceptors.dc.type = static
a1.sources.r1.interceptors.dc.key = dc
a1.sources.r1.interceptors.dc.value = east
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = dc
a1.sources.r1.selector.mapping.east = c2
a1.sources.r1.selector.mapping.west = c1
a1.sources.r1.selector.default = c1
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = logger
a1.sinks.k2.channel = c2
`

// TestMultiplexingOnAnInterceptedHeader: the static interceptor sets
// dc=east, the multiplexing selector routes on it to c2 only, and the
// timestamp interceptor's header shows in the logger's dump.
func TestMultiplexingOnAnInterceptedHeader(t *testing.T) {
	aw := newAgentWorld(t, 8, multiplexConf, "a1")
	aw.run(30 * time.Second)
	m := aw.agent.Metrics()
	if m["CHANNEL.c2"]["EventPutSuccessCount"] != "30" || m["CHANNEL.c1"]["EventPutSuccessCount"] != "0" {
		t.Fatalf("routing: c1 %v, c2 %v", m["CHANNEL.c1"], m["CHANNEL.c2"])
	}
	wantPrefix := fmt.Sprintf("Event: { headers:{dc=east, timestamp=%d} body: 30", world.DefaultEpoch.UnixMilli())
	if len(aw.events) != 30 || !strings.HasPrefix(aw.events[0], wantPrefix) {
		t.Fatalf("%d events; first %q, want prefix %q", len(aw.events), aw.events[0], wantPrefix)
	}
}

// TestAgentRunIsDeterministic: one seed, the same trace, through a power
// loss under a file channel.
func TestAgentRunIsDeterministic(t *testing.T) {
	run := func(seed uint64) uint64 {
		aw := newAgentWorld(t, seed, fileChannelNetcatConf, "a1")
		cl := aw.dial(6000)
		for i := 0; i < 100; i++ {
			line := fmt.Sprintf("d%d\n", i)
			aw.w.At(aw.w.Now()+time.Duration(i)*200*time.Microsecond, func() { cl.send(line) })
		}
		aw.run(7 * time.Millisecond)
		aw.w.PowerLoss("collector")
		aw.run(time.Second)
		aw.w.Restart("collector")
		aw.run(10 * time.Second)
		return aw.w.TraceHash()
	}
	if a, b := run(21), run(21); a != b {
		t.Fatalf("trace hashes differ: %x and %x", a, b)
	}
	if run(21) == run(22) {
		t.Fatal("two seeds gave one trace hash: the hash does not see the run")
	}
}

// TestKafkaSinkRetriesThroughABrokerCrash: the broker dies while the
// agent is delivering and stays down past the producer's delivery timeout;
// the sink rolls back, backs off and sends the whole batch again once the
// broker is back, so every line answered OK reaches
// the topic (some more than once: Flume's at-least-once).
func TestKafkaSinkRetriesThroughABrokerCrash(t *testing.T) {
	text := readSeed(t, "seed-netcat-memory-kafka.conf")
	cfg, err := config.Parse(text, "agent1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	w := world.New(world.Config{Seed: 12, Log: &log})
	w.AddNode("m1", broker.Start(broker.DefaultConfig(), nil))
	var agent *Agent
	w.AddNode("collector", Start(cfg, Options{}, func(a *Agent) { agent = a }))
	var client sim.Env
	w.AddNode("client", func(env sim.Env) { client = env })
	w.Run(time.Second, 0)
	cl := &lineClient{}
	cl.c = client.Net.Dial("collector:4141", sim.ConnOptions{Framing: sim.FrameStream}, cl)
	start := w.Now()
	for i := 0; i < 600; i++ {
		line := fmt.Sprintf("order-%d", i)
		w.At(start+time.Duration(i)*5*time.Millisecond, func() { cl.send(line + "\n") })
	}
	// Down longer than the producer's 30 s delivery timeout, so its own
	// retries give up and the sink's rollback takes over.
	w.At(start+time.Second, func() { w.Kill("m1") })
	w.At(start+45*time.Second, func() { w.Restart("m1") })
	w.Run(start+120*time.Second, 0)
	if n := cl.count("OK"); n != 600 {
		t.Fatalf("%d OKs for 600 lines", n)
	}
	co, err := kafka.NewConsumer(client, kafka.ConsumerConfig{Bootstrap: []string{"m1:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	co.Assign([]kafka.TopicPartition{{Topic: "mylog", Partition: 0}})
	seen := map[string]int{}
	total := 0
	var poll func(kafka.PollResult)
	poll = func(r kafka.PollResult) {
		for _, rec := range r.Records {
			seen[string(rec.Value)]++
			total++
		}
		co.Poll(poll)
	}
	co.Poll(poll)
	w.Run(w.Now()+10*time.Second, 0)
	for i := 0; i < 600; i++ {
		if seen[fmt.Sprintf("order-%d", i)] == 0 {
			t.Fatalf("order-%d acknowledged by the agent but not in the topic (%d records read)\n%s", i, total, log.String())
		}
	}
	m := agent.Metrics()["SINK.k1"]
	if m["RollbackCount"] == "0" {
		t.Fatalf("the sink never rolled back through the broker's crash: %v", m)
	}
	t.Logf("%d records for 600 lines (%d duplicates); sink %v", total, total-600, m)
}

// TestNetcatFloodThroughFileChannel: a client that never waits for answers
// sends 100,000 lines in large chunks; with batches pipelined per
// connection and group commit, every line reaches the sink and the
// connection stays open.
func TestNetcatFloodThroughFileChannel(t *testing.T) {
	text := strings.Replace(fileChannelNetcatConf, "a1.sinks.k1.type = logger", "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 1000", 1)
	text = strings.Replace(text, "a1.channels.c1.maxFileSize = 4096", "a1.channels.c1.transactionCapacity = 1000", 1)
	aw := newAgentWorld(t, 14, text, "a1")
	cl := aw.dial(6000)
	chunk := strings.Repeat(strings.Repeat("x", 99)+"\n", 1000)
	for i := 0; i < 100; i++ {
		cl.send(chunk)
	}
	aw.run(30 * time.Second)
	m := aw.agent.Metrics()
	if cl.isDown || m["SINK.k1"]["EventDrainSuccessCount"] != "100000" || cl.count("OK") != 100000 {
		t.Fatalf("closed %v, %d OKs; metrics %v", cl.isDown, cl.count("OK"), m)
	}
}
