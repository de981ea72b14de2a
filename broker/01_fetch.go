package broker

import (
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/kafkawire"
)

// Fetch: v4-12.
//
// v4 is the first version returning RecordBatch v2; v12 the last naming
// topics (v13 switches to topic ids). Consumers (replica id -1) and, in a
// cluster, followers (replica id = their broker id) fetch from the
// leader: a follower's fetch offset is its log end, which the leader
// records (replication.go), and it reads past the high watermark; fetch
// sessions are not offered (the session id answered is 0, so
// clients send full fetches). A fetch with less than min_bytes available
// waits up to max_wait for more, woken when a partition it reads gains
// data. Reads stop at the high watermark; at least one whole batch is
// returned even when it exceeds the byte limits (KIP-74).
func init() { serve(1, 4, 12, handleFetch) }

// fetchWaitMax bounds how long a fetch may be held, whatever it asks.
const fetchWaitMax = 30 * time.Second

// budgetRetryDelay is how often a fetch held for want of answer budget
// looks again.
const budgetRetryDelay = 50 * time.Millisecond

// fetchWait is a fetch held until enough data arrives or its wait ends.
type fetchWait struct {
	b     *Broker
	req   *request
	r     *kmsg.FetchRequest
	timer interface{ Stop() bool }
	// budgetTimer retries a fetch held because the node's answer budget
	// was spent: no partition event says when it frees.
	budgetTimer interface{ Stop() bool }
	done        bool
	// parked are the partitions holding this fetch; it leaves them when
	// it is answered, so answered fetches never pile up on a partition.
	parked []*partition
	// expireFn and budgetFn are the timers' callbacks, bound once: an
	// answered wait is kept for a later fetch (fetchBuffers.waits).
	expireFn, budgetFn func()
}

// takeWait returns a wait for req's fetch r: an answered one kept for
// reuse, or a new one. A wait is kept only once answered, with its timers
// stopped (a stopped timer never runs) and out of every partition's
// waiters, and fetches arrive one frame at a time, so nothing that still
// holds an answered wait runs again before it is reused.
func (b *Broker) takeWait(req *request, r *kmsg.FetchRequest) *fetchWait {
	w := b.fetchBuffers.waits.Take()
	if w == nil {
		w = &fetchWait{b: b}
		w.expireFn = func() { w.attempt(true) }
		w.budgetFn = func() {
			w.budgetTimer = nil
			w.retry()
		}
	}
	w.req, w.r, w.done = req, r, false
	return w
}

func handleFetch(b *Broker, req *request) {
	r := req.kreq.(*kmsg.FetchRequest)
	if r.ReplicaID >= 0 {
		if b.cluster == nil {
			resp := r.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = kerr.UnsupportedVersion.Code // a single broker has no followers
			req.respond(resp)
			return
		}
		b.noteFollowerFetches(r)
	}
	w := b.takeWait(req, r)
	if w.attempt(false) {
		return
	}
	wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, fetchWaitMax)
	w.timer = b.env.Clock.AfterFunc(wait, w.expireFn)
	w.park()
}

// attempt reads every requested partition and answers if there is enough
// (or final is set). It reports whether it answered.
func (w *fetchWait) attempt(final bool) bool {
	if w.done {
		return true
	}
	if !final && w.r.MaxWaitMillis > 0 && w.b.fetchBytesAllowed(w.r) <= 0 {
		if w.budgetTimer == nil {
			w.budgetTimer = w.b.env.Clock.AfterFunc(budgetRetryDelay, w.budgetFn)
		}
		return false
	}
	if !final && w.r.MaxWaitMillis > 0 && w.r.MinBytes > 0 && !w.b.fetchHasNews(w.r) {
		return false // the read would find no bytes and no error: too little
	}
	resp, bytes, failed := w.b.readFetch(w.r)
	if !final && !failed && bytes < int(w.r.MinBytes) && w.r.MaxWaitMillis > 0 {
		w.b.fetchBuffers.putResponse(resp)
		return false
	}
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.budgetTimer != nil {
		w.budgetTimer.Stop()
		w.budgetTimer = nil
	}
	for _, p := range w.parked {
		p.removeWaiter(w)
	}
	clear(w.parked)
	w.parked = w.parked[:0]
	w.req.respondSized(resp, fetchAnswerSizeBytes(resp, bytes))
	w.b.fetchBuffers.putResponse(resp) // the answer's frame holds a copy
	// Nothing reads the request once it is answered: a late timer finds
	// the wait done, and the answer's strings point into the frame.
	w.b.fetchBuffers.putRequest(w.r)
	w.r, w.req.kreq, w.req = nil, nil, nil
	w.b.fetchBuffers.waits.Put(w, fetchWaitsMax)
	return true
}

