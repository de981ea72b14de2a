package kafka

import (
	"bytes"
	"encoding/binary"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

var simSeeds = flag.Int("kafka.sim-seeds", 100, "seeded simulated runs with faults in TestSimFaults")

// simOutcome is what one simulated run left.
type simOutcome struct {
	hash    uint64
	hist    history.History
	report  *DrainReport
	events  []string
	drivers int
}

const (
	simRunFor    = 6 * time.Second
	simDrainFor  = 40 * time.Second
	simEventsMax = 20_000_000
)

// runSim runs a toy broker and a driver in the simulated world for one
// seed. With faults it partitions, blocks and pauses the client node and
// kills either node at seeded times during the first simRunFor, heals,
// then drains.
func runSim(t *testing.T, seed uint64, faults bool, logTo *bytes.Buffer) simOutcome {
	t.Helper()
	cfg := world.Config{Seed: seed}
	if logTo != nil {
		cfg.Log = logTo
	}
	w := world.New(cfg)
	hl := &history.Log{Now: func() int64 { return int64(w.Now()) }}
	w.AddNode("broker", startToyBroker(newToyLog(testTopic, testPartitions)))
	process := 0
	var current *Driver
	starts := 0
	dcfg := DriverConfig{
		Bootstrap: []string{"broker:9092"}, Topic: testTopic, Partitions: []int32{0, 1, 2, 3},
		Consumers: 2, Rate: 400, Concurrency: 40, Recorder: hl, DrainTimeout: 30 * time.Second,
		NewProcess: func() int { process++; return process - 1 },
		Producer: ProducerConfig{Linger: 2 * time.Millisecond, RequestTimeout: 500 * time.Millisecond,
			DeliveryTimeout: 3 * time.Second, RetryBackoff: 50 * time.Millisecond, Compression: record.CompressionSnappy},
		Consumer: ConsumerConfig{FetchMaxWait: 100 * time.Millisecond, RequestTimeout: 500 * time.Millisecond},
	}
	if seed%2 == 1 {
		dcfg.Keys = 13 // keyed: the partitioner places records
	}
	w.AddNode("client", StartDriver(dcfg, func(d *Driver) { current = d; starts++ }))
	if faults {
		rng := sched.NewRand(seed, "test-faults", 0)
		at := 300 * time.Millisecond
		for at < simRunFor-time.Second {
			hold := time.Duration(100+rng.IntN(4000)) * time.Millisecond
			switch rng.IntN(5) {
			case 0:
				w.At(at, func() { _ = w.Partition([][]string{{"client"}, {"broker"}}) })
				w.At(at+hold, func() { _ = w.Heal() })
			case 1:
				w.At(at, func() { _ = w.Pause("client") })
				w.At(at+hold, func() { _ = w.Resume("client") })
			case 2:
				w.At(at, func() { _ = w.Kill("client") })
				w.At(at+hold/4, func() { _ = w.Restart("client") })
			case 3:
				w.At(at, func() { _ = w.Block("broker", "client") })
				w.At(at+hold, func() { _ = w.Heal() })
			case 4:
				// The toy broker's log survives its restart (an ideal disk).
				w.At(at, func() { _ = w.Kill("broker") })
				w.At(at+hold/4, func() { _ = w.Restart("broker") })
			}
			at += hold + time.Duration(rng.IntN(800))*time.Millisecond
		}
	}
	w.Run(simRunFor, simEventsMax)
	var report *DrainReport
	w.At(w.Now(), func() {
		current.Drain(func(r DrainReport) { report = &r })
	})
	w.Run(simRunFor+simDrainFor, simEventsMax)
	if report == nil {
		t.Fatalf("seed %d: the drain never finished", seed)
	}
	return simOutcome{hash: w.TraceHash(), hist: hl.Ops, report: report, events: w.Events(), drivers: starts}
}

// TestSimDeterminism runs a seed twice, faults included: the trace hashes
// and histories are identical. Another seed gives another run.
func TestSimDeterminism(t *testing.T) {
	a := runSim(t, 7, true, nil)
	b := runSim(t, 7, true, nil)
	if a.hash != b.hash {
		t.Fatalf("same seed, trace hashes %x and %x", a.hash, b.hash)
	}
	var ha, hb bytes.Buffer
	if err := history.Write(&ha, a.hist); err != nil {
		t.Fatal(err)
	}
	if err := history.Write(&hb, b.hist); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ha.Bytes(), hb.Bytes()) {
		t.Fatalf("same seed, different histories")
	}
	if c := runSim(t, 8, true, nil); c.hash == a.hash {
		t.Fatalf("seeds 7 and 8 gave the same run")
	}
}

