package metadata

import (
	"bytes"
	"slices"
	"testing"
)

// log is a State with the next offset, for tests.
type log struct {
	t    *testing.T
	s    *State
	next int64
}

func newLog(t *testing.T) *log { return &log{t: t, s: NewState(), next: 1} }

func (l *log) apply(r Record) Result {
	res := l.s.Apply(l.next, r)
	l.next++
	return res
}

// brokers registers and unfences brokers 1..n and returns their epochs.
func (l *log) brokers(n int) map[int32]int64 {
	epochs := map[int32]int64{}
	for id := int32(1); id <= int32(n); id++ {
		res := l.apply(Record{Kind: KindRegisterBroker, BrokerID: id, Addr: "b", Incarnation: "i1"})
		epochs[id] = res.BrokerEpoch
		if r := l.apply(Record{Kind: KindUnfenceBroker, BrokerID: id, BrokerEpoch: res.BrokerEpoch}); r.Code != CodeNone {
			l.t.Fatalf("unfence %d: %v", id, r.Code)
		}
	}
	return epochs
}

func (l *log) partition(topic string, p int) Partition {
	return l.s.Topics[topic].Partitions[p]
}

func TestRegistrationEpochs(t *testing.T) {
	l := newLog(t)
	first := l.apply(Record{Kind: KindRegisterBroker, BrokerID: 1, Addr: "b1:9092", Incarnation: "a"})
	if first.Code != CodeNone || first.BrokerEpoch != 1 || !l.s.Brokers[1].Fenced {
		t.Fatalf("registration: %+v, broker %+v", first, l.s.Brokers[1])
	}
	retry := l.apply(Record{Kind: KindRegisterBroker, BrokerID: 1, Addr: "b1:9092", Incarnation: "a"})
	if retry.BrokerEpoch != first.BrokerEpoch {
		t.Fatalf("a retried registration got epoch %d, want %d", retry.BrokerEpoch, first.BrokerEpoch)
	}
	restart := l.apply(Record{Kind: KindRegisterBroker, BrokerID: 1, Addr: "b1:9092", Incarnation: "b"})
	if restart.BrokerEpoch <= first.BrokerEpoch {
		t.Fatalf("a restart got epoch %d, not past %d", restart.BrokerEpoch, first.BrokerEpoch)
	}
	if r := l.apply(Record{Kind: KindUnfenceBroker, BrokerID: 1, BrokerEpoch: first.BrokerEpoch}); r.Code != CodeStaleBrokerEpoch {
		t.Fatalf("unfence with the old epoch: %v, want STALE_BROKER_EPOCH", r.Code)
	}
	if r := l.apply(Record{Kind: KindUnfenceBroker, BrokerID: 9, BrokerEpoch: 1}); r.Code != CodeBrokerIDNotRegistered {
		t.Fatalf("unfence of an unknown broker: %v", r.Code)
	}
}

func TestCreateTopicSpreadsReplicasAndLeaders(t *testing.T) {
	l := newLog(t)
	l.brokers(3)
	res := l.apply(Record{Kind: KindCreateTopic, Topic: "orders", TopicID: "id-orders", Partitions: 6, ReplicationFactor: 3})
	if res.Code != CodeNone || res.TopicID != "id-orders" {
		t.Fatalf("create: %+v", res)
	}
	leads := map[int32]int{}
	for i, p := range l.s.Topics["orders"].Partitions {
		if len(p.Replicas) != 3 || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] {
			t.Fatalf("partition %d: %+v", i, p)
		}
		r := slices.Clone(p.Replicas)
		slices.Sort(r)
		if !slices.Equal(r, []int32{1, 2, 3}) {
			t.Fatalf("partition %d replicas %v", i, p.Replicas)
		}
		leads[p.Leader]++
	}
	for id := int32(1); id <= 3; id++ {
		if leads[id] != 2 {
			t.Fatalf("leaders spread %v, want 2 each", leads)
		}
	}
	if r := l.apply(Record{Kind: KindCreateTopic, Topic: "orders", TopicID: "x", Partitions: 1, ReplicationFactor: 1}); r.Code != CodeTopicAlreadyExists {
		t.Fatalf("second create: %v", r.Code)
	}
	if r := l.apply(Record{Kind: KindCreateTopic, Topic: "big", TopicID: "y", Partitions: 1, ReplicationFactor: 4}); r.Code != CodeInvalidReplicationFactor {
		t.Fatalf("rf 4 on 3 brokers: %v", r.Code)
	}
	if r := l.apply(Record{Kind: KindCreateTopic, Topic: "none", TopicID: "z", Partitions: 0, ReplicationFactor: 1}); r.Code != CodeInvalidPartitions {
		t.Fatalf("0 partitions: %v", r.Code)
	}
	if r := l.apply(Record{Kind: KindDeleteTopic, TopicID: "id-orders"}); r.Code != CodeNone || l.s.Topics["orders"] != nil {
		t.Fatalf("delete: %v", r.Code)
	}
}

