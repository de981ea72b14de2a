package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/kafkawire"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// A replica fetcher is the follower's side of replication: one per leader
// this broker follows, on the node's loop like everything else. It first
// cuts each new partition's log back to where it agrees with the leader's
// (OffsetForLeaderEpoch, KIP-101/279: the leader's end offset for the
// follower's latest epoch, never the high watermark alone), then fetches
// from its log end with Fetch carrying this broker's id, appends what comes
// as it came (offsets, leader epochs and producer ids as the leader wrote
// them, so producer state follows the log), and takes the high watermark
// the leader sends. One request is in flight at a time; the leader holds a
// fetch that finds nothing for replica.fetch.wait.max.ms.

// probeEpochTruncation marks a follower cutting an unreplicated tail.
var probeEpochTruncation = sim.DeclareProbe("broker/epoch-truncation",
	"a follower cut its log back to where it agrees with its leader, by leader epoch")

// Versions the fetcher speaks.
const (
	replicaFetchVersion       = 12
	replicaEpochOffsetVersion = 4
	// replicaBatchesMax bounds the batches taken from one partition's
	// part of a fetch answer.
	replicaBatchesMax = 1 << 16
	// replicaRequestSlack is how much longer than the leader may hold a
	// fetch the fetcher waits before it gives up on the connection.
	replicaRequestSlack = 5 * time.Second
)

type replicaFetcher struct {
	b      *Broker
	leader int32
	addr   string
	conn   sim.Conn
	// clientID names the fetcher in its requests, formatted once.
	clientID string
	// parts are the partitions fetched, sorted by topic and index.
	parts []*partition
	// inFlight is the request awaiting its answer, if any.
	inFlight *fetcherCall
	// fetchReq and fetchResp are reused by every fetch (takeFetchRequest,
	// OnFrame); frameBytes is the size of the last request's frame, the
	// next one's likely size.
	fetchReq   *kmsg.FetchRequest
	fetchResp  *kmsg.FetchResponse
	frameBytes int
	// calls are the requests' call records, used in turn: one is in
	// flight at a time, and the other is the one just answered, whose
	// callback may be sending the next. timeoutFn is their timers'
	// callback, bound once.
	calls     [2]fetcherCall
	timeoutFn func()
	// fetchedFn is a fetch's answer callback (onFetched), bound once.
	fetchedFn func(kmsg.Response, error)
	// ready, uncut and sent are kick's and fetch's lists, kept for their
	// room: a follower fetches once for each batch its leader appends.
	ready, uncut []*partition
	sent         []sentPartition
	// batches is take's room for an answer's batches, kept without them.
	batches  []record.Batch
	corrNext int32
	retry    sim.Timer
	flushing int
	stopped  bool
}

type fetcherCall struct {
	req   kmsg.Request
	corr  int32
	timer sim.Timer
	done  func(kmsg.Response, error)
}

// sentPartition is what a request asked for one partition, to match the
// answer against the partition as it is when the answer comes.
type sentPartition struct {
	p      *partition
	epoch  int32
	offset int64
}

func newReplicaFetcher(b *Broker, leader int32, addr string) *replicaFetcher {
	return &replicaFetcher{b: b, leader: leader, addr: addr}
}

func partitionLess(a, b *partition) int {
	if c := strings.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return int(a.index) - int(b.index)
}

// add starts fetching a partition (after cutting its log).
func (f *replicaFetcher) add(p *partition) {
	if !slices.Contains(f.parts, p) {
		i, _ := slices.BinarySearchFunc(f.parts, p, partitionLess)
		f.parts = slices.Insert(f.parts, i, p)
	}
	p.replica.fetcher = f
	p.replica.truncated = false
	p.replica.backoffUntil = 0
	f.kick()
}

func (f *replicaFetcher) remove(p *partition) {
	f.parts = slices.DeleteFunc(f.parts, func(q *partition) bool { return q == p })
}

func (f *replicaFetcher) stop() {
	f.stopped = true
	for _, p := range f.parts {
		p.replica.fetcher = nil
	}
	f.parts = nil
	if f.retry != nil {
		f.retry.Stop()
	}
	f.dropConn()
}

