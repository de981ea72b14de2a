package broker_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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
		{"unserved key", append(header(int16(kmsg.OffsetFetch), 1, 1, false), 0, 0, 0, 0, 0, 0), "not served"},
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