func TestFencingMovesLeadershipWithinISR(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 1, ReplicationFactor: 3})
	before := l.partition("t", 0).Clone()
	old := before.Leader
	l.apply(Record{Kind: KindFenceBroker, BrokerID: old, BrokerEpoch: epochs[old]})
	after := l.partition("t", 0).Clone()
	if after.Leader == old || after.Leader != before.Replicas[1] {
		t.Fatalf("leader %d after fencing %d, want %d", after.Leader, old, before.Replicas[1])
	}
	if slices.Contains(after.ISR, old) || after.LeaderEpoch != before.LeaderEpoch+1 || after.PartitionEpoch != before.PartitionEpoch+1 {
		t.Fatalf("after fencing: %+v (before %+v)", after, before)
	}
	// Fence the rest: the last ISR member stays, leaderless.
	for _, id := range after.ISR {
		l.apply(Record{Kind: KindFenceBroker, BrokerID: id, BrokerEpoch: epochs[id]})
	}
	gone := l.partition("t", 0)
	if gone.Leader != NoLeader || len(gone.ISR) != 1 {
		t.Fatalf("with every replica fenced: %+v", gone)
	}
	// The fenced leader's return does not make it leader: it is not in
	// the ISR and the topic is clean.
	l.apply(Record{Kind: KindUnfenceBroker, BrokerID: old, BrokerEpoch: epochs[old]})
	if p := l.partition("t", 0); p.Leader != NoLeader {
		t.Fatalf("an out-of-sync replica was elected on a clean topic: %+v", p)
	}
	last := gone.ISR[0]
	l.apply(Record{Kind: KindUnfenceBroker, BrokerID: last, BrokerEpoch: epochs[last]})
	if p := l.partition("t", 0); p.Leader != last {
		t.Fatalf("the last ISR member came back and does not lead: %+v", p)
	}
}

func TestUncleanElection(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(2)
	l.apply(Record{Kind: KindCreateTopic, Topic: "u", TopicID: "uid", Partitions: 1, ReplicationFactor: 2, Unclean: true})
	p := l.partition("u", 0)
	leader, follower := p.Replicas[0], p.Replicas[1]
	// The follower drops out of the ISR, then the leader is fenced.
	if r := l.apply(Record{Kind: KindAlterPartition, BrokerID: leader, BrokerEpoch: epochs[leader], TopicID: "uid",
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{leader}}); r.Code != CodeNone {
		t.Fatalf("shrink: %v", r.Code)
	}
	l.apply(Record{Kind: KindFenceBroker, BrokerID: leader, BrokerEpoch: epochs[leader]})
	if got := l.partition("u", 0); got.Leader != follower || !slices.Equal(got.ISR, []int32{follower}) {
		t.Fatalf("unclean topic after its only in-sync replica was fenced: %+v", got)
	}
}

