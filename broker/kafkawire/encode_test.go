package kafkawire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEncodersMatchKmsg: for random messages of every version, plain or
// carrying tagged fields and unknown tags, the encoders write what kmsg
// writes, and the fast encoders themselves (not a fallback) are what
// plain flexible messages go through.
func TestEncodersMatchKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast := map[string]int{}
	for i := 0; i < 3000; i++ {
		plain := rng.IntN(3) > 0
		req := randomFetchRequest(rng, int16(4+rng.IntN(9)), plain)
		compare(t, "fetch request", AppendRequest(nil, req), req.AppendTo(nil))
		if req.Version == 12 && plainFetchRequest(req) {
			compare(t, "fast fetch request", appendFetchRequest12(nil, req), req.AppendTo(nil))
			fast["fetch request"]++
		}
		fr := randomFetchResponse(rng, int16(4+rng.IntN(9)), plain)
		compare(t, "fetch response", AppendResponse(nil, fr), fr.AppendTo(nil))
		if fr.Version == 12 && plainFetchResponse(fr) {
			compare(t, "fast fetch response", appendFetchResponse12(nil, fr), fr.AppendTo(nil))
			fast["fetch response"]++
		}
		pr := randomProduceResponse(rng, int16(3+rng.IntN(10)), plain)
		compare(t, "produce response", AppendResponse(nil, pr), pr.AppendTo(nil))
		if pr.Version >= 9 && plainProduceResponse(pr) {
			compare(t, "fast produce response", appendProduceResponseFlexible(nil, pr), pr.AppendTo(nil))
			fast["produce response"]++
		}
	}
	for _, kind := range []string{"fetch request", "fetch response", "produce response"} {
		if fast[kind] < 50 {
			t.Errorf("only %d plain flexible %ss took the fast encoder", fast[kind], kind)
		}
	}
}

func compare(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encoded\n%x\nkmsg encodes\n%x", what, got, want)
	}
}

func randomString(rng *rand.Rand) string {
	return string(rune('a'+rng.IntN(26))) + string(make([]byte, rng.IntN(4)))
}

func maybeTags(rng *rand.Rand, tags *kmsg.Tags, plain bool) {
	if !plain && rng.IntN(8) == 0 {
		tags.Set(uint32(10+rng.IntN(3)), []byte{byte(rng.IntN(256))})
	}
}

func randomFetchRequest(rng *rand.Rand, version int16, plain bool) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = version
	r.ReplicaID, r.MaxWaitMillis, r.MinBytes = rng.Int32N(4)-1, rng.Int32(), rng.Int32N(100)
	r.MaxBytes, r.IsolationLevel, r.SessionID, r.SessionEpoch = rng.Int32(), int8(rng.IntN(2)), rng.Int32N(3), rng.Int32N(3)-1
	r.Rack = randomString(rng)
	for range rng.IntN(3) {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = randomString(rng)
		for range rng.IntN(4) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset = rng.Int32N(8), rng.Int32N(5)-1, rng.Int64N(1<<40)
			rp.LastFetchedEpoch, rp.LogStartOffset, rp.PartitionMaxBytes = rng.Int32N(5)-1, rng.Int64N(100)-1, rng.Int32()
			if !plain && rng.IntN(8) == 0 {
				rp.HighWatermark = rng.Int64N(100)
			}
			if !plain && rng.IntN(8) == 0 {
				rp.ReplicaDirectoryID[3] = 1
			}
			maybeTags(rng, &rp.UnknownTags, plain)
			rt.Partitions = append(rt.Partitions, rp)
		}
		maybeTags(rng, &rt.UnknownTags, plain)
		r.Topics = append(r.Topics, rt)
	}
	for range rng.IntN(2) {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = randomString(rng), []int32{rng.Int32N(4), rng.Int32N(4)}
		maybeTags(rng, &ft.UnknownTags, plain)
		r.ForgottenTopics = append(r.ForgottenTopics, ft)
	}
	if !plain && rng.IntN(8) == 0 {
		id := randomString(rng)
		r.ClusterID = &id
	}
	if !plain && rng.IntN(8) == 0 {
		r.ReplicaState.ID = 2
	}
	maybeTags(rng, &r.UnknownTags, plain)
	return r
}

func randomFetchResponse(rng *rand.Rand, version int16, plain bool) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.Version = version
	r.ThrottleMillis, r.ErrorCode, r.SessionID = rng.Int32N(10), int16(rng.IntN(3)), rng.Int32N(3)
	for range rng.IntN(3) {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = randomString(rng)
		for range rng.IntN(4) {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = rng.Int32N(8), int16(rng.IntN(80))
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = rng.Int64N(1<<40), rng.Int64N(1<<40), rng.Int64N(10)-1
			rp.PreferredReadReplica = rng.Int32N(3) - 1
			switch rng.IntN(3) {
			case 0:
				rp.RecordBatches = nil
			case 1:
				rp.RecordBatches = []byte{}
			default:
				rp.RecordBatches = bytes.Repeat([]byte{byte(rng.IntN(256))}, 1+rng.IntN(300))
			}
			if rng.IntN(4) == 0 {
				rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 9}}
				maybeTags(rng, &rp.AbortedTransactions[0].UnknownTags, plain)
			}
			if !plain {
				switch rng.IntN(8) {
				case 0:
					rp.DivergingEpoch.Epoch = 3
				case 1:
					rp.CurrentLeader.LeaderID = 1
				case 2:
					rp.SnapshotID.EndOffset = 5
				case 3:
					rp.CurrentLeader.UnknownTags.Set(4, []byte{1})
				}
			}
			maybeTags(rng, &rp.UnknownTags, plain)
			rt.Partitions = append(rt.Partitions, rp)
		}
		maybeTags(rng, &rt.UnknownTags, plain)
		r.Topics = append(r.Topics, rt)
	}
	if !plain && rng.IntN(8) == 0 {
		r.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: "h", Port: 9092}}
	}
	maybeTags(rng, &r.UnknownTags, plain)
	return r
}

func randomProduceResponse(rng *rand.Rand, version int16, plain bool) *kmsg.ProduceResponse {
	r := kmsg.NewPtrProduceResponse()
	r.Version = version
	r.ThrottleMillis = rng.Int32N(10)
	for range rng.IntN(3) {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = randomString(rng)
		for range rng.IntN(4) {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.BaseOffset = rng.Int32N(8), int16(rng.IntN(80)), rng.Int64N(1<<40)
			rp.LogAppendTime, rp.LogStartOffset = rng.Int64N(3)-1, rng.Int64N(10)-1
			if rng.IntN(4) == 0 {
				msg := randomString(rng)
				rp.ErrorMessage = &msg
				rp.ErrorRecords = []kmsg.ProduceResponseTopicPartitionErrorRecord{{RelativeOffset: 2, ErrorMessage: &msg}, {RelativeOffset: 3}}
				maybeTags(rng, &rp.ErrorRecords[0].UnknownTags, plain)
			}
			if !plain && rng.IntN(8) == 0 {
				rp.CurrentLeader.LeaderEpoch = 4
			}
			maybeTags(rng, &rp.UnknownTags, plain)
			rt.Partitions = append(rt.Partitions, rp)
		}
		maybeTags(rng, &rt.UnknownTags, plain)
		r.Topics = append(r.Topics, rt)
	}
	if !plain && rng.IntN(8) == 0 {
		r.Brokers = []kmsg.ProduceResponseBroker{{NodeID: 1, Host: "h", Port: 9092}}
	}
	maybeTags(rng, &r.UnknownTags, plain)
	return r
}