// kick sends the next request when none is in flight: epoch lookups for
// partitions not yet cut, else a fetch for the rest.
func (f *replicaFetcher) kick() {
	if f.stopped || f.inFlight != nil || f.retry != nil || f.flushing > 0 || len(f.parts) == 0 {
		return
	}
	now := f.b.env.Clock.Mono()
	uncut, ready := f.uncut[:0], f.ready[:0]
	wake := time.Duration(-1)
	for _, p := range f.parts {
		switch {
		case p.lostData():
		case p.replica.backoffUntil > now:
			if wake < 0 || p.replica.backoffUntil < wake {
				wake = p.replica.backoffUntil
			}
		case !p.replica.truncated:
			uncut = append(uncut, p)
		default:
			ready = append(ready, p)
		}
	}
	f.uncut, f.ready = uncut, ready
	switch {
	case len(uncut) > 0:
		f.askEpochs(uncut)
	case len(ready) > 0:
		f.fetch(ready)
	case wake >= 0:
		f.retryAfter(wake - now)
	}
}

func (f *replicaFetcher) retryAfter(d time.Duration) {
	f.retry = f.b.env.Clock.AfterFunc(d, func() {
		f.retry = nil
		f.kick()
	})
}

// askEpochs asks the leader where each partition's latest epoch ends.
func (f *replicaFetcher) askEpochs(parts []*partition) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(replicaEpochOffsetVersion)
	req.ReplicaID = f.b.cfg.NodeID
	var sent []sentPartition
	for _, p := range parts {
		if !p.cutDamage() { // damage.go: fetch a damaged range again
			p.replica.backoffUntil = f.b.env.Clock.Mono() + f.b.cfg.Cluster.ReplicaFetchBackoff
			continue
		}
		latest := p.log.LatestEpoch()
		if latest < 0 {
			// An empty log (or one no leader ever wrote an epoch
			// into) has nothing to disagree about.
			p.replica.truncated = true
			continue
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p.index, p.leaderEpoch, latest
		req.Topics = appendEpochPartition(req.Topics, p.topic, rp)
		sent = append(sent, sentPartition{p: p, epoch: p.leaderEpoch, offset: p.log.EndOffset()})
	}
	if len(sent) == 0 {
		f.kick()
		return
	}
	f.send(req, func(resp kmsg.Response, err error) {
		if err != nil {
			f.failed(err)
			return
		}
		f.cutLogs(sent, resp.(*kmsg.OffsetForLeaderEpochResponse))
		f.kick()
	})
}

func appendEpochPartition(topics []kmsg.OffsetForLeaderEpochRequestTopic, name string, rp kmsg.OffsetForLeaderEpochRequestTopicPartition) []kmsg.OffsetForLeaderEpochRequestTopic {
	if n := len(topics); n > 0 && topics[n-1].Topic == name {
		topics[n-1].Partitions = append(topics[n-1].Partitions, rp)
		return topics
	}
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic, rt.Partitions = name, []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}
	return append(topics, rt)
}

// current reports whether an answer about s still applies: the partition
// is still fetched here, under the same epoch, from the same log end.
func (f *replicaFetcher) current(s sentPartition) bool {
	p := s.p
	return slices.Contains(f.parts, p) && p.replica.fetcher == f && p.leaderEpoch == s.epoch &&
		!p.lostData() && p.log.EndOffset() == s.offset
}

func findSent(sent []sentPartition, topicName string, index int32) (sentPartition, bool) {
	for _, s := range sent {
		if s.p.topic == topicName && s.p.index == index {
			return s, true
		}
	}
	return sentPartition{}, false
}