func TestAlterPartitionChecks(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 1, ReplicationFactor: 3})
	p := l.partition("t", 0)
	leader := p.Leader
	alter := func(broker int32, le, pe int32, isr []int32) Code {
		return l.apply(Record{Kind: KindAlterPartition, BrokerID: broker, BrokerEpoch: epochs[broker], TopicID: "tid",
			LeaderEpoch: le, PartitionEpoch: pe, ISR: isr}).Code
	}
	shrunk := []int32{leader, p.Replicas[1]}
	cases := []struct {
		name string
		code Code
		want Code
	}{
		{"not the leader", alter(p.Replicas[1], p.LeaderEpoch, p.PartitionEpoch, shrunk), CodeNotLeaderOrFollower},
		{"old leader epoch", alter(leader, p.LeaderEpoch-1, p.PartitionEpoch, shrunk), CodeFencedLeaderEpoch},
		{"old partition epoch", alter(leader, p.LeaderEpoch, p.PartitionEpoch-1, shrunk), CodeInvalidUpdateVersion},
		{"leader left out", alter(leader, p.LeaderEpoch, p.PartitionEpoch, []int32{p.Replicas[1]}), CodeInvalidRequest},
		{"not a replica", alter(leader, p.LeaderEpoch, p.PartitionEpoch, []int32{leader, 77}), CodeInvalidRequest},
		{"valid shrink", alter(leader, p.LeaderEpoch, p.PartitionEpoch, shrunk), CodeNone},
	}
	for _, c := range cases {
		if c.code != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.code, c.want)
		}
	}
	q := l.partition("t", 0)
	if q.PartitionEpoch != p.PartitionEpoch+1 || q.LeaderEpoch != p.LeaderEpoch || len(q.ISR) != 2 {
		t.Fatalf("after the shrink: %+v", q)
	}
	// A fenced replica may not be added back.
	out := p.Replicas[2]
	l.apply(Record{Kind: KindFenceBroker, BrokerID: out, BrokerEpoch: epochs[out]})
	q = l.partition("t", 0)
	if code := alter(leader, q.LeaderEpoch, q.PartitionEpoch, []int32{leader, p.Replicas[1], out}); code != CodeIneligibleReplica {
		t.Fatalf("adding a fenced replica: %v", code)
	}
}

func TestPreferredLeaderReturns(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 3, ReplicationFactor: 3})
	victim := l.partition("t", 0).Leader
	l.apply(Record{Kind: KindFenceBroker, BrokerID: victim, BrokerEpoch: epochs[victim]})
	l.apply(Record{Kind: KindUnfenceBroker, BrokerID: victim, BrokerEpoch: epochs[victim]})
	if len(l.s.Imbalanced()) != 0 {
		t.Fatal("a replica not in the ISR counted as a preferred leader to restore")
	}
	p := l.partition("t", 0)
	l.apply(Record{Kind: KindAlterPartition, BrokerID: p.Leader, BrokerEpoch: epochs[p.Leader], TopicID: "tid",
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: p.Replicas})
	imbalanced := l.s.Imbalanced()
	if len(imbalanced) != 1 || imbalanced[0] != (TopicPartition{TopicID: "tid", Partition: 0}) {
		t.Fatalf("imbalanced %v", imbalanced)
	}
	l.apply(Record{Kind: KindElectPreferred, Elect: imbalanced})
	if got := l.partition("t", 0); got.Leader != victim || got.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("after the preferred election: %+v", got)
	}
}

func TestStateEncodingRoundTrips(t *testing.T) {
	l := newLog(t)
	l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 4, ReplicationFactor: 2})
	data := l.s.Encode()
	back, err := DecodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), data) || back.TopicByID("tid") == nil {
		t.Fatal("the state does not survive encoding")
	}
	if _, err := DecodeState([]byte(`{"topics":{"a":{"name":"b"}}}`)); err == nil {
		t.Fatal("a misfiled topic was accepted")
	}
	if _, err := DecodeRecord([]byte(`{}`)); err == nil {
		t.Fatal("a record with no kind was accepted")
	}
}

