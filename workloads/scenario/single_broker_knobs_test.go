package scenario

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim/sched"
)

// TestDrawnKnobsStayValid: every drawn workload fits the broker's limits
// (a batch within the segment-bounded batch limit, a record within a
// batch), and the draws cover what the fixed workload never does.
func TestDrawnKnobsStayValid(t *testing.T) {
	fixed := fixedSingleBrokerKnobs(withParams(1, nil))
	seen := map[string]bool{}
	for seed := uint64(1); seed <= 300; seed++ {
		k := drawSingleBrokerKnobs(sched.NewRand(seed, "workload", 0), fixed)
		switch {
		case k.Clients < 2 || k.Clients > singleBrokerClientsMax:
			t.Fatalf("seed %d: %d clients", seed, k.Clients)
		case k.BatchMaxBytes+batchHeadroomBytes > k.brokerBatchMaxBytes():
			t.Fatalf("seed %d: batch %d above broker limit %d", seed, k.BatchMaxBytes, k.brokerBatchMaxBytes())
		case k.ValueBytes > k.BatchMaxBytes/2:
			t.Fatalf("seed %d: value %d in batch %d", seed, k.ValueBytes, k.BatchMaxBytes)
		case k.Concurrency < fixed.Concurrency || k.Concurrency > fsyncgateConcurrency:
			t.Fatalf("seed %d: concurrency %d", seed, k.Concurrency)
		}
		seen["codec "+k.Compression.String()] = true
		if k.Linger >= 50*1e6 && k.Concurrency > 50 {
			seen["long linger"] = true
		}
		if k.SeekEveryPolls > 0 {
			seen["seeks"] = true
		}
		if k.SendLeaderEpoch {
			seen["epochs"] = true
		}
		if k.RetentionBytes >= 0 {
			seen["retention by size"] = true
		}
		if k.RetentionAge > 0 {
			seen["retention by age"] = true
		}
	}
	for seed := uint64(1); seed <= 300; seed++ {
		clients := 2 + int(seed%3)
		topics := drawTopics(sched.NewRand(seed, "topics", 0), clients)
		counts := map[int32]bool{}
		for i, tk := range topics {
			if tk.Partitions < 1 || tk.Partitions > singleBrokerPartitionsFixed || counts[tk.Partitions] {
				t.Fatalf("seed %d: topics %+v: partition counts not distinct within 1..%d", seed, topics, singleBrokerPartitionsFixed)
			}
			counts[tk.Partitions] = true
			if tk.Partitions == 1 && i+1 < len(topics) {
				seen["single-partition topic before another"] = true
			}
		}
		if len(topics) < 1 || len(topics) > min(clients, singleBrokerTopicsMax) {
			t.Fatalf("seed %d: %d topics for %d clients", seed, len(topics), clients)
		}
		seen[strconv.Itoa(len(topics))+" topics"] = true
	}
	for seed := uint64(1); seed <= 300; seed++ {
		k := drawSingleBrokerKnobs(sched.NewRand(seed, "workload", 0), fixed)
		if d := drawDeliveryTimeout(sched.NewRand(seed, "delivery", 0)); d > 0 {
			seen["short delivery timeout"] = true
		}
		switch every := drawDeleteRecordsEvery(sched.NewRand(seed, "deletes", 0), k); {
		case every > 0 && k.Compacted:
			t.Fatalf("seed %d: deletes records every %v on a compacted topic", seed, every)
		case every > 0:
			seen["record deletes"] = true
		}
	}
	for _, want := range []string{"codec none", "codec gzip", "codec snappy", "codec lz4", "codec zstd",
		"long linger", "seeks", "epochs", "retention by size", "retention by age",
		"1 topics", "2 topics", "3 topics", "single-partition topic before another",
		"short delivery timeout", "record deletes"} {
		if !seen[want] {
			t.Errorf("300 draws never gave %s", want)
		}
	}
}