// cutLogs truncates each partition to where its log agrees with the
// leader's: the leader's end for the largest epoch both know, or the
// follower's own end for that epoch if smaller.
func (f *replicaFetcher) cutLogs(sent []sentPartition, resp *kmsg.OffsetForLeaderEpochResponse) {
	now := f.b.env.Clock.Mono()
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			s, ok := findSent(sent, rt.Topic, rp.Partition)
			if !ok || !f.current(s) {
				continue
			}
			p := s.p
			if rp.ErrorCode != 0 {
				p.replica.backoffUntil = now + f.b.cfg.Cluster.ReplicaFetchBackoff
				continue
			}
			target := p.replica.hw // KIP-101's fallback when the leader knows no epoch
			if rp.LeaderEpoch >= 0 && rp.EndOffset >= 0 {
				target = rp.EndOffset
				if _, own := p.log.EndOffsetForEpoch(rp.LeaderEpoch); own >= 0 {
					target = min(target, own)
				}
			}
			f.cut(p, target, fmt.Sprintf("the leader's epoch %d ends at %d", rp.LeaderEpoch, rp.EndOffset))
		}
	}
}

// cut truncates a follower's log to target (if it ends past it) and
// marks it ready to fetch.
func (f *replicaFetcher) cut(p *partition, target int64, why string) {
	end := p.log.EndOffset()
	if target < end && !f.b.cfg.Bugs.On(faults.BugNoEpochTruncation) {
		if err := p.log.TruncateTo(target); err != nil {
			f.b.env.Log.Logf("partition %s-%d: truncate to %d: %v", p.topic, p.index, target, err)
			p.replica.backoffUntil = f.b.env.Clock.Mono() + f.b.cfg.Cluster.ReplicaFetchBackoff
			return
		}
		f.b.env.Hit(probeEpochTruncation)
		f.b.env.Log.Logf("partition %s-%d: truncated from %d to %d as follower of %d at epoch %d: %s",
			p.topic, p.index, end, p.log.EndOffset(), f.leader, p.leaderEpoch, why)
	}
	p.replica.hw = min(p.replica.hw, p.log.EndOffset())
	p.replica.truncated = true
}

// fetch asks the leader for what follows each partition's log end.
func (f *replicaFetcher) fetch(parts []*partition) {
	cfg := f.b.cfg
	req := f.takeFetchRequest()
	req.SetVersion(replicaFetchVersion)
	req.ReplicaID = cfg.NodeID
	req.MaxWaitMillis = int32(cfg.Cluster.ReplicaFetchWaitMax / time.Millisecond)
	req.MinBytes, req.MaxBytes = 1, int32(min(cfg.FetchMaxBytes, 1<<30))
	req.SessionEpoch = -1
	sent := f.sent[:0]
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset = p.index, p.leaderEpoch, p.log.EndOffset()
		rp.LastFetchedEpoch, rp.LogStartOffset = -1, p.log.StartOffset()
		rp.PartitionMaxBytes = int32(min(cfg.FetchPartitionMaxBytes, 1<<30))
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			req.Topics = kafkawire.AppendFetchTopic(req.Topics, p.topic, 0)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
		sent = append(sent, sentPartition{p: p, epoch: p.leaderEpoch, offset: p.log.EndOffset()})
	}
	f.sent = sent // read by the answer's callback, before the next fetch
	if f.fetchedFn == nil {
		f.fetchedFn = f.onFetched
	}
	f.send(req, f.fetchedFn)
}

