package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/faults"
)

// sentBatch is one batch a writer sent and what became of it.
type sentBatch struct {
	call   *call
	values []string
}

// The power-loss runs use seeds powerLossSeedFirst onwards; each seed
// moves the cut and what the disk keeps.
const (
	powerLossSeedFirst = 1000
	powerLossSeeds     = 200
)

// TestAcknowledgedWritesSurvivePowerLoss: with group commit, every batch
// the broker acknowledged, and every record a consumer was shown, is in
// the log after a power loss, at the offset it was given; the log has no
// holes and no record twice. Each seed cuts the power at a different
// moment and lets the disk keep or tear different unsynced data.
func TestAcknowledgedWritesSurvivePowerLoss(t *testing.T) {
	var total powerLossTally
	for seed := uint64(powerLossSeedFirst); seed < powerLossSeedFirst+powerLossSeeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			broken, tally := powerLossRun(t, seed, groupCommit)
			if len(broken) > 0 {
				t.Fatalf("%d violations, the first: %s", len(broken), broken[0])
			}
			total.add(tally)
		})
	}
	// The runs must exercise the interesting case: power lost with
	// writes sent but not acknowledged, some of which the crash took.
	if total.unacked == 0 || total.recordsSent == total.recordsKept {
		t.Fatalf("no run cut the power with unacknowledged writes lost: %+v", total)
	}
	t.Logf("%d runs: %+v", powerLossSeeds, total)
}

// powerLossTally counts what power-loss runs sent and kept.
type powerLossTally struct {
	acked, unacked, recordsSent, recordsKept, recordsSeen int
}

func (a *powerLossTally) add(b powerLossTally) {
	a.acked += b.acked
	a.unacked += b.unacked
	a.recordsSent += b.recordsSent
	a.recordsKept += b.recordsKept
	a.recordsSeen += b.recordsSeen
}

// The same run with the planted bug that acknowledges before the sync
// must find a lost acknowledged write: the check above has teeth.
func TestPowerLossRunCatchesAckBeforeSync(t *testing.T) {
	planted := func(cfg *broker.Config) {
		groupCommit(cfg)
		cfg.Bugs = faults.Bugs{faults.BugAckBeforeSync: true}
	}
	caught := 0
	for seed := uint64(powerLossSeedFirst); seed < powerLossSeedFirst+powerLossSeeds; seed++ {
		if broken, _ := powerLossRun(t, seed, planted); len(broken) > 0 {
			caught++
		}
	}
	if caught == 0 {
		t.Fatalf("acknowledging before the sync lost nothing acknowledged in %d power losses", powerLossSeeds)
	}
	t.Logf("the planted bug lost acknowledged data in %d of %d runs", caught, powerLossSeeds)
}

