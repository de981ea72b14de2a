package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// sendAll sends n records from the loop and waits until every one has an
// outcome; results are in Send order.
func sendAll(t *testing.T, w *realWorld, p *Producer, n int, mk func(i int) Record, timeout time.Duration) []Result {
	t.Helper()
	results := make([]Result, n)
	done := 0
	w.do(func() {
		for i := range n {
			err := p.Send(mk(i), func(r Result) {
				results[i] = r
				done++
			})
			if err != nil {
				t.Errorf("send %d: %v", i, err)
				done++
			}
		}
	})
	w.waitFor("send outcomes", timeout, func() bool { return done == n })
	return results
}

// consumeAll polls until want records arrived or the timeout passed.
func consumeAll(t *testing.T, w *realWorld, co *Consumer, want int, timeout time.Duration) []Record {
	t.Helper()
	var got []Record
	polling := false
	var loop func()
	loop = func() {
		polling = true
		if err := co.Poll(func(r PollResult) {
			polling = false
			got = append(got, r.Records...)
			if len(got) < want {
				loop()
			}
		}); err != nil {
			t.Errorf("poll: %v", err)
		}
	}
	w.do(loop)
	w.waitFor(fmt.Sprintf("%d records", want), timeout, func() bool { return len(got) >= want && !polling })
	var out []Record
	w.do(func() { out = slices.Clone(got) })
	return out
}

func allPartitions() []TopicPartition {
	tps := make([]TopicPartition, testPartitions)
	for i := range tps {
		tps[i] = TopicPartition{Topic: testTopic, Partition: int32(i)}
	}
	return tps
}

// TestProduceConsumeEveryCodec writes keyed records with idempotence and
// acks=all and reads them back: per partition, the consumer sees exactly the
// acknowledged records, at their acknowledged offsets, in send order, and
// each key went where Kafka's partitioner puts it.
func TestProduceConsumeEveryCodec(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			c := startKfake(t)
			w := newWorld(t)
			var p *Producer
			var co *Consumer
			w.do(func() {
				var err error
				p, err = NewProducer(w.env(), ProducerConfig{Bootstrap: c.ListenAddrs(), Process: 0, Recorder: w.hist,
					Compression: codec, Linger: 2 * time.Millisecond, BatchMaxBytes: 2 << 10})
				if err != nil {
					w.fatal(err)
				}
				co, err = NewConsumer(w.env(), ConsumerConfig{Bootstrap: c.ListenAddrs(), Process: 1, Recorder: w.hist,
					FetchMaxWait: 50 * time.Millisecond, PartitionMaxBytes: 1500})
				if err != nil {
					w.fatal(err)
				}
			})
			const n = 600
			results := sendAll(t, w, p, n, func(i int) Record {
				return Record{Topic: testTopic, Key: []byte("key-" + strconv.Itoa(i%37)), Value: []byte(codec.String() + "-" + strconv.Itoa(i))}
			}, 20*time.Second)
			bySend := map[int32][]Result{}
			for i, r := range results {
				if r.Outcome != history.OK || r.Err != nil {
					t.Fatalf("send %d: %s %v", i, r.Outcome, r.Err)
				}
				if want := KeyPartition(r.Record.Key, testPartitions); r.Record.Partition != want {
					t.Fatalf("key %s went to %d, partitioner says %d", r.Record.Key, r.Record.Partition, want)
				}
				bySend[r.Record.Partition] = append(bySend[r.Record.Partition], r)
			}
			w.do(func() {
				if err := co.Assign(allPartitions()); err != nil {
					w.fatal(err)
				}
			})
			got := consumeAll(t, w, co, n, 20*time.Second)
			if len(got) != n {
				t.Fatalf("consumed %d records, want %d", len(got), n)
			}
			byRead := map[int32][]Record{}
			for _, r := range got {
				byRead[r.Partition] = append(byRead[r.Partition], r)
			}
			for part, sent := range bySend {
				read := byRead[part]
				if len(read) != len(sent) {
					t.Fatalf("partition %d: read %d, sent %d", part, len(read), len(sent))
				}
				for i := range sent {
					s, r := sent[i].Record, read[i]
					if string(s.Value) != string(r.Value) || string(s.Key) != string(r.Key) || s.Offset != r.Offset {
						t.Fatalf("partition %d #%d: sent %s=%s@%d, read %s=%s@%d", part, i,
							s.Key, s.Value, s.Offset, r.Key, r.Value, r.Offset)
					}
					if i > 0 && read[i].Offset <= read[i-1].Offset {
						t.Fatalf("partition %d: offsets not increasing", part)
					}
				}
			}
			var stats ProducerStats
			w.do(func() { stats = p.Stats() })
			if stats.ProducerID < 0 {
				t.Fatalf("idempotent producer has no producer id")
			}
			if stats.Requests >= n {
				t.Fatalf("%d requests for %d records: nothing was batched", stats.Requests, n)
			}
			h := w.history()
			if out := completedOnce(t, h); out[history.OK] != n {
				t.Fatalf("history outcomes %v", out)
			}
			checkHistory(t, h, checkers.DefaultOptions())
		})
	}
}

