package metadata

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestStateMachineProperties applies random records (registrations,
// restarts, fencing, shutdowns, topic creation and deletion, config
// changes, added partitions, ISR changes, preferred elections) and checks after each one the invariants brokers rely
// on, against a model of what came before:
//
//   - every ISR is a non-empty subset of its replica set without repeats;
//   - the leader is in the ISR and eligible, or there is none; a broker
//     that is fenced or shutting down is in an ISR only as its last member
//     of a leaderless partition;
//   - broker epochs, leader epochs and partition epochs never go back, the
//     leader epoch moves exactly when the leader changes, and any change to
//     a partition moves its partition epoch;
//   - a new leader comes from the previous ISR, unless the topic allows
//     unclean election (and then it is alone in the ISR);
//   - a topic's partitions are never fewer, and a new partition starts at
//     epoch 0 led by its first replica with every replica in sync;
//   - the state survives encoding, and an Image fed the same records in
//     arbitrary deltas ends equal to it.
func TestStateMachineProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		l := &log{s: NewState(), next: 1}
		im := NewImage()
		var pending []OffsetEntry
		incarnation := map[int32]int{}
		brokerEpochs := map[int32]int64{}
		steps := rapid.IntRange(1, 120).Draw(rt, "steps")
		for step := range steps {
			before := snapshotPartitions(l.s)
			r := drawRecord(rt, l.s, incarnation, fmt.Sprintf("step%d", step))
			offset := l.next
			l.apply(r)
			pending = append(pending, OffsetEntry{Offset: offset, Data: r.Encode()})
			checkInvariants(rt, l.s, before, brokerEpochs)
			if rapid.Bool().Draw(rt, "deliver") {
				d := Delta{From: im.Next(), Through: offset, Records: pending}
				if err := im.Apply(d); err != nil {
					rt.Fatalf("image: %v", err)
				}
				pending = nil
			}
		}
		if err := im.Apply(Delta{From: im.Next(), Through: l.next - 1, Records: pending}); err != nil {
			rt.Fatalf("image: %v", err)
		}
		if !bytes.Equal(im.State().Encode(), l.s.Encode()) {
			rt.Fatalf("image and state differ:\n%s\n%s", im.State().Encode(), l.s.Encode())
		}
		back, err := DecodeState(l.s.Encode())
		if err != nil || !bytes.Equal(back.Encode(), l.s.Encode()) {
			rt.Fatalf("state does not survive encoding: %v", err)
		}
	})
}

const modelBrokersMax = 5

var modelTopics = []string{"a", "b", "c"}

// drawRecord draws a record that is usually valid for the state and
// sometimes stale or wrong, so refusals are exercised too.
func drawRecord(rt *rapid.T, s *State, incarnation map[int32]int, label string) Record {
	broker := int32(rapid.IntRange(1, modelBrokersMax).Draw(rt, label+"/broker"))
	epoch := int64(0)
	if b := s.Brokers[broker]; b != nil {
		epoch = b.Epoch
	}
	if rapid.IntRange(0, 9).Draw(rt, label+"/stale") == 0 {
		epoch-- // a message from a previous life
	}
	topic := rapid.SampledFrom(modelTopics).Draw(rt, label+"/topic")
	switch kind := rapid.IntRange(0, 10).Draw(rt, label+"/kind"); kind {
	case 0:
		if rapid.Bool().Draw(rt, label+"/restart") {
			incarnation[broker]++
		}
		return Record{Kind: KindRegisterBroker, BrokerID: broker, Addr: "b", Incarnation: fmt.Sprint(incarnation[broker])}
	case 1, 2:
		return Record{Kind: KindUnfenceBroker, BrokerID: broker, BrokerEpoch: epoch}
	case 3:
		return Record{Kind: KindFenceBroker, BrokerID: broker, BrokerEpoch: epoch}
	case 4:
		return Record{Kind: KindControlledShutdown, BrokerID: broker, BrokerEpoch: epoch}
	case 5:
		return Record{Kind: KindCreateTopic, Topic: topic, TopicID: "id-" + topic + fmt.Sprint(s.Offset),
			Partitions:        int32(rapid.IntRange(1, 4).Draw(rt, label+"/partitions")),
			ReplicationFactor: int16(rapid.IntRange(1, 3).Draw(rt, label+"/rf")),
			Unclean:           rapid.Bool().Draw(rt, label+"/unclean")}
	case 6:
		return Record{Kind: KindDeleteTopic, Topic: topic}
	case 7:
		return drawAlter(rt, s, topic, label)
	case 9:
		unclean := rapid.Bool().Draw(rt, label+"/unclean")
		return Record{Kind: KindAlterTopicConfigs, Topic: topic, Unclean: unclean,
			Configs: map[string]string{"unclean.leader.election.enable": fmt.Sprint(unclean)}}
	case 10:
		count := int32(rapid.IntRange(0, 6).Draw(rt, label+"/partitions"))
		return Record{Kind: KindCreatePartitions, Topic: topic, Partitions: count}
	default:
		return Record{Kind: KindElectPreferred, Elect: s.Imbalanced()}
	}
}