// TestSwarmSeedRunsItsDrawnWorkload: a swarm seed runs the workload its
// seed draws and lists it; the same seed without the swarm, or with
// workload=fixed, runs the fixed one; compression=<codec> overrides.
func TestSwarmSeedRunsItsDrawnWorkload(t *testing.T) {
	d := singleBrokerDef(t)
	const seed = 4 // draws a long linger: batches of many records
	o := withParams(seed, map[string]string{"faults": "none"})
	o.Swarm = true
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("swarm seed %d failed: %+v", seed, res.Failed())
	}
	drawn := singleBrokerKnobsFor(mustResolve(t, d, o))
	for name, want := range drawn.stats() {
		if got := res.Stats[name]; got != want {
			t.Errorf("stat %s = %d, want the drawn %d", name, got, want)
		}
	}
	if res.Stats["broker_requests_CreateTopics"] < res.Stats["knob_topics"] {
		t.Errorf("%d CreateTopics requests for %d topics: the clients must create them", res.Stats["broker_requests_CreateTopics"], res.Stats["knob_topics"])
	}
	if perBatch := float64(res.Stats["sends_ok"]) / float64(res.Stats["broker_appends"]); drawn.Linger >= 20*1e6 && perBatch < 3 {
		t.Errorf("linger %v: %.2f records per append, want batches of several", drawn.Linger, perBatch)
	}

	fixedParams := map[string]string{"faults": "none", "workload": "fixed", "compression": "zstd"}
	o = withParams(seed, fixedParams)
	o.Swarm = true
	k := singleBrokerKnobsFor(mustResolve(t, d, o))
	want := fixedSingleBrokerKnobs(o)
	want.Compression = 4 // zstd
	if !reflect.DeepEqual(k, want) {
		t.Errorf("workload=fixed compression=zstd: got %+v, want %+v", k, want)
	}
}

func mustResolve(t *testing.T, d Definition, o Options) Options {
	t.Helper()
	o, err := d.resolve(o)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDrainedClientIsNotStuck: with several producers writing to the same
// partitions, one client can finish its drain (its consumers reached the
// end offsets it read) while another client's last sends still land past
// them. Its consumers then stop polling behind the high watermark by
// design; the watchdog must not call that a stall. Swarm seed 80 drew such
// a run and was failed by the progress check before drivers said they
// were done.
func TestDrainedClientIsNotStuck(t *testing.T) {
	d := singleBrokerDef(t)
	const seed = 80
	o := withParams(seed, nil)
	o.Swarm = true
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats["knob_clients"] < 2 {
		t.Fatalf("seed %d drew %d clients; the case needs several", seed, res.Stats["knob_clients"])
	}
	for _, c := range res.Failed() {
		t.Errorf("check %s failed: %s", c.Name, c.Detail)
	}
}

// TestDrawnAdminDeletesRecords: a swarm seed that draws record deletions
// deletes records through DeleteRecords while it runs, its consumers see
// the log start move, and every check passes, the checkers excusing what
// lies below the final log start.
func TestDrawnAdminDeletesRecords(t *testing.T) {
	d := singleBrokerDef(t)
	const seed = 9 // draws deletions every second
	o := withParams(seed, map[string]string{"faults": "none"})
	o.Swarm = true
	if k := singleBrokerKnobsFor(mustResolve(t, d, o)); k.DeleteRecordsEvery == 0 {
		t.Fatalf("seed %d no longer draws record deletions: pick another", seed)
	}
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("seed %d failed: %+v", seed, res.Failed())
	}
	if res.Stats["record_deletes"] == 0 || res.Stats["log_start_max"] == 0 {
		t.Fatalf("%d deletions answered, log start at most %d: nothing was deleted", res.Stats["record_deletes"], res.Stats["log_start_max"])
	}
}