// TestFranzGoReadsOurBatches consumes what our producer wrote with kgo, an
// independent decoder, for every codec.
func TestFranzGoReadsOurBatches(t *testing.T) {
	const topic = "codecs"
	c := startKfake(t, kfake.SeedTopics(int32(len(allCodecs)), topic))
	w := newWorld(t)
	const perCodec = 50
	for _, codec := range allCodecs {
		var p *Producer
		w.do(func() {
			var err error
			p, err = NewProducer(w.env(), ProducerConfig{Bootstrap: c.ListenAddrs(), Compression: codec,
				ManualPartition: true, Linger: 5 * time.Millisecond})
			if err != nil {
				w.fatal(err)
			}
		})
		results := sendAll(t, w, p, perCodec, func(i int) Record {
			return Record{Topic: topic, Partition: int32(codec), Value: []byte(fmt.Sprintf("%v-%d", codec, i)),
				Headers: []Header{{Key: "codec", Value: []byte(codec.String())}}}
		}, 10*time.Second)
		for _, r := range results {
			if r.Outcome != history.OK {
				t.Fatalf("%v: %s %v", codec, r.Outcome, r.Err)
			}
		}
		w.do(p.Close)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := map[int32][]string{}
	total := 0
	for total < perCodec*len(allCodecs) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kgo poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen[r.Partition] = append(seen[r.Partition], string(r.Value))
			if len(r.Headers) != 1 || r.Headers[0].Key != "codec" {
				t.Errorf("headers %+v", r.Headers)
			}
			total++
		})
	}
	for _, codec := range allCodecs {
		vals := seen[int32(codec)]
		if len(vals) != perCodec {
			t.Fatalf("%v: kgo read %d values", codec, len(vals))
		}
		for i, v := range vals {
			if v != fmt.Sprintf("%v-%d", codec, i) {
				t.Fatalf("%v: value %d is %q", codec, i, v)
			}
		}
	}
}