func TestImageRefusesGaps(t *testing.T) {
	im := NewImage()
	rec := Record{Kind: KindRegisterBroker, BrokerID: 1, Incarnation: "a"}.Encode()
	if err := im.Apply(Delta{From: 5, Through: 5, Records: []OffsetEntry{{Offset: 5, Data: rec}}}); err == nil {
		t.Fatal("a delta skipping offsets 1-4 was applied")
	}
	if err := im.Apply(Delta{From: 1, Through: 3, Records: []OffsetEntry{{Offset: 2, Data: rec}}}); err != nil {
		t.Fatal(err)
	}
	if im.Next() != 4 || im.State().Brokers[1] == nil || im.State().Brokers[1].Epoch != 2 {
		t.Fatalf("image at %d with %+v", im.Next(), im.State().Brokers)
	}
	// Fetched twice: nothing changes.
	if err := im.Apply(Delta{From: 1, Through: 3, Records: []OffsetEntry{{Offset: 2, Data: rec}}}); err != nil || im.Next() != 4 {
		t.Fatalf("a repeated delta: %v, next %d", err, im.Next())
	}
}

func TestAlterTopicConfigsReplacesTheMap(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(2)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 1, ReplicationFactor: 2,
		Configs: map[string]string{"retention.ms": "1000", "segment.bytes": "4096"}})
	held := l.s.Topics["t"].Configs
	res := l.apply(Record{Kind: KindAlterTopicConfigs, Topic: "t", Configs: map[string]string{"retention.ms": "2000"}})
	if res.Code != CodeNone || res.TopicID != "tid" {
		t.Fatalf("alter: %+v", res)
	}
	if got := l.s.Topics["t"].Configs; len(got) != 1 || got["retention.ms"] != "2000" {
		t.Fatalf("configs after the alter: %v, want only retention.ms=2000", got)
	}
	if held["retention.ms"] != "1000" || held["segment.bytes"] != "4096" {
		t.Fatalf("the map an image reader held changed: %v", held)
	}
	if r := l.apply(Record{Kind: KindAlterTopicConfigs, Topic: "missing", Configs: map[string]string{}}); r.Code != CodeUnknownTopicOrPartition {
		t.Fatalf("alter of an unknown topic: %v", r.Code)
	}
	if r := l.apply(Record{Kind: KindAlterTopicConfigs, TopicID: "nope", Topic: "t"}); r.Code != CodeUnknownTopicOrPartition {
		t.Fatalf("alter naming an unknown topic id: %v", r.Code)
	}
	// Allowing unclean election elects an out-of-sync replica at once.
	p := l.partition("t", 0)
	leader, follower := p.Replicas[0], p.Replicas[1]
	l.apply(Record{Kind: KindAlterPartition, BrokerID: leader, BrokerEpoch: epochs[leader], TopicID: "tid",
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{leader}})
	l.apply(Record{Kind: KindFenceBroker, BrokerID: leader, BrokerEpoch: epochs[leader]})
	if got := l.partition("t", 0); got.Leader != NoLeader {
		t.Fatalf("a clean topic elected outside the ISR: %+v", got)
	}
	l.apply(Record{Kind: KindAlterTopicConfigs, Topic: "t", Unclean: true,
		Configs: map[string]string{"unclean.leader.election.enable": "true"}})
	if got := l.partition("t", 0); got.Leader != follower || !slices.Equal(got.ISR, []int32{follower}) || !l.s.Topics["t"].Unclean {
		t.Fatalf("after allowing unclean election: %+v", got)
	}
}

