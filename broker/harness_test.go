package broker_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// The harness runs one broker ("b1") and one client machine ("c1") in a
// simulated world. The client speaks Kafka's protocol with raw kmsg
// requests over connections that record every answer in arrival order,
// so that tests can assert what came back, when, and in which order.

const (
	brokerNode = "b1"
	clientNode = "c1"
	brokerAddr = brokerNode + ":9092"
	// answerWaitMax bounds how long a helper waits, in simulated time, for
	// an answer that should come.
	answerWaitMax = 10 * time.Second
	// logTailBytesMax bounds the log shown when a test fails.
	logTailBytesMax = 16 << 10
)

// Versions the helpers speak: the highest each API serves, so that the
// flexible encodings are exercised.
const (
	produceVersion      = 9
	fetchVersion        = 12
	listOffsetsVersion  = 6
	metadataVersion     = 12
	apiVersionsVersion  = 3
	createTopicsVersion = 7
	deleteTopicsVersion = 5
	initPIDVersion      = 4
)

// rig is a world holding a broker and a client machine.
type rig struct {
	t    *testing.T
	w    *world.World
	logs *strings.Builder
	// starts counts the broker's successful starts (onStart calls).
	starts int
	// broker is the broker of the latest start.
	broker *broker.Broker
	client sim.Env
	admin  *testConn
}

// newRig builds a world for seed with a broker configured from the
// defaults by configure (which may be nil) and boots it.
func newRig(t *testing.T, seed uint64, configure func(*broker.Config)) *rig {
	t.Helper()
	cfg := broker.DefaultConfig()
	if configure != nil {
		configure(&cfg)
	}
	logs := &strings.Builder{}
	r := &rig{t: t, logs: logs}
	r.w = world.New(world.Config{Seed: seed, Log: logs})
	r.w.AddNode(brokerNode, broker.Start(cfg, func(b *broker.Broker) { r.starts++; r.broker = b }))
	r.w.AddNode(clientNode, func(env sim.Env) { r.client = env })
	r.w.Run(0, 0)
	if r.starts != 1 || r.client.Net == nil {
		t.Fatalf("world did not boot: %d broker starts, client env set %v\n%s", r.starts, r.client.Net != nil, logs)
	}
	r.awaitServing()
	t.Cleanup(func() {
		if t.Failed() {
			out := logs.String()
			if len(out) > logTailBytesMax {
				out = "...\n" + out[len(out)-logTailBytesMax:]
			}
			t.Logf("world log:\n%s", out)
		}
	})
	return r
}

// bind makes the rig report to t, a subtest of the rig's test, until the
// returned function restores the test it reported to before: a subtest
// must fail through its own T.
func (r *rig) bind(t *testing.T) (restore func()) {
	previous := r.t
	r.t = t
	return func() { r.t = previous }
}

// groupCommit configures the broker for group commit.
func groupCommit(cfg *broker.Config) {
	cfg.Log.Flush = storage.FlushPolicy{Mode: storage.FlushGroupCommit}
}

// now is simulated time since the start of the run.
func (r *rig) now() time.Duration { return r.w.Now() }

// step runs one event; it fails the test if the world has nothing left.
func (r *rig) step() {
	if !r.w.Loop().Step() {
		r.t.Fatalf("the world ran out of events at %v", r.now())
	}
}

// runUntil runs the world one event at a time until cond holds, failing
// the test if it does not within limit of simulated time. Stepping keeps
// the world at the exact moment cond became true.
func (r *rig) runUntil(what string, limit time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := r.now() + limit
	for !cond() {
		if r.now() > deadline {
			r.t.Fatalf("%s: not within %v (now %v)", what, limit, r.now())
		}
		r.step()
	}
}

// runFor runs the world for d of simulated time.
func (r *rig) runFor(d time.Duration) { r.w.Run(r.now()+d, 0) }