// TestConsumerReadsFranzGoBatches reads batches franz-go wrote with every
// codec, transactional ones included: the commit markers (control batches)
// are skipped and the positions move past them.
func TestConsumerReadsFranzGoBatches(t *testing.T) {
	c := startKfake(t)
	codecs := map[record.Compression]kgo.CompressionCodec{
		record.CompressionNone: kgo.NoCompression(), record.CompressionGzip: kgo.GzipCompression(),
		record.CompressionSnappy: kgo.SnappyCompression(), record.CompressionLZ4: kgo.Lz4Compression(),
		record.CompressionZstd: kgo.ZstdCompression(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const perCodec = 30
	for _, codec := range allCodecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchCompression(codecs[codec]),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("txn-"+codec.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range perCodec {
			cl.Produce(ctx, &kgo.Record{Topic: testTopic, Partition: int32(codec) % testPartitions,
				Value: []byte(fmt.Sprintf("%v-%d", codec, i))}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	w := newWorld(t)
	var co *Consumer
	w.do(func() {
		var err error
		co, err = NewConsumer(w.env(), ConsumerConfig{Bootstrap: c.ListenAddrs(), FetchMaxWait: 50 * time.Millisecond})
		if err != nil {
			w.fatal(err)
		}
		if err := co.Assign(allPartitions()); err != nil {
			w.fatal(err)
		}
	})
	total := perCodec * len(allCodecs)
	got := consumeAll(t, w, co, total, 10*time.Second)
	if len(got) != total {
		t.Fatalf("read %d, want %d", len(got), total)
	}
	next := map[string]int{}
	for _, r := range got {
		var name string
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "%s", &name); err != nil {
			t.Fatal(err)
		}
		dash := len(r.Value) - 1
		for r.Value[dash] != '-' {
			dash--
		}
		name = string(r.Value[:dash])
		i, _ = strconv.Atoi(string(r.Value[dash+1:]))
		if i != next[name] {
			t.Fatalf("%s: read #%d, expected #%d", name, i, next[name])
		}
		next[name]++
	}
	// Every partition's position is past its commit marker: the log end.
	ends := map[TopicPartition]int64{}
	var endErr error
	w.do(func() {
		co.EndOffsets(allPartitions(), func(m map[TopicPartition]int64, err error) { ends, endErr = m, err })
	})
	w.waitFor("end offsets", 5*time.Second, func() bool { return ends != nil || endErr != nil })
	if endErr != nil {
		t.Fatal(endErr)
	}
	w.waitFor("positions at the end", 5*time.Second, func() bool {
		for tp, end := range ends {
			if pos, _ := co.Position(tp); pos != end {
				return false
			}
		}
		return true
	})
}

// TestDriverDrain runs the workload driver (two consumers) to completion
// and checks the whole history with the Jepsen Kafka checker, unseen
// writes included.
func TestDriverDrain(t *testing.T) {
	for _, keys := range []int{0, 7} {
		t.Run(fmt.Sprintf("keys=%d", keys), func(t *testing.T) {
			c := startKfake(t)
			w := newWorld(t)
			var d *Driver
			w.do(func() {
				var err error
				d, err = NewDriver(w.env(), DriverConfig{
					Bootstrap: c.ListenAddrs(), Topic: testTopic, Partitions: []int32{0, 1, 2, 3}, Keys: keys,
					Consumers: 2, Concurrency: 25, SendsMax: 800, Recorder: w.hist,
					Producer: ProducerConfig{Linger: time.Millisecond},
					Consumer: ConsumerConfig{FetchMaxWait: 30 * time.Millisecond},
				})
				if err != nil {
					w.fatal(err)
				}
			})
			w.waitFor("800 sends", 20*time.Second, func() bool { return d.Stats().OK == 800 })
			var report *DrainReport
			w.do(func() { d.Drain(func(r DrainReport) { report = &r }) })
			w.waitFor("drain", 20*time.Second, func() bool { return report != nil })
			if !report.CaughtUp || report.Err != nil || report.Unsettled != 0 {
				t.Fatalf("drain: %+v", report)
			}
			var total int64
			for _, end := range report.EndOffsets {
				total += end
			}
			if total != 800 {
				t.Fatalf("end offsets %v sum to %d", report.EndOffsets, total)
			}
			h := w.history()
			completedOnce(t, h)
			checkHistory(t, h, checkers.DefaultOptions())
			polled := map[string]int{}
			for _, op := range h {
				if op.F == history.Poll && op.Type == history.OK {
					for _, r := range op.Records {
						polled[r.Value]++
					}
				}
			}
			if len(polled) != 800 {
				t.Fatalf("%d distinct values polled", len(polled))
			}
			for v, n := range polled {
				if n != 2 {
					t.Fatalf("value %s polled %d times by two consumers", v, n)
				}
			}
		})
	}
}

// TestDriverUnderLeaderMoves moves partition leaders while the driver runs:
// the producer and consumers follow NOT_LEADER_OR_FOLLOWER to the new
// leaders and the history stays clean.
func TestDriverUnderLeaderMoves(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	var d *Driver
	w.do(func() {
		var err error
		d, err = NewDriver(w.env(), DriverConfig{
			Bootstrap: c.ListenAddrs(), Topic: testTopic, Partitions: []int32{0, 1, 2, 3},
			Consumers: 1, Rate: 2000, Concurrency: 20, Recorder: w.hist,
			Producer: ProducerConfig{MetadataMinInterval: 20 * time.Millisecond},
			Consumer: ConsumerConfig{FetchMaxWait: 30 * time.Millisecond, MetadataMinInterval: 20 * time.Millisecond},
		})
		if err != nil {
			w.fatal(err)
		}
	})
	for range 8 {
		time.Sleep(60 * time.Millisecond)
		c.ShufflePartitionLeaders()
	}
	// On a loaded machine 480 ms may not be enough for the sends the
	// check below needs: go on until they are acknowledged.
	w.waitFor("100 acknowledged sends", 20*time.Second, func() bool { return d.Stats().OK >= 100 })
	var report *DrainReport
	w.do(func() { d.Drain(func(r DrainReport) { report = &r }) })
	w.waitFor("drain", 20*time.Second, func() bool { return report != nil })
	if !report.CaughtUp {
		t.Fatalf("drain: %+v", report)
	}
	h := w.history()
	out := completedOnce(t, h)
	if out[history.OK] < 100 {
		t.Fatalf("only %v", out)
	}
	checkHistory(t, h, checkers.DefaultOptions())
}

// TestOldBrokerVersions speaks to a cluster capped at Kafka 2.0's versions
// (no flexible encodings, ApiVersions v2 at most, so the v3 handshake is
// refused and retried lower).
func TestOldBrokerVersions(t *testing.T) {
	c := startKfake(t, kfake.MaxVersions(kversion.V2_0_0()))
	w := newWorld(t)
	var p *Producer
	var co *Consumer
	w.do(func() {
		var err error
		p, err = NewProducer(w.env(), ProducerConfig{Bootstrap: c.ListenAddrs(), Recorder: w.hist, Compression: record.CompressionLZ4})
		if err != nil {
			w.fatal(err)
		}
		co, err = NewConsumer(w.env(), ConsumerConfig{Bootstrap: c.ListenAddrs(), Process: 1, Recorder: w.hist,
			FetchMaxWait: 50 * time.Millisecond})
		if err != nil {
			w.fatal(err)
		}
	})
	results := sendAll(t, w, p, 100, func(i int) Record {
		return Record{Topic: testTopic, Key: []byte(strconv.Itoa(i)), Value: []byte("old-" + strconv.Itoa(i))}
	}, 10*time.Second)
	for _, r := range results {
		if r.Outcome != history.OK {
			t.Fatalf("%s %v", r.Outcome, r.Err)
		}
	}
	w.do(func() { _ = co.Assign(allPartitions()) })
	if got := consumeAll(t, w, co, 100, 10*time.Second); len(got) != 100 {
		t.Fatalf("read %d", len(got))
	}
	checkHistory(t, w.history(), checkers.DefaultOptions())
}

// producerWith starts a producer on w with cfg, bootstrap filled in.
func producerWith(t *testing.T, w *realWorld, c *kfake.Cluster, cfg ProducerConfig) *Producer {
	t.Helper()
	cfg.Bootstrap = c.ListenAddrs()
	cfg.Recorder = w.hist
	var p *Producer
	w.do(func() {
		var err error
		if p, err = NewProducer(w.env(), cfg); err != nil {
			w.fatal(err)
		}
	})
	return p
}

func consumerWith(t *testing.T, w *realWorld, c *kfake.Cluster, cfg ConsumerConfig) *Consumer {
	t.Helper()
	cfg.Bootstrap = c.ListenAddrs()
	cfg.Recorder = w.hist
	setDefault(&cfg.FetchMaxWait, 50*time.Millisecond)
	var co *Consumer
	w.do(func() {
		var err error
		if co, err = NewConsumer(w.env(), cfg); err != nil {
			w.fatal(err)
		}
	})
	return co
}

func valueRecord(partition int32, prefix string) func(int) Record {
	return func(i int) Record {
		return Record{Topic: testTopic, Partition: partition, Value: []byte(prefix + strconv.Itoa(i))}
	}
}

// TestRequestTimeoutIsInfo: a broker that never answers produce requests.
// Every write was on the wire with no answer, so every outcome is unknown.
func TestRequestTimeoutIsInfo(t *testing.T) {
	c := startKfake(t)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true // swallow: no answer, connection kept
	})
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, RequestTimeout: 200 * time.Millisecond,
		DeliveryTimeout: 1500 * time.Millisecond, RetryBackoff: 50 * time.Millisecond})
	results := sendAll(t, w, p, 20, valueRecord(1, "lost-"), 10*time.Second)
	for i, r := range results {
		if r.Outcome != history.Info || !errors.Is(r.Err, ErrRequestTimeout) {
			t.Fatalf("send %d: %s %v, want info after a request timeout", i, r.Outcome, r.Err)
		}
	}
	var stats ProducerStats
	w.do(func() { stats = p.Stats() })
	if stats.Retries == 0 {
		t.Fatalf("no retries before the delivery timeout: %+v", stats)
	}
	if out := completedOnce(t, w.history()); out[history.Info] != 20 {
		t.Fatalf("outcomes %v", out)
	}
}

