package broker_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
)

// A long-polling fetch completes long after a metadata request sent behind
// it on the same connection, yet the metadata answer must come second:
// Kafka clients match answers to requests by order.
func TestAnswersInRequestOrderBehindLongPoll(t *testing.T) {
	r := newRig(t, 3, nil)
	r.createTopic("orders", 1)
	tc := r.dial()
	const maxWait = 500 * time.Millisecond
	fetch := tc.send(fetchRequest("orders", 0, 0, maxWait, 1))
	meta := tc.send(metadataRequest(metadataVersion, false, "orders"))
	// The same metadata request on another connection is answered at once,
	// so the broker completes the held one early too.
	control := r.dial().send(metadataRequest(metadataVersion, false, "orders"))
	r.wait(control)
	if got := control.at - control.sentAt; got > 50*time.Millisecond {
		t.Fatalf("metadata on a fresh connection took %v", got)
	}
	r.wait(meta)
	if !fetch.done {
		t.Fatalf("metadata answered at %v before the fetch sent ahead of it", meta.at)
	}
	if len(tc.answered) != 2 || tc.answered[0] != fetch || tc.answered[1] != meta {
		t.Fatalf("answers arrived out of request order: %d answers", len(tc.answered))
	}
	if got := fetch.at - fetch.sentAt; got < maxWait {
		t.Fatalf("fetch with min bytes 1 on an empty partition answered after %v, before its max wait %v", got, maxWait)
	}
	fp := fetchPartition(t, fetch.resp)
	expectCode(t, "long poll", fp.ErrorCode, nil)
	if len(fp.RecordBatches) != 0 || fp.HighWatermark != 0 {
		t.Fatalf("empty partition fetched %d bytes, high watermark %d", len(fp.RecordBatches), fp.HighWatermark)
	}
}

// With group commit a produce is answered only after its sync; a request
// pipelined behind it waits for that answer.
func TestAnswersInRequestOrderBehindSlowProduce(t *testing.T) {
	r := newRig(t, 4, groupCommit)
	r.createTopic("orders", 1)
	if err := r.w.SlowDisk(brokerNode, 100); err != nil {
		t.Fatal(err)
	}
	tc := r.dial()
	produce := tc.send(produceRequest("orders", 0, -1, buildBatch(t, plain, 1000, "a")))
	versions := tc.send(kmsg.NewPtrApiVersionsRequest())
	r.wait(versions)
	if !produce.done || len(tc.answered) != 2 || tc.answered[0] != produce {
		t.Fatalf("ApiVersions answered before the produce sent ahead of it")
	}
	expectCode(t, "produce", producePartition(t, produce.resp).ErrorCode, nil)
}

// acks=0 gets no answer, and must not hold back the answers of later
// requests on the connection, even while its sync is running.
func TestAcksZeroGetsNoAnswer(t *testing.T) {
	r := newRig(t, 5, groupCommit)
	r.createTopic("orders", 1)
	if err := r.w.SlowDisk(brokerNode, 100); err != nil {
		t.Fatal(err)
	}
	tc := r.dial()
	silent := tc.send(produceRequest("orders", 0, 0, buildBatch(t, plain, 1000, "a", "b")))
	meta := tc.send(metadataRequest(metadataVersion, false, "orders"))
	r.wait(meta)
	// A slowed sync takes at least 10 ms; the answer behind the produce
	// must not have waited for it.
	if got := meta.at - meta.sentAt; got >= 10*time.Millisecond {
		t.Fatalf("metadata behind an acks=0 produce took %v: it waited for the produce's sync", got)
	}
	r.runFor(time.Second)
	if silent.done || len(tc.strays) != 0 {
		t.Fatalf("acks=0 produce was answered (done %v, %d stray frames)", silent.done, len(tc.strays))
	}
	if len(tc.answered) != 1 {
		t.Fatalf("%d answers, want only the metadata one", len(tc.answered))
	}
	// The write happened, and once synced it is visible.
	if got := r.latest("orders", 0); got != 2 {
		t.Fatalf("high watermark after an acks=0 produce of 2 records: %d, want 2", got)
	}
	if tc.closed {
		t.Fatalf("connection closed: %v", tc.closeErr)
	}
}

