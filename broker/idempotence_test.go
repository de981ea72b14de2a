package broker_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Producer ids come from blocks reserved durably before use, so a power
// loss right after an id is handed out never lets the next incarnation
// hand it out again.
func TestInitProducerIDDistinctAcrossRestarts(t *testing.T) {
	for seed := uint64(3000); seed < 3050; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := newRig(t, seed, nil)
			seen := map[int64]int{}
			for incarnation := range 3 {
				// Concurrent requests share a block reservation: the first
				// starts it, the others arrive while it is being written.
				// Separate connections, so that no answer waits for
				// another's turn.
				var answered []*call
				conns := make([]*testConn, 4)
				for i := range conns {
					conns[i] = r.dial()
					conns[i].send(initPIDRequest(initPIDVersion, -1, -1))
				}
				// Power off the moment the first answer arrives: whatever
				// the client was told must be covered by a durable block.
				r.runUntil("an id handed out", answerWaitMax, func() bool {
					for _, tc := range conns {
						if len(tc.answered) > 0 {
							return true
						}
					}
					return false
				})
				for _, tc := range conns {
					answered = append(answered, tc.answered...)
				}
				for _, c := range answered {
					if c.parseErr != nil {
						t.Fatal(c.parseErr)
					}
					resp := c.resp.(*kmsg.InitProducerIDResponse)
					expectCode(t, "init producer id", resp.ErrorCode, nil)
					if resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
						t.Fatalf("got producer id %d epoch %d", resp.ProducerID, resp.ProducerEpoch)
					}
					if prev, dup := seen[resp.ProducerID]; dup {
						t.Fatalf("producer id %d handed out in incarnation %d and again in %d", resp.ProducerID, prev, incarnation)
					}
					seen[resp.ProducerID] = incarnation
				}
				r.powerCycle()
			}
			// Older versions allocate from the same blocks.
			old := r.wait(r.dial().send(initPIDRequest(0, -1, -1))).(*kmsg.InitProducerIDResponse)
			if _, dup := seen[old.ProducerID]; dup || old.ProducerID < 0 {
				t.Fatalf("v0 got producer id %d (seen before: %v)", old.ProducerID, dup)
			}
		})
	}
}

// From v3 a producer naming its current id and epoch keeps its id at the
// next epoch; a transactional id is refused.
func TestInitProducerIDBumpsEpoch(t *testing.T) {
	r := newRig(t, 65, nil)
	first := r.initPID(-1, -1)
	bumped := r.initPID(first.ProducerID, first.ProducerEpoch)
	if bumped.ProducerID != first.ProducerID || bumped.ProducerEpoch != first.ProducerEpoch+1 {
		t.Fatalf("bump of %d/%d gave %d/%d", first.ProducerID, first.ProducerEpoch, bumped.ProducerID, bumped.ProducerEpoch)
	}
	// v2 has no id or epoch to name: a new id.
	v2 := r.roundTrip(initPIDRequest(2, -1, -1)).(*kmsg.InitProducerIDResponse)
	expectCode(t, "v2", v2.ErrorCode, nil)
	if v2.ProducerID == first.ProducerID || v2.ProducerEpoch != 0 {
		t.Fatalf("v2 init gave %d/%d", v2.ProducerID, v2.ProducerEpoch)
	}
	// At the last epoch a bump gives a new id.
	exhausted := r.initPID(first.ProducerID, 32767)
	if exhausted.ProducerID == first.ProducerID || exhausted.ProducerEpoch != 0 {
		t.Fatalf("bump at the last epoch gave %d/%d", exhausted.ProducerID, exhausted.ProducerEpoch)
	}
	txn := initPIDRequest(initPIDVersion, -1, -1)
	txn.TransactionalID = kmsg.StringPtr("txn")
	resp := r.roundTrip(txn).(*kmsg.InitProducerIDResponse)
	expectCode(t, "transactional init", resp.ErrorCode, kerr.TransactionalIDAuthorizationFailed)
}

// An idempotent producer's replayed batch is answered with the original
// offsets and not appended twice, across a power loss too; a sequence gap
// and a fenced epoch are refused.
func TestIdempotentProduce(t *testing.T) {
	r := newRig(t, 66, groupCommit)
	r.createTopic("orders", 1)
	id := r.initPID(-1, -1)
	p := producer{id: id.ProducerID, epoch: id.ProducerEpoch, seq: 0}
	first := buildBatch(t, p, 1000, "a", "b", "c")
	sp := r.produce("orders", 0, first)
	expectCode(t, "first", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Fatalf("first batch at %d", sp.BaseOffset)
	}
	replay := r.produce("orders", 0, first)
	expectCode(t, "replay", replay.ErrorCode, nil)
	if replay.BaseOffset != 0 {
		t.Fatalf("replay answered base offset %d, want the original 0", replay.BaseOffset)
	}
	p.seq = 3
	second := buildBatch(t, p, 2000, "d", "e")
	sp = r.produce("orders", 0, second)
	expectCode(t, "second", sp.ErrorCode, nil)
	if sp.BaseOffset != 3 {
		t.Fatalf("second batch at %d, want 3: the replay was appended", sp.BaseOffset)
	}
	// A replay of an older batch than the last is still recognised.
	if again := r.produce("orders", 0, first); again.ErrorCode != 0 || again.BaseOffset != 0 {
		t.Fatalf("replay of the first batch after the second: %s at %d", errName(again.ErrorCode), again.BaseOffset)
	}
	// A gap: sequence 10 when 5 is next.
	gap := producer{id: p.id, epoch: p.epoch, seq: 10}
	expectCode(t, "gap", r.produce("orders", 0, buildBatch(t, gap, 3000, "z")).ErrorCode, kerr.OutOfOrderSequenceNumber)
	expectRecords(t, r.readAll("orders", 0), []string{"a", "b", "c", "d", "e"})

	// After a power loss the producer state comes back from the log: the
	// replay still maps to the original offsets.
	r.powerCycle()
	if again := r.produce("orders", 0, second); again.ErrorCode != 0 || again.BaseOffset != 3 {
		t.Fatalf("replay after a power loss: %s at %d, want the original 3", errName(again.ErrorCode), again.BaseOffset)
	}
	expectCode(t, "gap after restart", r.produce("orders", 0, buildBatch(t, gap, 3000, "z")).ErrorCode, kerr.OutOfOrderSequenceNumber)

	// A bumped epoch starts again at sequence 0 and fences the old epoch.
	bumped := r.initPID(p.id, p.epoch)
	next := producer{id: bumped.ProducerID, epoch: bumped.ProducerEpoch, seq: 0}
	sp = r.produce("orders", 0, buildBatch(t, next, 4000, "f"))
	expectCode(t, "new epoch", sp.ErrorCode, nil)
	if sp.BaseOffset != 5 {
		t.Fatalf("new epoch's batch at %d, want 5", sp.BaseOffset)
	}
	stale := producer{id: p.id, epoch: p.epoch, seq: 5}
	expectCode(t, "old epoch", r.produce("orders", 0, buildBatch(t, stale, 5000, "g")).ErrorCode, kerr.InvalidProducerEpoch)
	expectRecords(t, r.readAll("orders", 0), []string{"a", "b", "c", "d", "e", "f"})
}
