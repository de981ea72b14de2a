package controller

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
)

// Agent is a broker reduced to its dealings with the controllers: its
// Member registers, heartbeats and follows the metadata log into an Image,
// and, as a partition leader, the agent adds eligible replicas back to the
// ISR (as if they had caught up) with AlterPartition. Tests and scenarios
// use it to drive a quorum the way brokers do without running the brokers'
// data path.
type Agent struct {
	*Member
	altering map[string]bool
	// altersAcked counts the AlterPartition requests acknowledged.
	altersAcked int
}

// agentAlteringMax bounds the partition epochs an agent remembers asking
// to alter; past it the agent forgets them and asks again.
const agentAlteringMax = 4096

// StartAgent returns a process start running an agent with broker id id
// against the controllers at their addresses; onStart sees the agent.
func StartAgent(id int32, controllers []string, onStart func(*Agent)) sim.Start {
	return func(env sim.Env) {
		b := &Agent{altering: map[string]bool{}}
		b.Member = NewMember(env, id, fmt.Sprintf("%s:9092", env.Node), controllers, b.expandISRs)
		onStart(b)
		b.Start()
	}
}

// expandISRs asks to add every eligible replica missing from the ISR of a
// partition this broker leads.
func (b *Agent) expandISRs() {
	s := b.image.State()
	for _, t := range sortedTopics(s) {
		for i, p := range t.Partitions {
			if p.Leader != b.id || b.shutdown {
				continue
			}
			want := slices.Clone(p.ISR)
			for _, r := range p.Replicas {
				if br := s.Brokers[r]; br != nil && !br.Fenced && !br.ShuttingDown && !slices.Contains(want, r) {
					want = append(want, r)
				}
			}
			key := fmt.Sprintf("%s/%d/%d", t.ID, i, p.PartitionEpoch)
			if len(want) == len(p.ISR) || b.altering[key] {
				continue
			}
			if len(b.altering) >= agentAlteringMax {
				clear(b.altering)
			}
			b.altering[key] = true
			b.client.Do(Request{Op: OpAlterPartition, BrokerID: b.id, BrokerEpoch: b.epoch, TopicID: t.ID,
				Partition: int32(i), LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: want},
				func(r Response, err error) {
					if err != nil || r.Code != metadata.CodeNone {
						delete(b.altering, key) // try again on the next fetch
						return
					}
					b.altersAcked++
				})
		}
	}
}

func sortedTopics(s *metadata.State) []*metadata.Topic {
	var out []*metadata.Topic
	for _, t := range s.Topics {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *metadata.Topic) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
	return out
}

// AltersAcked counts the AlterPartition requests the controller
// acknowledged.
func (b *Agent) AltersAcked() int { return b.altersAcked }