// header builds a request header for key and version with the tag buffer
// of flexible versions.
func header(key, version int16, corr int32, flexible bool) []byte {
	return appendHeader(nil, key, version, corr, flexible)
}

// Every malformed request closes its connection, without an answer and
// with a logged reason; other connections are still served.
func TestMalformedRequestsCloseTheConnection(t *testing.T) {
	produceBody := produceRequest("orders", 0, -1, nil).AppendTo(nil)
	cases := []struct {
		name  string
		frame []byte
		// logged is a fragment of the reason the broker logs.
		logged string
	}{
		{"shorter than a header", []byte{0, 3, 0, 12, 0}, "shorter than a request header"},
		{"truncated client id", append(binary.BigEndian.AppendUint16(nil, 3), 0, 12, 0, 0, 0, 1, 0, 9, 'x'), "truncated request header"},
		{"unserved key", append(header(int16(kmsg.DescribeACLs), 1, 1, false), 0, 0, 0, 0, 0, 0), "not served"},
		{"unknown key", header(999, 0, 1, false), "not served"},
		{"produce below served versions", append(header(0, 2, 1, false), produceBody...), "outside the served"},
		{"fetch above served versions", append(header(1, 13, 1, true), fetchRequest("orders", 0, 0, 0, 0).AppendTo(nil)...), "outside the served"},
		{"unparseable produce body", append(header(0, produceVersion, 1, true), produceBody[:3]...), "Produce v9: "},
		{"unparseable metadata body", append(header(3, metadataVersion, 1, true), 0xff, 0xff, 0xff), "Metadata v12: response did not"},
		{"missing tag buffer", header(3, metadataVersion, 1, false), "Metadata v12: truncated tagged fields"},
	}
	r := newRig(t, 6, nil)
	r.createTopic("orders", 1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer r.bind(t)()
			bystander := r.dial()
			r.wait(bystander.send(kmsg.NewPtrApiVersionsRequest()))
			victim := r.dial()
			// A valid request first: the connection served it, then
			// the malformed one ends it.
			first := victim.send(metadataRequest(metadataVersion, false, "orders"))
			victim.sendRaw(tc.frame)
			r.runUntil("connection closed", answerWaitMax, func() bool { return victim.closed })
			if !first.done {
				t.Fatalf("the valid request before the malformed one was not answered")
			}
			if len(victim.answered) != 1 || len(victim.strays) != 0 {
				t.Fatalf("malformed request answered: %d answers, %d stray frames", len(victim.answered), len(victim.strays))
			}
			if victim.closeErr != nil {
				t.Fatalf("connection ended with %v, want a graceful close", victim.closeErr)
			}
			if !r.logged("closing connection from", tc.logged) {
				t.Fatalf("no log line giving the reason %q", tc.logged)
			}
			// The bystander and a new connection are still served.
			resp := r.wait(bystander.send(metadataRequest(metadataVersion, false, "orders"))).(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
				t.Fatalf("bystander metadata after the close: %+v", resp.Topics)
			}
			r.wait(r.dial().send(kmsg.NewPtrApiVersionsRequest()))
		})
	}
	// Sanity: the bodies called unparseable are refused by kmsg itself.
	bad := kmsg.NewPtrProduceRequest()
	bad.SetVersion(produceVersion)
	if bad.ReadFrom(produceBody[:3]) == nil {
		t.Fatalf("kmsg parses the truncated produce body; the case proves nothing")
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(metadataVersion)
	if meta.ReadFrom([]byte{0xff, 0xff, 0xff}) == nil {
		t.Fatalf("kmsg parses the garbage metadata body; the case proves nothing")
	}
	if r.starts != 1 {
		t.Fatalf("broker restarted %d times", r.starts-1)
	}
}

