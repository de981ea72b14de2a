package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"pgregory.net/rapid"
)

// kafkaChannelRig is a broker (m1) and a node running a kafka channel,
// reopened on every boot of the node.
type kafkaChannelRig struct {
	*rig
	ch *KafkaChannel
}

func newKafkaChannelRig(t *testing.T, seed uint64) *kafkaChannelRig {
	t.Helper()
	k := &kafkaChannelRig{rig: newRig(seed)}
	k.w.AddNode("m1", broker.Start(broker.DefaultConfig(), nil))
	k.open(t)
	return k
}

// failer is what open needs of a test: a *testing.T or a *rapid.T.
type failer interface {
	Helper()
	Fatal(args ...any)
}

func (k *kafkaChannelRig) open(t failer) {
	t.Helper()
	ch, err := OpenKafkaChannel("c1", k.env, KafkaChannelConfig{
		Bootstrap: []string{"m1:9092"}, Topic: "flume-channel", Group: "flume", ParseAsFlumeEvent: true,
		PollTimeout: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, Capacity: 1 << 20, TransactionCapacity: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	k.ch = ch
}

// put commits bodies in one transaction and waits for the commit.
func (k *kafkaChannelRig) put(t *testing.T, bodies ...string) {
	t.Helper()
	tx := k.ch.Begin()
	for _, b := range bodies {
		if err := tx.Put(Event{Headers: map[string]string{"n": b}, Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	var result error
	finished := false
	tx.Commit(func(err error) { result, finished = err, true })
	k.advance(2 * time.Second)
	if !finished || result != nil {
		t.Fatalf("put commit: finished %v, %v\n%s", finished, result, k.log.String())
	}
}

// take takes up to n events, waiting up to 30 s for them to be read
// ahead, and returns the open transaction and the bodies.
func (k *kafkaChannelRig) take(t *testing.T, n int) (*Txn, []string) {
	t.Helper()
	for i := 0; i < 300 && k.ch.Size() < n; i++ {
		k.advance(100 * time.Millisecond)
	}
	tx := k.ch.Begin()
	var got []string
	for len(got) < n {
		e, ok, err := tx.Take()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if e.Headers["n"] != string(e.Body) {
			t.Fatalf("event %q came back with headers %v", e.Body, e.Headers)
		}
		got = append(got, string(e.Body))
	}
	return tx, got
}

func (k *kafkaChannelRig) commit(t *testing.T, tx *Txn) {
	t.Helper()
	var result error
	finished := false
	tx.Commit(func(err error) { result, finished = err, true })
	k.advance(time.Second)
	if !finished || result != nil {
		t.Fatalf("take commit: finished %v, %v\n%s", finished, result, k.log.String())
	}
}

func bodiesN(prefix string, from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// TestKafkaChannelTransactions: puts become takeable once committed to the
// topic, in order with their headers; a rolled-back take gives the same
// events again first; a committed take is final across a crash of the
// node, and an uncommitted one comes back after it.
func TestKafkaChannelTransactions(t *testing.T) {
	k := newKafkaChannelRig(t, 3)
	k.put(t, bodiesN("a", 0, 10)...)
	tx, got := k.take(t, 4)
	if !slices.Equal(got, bodiesN("a", 0, 4)) {
		t.Fatalf("first take %v\n%s", got, k.log.String())
	}
	tx.Rollback()
	tx, got = k.take(t, 4)
	if !slices.Equal(got, bodiesN("a", 0, 4)) {
		t.Fatalf("take after a rollback %v, want the same four first", got)
	}
	k.commit(t, tx)
	k.put(t, bodiesN("b", 0, 5)...)
	tx, got = k.take(t, 6)
	if !slices.Equal(got, bodiesN("a", 4, 6)) {
		t.Fatalf("second take %v", got)
	}
	k.commit(t, tx)
	// Flume's KafkaChannelCounter: one rollback so far, and time spent
	// fetching, producing and committing offsets.
	c := k.ch.Counters()
	if kc := c.Kafka; kc == nil || kc.RollbackCount != 1 || kc.KafkaEventGetTimer <= 0 || kc.KafkaEventSendTimer <= 0 || kc.KafkaCommitTimer <= 0 {
		t.Fatalf("kafka channel counters %+v", c.Kafka)
	}
	for _, name := range []string{"KafkaEventGetTimer", "KafkaEventSendTimer", "KafkaCommitTimer", "RollbackCount"} {
		if _, ok := c.metrics()[name]; !ok {
			t.Fatalf("metrics lack %s: %v", name, c.metrics())
		}
	}
	// Taken but not committed when the node dies.
	_, got = k.take(t, 3)
	if !slices.Equal(got, bodiesN("b", 0, 3)) {
		t.Fatalf("third take %v", got)
	}
	k.crash(false)
	k.open(t)
	tx, got = k.take(t, 5)
	if !slices.Equal(got, bodiesN("b", 0, 5)) {
		t.Fatalf("after the crash the channel gave %v, want b0..b4 (committed takes gone, uncommitted ones back)\n%s", got, k.log.String())
	}
	k.commit(t, tx)
	m := k.ch.Counters().metrics()
	if m["EventTakeSuccessCount"] != "5" || m["ChannelSize"] != "0" {
		t.Fatalf("counters %v", m)
	}
}

// kafkaChannelConf is a kafka source reading topic events into a kafka
// channel on the same broker, drained by a logger sink.
var kafkaChannelConf = strings.Replace(kafkaSourceConf, `a1.channels.c1.type = file
a1.channels.c1.transactionCapacity = 100`, `a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = m1:9092
a1.channels.c1.kafka.consumer.group.id = flume-channel
a1.channels.c1.kafka.consumer.session.timeout.ms = 6000
a1.channels.c1.transactionCapacity = 100`, 1)

// TestKafkaChannelDeliversThroughAgentKills: the agent of
// TestKafkaSourceDeliversThroughAgentKills with a kafka channel instead
// of a file channel loses nothing through four kills: the broker holds
// what the channel committed.
func TestKafkaChannelDeliversThroughAgentKills(t *testing.T) {
	if !strings.Contains(kafkaChannelConf, "KafkaChannel") {
		t.Fatal("the configuration has no kafka channel")
	}
	for seed := uint64(1); seed <= 3; seed++ {
		p := runKafkaPipelineKills(t, seed, kafkaChannelConf, nil)
		if lost := p.lost(t); len(lost) > 0 {
			t.Fatalf("seed %d: %d acknowledged records never reached the sink, e.g. %v\n%s", seed, len(lost), lost[:min(3, len(lost))], p.log.String())
		}
		total := 0
		for _, n := range p.logged {
			total += n
		}
		t.Logf("seed %d: 1000 records, %d delivered (%d duplicates); channel %v", seed, total, total-1000, p.agent.Metrics()["CHANNEL.c1"])
	}
}

// kafkaModelRun checks a kafka channel against a model of its topic and
// group: topic holds the committed puts' labels in commit order (one
// partition); avail are the topic positions a take may give, smallest
// first; committed are those whose take committed. Each step completes
// (the simulated time it needs passes) before the next.
type kafkaModelRun struct {
	t         *rapid.T
	k         *kafkaChannelRig
	topic     []int
	avail     []int
	committed map[int]bool
	put       int // labels given to puts so far
	open      []*kafkaModelTxn
}

type kafkaModelTxn struct {
	tx    *Txn
	puts  []int
	takes []int
}

// TestKafkaChannelModel: random puts, takes, commits, rollbacks and node
// crashes against the model.
func TestKafkaChannelModel(t *testing.T) {
	defer func() { t.Logf("%+v", kafkaModelStats) }()
	rapid.Check(t, func(rt *rapid.T) {
		k := &kafkaChannelRig{rig: newRig(rapid.Uint64().Draw(rt, "seed"))}
		k.w.AddNode("m1", broker.Start(broker.DefaultConfig(), nil))
		k.open(rt)
		m := &kafkaModelRun{t: rt, k: k, committed: map[int]bool{}}
		rt.Repeat(map[string]func(*rapid.T){
			"put":      m.putOne,
			"take":     m.take,
			"commit":   m.commit,
			"rollback": m.rollback,
			"crash":    m.crash,
			"":         func(*rapid.T) {},
		})
	})
}

// txnFor picks an open transaction of the kind (puts or takes: sources
// and sinks never mix them) or begins one.
func (m *kafkaModelRun) txnFor(t *rapid.T, puts bool) *kafkaModelTxn {
	var fit []*kafkaModelTxn
	for _, x := range m.open {
		if (puts && len(x.takes) == 0) || (!puts && len(x.puts) == 0) {
			fit = append(fit, x)
		}
	}
	if len(m.open) < 3 && (len(fit) == 0 || rapid.Bool().Draw(t, "begin")) {
		x := &kafkaModelTxn{tx: m.k.ch.Begin()}
		m.open = append(m.open, x)
		return x
	}
	if len(fit) == 0 {
		t.Skip("no transaction fits")
	}
	return rapid.SampledFrom(fit).Draw(t, "txn")
}

func (m *kafkaModelRun) pick(t *rapid.T) *kafkaModelTxn {
	if len(m.open) == 0 {
		t.Skip("no open transaction")
	}
	return rapid.SampledFrom(m.open).Draw(t, "txn")
}

func (m *kafkaModelRun) putOne(t *rapid.T) {
	x := m.txnFor(t, true)
	n := m.put
	m.put++
	if err := x.tx.Put(Event{Body: []byte(fmt.Sprint(n))}); err != nil {
		t.Fatal(err)
	}
	kafkaModelStats.puts++
	x.puts = append(x.puts, n)
}

// take must give the smallest available event; it may give none only
// while another transaction holds takes (the read-ahead is one poll, held
// until its events are taken for good).
func (m *kafkaModelRun) take(t *rapid.T) {
	x := m.txnFor(t, false)
	for i := 0; i < 300 && len(m.avail) > 0 && m.k.ch.Size() == 0; i++ {
		m.k.advance(100 * time.Millisecond)
	}
	e, ok, err := x.tx.Take()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		kafkaModelStats.empty++
		if len(m.avail) > 0 && !m.takesHeld() {
			t.Fatalf("take gave nothing; the model has positions %v available", m.avail)
		}
		return
	}
	if len(m.avail) == 0 || string(e.Body) != fmt.Sprint(m.topic[m.avail[0]]) {
		t.Fatalf("take gave %s; the model has positions %v of topic %v available", e.Body, m.avail, m.topic)
	}
	kafkaModelStats.takes++
	x.takes = append(x.takes, m.avail[0])
	m.avail = m.avail[1:]
}

func (m *kafkaModelRun) takesHeld() bool {
	for _, x := range m.open {
		if len(x.takes) > 0 {
			return true
		}
	}
	return false
}

func (m *kafkaModelRun) remove(x *kafkaModelTxn) {
	m.open = slices.DeleteFunc(m.open, func(o *kafkaModelTxn) bool { return o == x })
}

func (m *kafkaModelRun) commit(t *rapid.T) {
	x := m.pick(t)
	m.remove(x)
	var result error
	finished := false
	x.tx.Commit(func(err error) { result, finished = err, true })
	m.k.advance(2 * time.Second)
	if !finished || result != nil {
		t.Fatalf("commit: finished %v, %v", finished, result)
	}
	kafkaModelStats.commits++
	for _, n := range x.takes {
		m.committed[n] = true
	}
	for _, label := range x.puts {
		m.avail = append(m.avail, len(m.topic))
		m.topic = append(m.topic, label)
	}
	slices.Sort(m.avail)
}

func (m *kafkaModelRun) rollback(t *rapid.T) {
	x := m.pick(t)
	m.remove(x)
	x.tx.Rollback()
	m.avail = append(m.avail, x.takes...)
	slices.Sort(m.avail)
}

// crash kills the node: open transactions vanish, and the channel reopened
// gives every put event from the first whose take did not commit (the
// group's committed offset) on, taken before or not.
func (m *kafkaModelRun) crash(t *rapid.T) {
	if rapid.IntRange(0, 4).Draw(t, "crash") != 0 {
		t.Skip("crashes are rarer than the other steps")
	}
	kafkaModelStats.crashes++
	m.k.crash(false)
	m.k.open(t)
	all := slices.Clone(m.avail)
	for _, x := range m.open {
		all = append(all, x.takes...)
	}
	for n := range m.committed {
		all = append(all, n)
	}
	slices.Sort(all)
	m.avail = nil
	for i, n := range all {
		if !m.committed[n] {
			m.avail = all[i:]
			break
		}
	}
	for _, n := range m.avail {
		delete(m.committed, n)
	}
	m.open = nil
}

// kafkaModelStats counts what the model checks did, logged so that a run
// shows it exercised takes and crashes.
var kafkaModelStats struct{ takes, crashes, commits, puts, empty int }

// TestKafkaPipelineIsDeterministicAndStops: a kafka source into a kafka
// channel through two agent kills ends with the same trace hash for one
// seed twice (and another for another seed), and the agent then stops
// gracefully: the channel gives up its read-ahead and its member leaves.
func TestKafkaPipelineIsDeterministicAndStops(t *testing.T) {
	run := func(seed uint64) uint64 {
		p := newKafkaPipeline(t, seed, kafkaChannelConf, nil)
		start := p.w.Now()
		for burst := 0; burst < 6; burst++ {
			p.w.At(start+time.Duration(burst)*5*time.Second, func() { p.produce("events", burst*50, 50, 0) })
		}
		p.killWhileBusyAfter(start + 8*time.Second)
		p.killWhileBusyAfter(start + 20*time.Second)
		p.w.Run(start+60*time.Second, 0)
		if p.kills != 2 || p.agent == nil || len(p.logged) != 300 {
			t.Fatalf("seed %d: %d kills, %d distinct records delivered of 300\n%s", seed, p.kills, len(p.logged), p.log.String())
		}
		stopped := false
		p.agent.Stop(func() { stopped = true })
		p.w.Run(p.w.Now()+15*time.Second, 0)
		if !stopped {
			t.Fatalf("seed %d: the agent did not stop\n%s", seed, p.log.String())
		}
		if k := p.agent.Channel("c1").(*KafkaChannel); !k.member.Closed() {
			t.Fatalf("seed %d: the channel's group member did not leave", seed)
		}
		return p.w.TraceHash()
	}
	if a, b := run(31), run(31); a != b {
		t.Fatalf("trace hashes differ: %x and %x", a, b)
	}
	if run(31) == run(32) {
		t.Fatal("two seeds gave one trace hash: the hash does not see the run")
	}
}
