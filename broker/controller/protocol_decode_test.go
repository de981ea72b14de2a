package controller

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// TestFastDecodersMatchJSON decodes random requests and responses, whole
// and with bytes changed, both by the fast decoders and by encoding/json:
// wherever the fast one decodes, encoding/json must decode the same
// without error, and the frames the controllers send most (heartbeats,
// fetches with nothing new) must take the fast path.
func TestFastDecodersMatchJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for i := range 20000 {
		var body []byte
		var err error
		if i%2 == 0 {
			body, err = json.Marshal(randomRequest(rng))
		} else {
			body, err = json.Marshal(randomResponse(rng))
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			body = mutate(rng, body)
		}
		if i%2 == 0 {
			fast += compareDecoders(t, body, fastDecodeRequest)
		} else {
			fast += compareDecoders(t, body, fastDecodeResponse)
		}
	}
	if fast < 5000 {
		t.Errorf("only %d of 20000 frames took the fast path", fast)
	}
	for _, v := range []any{
		Request{ID: 7, Op: OpHeartbeat, BrokerID: 2, BrokerEpoch: 12, MetadataOffset: 40},
		Request{ID: 8, Op: OpFetchMetadata, BrokerID: 2, FromOffset: 41},
		Response{ID: 7, BrokerEpoch: 12, Fenced: true},
		Response{ID: 8, Delta: &metadata.Delta{From: 41, Through: 40}, Committed: 40},
		Response{ID: 9, Code: metadata.CodeRequestTimedOut, LeaderHint: "c1:9093"},
	} {
		body, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		if _, isReq := v.(Request); isReq {
			ok = compareDecoders(t, body, fastDecodeRequest) == 1
		} else {
			ok = compareDecoders(t, body, fastDecodeResponse) == 1
		}
		if !ok {
			t.Errorf("%s did not take the fast path", body)
		}
	}
}

// compareDecoders decodes body both ways and reports 1 if the fast
// decoder took it.
func compareDecoders[T any](t *testing.T, body []byte, fastDecode func([]byte, *T) bool) int {
	t.Helper()
	var got, want T
	if !fastDecode(body, &got) {
		if !reflect.ValueOf(got).IsZero() {
			t.Fatalf("%s: the fast decoder refused it but wrote %+v", body, got)
		}
		return 0
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("%s: the fast decoder took what encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: fast decoder %+v, encoding/json %+v", body, got, want)
	}
	return 1
}

func randomRequest(rng *rand.Rand) Request {
	r := Request{ID: rng.Uint64() >> rng.IntN(64), Op: []Op{OpHeartbeat, OpFetchMetadata, OpRegister, OpAlterPartition}[rng.IntN(4)]}
	if rng.IntN(2) == 0 {
		r.BrokerID, r.BrokerEpoch, r.MetadataOffset = randomInt[int32](rng), randomInt[int64](rng), randomInt[int64](rng)
	}
	if rng.IntN(4) == 0 {
		r.Addr, r.Incarnation, r.Topic, r.TopicID = randomString(rng), randomString(rng), randomString(rng), randomString(rng)
	}
	if rng.IntN(4) == 0 {
		r.Partitions, r.ReplicationFactor, r.Unclean = randomInt[int32](rng), randomInt[int16](rng), rng.IntN(2) == 0
		r.Partition, r.LeaderEpoch, r.PartitionEpoch = randomInt[int32](rng), randomInt[int32](rng), randomInt[int32](rng)
	}
	if rng.IntN(8) == 0 {
		r.ISR = []int32{1, randomInt[int32](rng)}
	}
	if rng.IntN(8) == 0 {
		r.Configs = map[string]string{randomString(rng): randomString(rng)}
	}
	r.FromOffset = randomInt[int64](rng)
	return r
}

func randomResponse(rng *rand.Rand) Response {
	r := Response{ID: rng.Uint64() >> rng.IntN(64), Code: randomInt[metadata.Code](rng)}
	if rng.IntN(3) == 0 {
		r.LeaderHint, r.TopicID = randomString(rng), randomString(rng)
	}
	r.BrokerEpoch, r.Fenced, r.Offset, r.Committed = randomInt[int64](rng), rng.IntN(2) == 0, randomInt[int64](rng), randomInt[int64](rng)
	if rng.IntN(2) == 0 {
		r.Delta = &metadata.Delta{From: randomInt[int64](rng), Through: randomInt[int64](rng)}
		if rng.IntN(4) == 0 {
			r.Delta.Records = []metadata.OffsetEntry{{Offset: 3, Data: []byte(randomString(rng))}}
		}
	}
	if rng.IntN(8) == 0 {
		r.Partition = &metadata.Partition{Leader: 1, ISR: []int32{1}}
	}
	return r
}

// randomInt is zero, an extreme of T or a small value, of either sign.
func randomInt[T ~int16 | ~int32 | ~int64](rng *rand.Rand) T {
	var extreme int64
	switch any(T(0)).(type) {
	case int16, metadata.Code:
		extreme = math.MaxInt16
	case int32:
		extreme = math.MaxInt32
	default:
		extreme = math.MaxInt64
	}
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return T(extreme)
	case 2:
		return T(-extreme - 1)
	}
	return T(rng.Int64N(2000) - 1000)
}

// randomString draws from letters, digits and, one time in two, what
// JSON escapes or encoding/json writes differently (HTML characters,
// control characters, non-ASCII, invalid UTF-8).
func randomString(rng *rand.Rand) string {
	alphabet := "ab-:.019"
	if rng.IntN(2) == 0 {
		alphabet += "<>&\"\\\n\x7fé\xff"
	}
	b := make([]byte, rng.IntN(8))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// mutate changes, inserts or deletes one byte of body, into what JSON
// numbers, literals and structure are made of.
func mutate(rng *rand.Rand, body []byte) []byte {
	const alphabet = "0123456789-+.eE{}[],:\" tfnul\\"
	out := append([]byte(nil), body...)
	i := rng.IntN(len(out))
	c := alphabet[rng.IntN(len(alphabet))]
	switch rng.IntN(3) {
	case 0:
		out[i] = c
	case 1:
		out = append(out[:i], append([]byte{c}, out[i:]...)...)
	default:
		out = append(out[:i], out[i+1:]...)
	}
	return out
}
