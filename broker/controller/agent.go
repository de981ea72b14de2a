package controller

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
)

// Agent is a broker reduced to its dealings with the controllers: it
// registers, heartbeats, follows the metadata log into an Image, and, as a
// partition leader, adds eligible replicas back to the ISR (as if they had
// caught up) with AlterPartition. Tests and scenarios use it to drive a
// quorum the way brokers do without running the brokers' data path.
type Agent struct {
	env    sim.Env
	id     int32
	client *Client
	epoch  int64
	image  *metadata.Image
	// fenced is what the last heartbeat said.
	fenced    bool
	altering  map[string]bool
	stopped   bool
	shutdown  bool
	heartbeat time.Duration
	// epochs are the epochs registrations were acknowledged with: each is
	// the log offset of the registration record.
	epochs []int64
	// heartbeating and fetching are set while a heartbeat or a fetch is
	// in flight: one of each at a time, as a broker sends them, so that
	// a quorum that does not answer does not pile up requests.
	heartbeating, fetching bool
	// altersAcked counts the AlterPartition requests acknowledged.
	altersAcked int
}

// agentAlteringMax bounds the partition epochs an agent remembers asking
// to alter; past it the agent forgets them and asks again.
const agentAlteringMax = 4096

// agentFetchInterval paces the agent's metadata fetches.
const agentFetchInterval = 100 * time.Millisecond

// StartAgent returns a process start running an agent with broker id id
// against the controllers at their addresses; onStart sees the agent.
func StartAgent(id int32, controllers []string, onStart func(*Agent)) sim.Start {
	return func(env sim.Env) {
		b := &Agent{env: env, id: id, client: NewClient(env, controllers), image: metadata.NewImage(),
			fenced: true, altering: map[string]bool{}, heartbeat: 200 * time.Millisecond}
		onStart(b)
		b.register()
		b.fetchLoop()
	}
}

func (b *Agent) register() {
	req := Request{Op: OpRegister, BrokerID: b.id, Addr: fmt.Sprintf("%s:9092", b.env.Node),
		Incarnation: fmt.Sprintf("%x", b.env.Rand.Uint64())}
	b.client.Do(req, func(r Response, err error) {
		if err != nil || r.Code != metadata.CodeNone {
			b.env.Clock.AfterFunc(100*time.Millisecond, b.register)
			return
		}
		b.epoch = r.BrokerEpoch
		b.epochs = append(b.epochs, r.BrokerEpoch)
		b.heartbeatLoop()
	})
}

func (b *Agent) heartbeatLoop() {
	if b.stopped || b.shutdown {
		return
	}
	b.env.Clock.AfterFunc(b.heartbeat, b.heartbeatLoop)
	if b.heartbeating {
		return
	}
	b.heartbeating = true
	req := Request{Op: OpHeartbeat, BrokerID: b.id, BrokerEpoch: b.epoch, MetadataOffset: b.image.Next() - 1}
	b.client.Do(req, func(r Response, err error) {
		b.heartbeating = false
		if err == nil && r.Code == metadata.CodeNone {
			b.fenced = r.Fenced
		}
	})
}

func (b *Agent) fetchLoop() {
	if b.stopped {
		return
	}
	b.env.Clock.AfterFunc(agentFetchInterval, b.fetchLoop)
	if b.fetching {
		return
	}
	b.fetching = true
	b.client.Do(Request{Op: OpFetchMetadata, FromOffset: b.image.Next()}, func(r Response, err error) {
		b.fetching = false
		if err == nil && r.Delta != nil {
			if err := b.image.Apply(*r.Delta); err != nil {
				b.env.Log.Logf("broker %d: %v", b.id, err)
			}
			b.expandISRs()
		}
	})
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

// ID is the agent's broker id.
func (b *Agent) ID() int32 { return b.id }

// Epoch is the broker epoch of the agent's registration, 0 before one is
// acknowledged.
func (b *Agent) Epoch() int64 { return b.epoch }

// Epochs lists the epochs of every acknowledged registration, in order.
func (b *Agent) Epochs() []int64 { return slices.Clone(b.epochs) }

// Fenced is what the agent's last heartbeat answer said.
func (b *Agent) Fenced() bool { return b.fenced }

// Image is the metadata the agent has fetched.
func (b *Agent) Image() *metadata.Image { return b.image }

// AltersAcked counts the AlterPartition requests the controller
// acknowledged.
func (b *Agent) AltersAcked() int { return b.altersAcked }