// TestResetInFlightIsInfo: the broker drops the connection on every produce
// request it read. The writes may have happened: info, never fail.
func TestResetInFlightIsInfo(t *testing.T) {
	c := startKfake(t)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("drop the connection"), true
	})
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, DeliveryTimeout: time.Second,
		RetryBackoff: 20 * time.Millisecond, RetriesMax: 5})
	results := sendAll(t, w, p, 10, valueRecord(2, "reset-"), 10*time.Second)
	for i, r := range results {
		if r.Outcome != history.Info {
			t.Fatalf("send %d: %s %v, want info", i, r.Outcome, r.Err)
		}
	}
}

// TestNeverConnectedIsFail: nothing listens, so nothing was ever sent: a
// definite failure.
func TestNeverConnectedIsFail(t *testing.T) {
	c := startKfake(t)
	addrs := c.ListenAddrs()
	c.Close()
	w := newWorld(t)
	var p *Producer
	w.do(func() {
		var err error
		p, err = NewProducer(w.env(), ProducerConfig{Bootstrap: addrs, Recorder: w.hist, ManualPartition: true,
			DeliveryTimeout: 500 * time.Millisecond, RetryBackoff: 20 * time.Millisecond, MetadataMinInterval: 20 * time.Millisecond})
		if err != nil {
			w.fatal(err)
		}
	})
	results := sendAll(t, w, p, 5, valueRecord(0, "never-"), 10*time.Second)
	for _, r := range results {
		if r.Outcome != history.Fail || !errors.Is(r.Err, ErrDeliveryTimeout) {
			t.Fatalf("%s %v, want fail by delivery timeout", r.Outcome, r.Err)
		}
	}
	completedOnce(t, w.history())
}

// TestStopClusterMidRun swallows produce requests, then stops the cluster
// while requests are in flight: no write invoked after the swallowing began
// is acknowledged; the ones on the wire become info.
func TestStopClusterMidRun(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	var d *Driver
	w.do(func() {
		var err error
		d, err = NewDriver(w.env(), DriverConfig{
			Bootstrap: c.ListenAddrs(), Topic: testTopic, Partitions: []int32{0, 1, 2, 3},
			Rate: 1000, Concurrency: 50, Recorder: w.hist,
			Producer: ProducerConfig{RequestTimeout: 5 * time.Second, DeliveryTimeout: 2 * time.Second,
				RetryBackoff: 50 * time.Millisecond, MetadataMinInterval: 50 * time.Millisecond},
			Consumer: ConsumerConfig{FetchMaxWait: 30 * time.Millisecond},
		})
		if err != nil {
			w.fatal(err)
		}
	})
	w.waitFor("some acknowledged sends", 10*time.Second, func() bool { return d.Stats().OK >= 50 })
	var mark int
	w.do(func() { mark = len(w.hist.Ops) })
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true
	})
	w.waitFor("a produce request in flight", 5*time.Second, func() bool {
		return d.Producer().inflightReqs > 0 && len(w.hist.Ops) > mark+20
	})
	time.Sleep(100 * time.Millisecond)
	c.Close()
	w.waitFor("stop", 10*time.Second, func() bool {
		d.stopped = true // no more sends
		return d.outstanding == 0
	})
	h := w.history()
	out := completedOnce(t, h)
	invokedAfter := map[string]bool{}
	for _, op := range h[mark:] {
		if op.F == history.Send && op.Type == history.Invoke {
			invokedAfter[op.Record.Value] = true
		}
	}
	infos := 0
	for _, op := range h {
		if op.F != history.Send || op.Type == history.Invoke || !invokedAfter[op.Record.Value] {
			continue
		}
		switch op.Type {
		case history.OK:
			t.Fatalf("send %s invoked after produce was swallowed was acknowledged", op.Record.Value)
		case history.Info:
			infos++
		}
	}
	if infos == 0 {
		t.Fatalf("no send ended info; outcomes %v", out)
	}
	v := checkers.CheckHistory(h, checkers.Options{})
	if !v.Valid {
		t.Fatalf("malformed: %+v", v.Anomalies)
	}
}