// fetchBuffers are the read buffers of answered fetches, reused by later
// fetches so that reading a megabyte of records neither allocates nor
// zeroes a megabyte. It keeps at most fetchBuffersMax buffers of at most
// fetchBufferBytesMax each, and the answers themselves (encoded, or
// dropped for want of data): a follower's fetch names every partition it
// follows, and an answer's partitions are about 200 bytes each.
type fetchBuffers struct {
	free      [][]byte
	responses kafkawire.Spares[kmsg.FetchResponse]
	// requests are answered fetch requests, decoded into again: a broker
	// decodes a fetch for every batch its followers and consumers read.
	requests kafkawire.Spares[kmsg.FetchRequest]
	// waits are answered fetch waits, held again by later fetches.
	waits kafkawire.Spares[fetchWait]
}

const (
	fetchBuffersMax     = 4
	fetchBufferBytesMax = 2 << 20
	// fetchResponsesMax bounds the answers kept; answers are built and
	// encoded one at a time, so one would do.
	fetchResponsesMax = 4
	// fetchRequestsMax bounds the requests kept; requests are decoded
	// one at a time, so one would do.
	fetchRequestsMax = 4
	// fetchWaitsMax bounds the waits kept. A wait is kept once answered,
	// and about as many are answered as arrive.
	fetchWaitsMax = 16
)

// takeRequest returns a fetch request to decode into with
// kafkawire.ReadFetchRequest, which replaces every field: an earlier one,
// whose topic and partition slices it fills again, when there is one.
func (fb *fetchBuffers) takeRequest() *kmsg.FetchRequest {
	if r := fb.requests.Take(); r != nil {
		return r
	}
	return kmsg.NewPtrFetchRequest()
}

// putRequest takes back a fetch request that has been answered.
func (fb *fetchBuffers) putRequest(r *kmsg.FetchRequest) {
	fb.requests.Put(r, fetchRequestsMax)
}

// takeResponse returns an empty answer to r, with the topic and partition
// slices of an earlier one when there is one to reuse.
func (fb *fetchBuffers) takeResponse(r *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := fb.responses.Take()
	if resp == nil {
		return r.ResponseKind().(*kmsg.FetchResponse)
	}
	kafkawire.ResetFetchResponse(resp)
	resp.Version = r.Version
	return resp
}

// addTopic appends an answer topic to resp, reusing the partition slice a
// topic of an earlier answer left in that place.
func addTopic(resp *kmsg.FetchResponse, name string, partitions int) *kmsg.FetchResponseTopic {
	var parts []kmsg.FetchResponseTopicPartition
	if n := len(resp.Topics); n < cap(resp.Topics) {
		parts = resp.Topics[:n+1][n].Partitions[:0]
	}
	if cap(parts) < partitions {
		parts = make([]kmsg.FetchResponseTopicPartition, 0, partitions)
	}
	st := kmsg.NewFetchResponseTopic()
	st.Topic, st.Partitions = name, parts
	resp.Topics = append(resp.Topics, st)
	return &resp.Topics[len(resp.Topics)-1]
}

// putResponse takes back an answer that has been encoded (or dropped),
// with its record buffers.
func (fb *fetchBuffers) putResponse(resp *kmsg.FetchResponse) {
	fb.putRecords(resp)
	fb.responses.Put(resp, fetchResponsesMax)
}