// powerLossRun streams batches from pipelined writers while a consumer
// polls, cuts the power at a seed-chosen moment, restarts the broker and
// returns every guarantee the log broke (acknowledged or consumed records
// lost or moved, holes, duplicates) and what it sent and kept.
func powerLossRun(t *testing.T, seed uint64, configure func(*broker.Config)) ([]string, powerLossTally) {
	t.Helper()
	const (
		writers          = 3
		batchesPerWriter = 60
		// inFlightMax is each writer's pipeline depth, so that batches
		// are appended while an earlier flush runs.
		inFlightMax = 2
	)
	r := newRig(t, seed, configure)
	r.createTopic("orders", 1)
	// Syncs of about a millisecond: a steady stream of rounds.
	if err := r.w.SlowDisk(brokerNode, 10); err != nil {
		t.Fatal(err)
	}
	var sent []*sentBatch
	conns := make([]*testConn, writers)
	nextBatch := make([]int, writers)
	for w := range conns {
		conns[w] = r.dial()
	}
	pump := func() {
		for w, tc := range conns {
			for len(tc.pending) < inFlightMax && nextBatch[w] < batchesPerWriter {
				b := nextBatch[w]
				nextBatch[w]++
				values := make([]string, 1+(b+w)%3)
				for i := range values {
					values[i] = fmt.Sprintf("w%d-b%d-r%d", w, b, i)
				}
				c := tc.send(produceRequest("orders", 0, -1, buildBatch(t, plain, int64(1000+b), values...)))
				sent = append(sent, &sentBatch{call: c, values: values})
			}
		}
	}
	// A consumer polls all along; what it is shown must survive.
	consumer := r.dial()
	var seen []readRecord
	var poll *call
	next := int64(0)
	pollAgain := func() {
		if poll != nil && !poll.done {
			return
		}
		if poll != nil {
			fp := fetchPartition(t, poll.resp)
			for _, rec := range decodeRecords(t, fp.RecordBatches) {
				if rec.offset >= fp.HighWatermark {
					t.Fatalf("fetch returned offset %d at or above its high watermark %d", rec.offset, fp.HighWatermark)
				}
				if rec.offset >= next {
					seen = append(seen, rec)
					next = rec.offset + 1
				}
			}
		}
		poll = consumer.send(fetchRequest("orders", 0, next, 0, 0))
	}
	// Cut the power at a seed-chosen moment of the stream.
	cutAt := r.now() + time.Duration(2+seed*7%30)*time.Millisecond
	r.runUntil("the moment of the cut", time.Second, func() bool {
		pump()
		pollAgain()
		return r.now() >= cutAt
	})
	r.powerCycle()
	// Recovery syncs what it kept before exposing it.
	r.runFor(100 * time.Millisecond)
	got := r.readAll("orders", 0)

	var broken []string
	where := map[string]int64{}
	for i, rec := range got {
		if rec.offset != int64(i) {
			broken = append(broken, fmt.Sprintf("the log has offset %d at position %d: a hole or a repeat", rec.offset, i))
		}
		if _, dup := where[rec.value]; dup {
			broken = append(broken, fmt.Sprintf("record %s is in the log twice", rec.value))
		}
		where[rec.value] = rec.offset
	}
	acked := 0
	for _, s := range sent {
		if !s.call.done {
			continue
		}
		acked++
		sp := producePartition(t, s.call.resp)
		expectCode(t, "produce", sp.ErrorCode, nil)
		for i, v := range s.values {
			want := sp.BaseOffset + int64(i)
			switch at, ok := where[v]; {
			case !ok:
				broken = append(broken, fmt.Sprintf("acknowledged record %s (offset %d) lost in the power loss", v, want))
			case at != want:
				broken = append(broken, fmt.Sprintf("acknowledged record %s at offset %d, acknowledged at %d", v, at, want))
			}
		}
	}
	for _, rec := range seen {
		if at, ok := where[rec.value]; !ok || at != rec.offset {
			broken = append(broken, fmt.Sprintf("consumer saw %s at %d, which the power loss took", rec.value, rec.offset))
		}
	}
	tally := powerLossTally{acked: acked, unacked: len(sent) - acked,
		recordsSent: countValues(sent), recordsKept: len(got), recordsSeen: len(seen)}
	// The log goes on after the survivors.
	end := int64(len(got))
	sp := r.produce("orders", 0, buildBatch(t, plain, 9000, "after"))
	expectCode(t, "produce after restart", sp.ErrorCode, nil)
	if sp.BaseOffset != end {
		broken = append(broken, fmt.Sprintf("first batch after the restart at %d, the log ended at %d", sp.BaseOffset, end))
	}
	return broken, tally
}

