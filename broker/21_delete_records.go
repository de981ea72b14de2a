package broker

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// DeleteRecords: v0-2.
//
// Moves each partition's log start offset up to the offset asked (-1: the
// high watermark), as Kafka's deleteRecordsOnLeader does: reads below it
// are refused at once, the segments wholly below it are deleted, and the
// answer is the new low watermark. An offset above the high watermark is
// OFFSET_OUT_OF_RANGE, a compact-only topic POLICY_VIOLATION, and a broker
// that does not lead the partition NOT_LEADER_OR_FOLLOWER.
//
// The answer waits until the log-start-offset-checkpoint holding the new
// starts is durable, so that an acknowledged deletion survives a crash
// (Kafka checkpoints periodically and may bring deleted records back).
// In a cluster it then waits, as Kafka's DelayedDeleteRecords does, until
// every ISR member reports in its fetches a log start at least the one
// asked (followers move theirs from the leader's fetch answers), so that
// no replica that could lead next still serves the deleted records; past
// the request's timeout the partition answers REQUEST_TIMED_OUT, and a
// leadership that ends meanwhile NOT_LEADER_OR_FOLLOWER.
func init() { serve(21, 0, 2, handleDeleteRecords) }

// deleteToHighWatermark is the offset that asks for everything below the
// high watermark.
const deleteToHighWatermark = -1

func handleDeleteRecords(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	// Every partition answered without error goes through the checkpoint
	// (and in a cluster the ISR wait), moved now or not: a retry after a
	// failed checkpoint or a timeout must learn whether its deletion is
	// durable and replicated.
	served := false
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			if b.deleteRecords(rt.Topic, rp, &sp) {
				served = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if !served {
		req.respond(resp)
		return
	}
	b.writeLogStarts(func(err error) {
		if err != nil {
			b.env.Log.Logf("delete records: %v", err)
			markStorageErrors(resp)
			req.respond(resp)
			return
		}
		if b.cluster == nil {
			req.respond(resp) // one broker is the whole ISR
			return
		}
		b.awaitFollowerStarts(resp, r.TimeoutMillis, func() { req.respond(resp) })
	})
}

// markStorageErrors fails every partition not already failed when the
// checkpoint could not be written: a retry is harmless (the start never
// moves back) and makes the deletion durable.
func markStorageErrors(resp *kmsg.DeleteRecordsResponse) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
				sp.ErrorCode = kerr.KafkaStorageError.Code
			}
		}
	}
}

// deleteRecords moves one partition's log start and reports whether it
// answered without error.
func (b *Broker) deleteRecords(topicName string, rp kmsg.DeleteRecordsRequestTopicPartition, sp *kmsg.DeleteRecordsResponseTopicPartition) bool {
	sp.LowWatermark = -1
	p, kerrv := b.lookupLeader(topicName, rp.Partition)
	if kerrv != nil {
		sp.ErrorCode = kerrv.Code
		return false
	}
	if b.topics.get(topicName).logConfig.Cleanup == storage.CleanupCompact {
		sp.ErrorCode = kerr.PolicyViolation.Code
		return false
	}
	hw := p.highWatermark()
	offset := rp.Offset
	if offset == deleteToHighWatermark {
		offset = hw
	}
	if offset < 0 || offset > hw {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return false
	}
	if _, err := p.log.AdvanceStartOffset(offset); err != nil {
		b.env.Log.Logf("partition %s-%d: delete records before %d: %v", p.topic, p.index, offset, err)
		sp.ErrorCode = storageCode(err).Code
		return false
	}
	sp.LowWatermark = p.log.StartOffset()
	return true
}

// deleteWaitsMax bounds the DeleteRecords answers one partition holds.
const deleteWaitsMax = 1024

// deleteState is a leader's record of its followers' log starts, as their
// fetches report them, and the DeleteRecords answers waiting on them.
type deleteState struct {
	// epoch is the leader epoch starts were recorded under; a new
	// leadership forgets them.
	epoch  int32
	starts map[int32]int64
	waits  []*deleteWait
}

