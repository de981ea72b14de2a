package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// serverReadRequest parses a request frame as a broker does: header, then
// the body for the key and version it names.
func serverReadRequest(t *testing.T, frame []byte) (kmsg.Request, int32, string) {
	t.Helper()
	if len(frame) < 10 {
		t.Fatalf("request frame of %d bytes", len(frame))
	}
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	body := frame[10:]
	clientID := ""
	if idLen >= 0 {
		clientID = string(body[:idLen])
		body = body[idLen:]
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		var err error
		if body, err = skipTagBuffer(body); err != nil {
			t.Fatalf("request header tags: %v", err)
		}
	}
	if err := req.ReadFrom(body); err != nil {
		t.Fatalf("server parse of %s v%d: %v", keyName(key), version, err)
	}
	return req, corr, clientID
}

// serverResponseFrame frames resp as a broker does.
func serverResponseFrame(resp kmsg.Response, corr int32, headerTags []byte) []byte {
	frame := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		if headerTags == nil {
			headerTags = []byte{0}
		}
		frame = append(frame, headerTags...)
	}
	return resp.AppendTo(frame)
}

func sampleRequests() []kmsg.Request {
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.TimeoutMillis = 1234
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 3
	pp.Records = []byte("not really a batch, just bytes")
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 500
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 2
	fp.FetchOffset = 99
	fp.PartitionMaxBytes = 4096
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("orders")
	meta.Topics = append(meta.Topics, mt)

	list := kmsg.NewPtrListOffsetsRequest()
	list.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "orders"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition = 1
	lp.Timestamp = timestampEarliest
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)

	initPID := kmsg.NewPtrInitProducerIDRequest()
	initPID.TransactionTimeoutMillis = transactionTimeoutMs
	initPID.ProducerID, initPID.ProducerEpoch = -1, -1

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName = "sluice"
	av.ClientSoftwareVersion = "0.1"
	return []kmsg.Request{produce, fetch, meta, list, initPID, av}
}

// versionsToTest are the first, first flexible and last versions we speak.
func versionsToTest(key int16) []int16 {
	r := ourVersions[kmsg.Key(key)]
	vs := []int16{r.min, r.max}
	for v := r.min; v <= r.max; v++ {
		req := kmsg.RequestForKey(key)
		req.SetVersion(v)
		if req.IsFlexible() {
			vs = append(vs, v)
			if v > r.min {
				vs = append(vs, v-1)
			}
			break
		}
	}
	return vs
}

// TestRequestFramesRoundTrip encodes every request we send at its edge
// versions, checks the bytes equal kmsg's own RequestFormatter (without the
// length prefix the framing adds) and that a broker-side parse gives the
// request back.
func TestRequestFramesRoundTrip(t *testing.T) {
	for _, sample := range sampleRequests() {
		for _, v := range versionsToTest(sample.Key()) {
			sample.SetVersion(v)
			frame := appendRequestFrame(nil, sample, 77, "client-a")
			want := kmsg.NewRequestFormatter(kmsg.FormatterClientID("client-a")).AppendRequest(nil, sample, 77)
			if !bytes.Equal(frame, want[4:]) {
				t.Fatalf("%s v%d: frame differs from kmsg's RequestFormatter", keyName(sample.Key()), v)
			}
			got, corr, clientID := serverReadRequest(t, frame)
			if corr != 77 || clientID != "client-a" {
				t.Fatalf("%s v%d: header read back as corr %d client %q", keyName(sample.Key()), v, corr, clientID)
			}
			// Fields outside a version are dropped on the wire, so compare
			// the re-encodings.
			if !bytes.Equal(got.AppendTo(nil), sample.AppendTo(nil)) {
				t.Fatalf("%s v%d: body changed across the round trip", keyName(sample.Key()), v)
			}
		}
	}
}

func sampleResponse(key int16) kmsg.Response {
	switch kmsg.Key(key) {
	case kmsg.Produce:
		r := kmsg.NewPtrProduceResponse()
		t := kmsg.NewProduceResponseTopic()
		t.Topic = "orders"
		p := kmsg.NewProduceResponseTopicPartition()
		p.Partition = 3
		p.BaseOffset = 4242
		p.ErrorCode = codeNotLeaderOrFollower
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case kmsg.Fetch:
		r := kmsg.NewPtrFetchResponse()
		t := kmsg.NewFetchResponseTopic()
		t.Topic = "orders"
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = 2
		p.HighWatermark = 100
		p.RecordBatches = []byte("batch bytes")
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case kmsg.Metadata:
		r := kmsg.NewPtrMetadataResponse()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 1, "broker-1", 9092
		r.Brokers = append(r.Brokers, b)
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr("orders")
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition, p.Leader = 0, 1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case kmsg.ListOffsets:
		r := kmsg.NewPtrListOffsetsResponse()
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = "orders"
		p := kmsg.NewListOffsetsResponseTopicPartition()
		p.Partition, p.Offset = 1, 17
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case kmsg.InitProducerID:
		r := kmsg.NewPtrInitProducerIDResponse()
		r.ProducerID, r.ProducerEpoch = 9001, 3
		return r
	case kmsg.ApiVersions:
		r := kmsg.NewPtrApiVersionsResponse()
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = 0, 3, 11
		r.ApiKeys = append(r.ApiKeys, k)
		return r
	}
	panic("no sample")
}