// onFetched takes a fetch's answer for the partitions f.sent lists: one
// fetch is in flight at a time, and the next is sent only after this.
func (f *replicaFetcher) onFetched(resp kmsg.Response, err error) {
	if err != nil {
		f.failed(err)
		return
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 {
		f.failed(fmt.Errorf("fetch from broker %d: %w", f.leader, kerr.ErrorForCode(fr.ErrorCode)))
		return
	}
	var flush []*partition
	for _, rt := range fr.Topics {
		for i := range rt.Partitions {
			sp := &rt.Partitions[i]
			if s, ok := findSent(f.sent, rt.Topic, sp.Partition); ok && f.current(s) && f.take(s.p, sp) && s.p.groupCommit {
				flush = append(flush, s.p)
			}
		}
	}
	f.flushThenKick(flush)
}

// takeFetchRequest returns the fetcher's fetch request, emptied but for
// its topic and partition slices. One request is in flight at a time and
// its frame is encoded when it is sent, so one struct serves every fetch:
// a follower fetches once for each batch its leader appends.
func (f *replicaFetcher) takeFetchRequest() *kmsg.FetchRequest {
	if f.fetchReq == nil {
		f.fetchReq = kmsg.NewPtrFetchRequest()
		return f.fetchReq
	}
	kafkawire.ResetFetchRequest(f.fetchReq)
	return f.fetchReq
}

// take applies one partition's part of a fetch answer and reports whether
// it appended anything.
func (f *replicaFetcher) take(p *partition, sp *kmsg.FetchResponseTopicPartition) bool {
	now := f.b.env.Clock.Mono()
	switch sp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		if sp.LogStartOffset > p.log.EndOffset() {
			if err := p.log.TruncateFullyAndStartAt(sp.LogStartOffset); err != nil {
				f.b.env.Log.Logf("partition %s-%d: start over at %d: %v", p.topic, p.index, sp.LogStartOffset, err)
			}
			return false
		}
		p.replica.truncated = false // the leader's log ends below ours: cut again
		return false
	default:
		p.replica.backoffUntil = now + f.b.cfg.Cluster.ReplicaFetchBackoff
		return false
	}
	appended := false
	if len(sp.RecordBatches) > 0 {
		batches, err := record.SplitInto(f.batches[:0], sp.RecordBatches, replicaBatchesMax)
		defer f.keepBatches(batches)
		if err != nil && !errors.Is(err, record.ErrPartial) {
			f.b.env.Log.Logf("partition %s-%d: fetched from %d: %v", p.topic, p.index, f.leader, err)
		}
		for _, batch := range batches {
			if batch.LastOffset() < p.log.EndOffset() {
				continue
			}
			if err := p.log.AppendReplica(batch); err != nil {
				f.b.env.Log.Logf("partition %s-%d: replicate from %d: %v", p.topic, p.index, f.leader, err)
				p.replica.backoffUntil = now + f.b.cfg.Cluster.ReplicaFetchBackoff
				if errors.Is(err, storage.ErrInvalidAppend) {
					p.replica.truncated = false
				}
				break
			}
			appended = true
		}
	}
	if sp.HighWatermark >= 0 {
		p.replica.hw = min(sp.HighWatermark, p.log.EndOffset())
	}
	f.followLogStart(p, sp.LogStartOffset)
	return appended
}

// batchesKeptMax bounds the room for batches a replica fetcher keeps.
const batchesKeptMax = 1024

// keepBatches keeps the room of batches, a slice take has split an
// answer into, for the next answer, without the batches: they are parts
// of the answer's frame.
func (f *replicaFetcher) keepBatches(batches []record.Batch) {
	clear(batches)
	if cap(batches) <= batchesKeptMax {
		f.batches = batches[:0]
	}
}

// followLogStart moves a follower's log start up to its leader's, as
// Kafka's fetcher does after each answer, so that records a DeleteRecords
// removed do not come back when this replica leads. The broker's
// maintenance checkpoints it.
func (f *replicaFetcher) followLogStart(p *partition, leaderStart int64) {
	start := min(leaderStart, p.log.EndOffset())
	if start <= p.log.StartOffset() {
		return
	}
	if _, err := p.log.AdvanceStartOffset(start); err != nil {
		f.b.env.Log.Logf("partition %s-%d: follow the leader's log start %d: %v", p.topic, p.index, start, err)
	}
}

// flushThenKick syncs what group-commit followers appended before the
// next fetch, so that the log end a follower reports is on its disk.
func (f *replicaFetcher) flushThenKick(parts []*partition) {
	if len(parts) == 0 {
		f.kick()
		return
	}
	f.flushing = len(parts)
	for _, p := range parts {
		p.log.Flush(func(err error) {
			if err != nil {
				f.b.env.Log.Logf("partition %s-%d: flush replicated data: %v", p.topic, p.index, err)
			}
			f.flushing--
			if f.flushing == 0 {
				f.kick()
			}
		})
	}
}

// failed drops the connection and tries again after the backoff.
func (f *replicaFetcher) failed(err error) {
	if f.stopped {
		return
	}
	f.dropConn()
	if f.retry == nil {
		f.retryAfter(f.b.cfg.Cluster.ReplicaFetchBackoff)
	}
}

func (f *replicaFetcher) dropConn() {
	call := f.inFlight
	f.inFlight = nil
	if call != nil {
		call.timer.Stop()
	}
	if f.conn != nil {
		conn := f.conn
		f.conn = nil
		conn.Close()
	}
}