// TestSimFaults runs seeded fault schedules (partitions, one-way blocks,
// pauses, client kills) and checks every history with the Jepsen Kafka
// checker after a final drain: nothing acknowledged is lost or unseen, no
// duplicates, sends land in invoke order, polls never skip or go back.
func TestSimFaults(t *testing.T) {
	totals := map[history.Type]int{}
	restarts := 0
	for seed := uint64(1); seed <= uint64(*simSeeds); seed++ {
		var logBuf bytes.Buffer
		out := runSim(t, seed, true, &logBuf)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Logf("seed %d world events:\n%s", seed, strings.Join(out.events, "\n"))
			if testing.Verbose() {
				t.Logf("log:\n%s", logBuf.String())
			}
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		if !out.report.CaughtUp {
			fail("drain: %+v", out.report)
		}
		opts := checkers.DefaultOptions()
		opts.LinearSkip = true
		report := checkers.Check(out.hist, opts)
		for _, v := range report.Verdicts {
			if !v.Valid {
				fail("%s: %+v", v.Checker, v.Anomalies)
			}
		}
		for _, op := range out.hist {
			if op.F == history.Send && op.Type != history.Invoke {
				totals[op.Type]++
			}
		}
		restarts += out.drivers - 1
	}
	t.Logf("%d seeds: send outcomes %v, %d client restarts", *simSeeds, totals, restarts)
	if totals[history.OK] == 0 || totals[history.Info]+totals[history.Fail] == 0 {
		t.Fatalf("faults never bit: outcomes %v", totals)
	}
}

// TestSimHealthyRunIsAllOK: without faults every send is acknowledged and
// read by both consumers.
func TestSimHealthyRunIsAllOK(t *testing.T) {
	out := runSim(t, 3, false, nil)
	sends, oks := 0, 0
	for _, op := range out.hist {
		if op.F == history.Send {
			switch op.Type {
			case history.Invoke:
				sends++
			case history.OK:
				oks++
			default:
				t.Fatalf("healthy run: %+v", op)
			}
		}
	}
	if sends < 1000 || oks != sends {
		t.Fatalf("%d sends, %d ok", sends, oks)
	}
	checkHistory(t, out.hist, checkers.DefaultOptions())
	if !out.report.CaughtUp {
		t.Fatalf("drain %+v", out.report)
	}
}

// TestSimWithoutInitProducerID: a broker that does not serve
// InitProducerId gets plain (non-idempotent) batches, and the producer
// works on.
func TestSimWithoutInitProducerID(t *testing.T) {
	w := world.New(world.Config{Seed: 5})
	log := newToyLog(testTopic, testPartitions)
	log.noIdempotence = true
	w.AddNode("broker", startToyBroker(log))
	hl := &history.Log{Now: func() int64 { return int64(w.Now()) }}
	var p *Producer
	results := map[history.Type]int{}
	w.AddNode("client", func(env sim.Env) {
		var err error
		p, err = NewProducer(env, ProducerConfig{Bootstrap: []string{"broker:9092"}, Recorder: hl})
		if err != nil {
			panic(err)
		}
		for i := range 50 {
			rec := Record{Topic: testTopic, Key: []byte{byte(i)}, Value: []byte{'v', byte(i)}}
			if err := p.Send(rec, func(r Result) { results[r.Outcome]++ }); err != nil {
				panic(err)
			}
		}
	})
	w.Run(5*time.Second, simEventsMax)
	if results[history.OK] != 50 {
		t.Fatalf("outcomes %v", results)
	}
	if s := p.Stats(); s.ProducerID != -1 || p.idempotent {
		t.Fatalf("still idempotent: %+v", s)
	}
	for _, part := range log.partitions {
		for _, b := range part.batches {
			if pid := int64(binary.BigEndian.Uint64(b.raw[43:])); pid != -1 {
				t.Fatalf("batch with producer id %d", pid)
			}
		}
	}
	checkHistory(t, hl.Ops, checkers.Options{})
}
