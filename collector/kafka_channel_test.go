package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
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

func (k *kafkaChannelRig) open(t *testing.T) {
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