// TestInjectedProduceErrors injects one broker error per case and checks
// the outcome the history gets and what a consumer then reads.
func TestInjectedProduceErrors(t *testing.T) {
	type want struct {
		// first is the outcome of the record the fault hits.
		first history.Type
		// copies is how often a consumer reads that record.
		copies int
		resets int
	}
	cases := []struct {
		name       string
		err        *kerr.Error
		idempotent bool
		want       want
	}{
		// Refused before the append: retried, written once.
		{"not leader", kerr.NotLeaderForPartition, true, want{history.OK, 1, 0}},
		// Appended, then answered with an error: the idempotent retry is
		// recognised as a duplicate and acknowledged at the original
		// offset, so it is read once.
		{"not enough replicas after append (idempotent)", kerr.NotEnoughReplicasAfterAppend, true, want{history.OK, 1, 0}},
		// Without idempotence the same retry appends a second copy.
		{"not enough replicas after append (plain)", kerr.NotEnoughReplicasAfterAppend, false, want{history.OK, 2, 0}},
		// A definite refusal that breaks the sequence: fail, new producer id.
		{"out of order sequence", kerr.OutOfOrderSequenceNumber, true, want{history.Fail, 0, 1}},
		{"message too large", kerr.MessageTooLarge, true, want{history.Fail, 0, 1}},
		{"invalid record (plain)", kerr.InvalidRecord, false, want{history.Fail, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startKfake(t)
			w := newWorld(t)
			p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, DisableIdempotence: !tc.idempotent,
				RetryBackoff: 10 * time.Millisecond})
			// A first record gets the producer connected and its id.
			warm := sendAll(t, w, p, 1, valueRecord(0, "warm-"), 10*time.Second)
			if warm[0].Outcome != history.OK {
				t.Fatalf("warm-up: %s %v", warm[0].Outcome, warm[0].Err)
			}
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: testTopic, Err: tc.err})
			hit := sendAll(t, w, p, 1, valueRecord(0, "hit-"), 10*time.Second)[0]
			if hit.Outcome != tc.want.first {
				t.Fatalf("faulted send: %s %v, want %s", hit.Outcome, hit.Err, tc.want.first)
			}
			after := sendAll(t, w, p, 20, valueRecord(0, "after-"), 10*time.Second)
			for _, r := range after {
				if r.Outcome != history.OK {
					t.Fatalf("send after the fault: %s %v", r.Outcome, r.Err)
				}
			}
			var stats ProducerStats
			w.do(func() { stats = p.Stats() })
			if stats.Resets != tc.want.resets {
				t.Fatalf("%d producer resets, want %d", stats.Resets, tc.want.resets)
			}
			if tc.idempotent && stats.ProducerEpoch != int16(tc.want.resets) {
				// A reset bumps the epoch locally (KIP-360), keeping the id.
				t.Fatalf("producer epoch %d after %d resets", stats.ProducerEpoch, tc.want.resets)
			}
			co := consumerWith(t, w, c, ConsumerConfig{Process: 1})
			w.do(func() { _ = co.Assign([]TopicPartition{{Topic: testTopic, Partition: 0}}) })
			total := 21 + tc.want.copies
			got := consumeAll(t, w, co, total, 10*time.Second)
			copies := 0
			for _, r := range got {
				if string(r.Value) == "hit-0" {
					copies++
				}
			}
			if len(got) != total || copies != tc.want.copies {
				t.Fatalf("read %d records with %d copies of the faulted one, want %d and %d", len(got), copies, total, tc.want.copies)
			}
			h := w.history()
			completedOnce(t, h)
			verdict := checkers.CheckKafka(h, checkers.Options{LinearSkip: true})
			if tc.want.copies > 1 {
				// The checker must see the duplicate the plain producer made.
				if verdict.Valid {
					t.Fatalf("checker missed the duplicate")
				}
			} else if !verdict.Valid {
				t.Fatalf("anomalies: %+v", verdict.Anomalies)
			}
		})
	}
}