// scenario runs a little of everything, faults included, and returns the
// world's trace hash and the broker's log.
func scenario(t *testing.T, seed uint64) (uint64, string) {
	r := newRig(t, seed, groupCommit)
	r.createTopic("orders", 2)
	// Several topics, so that topics.json lists more than one.
	for _, name := range []string{"audit", "billing", "clicks", "deliveries"} {
		r.createTopic(name, 1)
	}
	id := r.initPID(-1, -1)
	tc := r.dial()
	for i := range 20 {
		// Sequences count per partition.
		p := producer{id: id.ProducerID, epoch: id.ProducerEpoch, seq: int32(i / 2)}
		tc.send(produceRequest("orders", int32(i%2), -1, buildBatch(t, p, int64(i), fmt.Sprint(i))))
	}
	r.dial().send(fetchRequest("orders", 1, 0, 200*time.Millisecond, 100))
	r.runFor(3 * time.Millisecond)
	if err := r.w.PowerLoss(brokerNode); err != nil {
		t.Fatal(err)
	}
	r.runFor(50 * time.Millisecond)
	if err := r.w.Restart(brokerNode); err != nil {
		t.Fatal(err)
	}
	r.awaitServing()
	r.admin = nil
	r.readAll("orders", 0)
	r.readAll("orders", 1)
	r.runFor(2 * time.Second)
	md := r.allTopics()
	if len(md) != 5 {
		t.Fatalf("topics after the scenario: %d", len(md))
	}
	return r.w.TraceHash(), r.logs.String()
}

// A seed replays a run exactly: the same trace hash and the same log;
// another seed gives another run.
func TestSameSeedSameTrace(t *testing.T) {
	hashA, logA := scenario(t, 100)
	hashB, logB := scenario(t, 100)
	if hashA != hashB {
		t.Fatalf("seed 100 ran twice: trace hashes %x and %x", hashA, hashB)
	}
	if logA != logB {
		t.Fatalf("seed 100 ran twice with the same hash but different logs:\n%s\n---\n%s", logA, logB)
	}
	if hashC, _ := scenario(t, 101); hashC == hashA {
		t.Fatalf("seeds 100 and 101 give the same trace hash %x: the hash does not see the run", hashA)
	}
}

// countValues counts the records of the batches sent.
func countValues(sent []*sentBatch) int {
	n := 0
	for _, s := range sent {
		n += len(s.values)
	}
	return n
}

// TestRecoveryLogsWhatItRepaired: after a power loss that tears the
// unflushed tail of a partition, the restarted broker logs one line for
// that partition (segments scanned, bytes truncated, indexes rebuilt,
// producer state rebuilt) and one summary line for the start; a partition
// recovery did not have to mend gets no line of its own. The seeds differ
// in what the disk keeps of the tail.
func TestRecoveryLogsWhatItRepaired(t *testing.T) {
	const seeds = 16
	torn := 0
	lastTornLog := ""
	for seed := uint64(300); seed < 300+seeds; seed++ {
		r := newRig(t, seed, nil) // flush never: the tail is in the page cache only
		r.createTopic("torn", 1)
		r.createTopic("idle", 1)
		id := r.initPID(-1, -1)
		for i := range 20 {
			p := producer{id: id.ProducerID, epoch: id.ProducerEpoch, seq: int32(i)}
			expectCode(t, "produce", r.produce("torn", 0, buildBatch(t, p, int64(1000+i), fmt.Sprintf("v%d", i))).ErrorCode, nil)
		}
		r.powerCycle()
		cut := r.logged("partition torn-0: recovery cut a torn or corrupt tail")
		line := r.logged("recovery: partition torn-0:", "segments scanned", "bytes truncated (1 cuts)",
			"indexes rebuilt", "producer state rebuilt from the log")
		if cut != line {
			t.Fatalf("seed %d: recovery cut a tail: %v; per-partition line: %v\n%s", seed, cut, line, r.logs)
		}
		if r.logged("recovery: partition idle-0:") {
			t.Fatalf("seed %d: a partition recovery left alone got a line:\n%s", seed, r.logs)
		}
		repaired := 0
		if cut {
			torn++
			repaired = 1
			lastTornLog = r.logs.String()
		}
		summary := fmt.Sprintf("recovery: 2 partitions opened in 0s, %d recovered cleanly, %d repaired", 2-repaired, repaired)
		if !r.logged(summary) {
			t.Fatalf("seed %d: no summary line %q:\n%s", seed, summary, r.logs)
		}
	}
	if torn == 0 {
		t.Fatalf("no seed of %d tore the tail", seeds)
	}
	t.Logf("%d of %d power losses tore the tail", torn, seeds)
	if testing.Verbose() {
		t.Log(lastTornLog)
	}
}