// A connection may have at most 1024 requests waiting for their answers;
// a client that pipelines more is cut off, and its earlier requests are
// not answered after the cut.
func TestPipelineBound(t *testing.T) {
	const inFlightMax = 1024
	r := newRig(t, 8, nil)
	r.createTopic("idle", 1)
	full := r.dial()
	for range inFlightMax {
		full.send(fetchRequest("idle", 0, 0, time.Second, 1))
	}
	r.runFor(100 * time.Millisecond)
	if full.closed || len(full.answered) != 0 {
		t.Fatalf("%d held long polls: closed %v, %d answered", inFlightMax, full.closed, len(full.answered))
	}
	r.runUntil("long polls answered", answerWaitMax, func() bool { return len(full.answered) == inFlightMax })

	over := r.dial()
	for range inFlightMax + 1 {
		over.send(fetchRequest("idle", 0, 0, time.Second, 1))
	}
	r.runUntil("connection cut", answerWaitMax, func() bool { return over.closed })
	if !r.logged("more than 1024 requests in flight") {
		t.Fatalf("no log line says why the connection was cut")
	}
	r.runFor(2 * time.Second)
	if len(over.answered) != 0 {
		t.Fatalf("%d answers on a cut connection", len(over.answered))
	}
}

// Connections from one host past max.connections.per.ip, and from anywhere
// past max.connections, are closed at once; a slot freed is usable again.
func TestConnectionCaps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*broker.Config)
		reason    string
	}{
		{"per host", func(cfg *broker.Config) { cfg.ConnectionsPerIPMax = 3 }, "connections open from"},
		{"in total", func(cfg *broker.Config) { cfg.ConnectionsMax = 3 }, "connections open, at most 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 11, tc.configure)
			var conns []*testConn
			for range 5 {
				c := r.dial()
				r.runFor(100 * time.Millisecond)
				conns = append(conns, c)
			}
			r.runFor(time.Second)
			open := 0
			for i, c := range conns {
				if !c.closed {
					open++
					r.wait(c.send(kmsg.NewPtrApiVersionsRequest()))
				} else if i < 3 {
					t.Fatalf("connection %d of 5 closed under a cap of 3: %v", i, c.closeErr)
				}
			}
			if open != 3 {
				t.Fatalf("%d of 5 connections open under a cap of 3", open)
			}
			if !r.logged("refused connection from", tc.reason) {
				t.Fatalf("no log line says why connections were refused")
			}
			conns[0].c.Close()
			r.runFor(time.Second)
			again := r.dial()
			r.wait(again.send(kmsg.NewPtrApiVersionsRequest()))
		})
	}
}

// A connection with no request for connections.max.idle is closed; one
// that keeps asking is not.
func TestIdleConnectionsAreClosed(t *testing.T) {
	r := newRig(t, 12, func(cfg *broker.Config) { cfg.ConnectionsIdleMax = time.Second })
	idle, busy := r.dial(), r.dial()
	r.wait(idle.send(kmsg.NewPtrApiVersionsRequest()))
	for range 8 {
		r.wait(busy.send(kmsg.NewPtrApiVersionsRequest()))
		r.runFor(400 * time.Millisecond)
	}
	if !idle.closed || idle.closeErr != nil {
		t.Fatalf("idle connection after 3 s with a 1 s limit: closed %v, err %v", idle.closed, idle.closeErr)
	}
	if busy.closed {
		t.Fatalf("a connection asking every 400 ms was closed as idle: %v", busy.closeErr)
	}
	if !r.logged("closing connection from", "idle for") {
		t.Fatalf("no log line says the connection was idle")
	}
}