// TestAcksZeroIsInfo: with acks=0 nobody says whether a write landed.
func TestAcksZeroIsInfo(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, Acks: AcksNone})
	results := sendAll(t, w, p, 30, valueRecord(3, "fire-"), 10*time.Second)
	for _, r := range results {
		if r.Outcome != history.Info || !errors.Is(r.Err, ErrNoAcknowledgement) || r.Record.Offset != -1 {
			t.Fatalf("%s %v offset %d", r.Outcome, r.Err, r.Record.Offset)
		}
	}
	co := consumerWith(t, w, c, ConsumerConfig{Process: 1})
	w.do(func() { _ = co.Assign([]TopicPartition{{Topic: testTopic, Partition: 3}}) })
	if got := consumeAll(t, w, co, 30, 10*time.Second); len(got) != 30 {
		t.Fatalf("read %d", len(got))
	}
	checkHistory(t, w.history(), checkers.Options{})
}

// TestBufferBound: with the broker silent, Send refuses records once the
// buffer holds BufferMaxBytes, and the refused records leave no trace.
func TestBufferBound(t *testing.T) {
	c := startKfake(t)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true
	})
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, BufferMaxBytes: 4 << 10,
		BatchMaxBytes: 1 << 10, RequestMaxBytes: 2 << 10, DeliveryTimeout: 500 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond})
	accepted, refused := 0, 0
	done := 0
	w.do(func() {
		for i := range 200 {
			value := fmt.Appendf(make([]byte, 0, 100), "%0100d", i)
			err := p.Send(Record{Topic: testTopic, Partition: 0, Value: value}, func(Result) { done++ })
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrBufferFull):
				refused++
			default:
				w.fatalf("send %d: %v", i, err)
			}
		}
	})
	if accepted == 0 || refused == 0 || accepted*136 > 4<<10 {
		t.Fatalf("accepted %d refused %d", accepted, refused)
	}
	w.waitFor("outcomes", 10*time.Second, func() bool { return done == accepted })
	if out := completedOnce(t, w.history()); out[history.Info]+out[history.Fail] != accepted {
		t.Fatalf("outcomes %v for %d accepted", out, accepted)
	}
	var err error
	w.do(func() {
		err = p.Send(Record{Topic: testTopic, Partition: 0, Value: make([]byte, 3<<10)}, func(Result) {})
	})
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
}

// TestConsumerOffsetOutOfRange seeks past the end: with earliest the next
// polls read from the start (after an assign op in the history); with none
// the partition stops with an error.
func TestConsumerOffsetOutOfRange(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true})
	sendAll(t, w, p, 10, valueRecord(0, "v-"), 10*time.Second)
	tp := TopicPartition{Topic: testTopic, Partition: 0}

	co := consumerWith(t, w, c, ConsumerConfig{Process: 1, ResetPolicy: ResetEarliest})
	w.do(func() {
		_ = co.Assign([]TopicPartition{tp})
		if err := co.Seek(tp, 1000); err != nil {
			w.fatal(err)
		}
	})
	got := consumeAll(t, w, co, 10, 10*time.Second)
	if len(got) != 10 || got[0].Offset != 0 {
		t.Fatalf("read %d records from %v", len(got), got)
	}
	var stats ConsumerStats
	w.do(func() { stats = co.Stats() })
	if stats.Resets != 1 {
		t.Fatalf("%d resets", stats.Resets)
	}
	// The history shows an assign between the poll that hit the range
	// error and the one that read from 0.
	h := w.history()
	lastAssign, firstRead := -1, -1
	for i, op := range h {
		if op.Process != 1 {
			continue
		}
		if op.F == history.Assign && op.Type == history.OK {
			lastAssign = i
		}
		if op.F == history.Poll && op.Type == history.OK && len(op.Records) > 0 && firstRead < 0 {
			firstRead = i
		}
	}
	assigns := 0
	for _, op := range h {
		if op.Process == 1 && op.F == history.Assign && op.Type == history.OK {
			assigns++
		}
	}
	if assigns < 2 || lastAssign > firstRead {
		t.Fatalf("assign ops %d, last at %d, first read at %d", assigns, lastAssign, firstRead)
	}
	checkHistory(t, h, checkers.DefaultOptions())

	strict := consumerWith(t, w, c, ConsumerConfig{Process: 2, ResetPolicy: ResetNone})
	w.do(func() {
		_ = strict.Assign([]TopicPartition{tp})
		_ = strict.Seek(tp, 1000)
	})
	w.waitFor("the partition error", 5*time.Second, func() bool {
		if !strict.Polling() {
			_ = strict.Poll(func(PollResult) {})
		}
		return errors.Is(strict.PartitionError(tp), ErrOffsetOutOfRange)
	})
	// Seeking clears it.
	w.do(func() {
		if strict.Polling() {
			return
		}
		_ = strict.SeekToBeginning(tp)
	})
	w.waitFor("idle", 5*time.Second, func() bool {
		if strict.Polling() {
			return false
		}
		_ = strict.SeekToBeginning(tp)
		return strict.PartitionError(tp) == nil
	})
	if got := consumeAll(t, w, strict, 10, 10*time.Second); len(got) != 10 {
		t.Fatalf("after seeking: %d records", len(got))
	}
}