// logged reports whether some log line contains every one of parts.
func (r *rig) logged(parts ...string) bool {
	for _, line := range strings.Split(r.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// call is one request sent and, once done, its answer.
type call struct {
	req  kmsg.Request
	corr int32
	// respVersion is the version the answer is parsed at.
	respVersion int16
	sentAt      time.Duration
	done        bool
	at          time.Duration
	resp        kmsg.Response
	parseErr    error
}

// testConn is a client connection to the broker that records answers in
// the order they arrive.
type testConn struct {
	r        *rig
	c        sim.Conn
	corrNext int32
	pending  map[int32]*call
	// answered holds answered calls in arrival order.
	answered []*call
	// strays are frames that answer no pending request.
	strays   [][]byte
	opened   bool
	closed   bool
	closeErr error
}

// dial opens a connection from the client machine to the broker.
func (r *rig) dial() *testConn {
	tc := &testConn{r: r, pending: make(map[int32]*call)}
	tc.c = r.client.Net.Dial(brokerAddr, sim.ConnOptions{Framing: sim.FrameLength32}, tc)
	return tc
}

// conn is the rig's long-lived admin connection, dialled on first use and
// again if it closed.
func (r *rig) conn() *testConn {
	if r.admin == nil || r.admin.closed {
		r.admin = r.dial()
	}
	return r.admin
}

// OnOpen implements sim.ConnHandler.
func (tc *testConn) OnOpen(sim.Conn) { tc.opened = true }

// OnFrame implements sim.ConnHandler: it matches the answer to its request
// by correlation id and parses it.
func (tc *testConn) OnFrame(_ sim.Conn, frame []byte) {
	if len(frame) < 4 {
		tc.strays = append(tc.strays, frame)
		return
	}
	c := tc.pending[int32(binary.BigEndian.Uint32(frame))]
	if c == nil {
		tc.strays = append(tc.strays, frame)
		return
	}
	delete(tc.pending, c.corr)
	c.done, c.at = true, tc.r.now()
	body := frame[4:]
	resp := c.req.ResponseKind()
	resp.SetVersion(c.respVersion)
	// Flexible responses carry a header tag buffer, except ApiVersions.
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		rd := kbin.Reader{Src: body}
		kmsg.SkipTags(&rd)
		if !rd.Ok() {
			c.parseErr = fmt.Errorf("truncated response header tags")
		}
		body = rd.Src
	}
	if c.parseErr == nil {
		c.parseErr = resp.ReadFrom(body)
	}
	c.resp = resp
	tc.answered = append(tc.answered, c)
}

// OnClose implements sim.ConnHandler.
func (tc *testConn) OnClose(_ sim.Conn, err error) { tc.closed, tc.closeErr = true, err }

// appendHeader appends a request header: api key, version, correlation id,
// client id, and the empty tag buffer of flexible versions.
func appendHeader(dst []byte, key, version int16, corr int32, flexible bool) []byte {
	const clientID = "broker-test"
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if flexible {
		dst = append(dst, 0)
	}
	return dst
}

// send sends req; its answer is parsed at req's version.
func (tc *testConn) send(req kmsg.Request) *call {
	return tc.sendParsedAt(req, req.GetVersion())
}

// sendParsedAt sends req and parses its answer at respVersion.
func (tc *testConn) sendParsedAt(req kmsg.Request, respVersion int16) *call {
	tc.r.t.Helper()
	tc.corrNext++
	c := &call{req: req, corr: tc.corrNext, respVersion: respVersion, sentAt: tc.r.now()}
	frame := appendHeader(nil, req.Key(), req.GetVersion(), c.corr, req.IsFlexible())
	frame = req.AppendTo(frame)
	tc.pending[c.corr] = c
	if err := tc.c.Send(frame); err != nil {
		tc.r.t.Fatalf("send %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return c
}

// sendRaw sends a frame as it is.
func (tc *testConn) sendRaw(frame []byte) {
	tc.r.t.Helper()
	if err := tc.c.Send(frame); err != nil {
		tc.r.t.Fatalf("send raw frame: %v", err)
	}
}

// wait runs the world until c is answered and returns the answer.
func (r *rig) wait(c *call) kmsg.Response {
	r.t.Helper()
	name := kmsg.NameForKey(c.req.Key())
	r.runUntil(name+" answered", answerWaitMax, func() bool { return c.done })
	if c.parseErr != nil {
		r.t.Fatalf("parse %s v%d answer: %v", name, c.respVersion, c.parseErr)
	}
	return c.resp
}

// roundTrip sends req on the admin connection and waits for its answer.
func (r *rig) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	return r.wait(r.conn().send(req))
}

// errName names a Kafka error code for messages.
func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e := kerr.ErrorForCode(code); e != nil {
		return e.Error()
	}
	return fmt.Sprintf("error %d", code)
}

// expectCode fails the test unless got is want.
func expectCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %s, want %s", what, errName(got), errName(wantCode))
	}
}