// send sends one request and arranges for done to hear its answer or the
// connection's failure.
func (f *replicaFetcher) send(req kmsg.Request, done func(kmsg.Response, error)) {
	if f.conn == nil {
		f.conn = f.b.env.Net.Dial(f.addr, sim.ConnOptions{}, (*fetcherConn)(f))
	}
	f.corrNext++
	call := &f.calls[f.corrNext&1]
	*call = fetcherCall{req: req, corr: f.corrNext, done: done}
	frame := binary.BigEndian.AppendUint16(make([]byte, 0, max(64, f.frameBytes)), uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, uint32(call.corr))
	if f.clientID == "" {
		f.clientID = fmt.Sprintf("broker-%d-fetcher", f.b.cfg.NodeID)
	}
	clientID := f.clientID
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(clientID)))
	frame = append(frame, clientID...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = kafkawire.AppendRequest(frame, req)
	f.frameBytes = len(frame)
	f.inFlight = call
	if f.timeoutFn == nil {
		// A call's timer is stopped when the call ends (answered or
		// dropped), so when it fires its call is the one in flight.
		f.timeoutFn = func() {
			if f.inFlight != nil {
				f.failed(fmt.Errorf("broker %d did not answer: %w", f.leader, sim.ErrTimeout))
			}
		}
	}
	call.timer = f.b.env.Clock.AfterFunc(f.b.cfg.Cluster.ReplicaFetchWaitMax+replicaRequestSlack, f.timeoutFn)
	if err := f.conn.Send(frame); err != nil {
		f.failed(fmt.Errorf("send to broker %d: %w", f.leader, err))
	}
}

// fetcherConn is the fetcher seen as its connection's handler.
type fetcherConn replicaFetcher

func (h *fetcherConn) OnOpen(sim.Conn) {}

func (h *fetcherConn) OnClose(conn sim.Conn, err error) {
	f := (*replicaFetcher)(h)
	if conn == f.conn {
		f.conn = nil
		f.failed(fmt.Errorf("connection to broker %d: %w", f.leader, err))
	}
}

func (h *fetcherConn) OnFrame(conn sim.Conn, frame []byte) {
	f := (*replicaFetcher)(h)
	call := f.inFlight
	if conn != f.conn || call == nil {
		return
	}
	if len(frame) < 4 || int32(binary.BigEndian.Uint32(frame)) != call.corr {
		f.failed(fmt.Errorf("broker %d answered out of turn", f.leader))
		return
	}
	resp := f.responseFor(call.req)
	resp.SetVersion(call.req.GetVersion())
	body := frame[4:]
	if resp.IsFlexible() && len(body) > 0 && body[0] == 0 {
		body = body[1:] // no tagged fields in the header, as ever
	} else if resp.IsFlexible() {
		rd := kbin.Reader{Src: body}
		kmsg.SkipTags(&rd)
		body = rd.Src
	}
	if err := readResponse(resp, body); err != nil {
		f.failed(fmt.Errorf("parse %s from broker %d: %w", kmsg.NameForKey(call.req.Key()), f.leader, err))
		return
	}
	f.inFlight = nil
	call.timer.Stop()
	call.done(resp, nil)
}

// readResponse decodes an answer's body; a fetch's by kafkawire, which
// reuses the room of the fetcher's one answer.
func readResponse(resp kmsg.Response, body []byte) error {
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		return kafkawire.ReadFetchResponse(fr, body)
	}
	return resp.ReadFrom(body)
}

// responseFor returns a response to decode req's answer into. A fetch's
// answer is decoded into the fetcher's one FetchResponse: its callback
// copies what it keeps (record batches are appended to the log, offsets
// noted) and returns before the next answer comes.
func (f *replicaFetcher) responseFor(req kmsg.Request) kmsg.Response {
	if _, ok := req.(*kmsg.FetchRequest); !ok {
		return req.ResponseKind()
	}
	if f.fetchResp == nil {
		f.fetchResp = kmsg.NewPtrFetchResponse()
	}
	return f.fetchResp // readResponse replaces every field
}
