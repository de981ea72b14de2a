package controller

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// cluster is three controllers, three fake brokers and an admin node.
type cluster struct {
	*quorum
	brokers map[int32]*Agent
	admin   *Client
}

func newCluster(t *testing.T, seed uint64) *cluster {
	q := newQuorum(t, seed, nil, nil)
	c := &cluster{quorum: q, brokers: map[int32]*Agent{}}
	var addrs []string
	for _, n := range q.names {
		addrs = append(addrs, n+":9093")
	}
	for id := int32(1); id <= 3; id++ {
		q.w.AddNode(fmt.Sprintf("b%d", id), StartAgent(id, addrs, func(b *Agent) { c.brokers[id] = b }))
	}
	q.w.AddNode("admin", func(env sim.Env) { c.admin = NewClient(env, addrs) })
	return c
}

// createTopic has the admin create a topic once the brokers can hold it.
func (c *cluster) createTopic(name string, partitions int32, rf int16) {
	c.admin.Do(Request{Op: OpCreateTopic, Topic: name, Partitions: partitions, ReplicationFactor: rf},
		func(r Response, err error) {
			if err != nil || (r.Code != metadata.CodeNone && r.Code != metadata.CodeTopicAlreadyExists) {
				c.w.At(c.w.Now()+100*time.Millisecond, func() { c.createTopic(name, partitions, rf) })
			}
		})
}

// state is the active controller's state.
func (c *cluster) state() *metadata.State {
	c.t.Helper()
	name := c.active()
	if name == "" {
		c.t.Fatal("no active controller")
	}
	return c.ctrls[name].State()
}

// leads counts the partitions of a topic each broker leads.
func leads(s *metadata.State, topic string) map[int32]int {
	out := map[int32]int{}
	for _, p := range s.Topics[topic].Partitions {
		out[p.Leader]++
	}
	return out
}

// TestBrokersRegisterFenceAndReturn: brokers register and are unfenced; a
// silent broker is fenced after its session timeout and its leaderships
// move to in-sync replicas; back, it registers with a new epoch, rejoins
// the ISRs and gets its preferred leaderships back. A controlled shutdown
// moves leaderships at once. A controller failover in the middle changes
// none of it, and every broker's image ends equal to the controllers'
// state.
func TestBrokersRegisterFenceAndReturn(t *testing.T) {
	first := brokersScenario(t, 11)
	if again := brokersScenario(t, 11); again != first {
		t.Fatalf("seed 11 gave trace %016x, then %016x", first, again)
	}
	if other := brokersScenario(t, 12); other == first {
		t.Fatal("seeds 11 and 12 gave the same trace")
	}
}

func brokersScenario(t *testing.T, seed uint64) uint64 {
	c := newCluster(t, seed)
	c.w.At(time.Second, func() { c.createTopic("orders", 6, 3) })
	c.run(3 * time.Second)
	s := c.state()
	for id := int32(1); id <= 3; id++ {
		if b := s.Brokers[id]; b == nil || b.Fenced {
			t.Fatalf("broker %d not registered and unfenced: %+v", id, b)
		}
	}
	if got := leads(s, "orders"); got[1] != 2 || got[2] != 2 || got[3] != 2 {
		t.Fatalf("leaderships %v, want 2 each", got)
	}
	oldEpoch := s.Brokers[1].Epoch

	// Broker 1 falls silent: fenced after its session, leaderships moved.
	c.w.Kill("b1")
	c.run(4500 * time.Millisecond)
	if c.state().Brokers[1].Fenced {
		t.Fatal("broker 1 was fenced before its session timed out")
	}
	c.run(5500 * time.Millisecond)
	s = c.state()
	if got := leads(s, "orders"); got[1] != 0 || got[2]+got[3] != 6 {
		t.Fatalf("leaderships with broker 1 fenced: %v", got)
	}
	for i, p := range s.Topics["orders"].Partitions {
		if slices.Contains(p.ISR, 1) {
			t.Fatalf("partition %d: fenced broker 1 still in ISR %v", i, p.ISR)
		}
	}

	// The active controller dies too; broker 1 comes back.
	c.w.Kill(c.active())
	c.w.Restart("b1")
	c.run(11 * time.Second)
	s = c.state()
	if b := s.Brokers[1]; b.Fenced || b.Epoch <= oldEpoch {
		t.Fatalf("broker 1 back: %+v (old epoch %d)", b, oldEpoch)
	}
	if got := leads(s, "orders"); got[1] != 2 || got[2] != 2 || got[3] != 2 {
		t.Fatalf("preferred leaders not restored: %v", got)
	}
	for i, p := range s.Topics["orders"].Partitions {
		if len(p.ISR) != 3 {
			t.Fatalf("partition %d ISR %v, want all three back", i, p.ISR)
		}
	}

	// Broker 2 shuts down cleanly: its leaderships move at once.
	b2 := c.brokers[2]
	b2.shutdown = true
	done := false
	b2.client.Do(Request{Op: OpControlledShutdown, BrokerID: 2, BrokerEpoch: b2.epoch}, func(r Response, err error) {
		done = err == nil && r.Code == metadata.CodeNone
	})
	c.run(11500 * time.Millisecond)
	if !done {
		t.Fatal("controlled shutdown not acknowledged")
	}
	if got := leads(c.state(), "orders"); got[2] != 0 {
		t.Fatalf("broker 2 still leads after its controlled shutdown: %v", got)
	}
	c.run(12 * time.Second)
	c.check()
	want := c.state().Encode()
	for _, id := range []int32{1, 3} {
		if got := c.brokers[id].image.State().Encode(); !bytes.Equal(got, want) {
			t.Fatalf("broker %d image differs from the controllers' state:\n%s\n%s", id, got, want)
		}
	}
	return c.w.TraceHash()
}