// take returns a free buffer to read into, or nil. It may be too small,
// in which case the read allocates one of the size it needs; a read of a
// few bytes never allocates a buffer of the whole limit.
func (fb *fetchBuffers) take() []byte {
	if len(fb.free) == 0 {
		return nil
	}
	last := len(fb.free) - 1
	buf := fb.free[last]
	fb.free[last] = nil
	fb.free = fb.free[:last]
	return buf
}

// put keeps buf if there is room or it is larger than the smallest kept,
// so that the buffers kept grow to the size of the reads.
func (fb *fetchBuffers) put(buf []byte) {
	if cap(buf) == 0 || cap(buf) > fetchBufferBytesMax {
		return
	}
	if len(fb.free) < fetchBuffersMax {
		fb.free = append(fb.free, buf[:0])
		return
	}
	smallest := 0
	for i := range fb.free {
		if cap(fb.free[i]) < cap(fb.free[smallest]) {
			smallest = i
		}
	}
	if cap(buf) > cap(fb.free[smallest]) {
		fb.free[smallest] = buf[:0]
	}
}

// putRecords takes back the record buffers of a fetch answer that has
// been encoded (or dropped).
func (fb *fetchBuffers) putRecords(resp *kmsg.FetchResponse) {
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			fb.put(sp.RecordBatches)
			sp.RecordBatches = nil
		}
	}
}

// fetchAnswerSizeBytes estimates a fetch answer's encoded size: its
// records and a little for each partition's header.
func fetchAnswerSizeBytes(resp *kmsg.FetchResponse, recordBytes int) int {
	const perPartitionBytes = 64
	size := 64 + recordBytes
	for _, rt := range resp.Topics {
		size += len(rt.Topic) + perPartitionBytes*len(rt.Partitions)
	}
	return size
}

// retry is called when a partition the fetch reads gained data.
func (w *fetchWait) retry() {
	if !w.attempt(false) {
		w.park()
	}
}

// park registers the fetch with every partition it reads; a partition
// that holds too many waiters answers it at once.
func (w *fetchWait) park() {
	for _, rt := range w.r.Topics {
		for _, rp := range rt.Partitions {
			p, kerrv := w.b.lookupPartition(rt.Topic, rp.Partition)
			if kerrv != nil || slices.Contains(w.parked, p) {
				continue
			}
			if !p.addWaiter(w) {
				w.attempt(true)
				return
			}
			w.parked = append(w.parked, p)
		}
	}
}

// finish answers a held fetch now (its partition is going away).
func (w *fetchWait) finish() { w.attempt(true) }

// readFetch builds a fetch response from the logs as they are now: the
// bytes it holds, and whether some partition failed (an error answers at
// once, without waiting).
func (b *Broker) readFetch(r *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool) {
	resp := b.fetchBuffers.takeResponse(r)
	remaining, first := b.fetchBytesAllowed(r), true
	if remaining <= 0 {
		first = false // not even the one batch KIP-74 would force in
	}
	total, failed := 0, false
	if cap(resp.Topics) < len(r.Topics) {
		resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(r.Topics))
	}
	for _, rt := range r.Topics {
		st := addTopic(resp, rt.Topic, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Empty, not null: librdkafka rejects a null record set.
			sp.RecordBatches = []byte{}
			n := b.readPartition(rt.Topic, rp, r.ReplicaID >= 0, remaining, first && total == 0, &sp)
			if sp.ErrorCode != 0 {
				failed = true
			}
			total += n
			remaining -= n
			st.Partitions = append(st.Partitions, sp)
		}
	}
	return resp, total, failed
}