func TestCreatePartitionsAddsAssignedPartitions(t *testing.T) {
	l := newLog(t)
	epochs := l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 3, ReplicationFactor: 2})
	first := l.partition("t", 0).Clone()
	held := l.s.Topics["t"].Partitions
	offset := l.next
	res := l.apply(Record{Kind: KindCreatePartitions, Topic: "t", Partitions: 5})
	if res.Code != CodeNone || res.TopicID != "tid" {
		t.Fatalf("create partitions: %+v", res)
	}
	parts := l.s.Topics["t"].Partitions
	if len(parts) != 5 || len(held) != 3 {
		t.Fatalf("%d partitions after raising to 5 (an image reader's slice has %d)", len(parts), len(held))
	}
	want := Assign([]int32{1, 2, 3}, 5, 2, offset)
	for i := 3; i < 5; i++ {
		p := parts[i]
		if !slices.Equal(p.Replicas, want[i]) || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] ||
			p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
			t.Fatalf("new partition %d: %+v, want replicas %v led by the first, all in sync, epochs 0", i, p, want[i])
		}
	}
	if got := l.partition("t", 0); !slices.Equal(got.Replicas, first.Replicas) || got.LeaderEpoch != first.LeaderEpoch {
		t.Fatalf("an existing partition changed: %+v, was %+v", got, first)
	}
	cases := []struct {
		name string
		r    Record
		want Code
	}{
		{"unknown topic", Record{Kind: KindCreatePartitions, Topic: "missing", Partitions: 9}, CodeUnknownTopicOrPartition},
		{"the same count", Record{Kind: KindCreatePartitions, Topic: "t", Partitions: 5}, CodeInvalidPartitions},
		{"fewer", Record{Kind: KindCreatePartitions, Topic: "t", Partitions: 2}, CodeInvalidPartitions},
		{"too many", Record{Kind: KindCreatePartitions, Topic: "t", Partitions: partitionsPerTopicMax + 1}, CodeInvalidPartitions},
	}
	for _, c := range cases {
		if got := l.apply(c.r).Code; got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// With two brokers fenced, one is left for a replication factor of 2.
	l.apply(Record{Kind: KindFenceBroker, BrokerID: 1, BrokerEpoch: epochs[1]})
	l.apply(Record{Kind: KindFenceBroker, BrokerID: 2, BrokerEpoch: epochs[2]})
	if got := l.apply(Record{Kind: KindCreatePartitions, Topic: "t", Partitions: 6}).Code; got != CodeInvalidReplicationFactor {
		t.Fatalf("adding a partition with too few eligible brokers: %v", got)
	}
	if n := len(l.s.Topics["t"].Partitions); n != 5 {
		t.Fatalf("a refused record changed the count to %d", n)
	}
}

func TestImageAppliesConfigAndPartitionRecords(t *testing.T) {
	l := newLog(t)
	l.brokers(3)
	l.apply(Record{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 1, ReplicationFactor: 3})
	l.apply(Record{Kind: KindAlterTopicConfigs, Topic: "t", Configs: map[string]string{"retention.ms": "5"}})
	l.apply(Record{Kind: KindCreatePartitions, Topic: "t", Partitions: 4})
	// Replay the same records into an image, split across two deltas.
	records := []Record{
		{Kind: KindCreateTopic, Topic: "t", TopicID: "tid", Partitions: 1, ReplicationFactor: 3},
		{Kind: KindAlterTopicConfigs, Topic: "t", Configs: map[string]string{"retention.ms": "5"}},
		{Kind: KindCreatePartitions, Topic: "t", Partitions: 4},
	}
	im := NewImage()
	var entries []OffsetEntry
	offset := int64(1)
	for id := int32(1); id <= 3; id++ {
		reg := Record{Kind: KindRegisterBroker, BrokerID: id, Addr: "b", Incarnation: "i1"}
		entries = append(entries, OffsetEntry{Offset: offset, Data: reg.Encode()})
		entries = append(entries, OffsetEntry{Offset: offset + 1, Data: Record{Kind: KindUnfenceBroker, BrokerID: id, BrokerEpoch: offset}.Encode()})
		offset += 2
	}
	for _, r := range records {
		entries = append(entries, OffsetEntry{Offset: offset, Data: r.Encode()})
		offset++
	}
	if err := im.Apply(Delta{From: 1, Through: 7, Records: entries[:7]}); err != nil {
		t.Fatal(err)
	}
	if err := im.Apply(Delta{From: 8, Through: offset - 1, Records: entries[7:]}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(im.State().Encode(), l.s.Encode()) {
		t.Fatalf("image and state differ:\n%s\n%s", im.State().Encode(), l.s.Encode())
	}
	if got := im.State().Topics["t"]; len(got.Partitions) != 4 || got.Configs["retention.ms"] != "5" {
		t.Fatalf("image topic %+v", got)
	}
}
