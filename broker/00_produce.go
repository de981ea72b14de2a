package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/kafkawire"
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
	pc := b.produceCallSlab.Take()
	*pc = produceCall{b: b, req: req, r: r, resp: b.produceSpares.takeResponse(), acks: r.Acks,
		pending: 1} // released after the loop, so the answer waits for every partition
	resp := pc.resp
	resp.Topics = kafkawire.GrowProduceResponseTopics(resp.Topics, len(r.Topics))
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		st := &resp.Topics[ti]
		st.Topic = rt.Topic
		st.Partitions = kafkawire.GrowProduceResponsePartitions(st.Partitions, len(rt.Partitions))
		for pi := range rt.Partitions {
			st.Partitions[pi].Partition = rt.Partitions[pi].Partition
		}
	}
	for ti := range r.Topics {
		rt := &r.Topics[ti]
		for pi := range rt.Partitions {
			pc.produceTo(rt.Topic, &rt.Partitions[pi], &resp.Topics[ti].Partitions[pi])
		}
	}
	pc.finish()
}

// produceCall is a produce request waiting for its partitions' answers.
// Its methods and the callbacks of its waits are the request's whole
// state: one allocation, where a closure per step (an answer, a failure,
// a wait, its flush) took four per partition.
type produceCall struct {
	b    *Broker
	req  *request
	r    *kmsg.ProduceRequest
	resp *kmsg.ProduceResponse
	// acks is the request's, read before anything can recycle it.
	acks    int16
	pending int
}

// finish answers once every partition has its answer, and gives the
// request and the answer back to be decoded and built into again: nothing
// reads them once the answer is encoded (an acks=0 partition's flush
// reads neither).
func (pc *produceCall) finish() {
	pc.pending--
	if pc.pending > 0 {
		return
	}
	if pc.acks == 0 {
		pc.req.noResponse()
	} else {
		pc.req.respond(pc.resp)
	}
	pc.b.produceSpares.put(pc.r, pc.resp)
	pc.req.kreq, pc.r, pc.resp = nil, nil, nil
}

// produceFail fills a partition's answer with an error.
func produceFail(sp *kmsg.ProduceResponseTopicPartition, e *kerr.Error, format string, args ...any) {
	sp.ErrorCode = e.Code
	msg := fmt.Sprintf(format, args...)
	sp.ErrorMessage = &msg
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
}

// produceTo appends one partition's batch and fills its answer; when the
// answer must wait for the batch to reach disk (or the ISR) it arranges
// that, and the request's answer waits too unless acks=0.
func (pc *produceCall) produceTo(topicName string, rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) {
	b, r := pc.b, pc.r
	if r.TransactionID != nil {
		produceFail(sp, kerr.TransactionalIDAuthorizationFailed, "transactions are not served")
		return
	}
	p, kerrv := b.lookupLeader(topicName, rp.Partition)
	if kerrv != nil {
		produceFail(sp, kerrv, "partition %s-%d is not led here", topicName, rp.Partition)
		return
	}
	if isr, minISR := b.insyncReplicas(p); pc.acks == -1 && isr < minISR {
		produceFail(sp, kerr.NotEnoughReplicas, "min.insync.replicas is %d, the ISR has %d", minISR, isr)
		return
	}
	batch, count, err := record.SplitFirst(rp.Records, produceBatchesMax)
	if err != nil || count != 1 {
		produceFail(sp, kerr.InvalidRecord, "partition data must be exactly one record batch (v2): %v", err)
		return
	}
	res, err := p.log.Append(batch, p.leaderEpoch)
	if err != nil {
		if errors.Is(err, storage.ErrBatchTooLarge) {
			b.logTooLarge(topicName, err)
		}
		produceFail(sp, storageCode(err), "%v", err)
		return
	}
	b.stats.appends++
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, -1, res.LogStartOffset
	if b.cluster != nil && pc.acks == -1 && !b.cfg.Bugs.On(faults.BugAckBeforeISR) {
		pc.awaitReplicated(p, res.LastOffset, time.Duration(max(r.TimeoutMillis, 0))*time.Millisecond, sp)
		return
	}
	if !p.groupCommit {
		p.dataArrived()
		return
	}
	if res.LastOffset < p.log.FlushedOffset() {
		return // already on disk: a replay of a flushed batch
	}
	// A duplicate waits too: the original may not be on disk yet.
	pc.awaitFlush(p, sp)
}

// awaitReplicated holds the answer until the ISR has the batch (acks=-1
// in a cluster, the only case that waits for it).
func (pc *produceCall) awaitReplicated(p *partition, lastOffset int64, timeout time.Duration, sp *kmsg.ProduceResponseTopicPartition) {
	pc.pending++
	p.awaitReplicated(lastOffset, timeout, func(code *kerr.Error) {
		if code != nil {
			produceFail(sp, code, "waiting for the ISR to replicate offset %d", lastOffset)
		}
		pc.finish()
	})
}

// awaitFlush holds the answer until the batch is on disk. With acks=0
// nobody hears the answer, so the connection's later ones do not wait for
// it, and the flush's callback reads nothing of the request or answer.
func (pc *produceCall) awaitFlush(p *partition, sp *kmsg.ProduceResponseTopicPartition) {
	b := pc.b
	ackBeforeSync := b.cfg.Bugs.On(faults.BugAckBeforeSync)
	if pc.acks == 0 {
		p.log.Flush(func(error) { p.dataArrived() })
		return
	}
	pc.pending++
	p.log.Flush(func(err error) {
		if err != nil && !ackBeforeSync {
			produceFail(sp, kerr.KafkaStorageError, "%v", err)
		}
		p.dataArrived()
		if !ackBeforeSync {
			pc.finish()
		}
	})
	if ackBeforeSync {
		pc.finish() // the planted bug: acknowledge before the flush completes
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

// produceSpares are answered produce requests and their answers, decoded
// and built into again: a broker handles a produce for every batch its
// producers send, and fresh structs and slices each time were a fair
// share of a simulation's allocations.
type produceSpares struct {
	requests  kafkawire.Spares[kmsg.ProduceRequest]
	responses kafkawire.Spares[kmsg.ProduceResponse]
}

// produceSparesMax bounds the requests and answers kept: produces wait
// for their flush, so a few are in progress at once.
const produceSparesMax = 16

// takeRequest returns an empty produce request, with the slices of an
// earlier one when there is one to reuse.
func (ps *produceSpares) takeRequest() *kmsg.ProduceRequest {
	r := ps.requests.Take()
	if r == nil {
		return kmsg.NewPtrProduceRequest()
	}
	kafkawire.ResetProduceRequest(r)
	return r
}

// takeResponse returns an empty produce answer, with the slices of an
// earlier one when there is one to reuse.
func (ps *produceSpares) takeResponse() *kmsg.ProduceResponse {
	resp := ps.responses.Take()
	if resp == nil {
		return kmsg.NewPtrProduceResponse()
	}
	kafkawire.ResetProduceResponse(resp)
	return resp
}

// put takes back an answered request and its encoded answer.
func (ps *produceSpares) put(r *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) {
	ps.requests.Put(r, produceSparesMax)
	ps.responses.Put(resp, produceSparesMax)
}