// ---- request builders ----

// newTopicSpec is a CreateTopics entry with a replication factor of 1.
func newTopicSpec(name string, partitions int32, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func createTopicsRequest(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(createTopicsVersion)
	req.TimeoutMillis = 30_000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

// createTopics sends one CreateTopics request and returns its answer,
// checking that it answers every topic in order.
func (r *rig) createTopics(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) []kmsg.CreateTopicsResponseTopic {
	r.t.Helper()
	resp := r.roundTrip(createTopicsRequest(validateOnly, topics...)).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != len(topics) {
		r.t.Fatalf("CreateTopics answered %d topics, asked %d", len(resp.Topics), len(topics))
	}
	for i := range topics {
		if resp.Topics[i].Topic != topics[i].Topic {
			r.t.Fatalf("CreateTopics answer %d is for %q, asked %q", i, resp.Topics[i].Topic, topics[i].Topic)
		}
	}
	return resp.Topics
}

// createTopic creates a topic and fails the test unless it succeeds.
func (r *rig) createTopic(name string, partitions int32) kmsg.CreateTopicsResponseTopic {
	r.t.Helper()
	st := r.createTopics(false, newTopicSpec(name, partitions))[0]
	expectCode(r.t, "create "+name, st.ErrorCode, nil)
	return st
}

func metadataRequest(version int16, allowAutoCreate bool, names ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	req.AllowAutoTopicCreation = allowAutoCreate
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, n := range names {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, mt)
	}
	return req
}

// metadata asks about names (without auto-creation) and returns the
// answer's topics by name.
func (r *rig) metadata(names ...string) map[string]kmsg.MetadataResponseTopic {
	r.t.Helper()
	return r.metadataWith(metadataRequest(metadataVersion, false, names...))
}

func (r *rig) metadataWith(req *kmsg.MetadataRequest) map[string]kmsg.MetadataResponseTopic {
	r.t.Helper()
	resp := r.roundTrip(req).(*kmsg.MetadataResponse)
	out := make(map[string]kmsg.MetadataResponseTopic, len(resp.Topics))
	for _, mt := range resp.Topics {
		if mt.Topic == nil {
			r.t.Fatalf("metadata topic without a name: %+v", mt)
		}
		out[*mt.Topic] = mt
	}
	return out
}

// allTopics lists every topic the broker reports, by name.
func (r *rig) allTopics() map[string]kmsg.MetadataResponseTopic {
	r.t.Helper()
	req := metadataRequest(metadataVersion, false)
	req.Topics = nil
	return r.metadataWith(req)
}

func produceRequest(topic string, partition int32, acks int16, batch record.Batch) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(produceVersion)
	req.Acks, req.TimeoutMillis = acks, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

// producePartition is the one partition's answer of a produce answer.
func producePartition(t *testing.T, resp kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce answer holds %d topics, want one with one partition: %+v", len(pr.Topics), pr.Topics)
	}
	return pr.Topics[0].Partitions[0]
}

// produce sends one batch with acks=-1 on the admin connection.
func (r *rig) produce(topic string, partition int32, batch record.Batch) kmsg.ProduceResponseTopicPartition {
	r.t.Helper()
	return producePartition(r.t, r.roundTrip(produceRequest(topic, partition, -1, batch)))
}

func fetchRequest(topic string, partition int32, offset int64, maxWait time.Duration, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(fetchVersion)
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes, req.MaxBytes = minBytes, 50<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 10<<20
	rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	return req
}

// fetchPartition is the one partition's answer of a fetch answer.
func fetchPartition(t *testing.T, resp kmsg.Response) kmsg.FetchResponseTopicPartition {
	t.Helper()
	fr := resp.(*kmsg.FetchResponse)
	expectCode(t, "fetch", fr.ErrorCode, nil)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch answer holds %d topics, want one with one partition", len(fr.Topics))
	}
	return fr.Topics[0].Partitions[0]
}

// fetchNow reads a partition from offset without waiting for data.
func (r *rig) fetchNow(topic string, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	r.t.Helper()
	return fetchPartition(r.t, r.roundTrip(fetchRequest(topic, partition, offset, 0, 0)))
}