// TestNotControllerHint: a follower controller answers NOT_CONTROLLER with
// the leader's address.
func TestNotControllerHint(t *testing.T) {
	q := newQuorum(t, 5, nil, nil)
	q.run(time.Second)
	leader := q.active()
	follower := ""
	for _, n := range q.names {
		if n != leader {
			follower = n
			break
		}
	}
	var got *Response
	q.w.AddNode("probe", func(env sim.Env) {
		conn := env.Net.Dial(follower+":9093", sim.ConnOptions{}, probeHandler(func(frame []byte) {
			r, err := DecodeResponse(frame)
			if err == nil {
				got = &r
			}
		}))
		conn.Send(EncodeRequest(Request{ID: 7, Op: OpFetchMetadata}))
	})
	q.run(1500 * time.Millisecond)
	if got == nil || got.ID != 7 || got.Code != metadata.CodeNotController || got.LeaderHint != leader+":9093" {
		t.Fatalf("follower answered %+v, want NOT_CONTROLLER pointing at %s", got, leader)
	}
}

type probeHandler func(frame []byte)

func (h probeHandler) OnOpen(sim.Conn)              {}
func (h probeHandler) OnClose(sim.Conn, error)      {}
func (h probeHandler) OnFrame(_ sim.Conn, f []byte) { h(f) }

// TestCombinedMode runs a controller and a broker in each of three
// processes, as Kafka's process.roles=broker,controller does: the brokers
// register with the quorum their own processes help form, and a topic's
// replicas spread over them.
func TestCombinedMode(t *testing.T) {
	w := world.New(world.Config{Seed: 4})
	names := controllerNames(3)
	var voters []Voter
	var addrs []string
	for i, n := range names {
		voters = append(voters, Voter{ID: uint64(i + 1), Addr: n + ":9093"})
		addrs = append(addrs, n+":9093")
	}
	ctrls := map[string]*Controller{}
	brokers := map[int32]*Agent{}
	for i, n := range names {
		cfg := DefaultConfig(uint64(i+1), voters, ":9093")
		startBroker := StartAgent(int32(i+1), addrs, func(b *Agent) { brokers[b.id] = b })
		w.AddNode(n, func(env sim.Env) {
			c, err := Start(env, cfg)
			if err != nil {
				t.Errorf("%s: %v", n, err)
				return
			}
			ctrls[n] = c
			startBroker(env)
		})
	}
	var admin *Client
	created := false
	w.AddNode("admin", func(env sim.Env) { admin = NewClient(env, addrs) })
	w.At(2*time.Second, func() {
		admin.Do(Request{Op: OpCreateTopic, Topic: "t", Partitions: 3, ReplicationFactor: 3}, func(r Response, err error) {
			created = err == nil && r.Code == metadata.CodeNone
		})
	})
	w.Run(4*time.Second, 0)
	if !created {
		t.Fatal("topic not created")
	}
	var active *Controller
	for _, n := range names {
		if ctrls[n].Active() {
			active = ctrls[n]
		}
	}
	if active == nil {
		t.Fatal("no active controller")
	}
	s := active.State()
	for id := int32(1); id <= 3; id++ {
		if b := s.Brokers[id]; b == nil || b.Fenced {
			t.Fatalf("broker %d: %+v", id, b)
		}
	}
	if got := leads(s, "t"); got[1] != 1 || got[2] != 1 || got[3] != 1 {
		t.Fatalf("leaders %v, want one each", got)
	}
}
