package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
)

// Produce: v3-9.
//
// v3 is the first version carrying RecordBatch v2, the only format the log
// holds; v9 is the first flexible one. Each partition's data must be
// exactly one batch. acks=0 gets no response; acks=1 is answered once the
// batch is appended and, with group commit, on disk. A single broker is
// its partitions' whole ISR and answers acks=-1 as acks=1; in a cluster
// only the leader takes writes, acks=-1 is answered once the high
// watermark passes the batch (every ISR member has it) or the request's
// timeout ends (REQUEST_TIMED_OUT), and is refused before the append when
// the ISR is smaller than min.insync.replicas (NOT_ENOUGH_REPLICAS).
// Transactions are not served.
func init() { serve(0, 3, 9, handleProduce) }

// produceBatchesMax bounds the batches split out of one partition's data
// before it is refused; the protocol allows exactly one.
const produceBatchesMax = 2

func handleProduce(b *Broker, req *request) {
	r := req.kreq.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	pending := 1 // released after the loop, so the answer waits for every partition
	finish := func() {
		pending--
		if pending > 0 {
			return
		}
		if r.Acks == 0 {
			req.noResponse()
		} else {
			req.respond(resp)
		}
	}
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			wait := b.produceTo(r, rt.Topic, rp, sp)
			switch {
			case wait == nil:
			case r.Acks == 0:
				wait(func() {}) // nobody hears the answer: do not hold the connection's later ones
			default:
				pending++
				wait(finish)
			}
		}
	}
	finish()
}

// produceTo appends one partition's batch and fills its answer. When the
// answer must wait for the batch to reach disk it returns a function that
// arranges that and calls done then.
func (b *Broker) produceTo(r *kmsg.ProduceRequest, topicName string, rp kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) func(done func()) {
	fail := func(e *kerr.Error, format string, args ...any) func(func()) {
		sp.ErrorCode = e.Code
		msg := fmt.Sprintf(format, args...)
		sp.ErrorMessage = &msg
		sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
		return nil
	}
	if r.TransactionID != nil {
		return fail(kerr.TransactionalIDAuthorizationFailed, "transactions are not served")
	}
	p, kerrv := b.lookupLeader(topicName, rp.Partition)
	if kerrv != nil {
		return fail(kerrv, "partition %s-%d is not led here", topicName, rp.Partition)
	}
	if isr, minISR := b.insyncReplicas(p); r.Acks == -1 && isr < minISR {
		return fail(kerr.NotEnoughReplicas, "min.insync.replicas is %d, the ISR has %d", minISR, isr)
	}
	batches, err := record.Split(rp.Records, produceBatchesMax)
	if err != nil || len(batches) != 1 {
		return fail(kerr.InvalidRecord, "partition data must be exactly one record batch (v2): %v", err)
	}
	res, err := p.log.Append(batches[0], p.leaderEpoch)
	if err != nil {
		if errors.Is(err, storage.ErrBatchTooLarge) {
			b.logTooLarge(topicName, err)
		}
		return fail(storageCode(err), "%v", err)
	}
	b.stats.appends++
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, -1, res.LogStartOffset
	if b.cluster != nil && r.Acks == -1 && !b.cfg.Bugs.On(faults.BugAckBeforeISR) {
		timeout := time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond
		return func(done func()) {
			p.awaitReplicated(res.LastOffset, timeout, func(code *kerr.Error) {
				if code != nil {
					fail(code, "waiting for the ISR to replicate offset %d", res.LastOffset)
				}
				done()
			})
		}
	}
	if !p.groupCommit {
		p.dataArrived()
		return nil
	}
	if res.LastOffset < p.log.FlushedOffset() {
		return nil // already on disk: a replay of a flushed batch
	}
	return func(done func()) {
		// A duplicate waits too: the original may not be on disk yet.
		p.log.Flush(func(err error) {
			if err != nil && r.Acks != 0 && !b.cfg.Bugs.On(faults.BugAckBeforeSync) {
				fail(kerr.KafkaStorageError, "%v", err)
			}
			p.dataArrived()
			if !b.cfg.Bugs.On(faults.BugAckBeforeSync) {
				done()
			}
		})
		if b.cfg.Bugs.On(faults.BugAckBeforeSync) {
			done() // the planted bug: acknowledge before the flush completes
		}
	}
}

// insyncReplicas is the ISR's size and the partition's
// min.insync.replicas.
func (b *Broker) insyncReplicas(p *partition) (int, int) {
	if b.cluster == nil {
		return 1, b.cfg.MinInsyncReplicas
	}
	return len(p.replica.isr), p.replica.minInsync
}

// tooLargeTopicsLoggedMax bounds the topics remembered as logged; past it
// refusals go unlogged rather than grow the set without end.
const tooLargeTopicsLoggedMax = 1024

// logTooLarge logs, once per topic, that a produced batch was refused for
// its size: the client only sees MESSAGE_TOO_LARGE, and without a line
// here the operator cannot tell which limit it met.
func (b *Broker) logTooLarge(topicName string, err error) {
	if b.tooLargeLogged[topicName] || len(b.tooLargeLogged) >= tooLargeTopicsLoggedMax {
		return
	}
	b.tooLargeLogged[topicName] = true
	b.env.Log.Logf("topic %s: refused a produced batch: %v (the limit is message.max.bytes, or the topic's "+
		"max.message.bytes; sluice broker --segment-bytes lowers it to half a segment); further refusals for this topic are not logged", topicName, err)
}
