package kafkawire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Spares keeps at most its bound and hands back what it kept, last first.
func TestSparesBoundAndOrder(t *testing.T) {
	var s Spares[kmsg.FetchRequest]
	if s.Take() != nil {
		t.Fatal("an empty Spares gave a message")
	}
	a, b, c := kmsg.NewPtrFetchRequest(), kmsg.NewPtrFetchRequest(), kmsg.NewPtrFetchRequest()
	s.Put(a, 2)
	s.Put(b, 2)
	s.Put(c, 2) // over the bound: dropped
	if got := s.Take(); got != b {
		t.Fatalf("first take: %p, want the last put %p", got, b)
	}
	if got := s.Take(); got != a {
		t.Fatalf("second take: %p, want %p", got, a)
	}
	if s.Take() != nil {
		t.Fatal("a message over the bound was kept")
	}
}

// A reset message has kmsg's defaults and no topics, but keeps the room
// of its topic and partition slices, which AppendFetchTopic reuses.
func TestResetKeepsRoomAndDefaults(t *testing.T) {
	r := kmsg.NewPtrFetchRequest()
	r.ReplicaID, r.MaxWaitMillis = 3, 1
	r.Topics = AppendFetchTopic(r.Topics, "a", 8)
	r.Topics[0].Partitions = append(r.Topics[0].Partitions, kmsg.NewFetchRequestTopicPartition())
	parts := &r.Topics[0].Partitions[:1][0]
	ResetFetchRequest(r)
	fresh := kmsg.NewFetchRequest()
	if len(r.Topics) != 0 || cap(r.Topics) == 0 || r.ReplicaID != fresh.ReplicaID || r.MaxWaitMillis != fresh.MaxWaitMillis {
		t.Fatalf("reset request: %d topics (room %d), replica %d, wait %d", len(r.Topics), cap(r.Topics), r.ReplicaID, r.MaxWaitMillis)
	}
	r.Topics = AppendFetchTopic(r.Topics, "b", 0)
	if r.Topics[0].Topic != "b" || len(r.Topics[0].Partitions) != 0 || cap(r.Topics[0].Partitions) < 8 ||
		&r.Topics[0].Partitions[:1][0] != parts {
		t.Fatalf("the partition slice was not reused: %+v", r.Topics[0])
	}

	resp := kmsg.NewPtrFetchResponse()
	resp.ThrottleMillis = 5
	resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
	ResetFetchResponse(resp)
	if len(resp.Topics) != 0 || cap(resp.Topics) == 0 || resp.ThrottleMillis != 0 {
		t.Fatalf("reset answer: %d topics (room %d), throttle %d", len(resp.Topics), cap(resp.Topics), resp.ThrottleMillis)
	}
}

// A produce answer built again in a used one encodes byte for byte as one
// built fresh: every partition is back at kmsg's defaults (no error
// message left from the earlier answer), and the slices' room is reused.
func TestProduceAnswerReuseEncodesAsFresh(t *testing.T) {
	build := func(resp *kmsg.ProduceResponse, topics []string, parts int, offset int64) {
		resp.Topics = GrowProduceResponseTopics(resp.Topics, len(topics))
		for i, name := range topics {
			resp.Topics[i].Topic = name
			resp.Topics[i].Partitions = GrowProduceResponsePartitions(resp.Topics[i].Partitions, parts)
			for p := range parts {
				resp.Topics[i].Partitions[p].Partition = int32(p)
				resp.Topics[i].Partitions[p].BaseOffset = offset
			}
		}
	}
	used := kmsg.NewPtrProduceResponse()
	used.SetVersion(9)
	build(used, []string{"a", "b", "c"}, 4, 7)
	msg := "disk full"
	used.Topics[1].Partitions[2].ErrorCode, used.Topics[1].Partitions[2].ErrorMessage = 56, &msg
	first := &used.Topics[:1][0]
	ResetProduceResponse(used)
	used.SetVersion(9)
	build(used, []string{"x", "y"}, 3, 9)

	fresh := kmsg.NewPtrProduceResponse()
	fresh.SetVersion(9)
	for _, name := range []string{"x", "y"} {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = name
		for p := range 3 {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.BaseOffset = int32(p), 9
			st.Partitions = append(st.Partitions, sp)
		}
		fresh.Topics = append(fresh.Topics, st)
	}
	if got, want := used.AppendTo(nil), fresh.AppendTo(nil); string(got) != string(want) {
		t.Fatalf("reused answer encodes as\n%x\nfresh as\n%x", got, want)
	}
	if &used.Topics[0] != first {
		t.Fatal("the topic slice was not reused")
	}

	r := kmsg.NewPtrProduceRequest()
	r.Acks, r.Topics = 0, append(r.Topics, kmsg.NewProduceRequestTopic())
	ResetProduceRequest(r)
	if len(r.Topics) != 0 || cap(r.Topics) == 0 || r.Acks != kmsg.NewProduceRequest().Acks {
		t.Fatalf("reset request: %d topics (room %d), acks %d", len(r.Topics), cap(r.Topics), r.Acks)
	}
}