// TestLingerParam: linger.ms sets the producers' linger and keeps their
// rate, raising the sends in flight with it (at the fixed 20, a 100 ms
// linger held leader-crash to 6,264 sends of its 15,169), so that the
// same records arrive in fewer, larger batches; a value out of range is
// refused naming the parameter, and the workload's own linger changes
// nothing.
func TestLingerParam(t *testing.T) {
	d, err := Lookup("leader-crash")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"-1", "201", "5ms", "soon"} {
		err := d.Validate(withParams(1, map[string]string{"linger.ms": bad}))
		if err == nil || !strings.Contains(err.Error(), "linger.ms") {
			t.Errorf("linger.ms=%s: got %v, want a refusal naming linger.ms", bad, err)
		}
	}
	for _, good := range []string{"auto", "0", "200"} {
		if err := d.Validate(withParams(1, map[string]string{"linger.ms": good})); err != nil {
			t.Errorf("linger.ms=%s refused: %v", good, err)
		}
	}
	fixed := clusterKnobsFor(mustResolve(t, d, withParams(2, nil)))
	if same := clusterKnobsFor(mustResolve(t, d, withParams(2, map[string]string{"linger.ms": "5"}))); !reflect.DeepEqual(same, fixed) {
		t.Errorf("linger.ms=5, the workload's own: got %+v, want %+v", same, fixed)
	}
	short, long := runPlainAndWith(t, d, 2, map[string]string{"linger.ms": "100"})
	if got, want := long.Stats["sends_ok"], short.Stats["sends_ok"]*9/10; got < want {
		t.Errorf("linger.ms=100: %d sends acknowledged, want the rate kept: at least %d", got, want)
	}
	if long.Stats["knob_linger_ms"] != 100 || long.Stats["broker_appends"]*5 > short.Stats["broker_appends"] {
		t.Errorf("linger.ms=100: linger %d ms and %d appends against %d at 5 ms, want batches of several records",
			long.Stats["knob_linger_ms"], long.Stats["broker_appends"], short.Stats["broker_appends"])
	}
}

// TestPartitionerParam: partitioner=sticky leaves keyless records to the
// producers' sticky partitioner, which fills one partition's batch before
// drawing another: at the same linger the records go out in far fewer
// batches than round-robin's, still reach every partition, and the run
// passes its checks.
func TestPartitionerParam(t *testing.T) {
	d, err := Lookup("leader-crash")
	if err != nil {
		t.Fatal(err)
	}
	roundRobin, sticky := runPlainAndWith(t, d, 2, map[string]string{"partitioner": "sticky"})
	if sticky.Stats["knob_sticky"] != 1 || roundRobin.Stats["knob_sticky"] != 0 {
		t.Errorf("knob_sticky %d and %d, want 1 for sticky and 0 by default", sticky.Stats["knob_sticky"], roundRobin.Stats["knob_sticky"])
	}
	if got, rr := sticky.Stats["broker_appends"], roundRobin.Stats["broker_appends"]; got*2 > rr {
		t.Errorf("partitioner=sticky: %d appends against round-robin's %d, want under half", got, rr)
	}
	acked := map[int32]int64{}
	for _, op := range sticky.History {
		if op.F == history.Send && op.Type == history.OK {
			acked[op.Record.Partition]++
		}
	}
	for p := range int32(3) {
		if acked[p] < sticky.Stats["sends_ok"]/10 {
			t.Errorf("partitioner=sticky: partition %d got %d of %d acknowledged sends", p, acked[p], sticky.Stats["sends_ok"])
		}
	}
	if err := d.Validate(withParams(1, map[string]string{"partitioner": "random"})); err == nil || !strings.Contains(err.Error(), "partitioner") {
		t.Errorf("partitioner=random: got %v, want a refusal naming partitioner", err)
	}
}

// runPlainAndWith runs seed of d with its default parameters and with
// params, and fails t when the second run fails a check.
func runPlainAndWith(t *testing.T, d Definition, seed uint64, params map[string]string) (plain, with Result) {
	t.Helper()
	plain, err := Run(d, withParams(seed, nil))
	if err != nil {
		t.Fatal(err)
	}
	with, err = Run(d, withParams(seed, params))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range with.Failed() {
		t.Errorf("%v: check %s failed: %s", params, c.Name, c.Detail)
	}
	return plain, with
}