// TestResponseFramesRoundTrip frames responses as a broker does, at edge
// versions, and parses them back, including flexible headers that carry
// tagged fields and the ApiVersions exception.
func TestResponseFramesRoundTrip(t *testing.T) {
	for _, req := range sampleRequests() {
		for _, v := range versionsToTest(req.Key()) {
			req.SetVersion(v)
			resp := sampleResponse(req.Key())
			resp.SetVersion(v)
			var tags []byte
			if resp.IsFlexible() {
				// One unknown tag (key 5, 2 bytes) that must be skipped.
				tags = []byte{1, 5, 2, 0xaa, 0xbb}
			}
			frame := serverResponseFrame(resp, 31, tags)
			got, err := parseResponse(frame, req, 31)
			if err != nil {
				t.Fatalf("%s v%d: %v", keyName(req.Key()), v, err)
			}
			if !reflect.DeepEqual(got.AppendTo(nil), resp.AppendTo(nil)) {
				t.Fatalf("%s v%d: response changed across the round trip", keyName(req.Key()), v)
			}
			if _, err := parseResponse(frame, req, 32); !errors.Is(err, errMalformedResponse) {
				t.Fatalf("%s v%d: wrong correlation id accepted: %v", keyName(req.Key()), v, err)
			}
			if _, err := parseResponse(frame[:len(frame)/2], req, 31); err == nil {
				t.Fatalf("%s v%d: truncated response accepted", keyName(req.Key()), v)
			}
		}
	}
}

func TestSkipTagBufferRejectsLies(t *testing.T) {
	for _, b := range [][]byte{
		{},                       // no count
		{1},                      // a tag with no key
		{1, 5},                   // no size
		{1, 5, 9, 1, 2},          // size beyond the data
		{0xff, 0xff, 0xff, 0x7f}, // absurd count
	} {
		if _, err := skipTagBuffer(b); !errors.Is(err, errMalformedResponse) {
			t.Errorf("tag buffer % x accepted: %v", b, err)
		}
	}
	rest, err := skipTagBuffer([]byte{2, 1, 1, 9, 2, 0, 7})
	if err != nil || !bytes.Equal(rest, []byte{7}) {
		t.Fatalf("two tags: rest % x, %v", rest, err)
	}
}

func TestNegotiateTakesTheLowerMax(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	add := func(key kmsg.Key, lo, hi int16) {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(key), lo, hi
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	add(kmsg.Produce, 0, 7)  // librdkafka-era broker
	add(kmsg.Fetch, 0, 17)   // newer than us
	add(kmsg.Metadata, 0, 0) // too old
	bv := newBrokerVersions(resp)
	if v, err := bv.negotiate(kmsg.Produce); err != nil || v != 7 {
		t.Errorf("produce: v%d %v, want v7", v, err)
	}
	if v, err := bv.negotiate(kmsg.Fetch); err != nil || v != ourVersions[kmsg.Fetch].max {
		t.Errorf("fetch: v%d %v, want our max", v, err)
	}
	var unsupported *errUnsupported
	if _, err := bv.negotiate(kmsg.Metadata); !errors.As(err, &unsupported) {
		t.Errorf("metadata v0 only: %v, want unsupported", err)
	}
	if _, err := bv.negotiate(kmsg.InitProducerID); !errors.As(err, &unsupported) {
		t.Errorf("InitProducerId not advertised: %v, want unsupported", err)
	}
}

// TestKeyNameIsKafkasName: messages name API keys as Kafka does, not by
// number, an unsupported API included.
func TestKeyNameIsKafkasName(t *testing.T) {
	for key, want := range map[kmsg.Key]string{kmsg.Produce: "Produce", kmsg.OffsetForLeaderEpoch: "OffsetForLeaderEpoch",
		kmsg.CreateTopics: "CreateTopics", 9999: "api key 9999"} {
		if got := keyName(int16(key)); got != want {
			t.Errorf("key %d named %q, want %q", key, got, want)
		}
	}
	unsupported := &errUnsupported{key: kmsg.DeleteRecords, brokerMax: -1, brokerKnown: true}
	if got, want := unsupported.Error(), "broker does not serve DeleteRecords"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
