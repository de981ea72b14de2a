package kafkawire

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// message is what every request and response of kmsg is.
type message interface {
	GetVersion() int16
	SetVersion(int16)
	AppendTo([]byte) []byte
	ReadFrom([]byte) error
}

// decodeCase is one message kind: how to make a random one, and how to
// decode it with kmsg, with the decoder under test into a reused message,
// and with the fast path alone (which reports whether it took the input).
type decodeCase struct {
	name   string
	random func(rng *rand.Rand, plain bool) message
	kmsg   func(version int16, wire []byte) (message, error)
	reused func(version int16, wire []byte) (message, error)
	fast   func(version int16, wire []byte) (message, bool)
}

// TestDecodersMatchKmsg: for random messages of every version, plain or
// carrying tagged fields, unknown tags and the parts the fast decoders
// leave to kmsg, whole or cut short, decoding into a message used before
// gives what kmsg decodes into a fresh one (compared by encoding both
// with kmsg) and the same error; plain flexible messages take the fast
// decoders themselves.
func TestDecodersMatchKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range decodeCases() {
		fast := 0
		for i := 0; i < 2000; i++ {
			msg := c.random(rng, rng.IntN(3) > 0)
			version := msg.GetVersion()
			wire := msg.AppendTo(nil)
			cuts := []int{len(wire), rng.IntN(len(wire) + 1)}
			for _, cut := range cuts {
				want, wantErr := c.kmsg(version, wire[:cut])
				got, err := c.reused(version, wire[:cut])
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("%s v%d cut at %d of %d: error %v, kmsg's %v", c.name, version, cut, len(wire), err, wantErr)
				}
				if wantErr == nil {
					compare(t, c.name, got.AppendTo(nil), want.AppendTo(nil))
				}
			}
			if m, ok := c.fast(version, wire); ok {
				fast++
				compare(t, "fast "+c.name, m.AppendTo(nil), wire)
			}
		}
		if fast < 50 {
			t.Errorf("only %d %ss took the fast decoder", fast, c.name)
		}
	}
}

func decodeCases() []decodeCase {
	var (
		fetchReq     = kmsg.NewPtrFetchRequest()
		produceReq   = kmsg.NewPtrProduceRequest()
		fetchResp    = kmsg.NewPtrFetchResponse()
		produceResp  = kmsg.NewPtrProduceResponse()
		withVersion  = func(m message, v int16) message { m.SetVersion(v); return m }
		kmsgDecoding = func(m message) func(int16, []byte) (message, error) {
			return func(v int16, wire []byte) (message, error) {
				fresh := withVersion(m, v)
				return fresh, fresh.ReadFrom(wire)
			}
		}
	)
	return []decodeCase{
		{
			name: "fetch request",
			random: func(rng *rand.Rand, plain bool) message {
				return randomFetchRequest(rng, int16(4+rng.IntN(9)), plain)
			},
			kmsg: func(v int16, wire []byte) (message, error) {
				return kmsgDecoding(kmsg.NewPtrFetchRequest())(v, wire)
			},
			reused: func(v int16, wire []byte) (message, error) {
				ResetFetchRequest(fetchReq)
				fetchReq.Version = v
				return fetchReq, ReadFetchRequest(fetchReq, wire)
			},
			fast: func(v int16, wire []byte) (message, bool) {
				r := kmsg.NewPtrFetchRequest()
				return r, v == 12 && readFetchRequest12(r, wire)
			},
		},
		{
			name: "produce request",
			random: func(rng *rand.Rand, plain bool) message {
				return randomProduceRequest(rng, int16(3+rng.IntN(10)), plain)
			},
			kmsg: func(v int16, wire []byte) (message, error) {
				return kmsgDecoding(kmsg.NewPtrProduceRequest())(v, wire)
			},
			reused: func(v int16, wire []byte) (message, error) {
				ResetProduceRequest(produceReq)
				produceReq.Version = v
				return produceReq, ReadProduceRequest(produceReq, wire)
			},
			fast: func(v int16, wire []byte) (message, bool) {
				r := kmsg.NewPtrProduceRequest()
				r.Version = v
				return r, v >= 9 && readProduceRequestFlexible(r, wire)
			},
		},
		{
			name: "fetch response",
			random: func(rng *rand.Rand, plain bool) message {
				r := randomFetchResponse(rng, int16(4+rng.IntN(9)), plain)
				for i := range r.Topics {
					for j := range r.Topics[i].Partitions {
						if p := &r.Topics[i].Partitions[j]; plain && rng.IntN(2) == 0 {
							p.AbortedTransactions = nil
						}
					}
				}
				return r
			},
			kmsg: func(v int16, wire []byte) (message, error) {
				return kmsgDecoding(kmsg.NewPtrFetchResponse())(v, wire)
			},
			reused: func(v int16, wire []byte) (message, error) {
				ResetFetchResponse(fetchResp)
				fetchResp.Version = v
				return fetchResp, ReadFetchResponse(fetchResp, wire)
			},
			fast: func(v int16, wire []byte) (message, bool) {
				r := kmsg.NewPtrFetchResponse()
				return r, v == 12 && readFetchResponse12(r, wire)
			},
		},
		{
			name: "produce response",
			random: func(rng *rand.Rand, plain bool) message {
				r := randomProduceResponse(rng, int16(3+rng.IntN(10)), plain)
				for i := range r.Topics {
					for j := range r.Topics[i].Partitions {
						if p := &r.Topics[i].Partitions[j]; plain && rng.IntN(2) == 0 {
							p.ErrorRecords = nil
						}
					}
				}
				return r
			},
			kmsg: func(v int16, wire []byte) (message, error) {
				return kmsgDecoding(kmsg.NewPtrProduceResponse())(v, wire)
			},
			reused: func(v int16, wire []byte) (message, error) {
				ResetProduceResponse(produceResp)
				produceResp.Version = v
				return produceResp, ReadProduceResponse(produceResp, wire)
			},
			fast: func(v int16, wire []byte) (message, bool) {
				r := kmsg.NewPtrProduceResponse()
				r.Version = v
				return r, v >= 9 && readProduceResponseFlexible(r, wire)
			},
		},
	}
}

func randomProduceRequest(rng *rand.Rand, version int16, plain bool) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Version = version
	r.Acks, r.TimeoutMillis = int16(rng.IntN(3)-1), rng.Int32()
	if rng.IntN(8) == 0 {
		id := randomString(rng)
		r.TransactionID = &id
	}
	for range rng.IntN(3) {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = randomString(rng)
		for range rng.IntN(4) {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = rng.Int32N(8)
			if rng.IntN(4) > 0 {
				rp.Records = make([]byte, rng.IntN(200))
				for k := range rp.Records {
					rp.Records[k] = byte(rng.IntN(256))
				}
			}
			maybeTags(rng, &rp.UnknownTags, plain)
			rt.Partitions = append(rt.Partitions, rp)
		}
		maybeTags(rng, &rt.UnknownTags, plain)
		r.Topics = append(r.Topics, rt)
	}
	maybeTags(rng, &r.UnknownTags, plain)
	return r
}