// fetchHasNews reports whether reading r now could find records or an
// error: some partition it names is not led here at its epoch, or has
// records between its fetch offset and what that reader may read (the
// high watermark, a follower the log end), or a fetch offset outside the
// log. When it reports false, readFetch would answer no bytes and no
// error, so a held fetch stays held without building that answer. A
// leader wakes its held fetches on every append and every follower fetch,
// and about half of them find nothing new (a consumer's, woken by an
// append its high watermark has not yet passed), as Kafka's delayed fetch
// checks offsets before it reads.
func (b *Broker) fetchHasNews(r *kmsg.FetchRequest) bool {
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			p, kerrv := b.lookupLeader(rt.Topic, rp.Partition)
			if kerrv != nil || p.log.Err() != nil {
				return true
			}
			if rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch != p.leaderEpoch {
				return true
			}
			readTo := p.highWatermark()
			if r.ReplicaID >= 0 {
				readTo = p.log.EndOffset()
			}
			if rp.FetchOffset < p.log.StartOffset() || rp.FetchOffset > p.log.EndOffset() || rp.FetchOffset < readTo {
				return true
			}
		}
	}
	return false
}

// fetchBytesAllowed is the record bytes a fetch may be answered with: what
// it asks, within fetch.max.bytes and within what the node's answer budget
// has left. When the budget cannot take even one whole batch it is zero or
// less, and the fetch is answered without records (a held fetch waits).
func (b *Broker) fetchBytesAllowed(r *kmsg.FetchRequest) int {
	allowed := math.MaxInt
	if r.MaxBytes > 0 {
		allowed = int(r.MaxBytes)
	}
	if b.cfg.FetchMaxBytes > 0 {
		allowed = min(allowed, b.cfg.FetchMaxBytes)
	}
	budget := b.answerBudgetBytes()
	if budget < b.cfg.Log.MaxBatchBytes {
		return 0
	}
	// A whole batch past the allowance may still come (KIP-74), so the
	// budget keeps room for it.
	return min(allowed, budget-b.cfg.Log.MaxBatchBytes+1)
}

// readPartition fills one partition's answer and returns the bytes it
// holds. Once the request's byte budget is spent, later partitions get
// no records (but the first non-empty one gets a batch whatever its size).
func (b *Broker) readPartition(topicName string, rp kmsg.FetchRequestTopicPartition, replica bool, remaining int, first bool, sp *kmsg.FetchResponseTopicPartition) int {
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	p, kerrv := b.lookupLeaderAt(topicName, rp.Partition, rp.CurrentLeaderEpoch)
	if kerrv != nil {
		sp.ErrorCode = kerrv.Code
		return 0
	}
	hw := p.highWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, p.log.StartOffset()
	if remaining <= 0 && !first {
		return 0
	}
	limit := int(rp.PartitionMaxBytes)
	if capBytes := b.cfg.FetchPartitionMaxBytes; capBytes > 0 {
		limit = min(limit, capBytes)
	}
	if remaining < limit {
		limit = max(remaining, 1)
	}
	readTo := hw
	if replica {
		readTo = p.log.EndOffset() // a follower takes everything the leader has
	}
	scratch := b.fetchBuffers.take()
	res, err := p.log.ReadInto(scratch, rp.FetchOffset, limit, readTo)
	if err != nil || len(res.Data) == 0 {
		b.fetchBuffers.put(scratch)
	}
	if err != nil {
		sp.ErrorCode = storageCode(err).Code
		return 0
	}
	if len(res.Data) > 0 {
		sp.RecordBatches = res.Data
	}
	b.stats.fetchedBytes += int64(len(res.Data))
	return len(res.Data)
}

// noteFollowerFetches records, before the read, where a follower's fetch
// says its logs end: the leader's high watermark and ISR follow from it.
func (b *Broker) noteFollowerFetches(r *kmsg.FetchRequest) {
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			p, kerrv := b.lookupLeader(rt.Topic, rp.Partition)
			if kerrv != nil || rp.CurrentLeaderEpoch != p.leaderEpoch {
				continue
			}
			before := p.replica.hw
			p.noteFollowerFetch(r.ReplicaID, rp.FetchOffset)
			p.noteFollowerLogStart(r.ReplicaID, rp.LogStartOffset)
			if p.replica.hw != before {
				p.wakeWaiters()
			}
		}
	}
}