// TestConsumerResetLatest starts at the end and reads only what comes after.
func TestConsumerResetLatest(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true})
	sendAll(t, w, p, 5, valueRecord(1, "old-"), 10*time.Second)
	tp := TopicPartition{Topic: testTopic, Partition: 1}
	co := consumerWith(t, w, c, ConsumerConfig{Process: 1, ResetPolicy: ResetLatest})
	w.do(func() { _ = co.Assign([]TopicPartition{tp}) })
	w.waitFor("position", 5*time.Second, func() bool {
		if !co.Polling() {
			_ = co.Poll(func(PollResult) {})
		}
		pos, ok := co.Position(tp)
		return ok && pos == 5
	})
	w.waitFor("idle", 5*time.Second, func() bool { return !co.Polling() })
	sendAll(t, w, p, 3, valueRecord(1, "new-"), 10*time.Second)
	got := consumeAll(t, w, co, 3, 10*time.Second)
	if len(got) != 3 || string(got[0].Value) != "new-0" || got[0].Offset != 5 {
		t.Fatalf("read %+v", got)
	}
}

// TestPollIsBounded: a poll with nothing to read returns within about
// FetchMaxWait, empty.
func TestPollIsBounded(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	co := consumerWith(t, w, c, ConsumerConfig{FetchMaxWait: 100 * time.Millisecond})
	w.do(func() { _ = co.Assign(allPartitions()) })
	for range 3 {
		start := time.Now()
		var res *PollResult
		w.do(func() { _ = co.Poll(func(r PollResult) { res = &r }) })
		w.waitFor("poll", 5*time.Second, func() bool { return res != nil })
		if len(res.Records) != 0 {
			t.Fatalf("records from an empty topic")
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("poll took %v", el)
		}
	}
	var err error
	w.do(func() {
		_ = co.Poll(func(PollResult) {})
		err = co.Poll(func(PollResult) {})
	})
	if !errors.Is(err, ErrPollPending) {
		t.Fatalf("second concurrent poll: %v", err)
	}
}

// TestUnknownTopicParksRecords: records for a topic that does not exist wait
// for it; without auto-creation they fail at the delivery timeout and never
// enter the history, with it they are written once the topic appears.
func TestUnknownTopicParksRecords(t *testing.T) {
	c := startKfake(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{DeliveryTimeout: 400 * time.Millisecond,
		MetadataMinInterval: 20 * time.Millisecond})
	results := sendAll(t, w, p, 3, func(i int) Record {
		return Record{Topic: "missing", Value: []byte("m" + strconv.Itoa(i))}
	}, 5*time.Second)
	for _, r := range results {
		if r.Outcome != history.Fail || !errors.Is(r.Err, ErrDeliveryTimeout) {
			t.Fatalf("%s %v", r.Outcome, r.Err)
		}
	}
	if h := w.history(); len(h) != 0 {
		t.Fatalf("history has %d ops for records that never had a partition", len(h))
	}
	var metaRequests int
	w.do(func() { metaRequests = p.Stats().MetadataRequests })
	// 400 ms at one request per 20 ms at most, plus the first.
	if metaRequests > 25 {
		t.Fatalf("%d metadata requests: refresh not rate-limited", metaRequests)
	}
	auto := producerWith(t, w, c, ProducerConfig{AllowAutoTopicCreation: true})
	results = sendAll(t, w, auto, 10, func(i int) Record {
		return Record{Topic: "created", Key: []byte(strconv.Itoa(i)), Value: []byte("c" + strconv.Itoa(i))}
	}, 10*time.Second)
	for _, r := range results {
		if r.Outcome != history.OK || r.Record.Partition != KeyPartition(r.Record.Key, 2) {
			t.Fatalf("%s %v partition %d", r.Outcome, r.Err, r.Record.Partition)
		}
	}
	completedOnce(t, w.history())
}

// TestConsumerSeeksInsideBatchesAndByTime: with the leader epoch sent
// (KIP-320), a seek into the middle of a batch reads from that offset, a
// seek by timestamp reads from the first record at or after it, and one
// past every record reads only what comes after.
func TestConsumerSeeksInsideBatchesAndByTime(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{ManualPartition: true, Linger: 50 * time.Millisecond})
	sendAll(t, w, p, 10, valueRecord(2, "v-"), 10*time.Second)
	tp := TopicPartition{Topic: testTopic, Partition: 2}
	co := consumerWith(t, w, c, ConsumerConfig{Process: 1, SendLeaderEpoch: true})
	w.do(func() { _ = co.Assign([]TopicPartition{tp}) })
	all := consumeAll(t, w, co, 10, 10*time.Second)
	if len(all) != 10 {
		t.Fatalf("read %d records", len(all))
	}

	w.do(func() { _ = co.Seek(tp, 3) })
	if got := consumeAll(t, w, co, 7, 10*time.Second); len(got) != 7 || got[0].Offset != 3 {
		t.Fatalf("after seeking to 3: %+v", got)
	}

	stamp := all[6].TimestampMs
	first := 0
	for first < len(all) && all[first].TimestampMs < stamp {
		first++
	}
	w.do(func() { _ = co.SeekToTimestamp(tp, stamp) })
	if got := consumeAll(t, w, co, 10-first, 10*time.Second); len(got) != 10-first || got[0].Offset != int64(first) {
		t.Fatalf("after seeking to time %d: %d records from %+v, want from offset %d", stamp, len(got), got[0], first)
	}

	w.do(func() { _ = co.SeekToTimestamp(tp, all[9].TimestampMs+time.Hour.Milliseconds()) })
	w.waitFor("the position at the end", 5*time.Second, func() bool {
		if !co.Polling() {
			_ = co.Poll(func(PollResult) {})
		}
		pos, ok := co.Position(tp)
		return ok && pos == 10
	})
	w.waitFor("idle", 5*time.Second, func() bool { return !co.Polling() })
	var stats ConsumerStats
	w.do(func() { stats = co.Stats() })
	if stats.Resets != 0 {
		t.Fatalf("%d resets", stats.Resets)
	}
	var negErr error
	w.do(func() { negErr = co.SeekToTimestamp(tp, -5) })
	if negErr == nil {
		t.Fatal("a negative timestamp was accepted")
	}
	checkHistory(t, w.history(), checkers.DefaultOptions())
}

