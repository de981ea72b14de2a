package kafka

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// progressWorld runs a toy broker and a client that produces n records to
// partition 0 one by one and polls it with a consumer whose fetches hold
// only a few batches, so that reading to the end takes several fetches.
func progressWorld(t *testing.T, n int, bugs faults.Bugs) (*world.World, func() (*Producer, *Consumer)) {
	t.Helper()
	w := world.New(world.Config{Seed: 3})
	w.AddNode("broker", startToyBroker(newToyLog(testTopic, testPartitions)))
	var p *Producer
	var co *Consumer
	w.AddNode("client", func(env sim.Env) {
		var err error
		p, err = NewProducer(env, ProducerConfig{Bootstrap: []string{"broker:9092"}, ManualPartition: true})
		if err != nil {
			panic(err)
		}
		co, err = NewConsumer(env, ConsumerConfig{Bootstrap: []string{"broker:9092"}, PartitionMaxBytes: 300,
			FetchMaxWait: 50 * time.Millisecond, Bugs: bugs})
		if err != nil {
			panic(err)
		}
		if err := co.Assign([]TopicPartition{{Topic: testTopic, Partition: 0}}); err != nil {
			panic(err)
		}
		var send func(i int)
		send = func(i int) {
			if i == n {
				return
			}
			rec := Record{Topic: testTopic, Partition: 0, Value: []byte("v" + strconv.Itoa(i))}
			if err := p.Send(rec, func(Result) { send(i + 1) }); err != nil {
				panic(err)
			}
		}
		send(0)
		var poll func()
		poll = func() {
			if err := co.Poll(func(PollResult) { poll() }); err != nil {
				panic(err)
			}
		}
		poll()
	})
	return w, func() (*Producer, *Consumer) { return p, co }
}

// TestProgressReports: a producer counts the records the broker took and
// holds none; a consumer that read to the end is not behind, and its
// progress mark is one past the last offset.
func TestProgressReports(t *testing.T) {
	const n = 60
	w, clients := progressWorld(t, n, nil)
	w.Run(10*time.Second, simEventsMax)
	p, co := clients()
	if pr := p.Progress(); pr.Written != n || pr.Pending != 0 || pr.FailedSinceWritten != 0 || p.DescribeStall() != "nothing pending" {
		t.Errorf("producer progress %+v (%q), want %d written and none pending", pr, p.DescribeStall(), n)
	}
	pp := co.Progress()
	if len(pp) != 1 || pp[0].ReadMax != n || pp[0].Behind || pp[0].Attempts != 0 {
		t.Fatalf("consumer progress %+v, want read to %d and not behind", pp, n)
	}
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	if got := co.DescribeStall(tp); !strings.Contains(got, "position 60, high watermark 60") {
		t.Errorf("stall description %q", got)
	}
}

// TestProgressNamesAResetLoop: with the planted bug a consumer jumps past
// the high watermark after every fetch cut short, is answered
// OFFSET_OUT_OF_RANGE, resets to the earliest offset and re-reads the same
// records: its mark stops, its attempts pile up, and its description
// names the loop.
func TestProgressNamesAResetLoop(t *testing.T) {
	const n = 60
	w, clients := progressWorld(t, n, faults.Bugs{faults.BugConsumerSkipsPastHW: true})
	w.Run(10*time.Second, simEventsMax)
	_, co := clients()
	pp := co.Progress()
	if len(pp) != 1 || pp[0].ReadMax >= n || !pp[0].Behind || pp[0].Attempts < 10 {
		t.Fatalf("consumer progress %+v, want stuck short of %d with attempts piling up", pp, n)
	}
	got := co.DescribeStall(pp[0].TP)
	for _, want := range []string{"reset to offset 0 after OFFSET_OUT_OF_RANGE", "re-read offsets 0..",
		"without reading past " + strconv.FormatInt(pp[0].ReadMax-1, 10)} {
		if !strings.Contains(got, want) {
			t.Errorf("stall description %q lacks %q", got, want)
		}
	}
}

// stalledProducer runs a toy broker serving log and an idempotent
// producer that sends one record, value v0, to partition 0.
func stalledProducer(t *testing.T, log *toyLog) (*world.World, func() *Producer) {
	t.Helper()
	var p *Producer
	w := world.New(world.Config{Seed: 3})
	w.AddNode("broker", startToyBroker(log))
	w.AddNode("client", func(env sim.Env) {
		var err error
		p, err = NewProducer(env, ProducerConfig{Bootstrap: []string{"broker:9092"}, ManualPartition: true})
		if err != nil {
			panic(err)
		}
		if err := p.Send(Record{Topic: testTopic, Partition: 0, Value: []byte("v0")}, func(Result) {}); err != nil {
			panic(err)
		}
	})
	return w, func() *Producer { return p }
}

// TestStallNamesTheLastProduceError: a send the broker keeps refusing
// with a retriable error is described with its retries and that error, in
// Kafka's name for it; the producer has its id, so it waits for none.
func TestStallNamesTheLastProduceError(t *testing.T) {
	log := newToyLog(testTopic, 1)
	log.produceCode = codeNotEnoughReplicas
	w, producer := stalledProducer(t, log)
	w.Run(3*time.Second, simEventsMax)
	p := producer()
	pr := p.Progress()
	if pr.Pending != 1 || pr.Attempts < 2 {
		t.Fatalf("progress %+v, want the record pending after several attempts", pr)
	}
	got := p.DescribeStall()
	want := fmt.Sprintf("send of value v0 to %s retried %d times (NOT_ENOUGH_REPLICAS)", TopicPartition{Topic: testTopic}, pr.Attempts-1)
	if !strings.Contains(got, want) || strings.Contains(got, "producer id") {
		t.Errorf("stall description %q, want %q and no wait for a producer id", got, want)
	}
}

// TestStallNamesAMissingProducerID: an idempotent producer sends nothing
// before it has a producer id; a broker that keeps answering
// InitProducerId with a retriable error leaves the send unsent, and the
// description says what it waits for.
func TestStallNamesAMissingProducerID(t *testing.T) {
	log := newToyLog(testTopic, 1)
	log.initProducerIDCode = codeCoordinatorNotAvailable
	w, producer := stalledProducer(t, log)
	w.Run(3*time.Second, simEventsMax)
	got := producer().DescribeStall()
	if !strings.Contains(got, "send of value v0 to") || !strings.Contains(got, "not sent yet; waiting for a producer id") {
		t.Errorf("stall description %q, want the send not sent yet, waiting for a producer id", got)
	}
}