func listOffsetsRequest(topic string, partition int32, timestamp int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(listOffsetsVersion)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, timestamp
	rt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{rp}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	return req
}

// listOffset asks for one partition's offset at timestamp (-1 latest,
// -2 earliest).
func (r *rig) listOffset(topic string, partition int32, timestamp int64) kmsg.ListOffsetsResponseTopicPartition {
	r.t.Helper()
	return listOffsetsPartition(r.t, r.roundTrip(listOffsetsRequest(topic, partition, timestamp)))
}

// listOffsetsPartition is the one partition's answer of a ListOffsets
// answer.
func listOffsetsPartition(t *testing.T, resp kmsg.Response) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	lr := resp.(*kmsg.ListOffsetsResponse)
	if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets answer holds %d topics, want one with one partition", len(lr.Topics))
	}
	return lr.Topics[0].Partitions[0]
}

// latest is the partition's high watermark as ListOffsets reports it.
func (r *rig) latest(topic string, partition int32) int64 {
	r.t.Helper()
	lo := r.listOffset(topic, partition, -1)
	expectCode(r.t, "list latest", lo.ErrorCode, nil)
	return lo.Offset
}

func initPIDRequest(version int16, pid int64, epoch int16) *kmsg.InitProducerIDRequest {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(version)
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return req
}

// initPID asks for a producer id (pid -1) or an epoch bump.
func (r *rig) initPID(pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	r.t.Helper()
	resp := r.roundTrip(initPIDRequest(initPIDVersion, pid, epoch)).(*kmsg.InitProducerIDResponse)
	expectCode(r.t, "init producer id", resp.ErrorCode, nil)
	return resp
}

// ---- record batches ----

// producer says who writes a batch; the zero value is a plain producer
// (no id, no sequence).
type producer struct {
	id    int64
	epoch int16
	seq   int32
}

var plain = producer{id: record.NoProducerID, epoch: record.NoProducerEpoch, seq: record.NoSequence}

// buildBatch builds a batch of one record per value, timestamped tsMs
// onwards one millisecond apart.
func buildBatch(t *testing.T, p producer, tsMs int64, values ...string) record.Batch {
	t.Helper()
	bl := record.NewBuilder()
	bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = p.id, p.epoch, p.seq
	records := make([]record.Record, len(values))
	for i, v := range values {
		records[i] = record.Record{Offset: int64(i), Timestamp: tsMs + int64(i), Key: []byte("k"), Value: []byte(v)}
	}
	b, err := bl.Build(records)
	if err != nil {
		t.Fatalf("build batch: %v", err)
	}
	return b
}

// readRecord is one record read back.
type readRecord struct {
	offset int64
	value  string
}

// decodeRecords splits fetched bytes into batches and decodes every
// record, verifying each batch's CRC.
func decodeRecords(t *testing.T, data []byte) []readRecord {
	t.Helper()
	batches, err := record.Split(data, 1<<16)
	if err != nil {
		t.Fatalf("split fetched data: %v", err)
	}
	var out []readRecord
	for _, b := range batches {
		recs, err := b.Records()
		if err != nil {
			t.Fatalf("decode fetched batch %v: %v", b, err)
		}
		for _, rec := range recs {
			out = append(out, readRecord{offset: rec.Offset, value: string(rec.Value)})
		}
	}
	return out
}

// readAll fetches a partition from offset 0 up to its high watermark and
// returns every record.
func (r *rig) readAll(topic string, partition int32) []readRecord {
	r.t.Helper()
	var out []readRecord
	offset := int64(0)
	for round := 0; ; round++ {
		if round > 1000 {
			r.t.Fatalf("reading %s-%d did not reach the high watermark", topic, partition)
		}
		fp := r.fetchNow(topic, partition, offset)
		expectCode(r.t, "fetch", fp.ErrorCode, nil)
		recs := decodeRecords(r.t, fp.RecordBatches)
		for _, rec := range recs {
			if rec.offset >= offset {
				out = append(out, rec)
				offset = rec.offset + 1
			}
		}
		if offset >= fp.HighWatermark || len(recs) == 0 {
			return out
		}
	}
}

// awaitServing runs the world until the broker of the latest start
// serves: a start first records itself durably, then opens its logs.
func (r *rig) awaitServing() {
	r.t.Helper()
	r.runUntil("the broker serves", 10*time.Second, func() bool { return r.broker.Serving() })
}