// TestPollTakesFetchesAnsweredBetweenPolls: a poll completes with the
// first leader's records, its fetches to the other leaders still in
// flight; their answers, back before the next poll, are that poll's
// records, and it sends no fetch for them. Dropped, a slower leader's
// answers could always come back while an application processed a
// faster one's records.
func TestPollTakesFetchesAnsweredBetweenPolls(t *testing.T) {
	c := startKfake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(testPartitions) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte(fmt.Sprint(p))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	w := newWorld(t)
	var co *Consumer
	w.do(func() {
		if co, err = NewConsumer(w.env(), ConsumerConfig{Bootstrap: c.ListenAddrs(), FetchMaxWait: 5 * time.Second}); err != nil {
			w.fatal(err)
		}
		if err := co.Assign(allPartitions()); err != nil {
			w.fatal(err)
		}
		for _, tp := range allPartitions() {
			// Known positions: the first poll fetches from every leader
			// at once, without asking for offsets first.
			if err := co.Seek(tp, 0); err != nil {
				w.fatal(err)
			}
		}
	})
	var polled []PollResult
	poll := func() {
		w.do(func() {
			if err := co.Poll(func(r PollResult) { polled = append(polled, r) }); err != nil {
				w.fatal(err)
			}
		})
	}
	poll()
	w.waitFor("the first poll", 5*time.Second, func() bool { return len(polled) == 1 })
	var first, fetches int
	w.do(func() { first, fetches = len(polled[0].Records), co.Stats().Fetches })
	if first == 0 || first == testPartitions || fetches < 2 {
		t.Fatalf("first poll: %d records after %d fetches; want some of the %d partitions' from one of several leaders", first, fetches, testPartitions)
	}
	time.Sleep(300 * time.Millisecond) // the other leaders answer on loopback meanwhile
	poll()
	w.waitFor("the second poll", 5*time.Second, func() bool { return len(polled) == 2 })
	w.do(func() {
		if got := first + len(polled[1].Records); got != testPartitions || co.Stats().Fetches != fetches {
			w.fatalf("two polls read %d of %d records with %d fetches; want every record with the first poll's %d fetches",
				got, testPartitions, co.Stats().Fetches, fetches)
		}
	})
}

// TestLendRecordsReusesOnePollSlice: with LendRecords, the next poll
// reads into the slice the last one lent, cleared once its callback
// returned; without, every poll's records are the caller's to keep.
func TestLendRecordsReusesOnePollSlice(t *testing.T) {
	c := startKfake(t)
	w := newWorld(t)
	p := producerWith(t, w, c, ProducerConfig{})
	sent := 0
	send := func() {
		sendAll(t, w, p, 20, func(int) Record {
			sent++
			return Record{Topic: testTopic, Value: []byte("v" + strconv.Itoa(sent))}
		}, 5*time.Second)
	}
	for _, lend := range []bool{true, false} {
		co := consumerWith(t, w, c, ConsumerConfig{FetchMaxWait: 50 * time.Millisecond, LendRecords: lend})
		w.do(func() { _ = co.Assign(allPartitions()) })
		var polls [][]Record
		var firstValue string
		for len(polls) < 2 {
			send()
			for got, tries := false, 0; !got; tries++ {
				if tries == 50 {
					t.Fatalf("LendRecords %v: 50 polls returned nothing", lend)
				}
				var res *PollResult
				w.do(func() {
					_ = co.Poll(func(r PollResult) {
						if len(polls) == 0 && len(r.Records) > 0 {
							firstValue = string(r.Records[0].Value)
						}
						res = &r
					})
				})
				w.waitFor("poll", 5*time.Second, func() bool { return res != nil })
				if got = len(res.Records) > 0; got {
					polls = append(polls, res.Records)
					var cleared bool
					w.do(func() { cleared = res.Records[0].Value == nil })
					if cleared != lend {
						t.Fatalf("LendRecords %v: a record cleared once its callback returned: %v", lend, cleared)
					}
				}
			}
		}
		first, second := polls[0], polls[1]
		if shared := &first[:1][0] == &second[:1][0]; shared != lend {
			t.Fatalf("LendRecords %v: the second poll read into the first's slice: %v", lend, shared)
		}
		if kept := string(first[0].Value); !lend && kept != firstValue {
			t.Fatalf("a kept record changed from %q to %q", firstValue, kept)
		}
	}
}
