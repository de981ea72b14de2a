package collector

import (
	"bytes"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// kafkaSourceConf reads topic events from the broker on m1 into a file
// channel drained by a logger sink.
const kafkaSourceConf = `
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = m1:9092
a1.sources.r1.kafka.topics = events
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.kafka.consumer.session.timeout.ms = 6000
a1.sources.r1.batchSize = 20
a1.sources.r1.batchDurationMillis = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = logger
a1.sinks.k1.batchSize = 50
a1.sinks.k1.channel = c1
`

// kafkaPipeline is a simulated world of a broker (m1), a producer and an
// agent whose logger sink's events are kept across the agent's restarts.
type kafkaPipeline struct {
	w      *world.World
	log    bytes.Buffer
	agent  *Agent
	starts int
	fatal  error
	logged map[string]int
	acked  map[string]bool
	sent   map[string]bool
	prod   *kafka.Producer
	// killArmed counts kills waiting for a poll to fall in.
	killArmed int
	kills     int
	// seen is how many distinct records the sink had at each kill.
	seen []int
	rand *mathrand.Rand
}

func newKafkaPipeline(t *testing.T, seed uint64, text string, bugs faults.Bugs) *kafkaPipeline {
	t.Helper()
	cfg, err := config.Parse(text, "a1", nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p := &kafkaPipeline{logged: map[string]int{}, acked: map[string]bool{}, sent: map[string]bool{},
		rand: mathrand.New(mathrand.NewPCG(seed, 7))}
	p.w = world.New(world.Config{Seed: seed, Log: &p.log})
	p.w.AddNode("m1", broker.Start(broker.DefaultConfig(), nil))
	eventLog := sim.LoggerFunc(func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		i := strings.LastIndex(line, "   ")
		p.logged[strings.TrimSuffix(strings.TrimLeft(line[i:], " "), " }")]++
	})
	p.w.AddNode("collector", func(env sim.Env) {
		p.starts++
		p.agent = nil
		Start(cfg, Options{EventLog: eventLog, Bugs: bugs, OnFatal: func(err error) { p.fatal = err }},
			func(a *Agent) {
				p.agent = a
				if src, ok := a.Source("r1").(*KafkaSource); ok {
					src.onHandle = func() { p.onHandle(src) }
				}
			})(env)
	})
	p.w.AddNode("producer", func(env sim.Env) {
		prod, err := kafka.NewProducer(env, kafka.ProducerConfig{
			Bootstrap: []string{"m1:9092"}, Acks: kafka.AcksAll, AllowAutoTopicCreation: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		p.prod = prod
	})
	p.w.Run(100*time.Millisecond, 0)
	if p.agent == nil {
		t.Fatalf("agent did not start: %v\n%s", p.fatal, p.log.String())
	}
	return p
}

// produce sends records first..first+n-1 to topic, one every interval
// from now.
func (p *kafkaPipeline) produce(topic string, first, n int, interval time.Duration) {
	start := p.w.Now()
	for i := first; i < first+n; i++ {
		value := fmt.Sprintf("e%04d", i)
		p.sent[value] = true
		p.w.At(start+time.Duration(i-first)*interval, func() {
			err := p.prod.Send(kafka.Record{Topic: topic, Value: []byte(value)}, func(r kafka.Result) {
				if r.Outcome == history.OK {
					p.acked[value] = true
				}
			})
			if err != nil {
				panic(err)
			}
			p.prod.Flush()
		})
	}
}

// lost lists the acknowledged records the sink never got, and checks that
// it got nothing that was never sent.
func (p *kafkaPipeline) lost(t *testing.T) []string {
	t.Helper()
	for body := range p.logged {
		if !p.sent[body] {
			t.Fatalf("the sink got %q, never sent", body)
		}
	}
	var lost []string
	for value := range p.acked {
		if p.logged[value] == 0 {
			lost = append(lost, value)
		}
	}
	return lost
}

// killWhileBusyAfter arms a kill of the agent: the first poll its kafka
// source is handed after at is followed, a drawn fraction of half a millisecond
// later, by the kill if the source is still putting it (else the kill is
// armed again); the agent restarts 200 ms after.
func (p *kafkaPipeline) killWhileBusyAfter(at time.Duration) {
	p.w.At(at, func() { p.killArmed++ })
}

func (p *kafkaPipeline) onHandle(src *KafkaSource) {
	// A kill waits for the sink to have made progress since the last one,
	// so that every kill finds the agent delivering.
	if p.killArmed == 0 || (len(p.seen) > 0 && len(p.logged) <= p.seen[len(p.seen)-1]) {
		return
	}
	p.killArmed--
	p.w.At(p.w.Now()+time.Duration(p.rand.Int64N(int64(500*time.Microsecond))), func() {
		if !src.busy() || p.agent == nil {
			p.killArmed++
			return
		}
		if err := p.w.Kill("collector"); err != nil {
			panic(err)
		}
		p.agent = nil
		p.kills++
		p.seen = append(p.seen, len(p.logged))
		p.w.At(p.w.Now()+200*time.Millisecond, func() {
			if err := p.w.Restart("collector"); err != nil {
				panic(err)
			}
		})
	})
}

// runKafkaSourceKills produces 1000 records in bursts of 50 over 100 s
// while the agent is killed four times, each time while its source puts a
// poll's records (each restart waits for the group to drop the dead
// member, a session timeout), then lets it drain; it returns the pipeline.
func runKafkaSourceKills(t *testing.T, seed uint64, bugs faults.Bugs) *kafkaPipeline {
	t.Helper()
	return runKafkaPipelineKills(t, seed, kafkaSourceConf, bugs)
}

func runKafkaPipelineKills(t *testing.T, seed uint64, conf string, bugs faults.Bugs) *kafkaPipeline {
	t.Helper()
	p := newKafkaPipeline(t, seed, conf, bugs)
	start := p.w.Now()
	for burst := 0; burst < 20; burst++ {
		p.w.At(start+time.Duration(burst)*5*time.Second, func() { p.produce("events", burst*50, 50, 0) })
	}
	jitter := time.Duration(seed%7) * 37 * time.Millisecond
	for i := 0; i < 4; i++ {
		p.killWhileBusyAfter(start + time.Duration(8+15*i)*time.Second + jitter)
	}
	p.w.Run(start+180*time.Second, 0)
	// Every kill must find the agent delivering, or the test proves nothing.
	seen := p.seen
	for i := range seen {
		if seen[i] == 0 || seen[i] >= 1000 || (i > 0 && seen[i] <= seen[i-1]) {
			t.Fatalf("seed %d: distinct records delivered at the kills %v: the agent was not delivering between them\n%s", seed, seen, p.log.String())
		}
	}
	if p.kills != 4 || p.starts != 5 || p.agent == nil {
		t.Fatalf("seed %d: %d kills and %d starts, want 4 and 5: %v\n%s", seed, p.kills, p.starts, p.fatal, grepLines(p.log.String(), "world"))
	}
	if len(p.acked) != 1000 {
		t.Fatalf("seed %d: %d of 1000 records acknowledged by the broker", seed, len(p.acked))
	}
	return p
}

// TestKafkaSourceDeliversThroughAgentKills: records produced while the
// agent is killed and restarted four times all reach its sink, because
// the source commits its group's offsets only after the channel commit; a
// restarted agent reads again from the committed offsets (duplicates, not
// losses).
func TestKafkaSourceDeliversThroughAgentKills(t *testing.T) {
	duplicates := 0
	for seed := uint64(1); seed <= 4; seed++ {
		p := runKafkaSourceKills(t, seed, nil)
		if lost := p.lost(t); len(lost) > 0 {
			t.Fatalf("seed %d: %d acknowledged records never reached the sink, e.g. %v\n%s", seed, len(lost), lost[:min(3, len(lost))], p.log.String())
		}
		total := 0
		for _, n := range p.logged {
			total += n
		}
		duplicates += total - 1000
		m := p.agent.Metrics()["SOURCE.r1"]
		t.Logf("seed %d: 1000 records, %d delivered (%d duplicates); last run's source %v", seed, total, total-1000, m)
		// Flume's KafkaSourceCounter: time fetching and committing, and
		// the polls that found nothing (the last run idles at the end).
		k := p.agent.Source("r1").Counters().Kafka
		if k == nil || k.KafkaEventGetTimer <= 0 || k.KafkaCommitTimer <= 0 || k.KafkaEmptyCount == 0 || m["KafkaEmptyCount"] == "" || m["KafkaCommitTimer"] == "" {
			t.Fatalf("seed %d: kafka source counters %+v, metrics %v", seed, k, m)
		}
	}
	if duplicates == 0 {
		t.Fatal("no record was delivered twice: no kill fell between a channel commit and its offset commit")
	}
}

// TestKafkaSourceCommitBeforePutLoses: with the planted bug
// kafka-source-commit-before-put the offsets are committed before the
// channel commit, and a kill in between loses records for good.
func TestKafkaSourceCommitBeforePutLoses(t *testing.T) {
	bugs := faults.Bugs{faults.BugKafkaSourceCommitBeforePut: true}
	for seed := uint64(1); seed <= 20; seed++ {
		p := runKafkaSourceKills(t, seed, bugs)
		if len(p.logged) == 0 {
			t.Fatalf("seed %d: the sink got nothing\n%s", seed, p.log.String())
		}
		if lost := p.lost(t); len(lost) > 0 {
			t.Logf("seed %d: %d acknowledged records lost, e.g. %v", seed, len(lost), lost[:min(3, len(lost))])
			return
		}
	}
	t.Fatal("the planted bug kafka-source-commit-before-put lost nothing in 20 seeds")
}

// TestKafkaSourceRefusesTopicsRegex: a topic pattern is refused by name.
func TestKafkaSourceRefusesTopicsRegex(t *testing.T) {
	text := strings.Replace(kafkaSourceConf, "a1.sources.r1.kafka.topics = events", "a1.sources.r1.kafka.topics.regex = ^ev.*$", 1)
	cfg, err := config.Parse(text, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fatal error
	w := world.New(world.Config{Seed: 1, Log: &bytes.Buffer{}})
	w.AddNode("collector", Start(cfg, Options{OnFatal: func(err error) { fatal = err }}, nil))
	w.Run(time.Second, 0)
	if fatal == nil || !strings.Contains(fatal.Error(), "kafka.topics.regex") {
		t.Fatalf("agent error %v, want kafka.topics.regex named", fatal)
	}
}

// grepLines keeps the lines of text that contain word.
func grepLines(text, word string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestKafkaSourceAndChannelConfig: Flume's class names and keys, with
// Flume's defaults, and a missing bootstrap list refused with its line and
// key.
func TestKafkaSourceAndChannelConfig(t *testing.T) {
	text := `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = b1:9092, b2:9092
a1.sources.r1.kafka.topics = t1,t2
a1.sources.r1.channels = c1
a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = b1:9092
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
`
	cfg, err := config.Parse(text, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := kafkaSourceConfig(cfg.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.Bootstrap, []string{"b1:9092", "b2:9092"}) || !slices.Equal(src.Topics, []string{"t1", "t2"}) ||
		src.Group != "flume" || src.BatchSize != 1000 || src.BatchDuration != time.Second || src.Reset != kafka.ResetLatest {
		t.Fatalf("source settings %+v", src)
	}
	ch := kafkaChannelConfig(cfg.Channels[0])
	if ch.Topic != "flume-channel" || ch.Group != "flume" || !ch.ParseAsFlumeEvent || ch.PollTimeout != 500*time.Millisecond {
		t.Fatalf("channel settings %+v", ch)
	}
	// Flume's deprecated spellings still read.
	old := strings.NewReplacer("a1.sources.r1.kafka.topics = t1,t2", "a1.sources.r1.topic = t3\na1.sources.r1.groupId = g1",
		"a1.channels.c1.kafka.bootstrap.servers = b1:9092", "a1.channels.c1.brokerList = b9:9092\na1.channels.c1.topic = ct\na1.channels.c1.groupId = cg")
	cfg, err = config.Parse(old.Replace(text), "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if src, err := kafkaSourceConfig(cfg.Sources[0]); err != nil || !slices.Equal(src.Topics, []string{"t3"}) || src.Group != "g1" {
		t.Fatalf("source with topic and groupId: %+v, %v", src, err)
	}
	if ch := kafkaChannelConfig(cfg.Channels[0]); !slices.Equal(ch.Bootstrap, []string{"b9:9092"}) || ch.Topic != "ct" || ch.Group != "cg" {
		t.Fatalf("channel with brokerList, topic and groupId: %+v", ch)
	}
	_, err = config.Parse(strings.Replace(text, "a1.channels.c1.kafka.bootstrap.servers = b1:9092\n", "", 1), "a1", nil)
	if err == nil || !strings.Contains(err.Error(), "a1.channels.c1") || !strings.Contains(err.Error(), "kafka.bootstrap.servers") {
		t.Fatalf("a kafka channel without kafka.bootstrap.servers: %v", err)
	}
	_, err = config.Parse(strings.Replace(text, "a1.sources.r1.kafka.topics = t1,t2\n", "", 1), "a1", nil)
	if err == nil || !strings.Contains(err.Error(), "kafka.topics") {
		t.Fatalf("a kafka source without topics: %v", err)
	}
}

// TestKafkaSourceStopsWhileItsChannelIsFull: a source whose channel stays
// full backs off and counts the refusals; stopping the agent ends the
// waiting poll uncommitted and its member leaves the group.
func TestKafkaSourceStopsWhileItsChannelIsFull(t *testing.T) {
	text := strings.NewReplacer(
		"a1.channels.c1.type = file\na1.channels.c1.transactionCapacity = 100",
		"a1.channels.c1.type = memory\na1.channels.c1.capacity = 10\na1.channels.c1.transactionCapacity = 10\na1.channels.c1.keep-alive = 0",
		"a1.sources.r1.batchSize = 20", "a1.sources.r1.batchSize = 10",
		"a1.sinks.k1.type = logger\na1.sinks.k1.batchSize = 50", "a1.sinks.k1.type = http\na1.sinks.k1.endpoint = http://nowhere:1/",
	).Replace(kafkaSourceConf)
	p := newKafkaPipeline(t, 5, text, nil)
	p.produce("events", 0, 100, 0)
	p.w.Run(p.w.Now()+20*time.Second, 0)
	src := p.agent.Source("r1").(*KafkaSource)
	if src.Counters().ChannelWriteFail == 0 || src.Counters().EventAcceptedCount != 10 {
		t.Fatalf("source counters %+v: want the first batch accepted and the next refused\n%s", *src.Counters(), p.log.String())
	}
	stopped := false
	p.agent.Stop(func() { stopped = true })
	p.w.Run(p.w.Now()+15*time.Second, 0)
	if !stopped || !src.Member().Closed() {
		t.Fatalf("agent stopped %v, source's member closed %v\n%s", stopped, src.Member().Closed(), p.log.String())
	}
}