// bigValues builds count values of size bytes.
func bigValues(count, size int) []string {
	values := make([]string, count)
	for i := range values {
		values[i] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	return values
}

// fetchRepeated asks for one partition times times over in one request,
// the trick that multiplies what one fetch can hold.
func fetchRepeated(topic string, times int) *kmsg.FetchRequest {
	req := fetchRequest(topic, 0, 0, 0, 0)
	req.MaxBytes = 60 << 20
	rp := req.Topics[0].Partitions[0]
	rp.PartitionMaxBytes = 60 << 20
	req.Topics[0].Partitions = nil
	for range times {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	return req
}

func recordBytes(resp kmsg.Response) int {
	total := 0
	for _, rt := range resp.(*kmsg.FetchResponse).Topics {
		for _, rp := range rt.Partitions {
			total += len(rp.RecordBatches)
		}
	}
	return total
}

// fetch.max.bytes and the per-partition cap bound an answer whatever the
// request asks.
func TestFetchCapsBoundTheAnswer(t *testing.T) {
	const fetchMax, partitionMax = 2 << 20, 512 << 10
	r := newRig(t, 13, func(cfg *broker.Config) {
		cfg.FetchMaxBytes, cfg.FetchPartitionMaxBytes = fetchMax, partitionMax
	})
	r.createTopic("big", 1)
	for i := range 4 {
		expectCode(t, "produce", r.produce("big", 0, buildBatch(t, plain, int64(i), bigValues(4, 100<<10)...)).ErrorCode, nil)
	}
	resp := r.roundTrip(fetchRepeated("big", 16))
	got := recordBytes(resp)
	// A partition's first batch comes whole (KIP-74), so each cap may be
	// passed by at most one batch of about 400 KiB.
	const batchMax = 420 << 10
	if got > fetchMax+batchMax {
		t.Fatalf("fetch of a partition 16 times over holds %d KiB, over fetch.max.bytes %d KiB", got>>10, fetchMax>>10)
	}
	one := len(resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches)
	if one > partitionMax+batchMax || one == 0 {
		t.Fatalf("one partition's share is %d KiB under a %d KiB cap", one>>10, partitionMax>>10)
	}
}

// Answers held behind a long poll on the same connection count against
// the node's answer budget: once it is spent, fetches come back without
// records instead of piling up.
func TestHeldAnswersCountAgainstTheSendBudget(t *testing.T) {
	const budget = 4 << 20
	r := newRig(t, 14, func(cfg *broker.Config) { cfg.SendQueueBytesMax = budget })
	r.createTopic("big", 1)
	r.createTopic("idle", 1)
	for i := range 4 {
		expectCode(t, "produce", r.produce("big", 0, buildBatch(t, plain, int64(i), bigValues(4, 100<<10)...)).ErrorCode, nil)
	}
	tc := r.dial()
	longPoll := tc.send(fetchRequest("idle", 0, 0, time.Second, 1))
	var fetches []*call
	for range 10 {
		fetches = append(fetches, tc.send(fetchRepeated("big", 4)))
	}
	r.wait(fetches[len(fetches)-1])
	if !longPoll.done {
		t.Fatalf("answers overtook the long poll")
	}
	total, empty := 0, 0
	for _, f := range fetches {
		n := recordBytes(f.resp)
		total += n
		if n == 0 {
			empty++
		}
	}
	t.Logf("10 fetches held behind a long poll: %d KiB of records, %d answered without records", total>>10, empty)
	if total > budget {
		t.Fatalf("%d KiB of answers held behind a long poll, over the %d KiB budget", total>>10, budget>>10)
	}
	if empty == 0 || empty == len(fetches) {
		t.Fatalf("%d of %d fetches answered without records; the budget should serve some and refuse the rest", empty, len(fetches))
	}
	// Once drained, the budget serves again.
	if got := recordBytes(r.roundTrip(fetchRepeated("big", 1))); got == 0 {
		t.Fatalf("a fetch after the held answers drained came back without records")
	}
}