// deleteWait is one DeleteRecords answer waiting for ISR members' starts.
type deleteWait struct {
	pending []deletePending
	timer   sim.Timer
	done    func()
}

// deletePending is one partition of a waiting answer.
type deletePending struct {
	p      *partition
	epoch  int32
	target int64
	sp     *kmsg.DeleteRecordsResponseTopicPartition
}

// awaitFollowerStarts holds resp until every partition answered without
// error has an ISR whose least log start reaches its low watermark.
func (b *Broker) awaitFollowerStarts(resp *kmsg.DeleteRecordsResponse, timeoutMs int32, done func()) {
	w := &deleteWait{done: done}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			sp := &resp.Topics[i].Partitions[j]
			if sp.ErrorCode != 0 {
				continue
			}
			p, kerrv := b.lookupLeader(resp.Topics[i].Topic, sp.Partition)
			if kerrv != nil {
				sp.ErrorCode, sp.LowWatermark = kerrv.Code, -1
				continue
			}
			if len(p.deletes.waits) >= deleteWaitsMax {
				sp.ErrorCode, sp.LowWatermark = kerr.RequestTimedOut.Code, -1
				continue
			}
			w.pending = append(w.pending, deletePending{p: p, epoch: p.leaderEpoch, target: sp.LowWatermark, sp: sp})
			p.deletes.waits = append(p.deletes.waits, w)
		}
	}
	timeout := time.Duration(max(timeoutMs, 0)) * time.Millisecond
	w.timer = b.env.Clock.AfterFunc(timeout, func() { w.expire() })
	w.check()
}

// check answers the partitions whose ISR reached their target, or whose
// leadership ended, and the whole answer once none is left.
func (w *deleteWait) check() {
	keep := w.pending[:0]
	for _, d := range w.pending {
		switch {
		case d.p.replica.role != roleLeader || d.p.leaderEpoch != d.epoch:
			d.sp.ErrorCode, d.sp.LowWatermark = kerr.NotLeaderForPartition.Code, -1
			d.p.dropDeleteWait(w)
		case d.p.isrLogStart() >= d.target:
			d.sp.LowWatermark = d.p.isrLogStart()
			d.p.dropDeleteWait(w)
		default:
			keep = append(keep, d)
		}
	}
	w.pending = keep
	if len(w.pending) == 0 && w.done != nil {
		w.timer.Stop()
		done := w.done
		w.done = nil
		done()
	}
}

// expire answers what is still pending REQUEST_TIMED_OUT, or
// NOT_LEADER_OR_FOLLOWER where the leadership ended.
func (w *deleteWait) expire() {
	if w.done == nil {
		return
	}
	w.check()
	for _, d := range w.pending {
		d.sp.ErrorCode, d.sp.LowWatermark = kerr.RequestTimedOut.Code, -1
		d.p.dropDeleteWait(w)
	}
	w.pending = nil
	w.check()
}

func (p *partition) dropDeleteWait(w *deleteWait) {
	p.deletes.waits = slices.DeleteFunc(p.deletes.waits, func(x *deleteWait) bool { return x == w })
}

// isrLogStart is the least log start over the leader and the ISR's
// followers (Kafka's low watermark); a follower that has not reported
// one since this leadership began counts as 0.
func (p *partition) isrLogStart() int64 {
	least := p.log.StartOffset()
	if p.deletes.epoch != p.leaderEpoch {
		return min(least, 0)
	}
	for _, id := range p.replica.isr {
		if id != p.b.cfg.NodeID {
			least = min(least, p.deletes.starts[id])
		}
	}
	return least
}

// noteFollowerLogStart records the log start a follower's fetch reports
// and answers the DeleteRecords waits it completes.
func (p *partition) noteFollowerLogStart(replica int32, start int64) {
	if p.replica.role != roleLeader || replica == p.b.cfg.NodeID || !slices.Contains(p.replica.replicas, replica) {
		return
	}
	d := &p.deletes
	if d.epoch != p.leaderEpoch || d.starts == nil {
		d.epoch, d.starts = p.leaderEpoch, map[int32]int64{}
	}
	d.starts[replica] = start
	for _, w := range slices.Clone(d.waits) {
		w.check()
	}
}