// drawAlter draws an AlterPartition from the partition's leader, with a
// random subset of the replicas as the new ISR.
func drawAlter(rt *rapid.T, s *State, topic, label string) Record {
	t := s.Topics[topic]
	if t == nil {
		return Record{Kind: KindNoop}
	}
	i := rapid.IntRange(0, len(t.Partitions)-1).Draw(rt, label+"/partition")
	p := t.Partitions[i]
	r := Record{Kind: KindAlterPartition, BrokerID: p.Leader, TopicID: t.ID, Partition: int32(i),
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}
	if b := s.Brokers[p.Leader]; b != nil {
		r.BrokerEpoch = b.Epoch
	}
	for _, replica := range p.Replicas {
		if replica == p.Leader || rapid.Bool().Draw(rt, label+"/in") {
			r.ISR = append(r.ISR, replica)
		}
	}
	if rapid.IntRange(0, 4).Draw(rt, label+"/stale-pe") == 0 {
		r.PartitionEpoch--
	}
	return r
}

type partitionView struct {
	topic   *Topic
	p       Partition
	unclean bool
}

func snapshotPartitions(s *State) map[string]partitionView {
	out := map[string]partitionView{}
	for _, t := range s.Topics {
		for i, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.ID, i)] = partitionView{topic: t, p: p.Clone(), unclean: t.Unclean}
		}
	}
	return out
}

func checkInvariants(rt *rapid.T, s *State, before map[string]partitionView, brokerEpochs map[int32]int64) {
	for id, b := range s.Brokers {
		if b.Epoch < brokerEpochs[id] {
			rt.Fatalf("broker %d epoch went back from %d to %d", id, brokerEpochs[id], b.Epoch)
		}
		brokerEpochs[id] = b.Epoch
	}
	for _, t := range s.Topics {
		for i, p := range t.Partitions {
			key := fmt.Sprintf("%s/%d", t.ID, i)
			checkPartition(rt, s, key, p)
			old, ok := before[key]
			if !ok && i > 0 && (p.LeaderEpoch != 0 || p.PartitionEpoch != 0 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas)) {
				if _, existed := before[fmt.Sprintf("%s/0", t.ID)]; existed {
					rt.Fatalf("%s: a new partition of an existing topic starts as %+v", key, p)
				}
			}
			if ok {
				// A config record may have just allowed unclean election.
				old.unclean = old.unclean || t.Unclean
				checkTransition(rt, key, old, p)
			}
		}
	}
	for key, old := range before {
		if s.TopicByID(old.topic.ID) == nil {
			continue
		}
		var i int
		fmt.Sscanf(key[len(old.topic.ID)+1:], "%d", &i)
		if i >= len(s.TopicByID(old.topic.ID).Partitions) {
			rt.Fatalf("%s: the partition went away while its topic lives", key)
		}
	}
}

func checkPartition(rt *rapid.T, s *State, key string, p Partition) {
	if len(p.ISR) == 0 {
		rt.Fatalf("%s: empty ISR", key)
	}
	seen := map[int32]bool{}
	for _, r := range p.ISR {
		if !slices.Contains(p.Replicas, r) || seen[r] {
			rt.Fatalf("%s: ISR %v not a subset of replicas %v", key, p.ISR, p.Replicas)
		}
		seen[r] = true
		if !s.eligible(r) && !(len(p.ISR) == 1 && p.Leader == NoLeader) {
			rt.Fatalf("%s: ineligible broker %d in ISR %v with leader %d", key, r, p.ISR, p.Leader)
		}
	}
	if p.Leader != NoLeader && (!slices.Contains(p.ISR, p.Leader) || !s.eligible(p.Leader)) {
		rt.Fatalf("%s: leader %d not an eligible ISR member (ISR %v)", key, p.Leader, p.ISR)
	}
}

func checkTransition(rt *rapid.T, key string, old partitionView, p Partition) {
	o := old.p
	if p.LeaderEpoch < o.LeaderEpoch || p.PartitionEpoch < o.PartitionEpoch {
		rt.Fatalf("%s: epochs went back: %+v then %+v", key, o, p)
	}
	if (p.Leader != o.Leader) != (p.LeaderEpoch != o.LeaderEpoch) {
		rt.Fatalf("%s: leader %d->%d with leader epoch %d->%d", key, o.Leader, p.Leader, o.LeaderEpoch, p.LeaderEpoch)
	}
	changed := p.Leader != o.Leader || !slices.Equal(p.ISR, o.ISR)
	if changed && p.PartitionEpoch == o.PartitionEpoch {
		rt.Fatalf("%s: changed without a new partition epoch: %+v then %+v", key, o, p)
	}
	if p.Leader != o.Leader && p.Leader != NoLeader && !slices.Contains(o.ISR, p.Leader) {
		if !old.unclean || !slices.Equal(p.ISR, []int32{p.Leader}) {
			rt.Fatalf("%s: leader %d elected from outside the ISR %v", key, p.Leader, o.ISR)
		}
	}
}
