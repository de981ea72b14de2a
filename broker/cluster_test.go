package broker_test

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The cluster harness: three controllers (ctl1-3), three brokers in
// cluster mode (b1-3, broker ids 1-3) and a client machine (c1), in one
// simulated world. It reuses the single-broker rig's raw connections
// (dialled to any broker) and drives writes through the producer actor of
// workloads/kafka, which follows leaders through metadata.

const clusterTopic = "replicated"

// showClusterLogs prints the world log of every cluster test, not only
// of those that fail (go test -run TestCluster -args -cluster.logs).
var showClusterLogs = flag.Bool("cluster.logs", false, "print the world log of every cluster test")

type clusterRig struct {
	*rig
	// brokers are the latest start of each broker, by id.
	brokers map[int32]*broker.Broker
	starts  map[int32]int
	bugs    faults.Bugs
}

func brokerName(id int32) string { return fmt.Sprintf("b%d", id) }

func newClusterRig(t *testing.T, seed uint64, bugs faults.Bugs, tune func(*broker.Config)) *clusterRig {
	t.Helper()
	logs := &strings.Builder{}
	c := &clusterRig{rig: &rig{t: t, logs: logs}, brokers: map[int32]*broker.Broker{}, starts: map[int32]int{}, bugs: bugs}
	c.w = world.New(world.Config{Seed: seed, Log: logs})
	var voters []controller.Voter
	var addrs []string
	for i := range 3 {
		addr := fmt.Sprintf("ctl%d:9093", i+1)
		voters = append(voters, controller.Voter{ID: uint64(i + 1), Addr: addr})
		addrs = append(addrs, addr)
	}
	for i, v := range voters {
		cfg := controller.DefaultConfig(v.ID, voters, ":9093")
		c.w.AddNode(fmt.Sprintf("ctl%d", i+1), controller.Process(cfg, func(*controller.Controller) {}))
	}
	for id := int32(1); id <= 3; id++ {
		cfg := broker.DefaultConfig()
		cfg.NodeID = id
		cfg.Bugs = bugs
		cfg.Cluster.Controllers = addrs
		cfg.Cluster.DefaultReplicationFactor = 3
		cfg.Cluster.ReplicaLagTimeMax = 2 * time.Second
		cfg.Cluster.ReplicaFetchBackoff = 100 * time.Millisecond
		if tune != nil {
			tune(&cfg)
		}
		c.w.AddNode(brokerName(id), broker.Start(cfg, func(b *broker.Broker) { c.brokers[id] = b; c.starts[id]++ }))
	}
	c.w.AddNode(clientNode, func(env sim.Env) { c.client = env })
	c.w.Run(0, 0)
	t.Cleanup(func() {
		if t.Failed() || *showClusterLogs {
			out := logs.String()
			if len(out) > 4*logTailBytesMax {
				out = "...\n" + out[len(out)-4*logTailBytesMax:]
			}
			t.Logf("world log:\n%s", out)
		}
	})
	c.runUntil("three brokers unfenced", 20*time.Second, func() bool { return c.unfenced() == 3 })
	return c
}

// image is the most advanced metadata image of a running broker: one cut
// off from the controllers may hold a stale one.
func (c *clusterRig) image() *metadata.State {
	var best *metadata.Image
	for id := int32(1); id <= 3; id++ {
		b := c.brokers[id]
		if b == nil || !c.w.Node(brokerName(id)).Up() || b.Member() == nil {
			continue
		}
		if im := b.Member().Image(); best == nil || im.Next() > best.Next() {
			best = im
		}
	}
	if best == nil {
		return metadata.NewState()
	}
	return best.State()
}

// unfenced counts the brokers every running broker's image shows unfenced.
func (c *clusterRig) unfenced() int {
	least := 3
	for id := int32(1); id <= 3; id++ {
		b := c.brokers[id]
		if b == nil || !c.w.Node(brokerName(id)).Up() {
			continue
		}
		if b.Member() == nil {
			return 0
		}
		n := 0
		for _, br := range b.Member().Image().State().Brokers {
			if !br.Fenced {
				n++
			}
		}
		least = min(least, n)
	}
	return least
}

// partitionState is partition 0 of the cluster topic in the image.
func (c *clusterRig) partitionState() metadata.Partition {
	t := c.image().Topics[clusterTopic]
	if t == nil {
		return metadata.Partition{Leader: metadata.NoLeader}
	}
	return t.Partitions[0]
}

// dialTo opens a raw connection from the client machine to addr.
func (c *clusterRig) dialTo(addr string) *testConn {
	tc := &testConn{r: c.rig, pending: make(map[int32]*call)}
	tc.c = c.client.Net.Dial(addr, sim.ConnOptions{Framing: sim.FrameLength32}, tc)
	return tc
}

// createReplicated creates the cluster topic through b1: one partition,
// three replicas, min.insync.replicas 2.
func (c *clusterRig) createReplicated() {
	c.t.Helper()
	spec := newTopicSpec(clusterTopic, 1, "min.insync.replicas", "2")
	spec.ReplicationFactor = 3
	st := c.createTopics(false, spec)[0]
	expectCode(c.t, "create "+clusterTopic, st.ErrorCode, nil)
	if st.ReplicationFactor != 3 {
		c.t.Fatalf("created with replication factor %d, want 3", st.ReplicationFactor)
	}
	c.runUntil("every replica in the ISR", 10*time.Second, func() bool { return len(c.partitionState().ISR) == 3 })
}

// readFrom reads partition 0 of the cluster topic from the broker with id
// up to its high watermark, failing the test on any error.
func (c *clusterRig) readFrom(id int32) []readRecord {
	c.t.Helper()
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	var out []readRecord
	offset := int64(0)
	for round := 0; round < 10_000; round++ {
		fp := fetchPartition(c.t, c.wait(tc.send(fetchRequest(clusterTopic, 0, offset, 0, 0))))
		expectCode(c.t, fmt.Sprintf("fetch from broker %d at %d", id, offset), fp.ErrorCode, nil)
		recs := decodeRecords(c.t, fp.RecordBatches)
		for _, rec := range recs {
			if rec.offset >= offset {
				out = append(out, rec)
				offset = rec.offset + 1
			}
		}
		if offset >= fp.HighWatermark || len(recs) == 0 {
			return out
		}
	}
	c.t.Fatalf("reading broker %d did not reach the high watermark", id)
	return nil
}

// logEnd is a broker's log end for partition 0, from its stats of the
// partition (ListOffsets answers only at the leader).
func (c *clusterRig) acked(results []kafka.Result) map[string]int64 {
	out := map[string]int64{}
	for _, r := range results {
		if r.Outcome == history.OK {
			out[string(r.Record.Value)] = r.Record.Offset
		}
	}
	return out
}

// producerNode runs an idempotent acks=all producer on its own node.
func (c *clusterRig) startProducer() *kafka.Producer {
	var p *kafka.Producer
	var err error
	c.w.AddNode("p1", func(env sim.Env) {
		p, err = kafka.NewProducer(env, kafka.ProducerConfig{
			Bootstrap:       []string{"b1:9092", "b2:9092", "b3:9092"},
			Acks:            kafka.AcksAll,
			ManualPartition: true,
			RequestTimeout:  2 * time.Second,
			DeliveryTimeout: 30 * time.Second,
		})
	})
	c.w.Run(c.now(), 0)
	if err != nil || p == nil {
		c.t.Fatalf("start producer: %v", err)
	}
	return p
}

// sendEvery sends value i every interval from now until until, collecting
// every outcome.
func (c *clusterRig) sendEvery(p *kafka.Producer, interval, until time.Duration, results *[]kafka.Result, sent *int) {
	var tick func()
	tick = func() {
		if c.now() >= until {
			return
		}
		v := fmt.Sprintf("v%05d", *sent)
		*sent++
		rec := kafka.Record{Topic: clusterTopic, Partition: 0, Value: []byte(v)}
		if err := p.Send(rec, func(r kafka.Result) { *results = append(*results, r) }); err != nil {
			c.t.Errorf("send %s: %v", v, err)
		}
		c.w.At(c.now()+interval, tick)
	}
	c.w.At(c.now(), tick)
}

// checkAckedReadable asserts that every acknowledged value is in the
// broker's log exactly once, at the offset it was acknowledged with, and
// that no value is there twice.
func (c *clusterRig) checkAckedReadable(id int32, acked map[string]int64) []readRecord {
	c.t.Helper()
	recs := c.readFrom(id)
	seen := map[string]int64{}
	for i, rec := range recs {
		if i > 0 && rec.offset <= recs[i-1].offset {
			c.t.Fatalf("broker %d: offsets out of order: %d after %d", id, rec.offset, recs[i-1].offset)
		}
		if first, dup := seen[rec.value]; dup {
			c.t.Fatalf("broker %d: %s at offsets %d and %d", id, rec.value, first, rec.offset)
		}
		seen[rec.value] = rec.offset
	}
	values := make([]string, 0, len(acked))
	for v := range acked {
		values = append(values, v)
	}
	slices.Sort(values)
	for _, v := range values {
		got, ok := seen[v]
		switch {
		case !ok:
			c.t.Fatalf("broker %d: acknowledged %s (offset %d) is not readable; %d records read", id, v, acked[v], len(recs))
		case got != acked[v]:
			c.t.Fatalf("broker %d: acknowledged %s at offset %d, read at %d", id, v, acked[v], got)
		}
	}
	return recs
}

// TestClusterLeaderCrash writes with acks=all through the producer actor
// while the partition's leader is killed and later restarted: every
// acknowledged write is readable exactly once, in order, from the new
// leader; the restarted broker catches up and rejoins the ISR; all three
// logs end up the same.
func TestClusterLeaderCrash(t *testing.T) {
	c := newClusterRig(t, 7, nil, nil)
	c.createReplicated()
	p := c.startProducer()
	var results []kafka.Result
	sent := 0
	start := c.now()
	c.sendEvery(p, 10*time.Millisecond, start+8*time.Second, &results, &sent)
	c.runFor(2 * time.Second)

	first := c.partitionState()
	victim := first.Leader
	if victim == metadata.NoLeader {
		t.Fatalf("no leader before the crash: %+v", first)
	}
	if err := c.w.Kill(brokerName(victim)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("a new leader", 10*time.Second, func() bool {
		ps := c.partitionState()
		return ps.Leader != victim && ps.Leader != metadata.NoLeader
	})
	leader := c.partitionState().Leader
	if epoch := c.partitionState().LeaderEpoch; epoch <= first.LeaderEpoch {
		t.Fatalf("leader epoch %d after the crash, was %d", epoch, first.LeaderEpoch)
	}
	c.runFor(2 * time.Second)
	if err := c.w.Restart(brokerName(victim)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("every send settled", 60*time.Second, func() bool { return len(results) == sent && c.now() > start+8*time.Second })
	acked := c.acked(results)
	if len(acked) < sent*3/4 {
		t.Fatalf("only %d of %d sends acknowledged", len(acked), sent)
	}
	c.runUntil("the restarted broker back in the ISR", 30*time.Second, func() bool {
		return slices.Contains(c.partitionState().ISR, victim) && len(c.partitionState().ISR) == 3
	})
	leader = c.partitionState().Leader
	recs := c.checkAckedReadable(leader, acked)
	t.Logf("%d sends, %d acknowledged, %d records read from broker %d; broker %d restarted and in the ISR %v",
		sent, len(acked), len(recs), leader, victim, c.partitionState().ISR)
	c.runFor(2 * time.Second)
	for id := int32(1); id <= 3; id++ {
		if got := c.brokers[id].ReplicaLog(clusterTopic, 0); !slices.Equal(got, c.brokers[leader].ReplicaLog(clusterTopic, 0)) {
			t.Fatalf("broker %d's log differs from the leader's:\n%v\n%v", id, got, c.brokers[leader].ReplicaLog(clusterTopic, 0))
		}
	}
}

// produceTo sends one plain batch of values to partition 0 of the cluster
// topic at the broker with id and returns its answer.
func (c *clusterRig) produceTo(id int32, acks int16, values ...string) kmsg.ProduceResponseTopicPartition {
	c.t.Helper()
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	req := produceRequest(clusterTopic, 0, acks, buildBatch(c.t, plain, c.w.Now().Milliseconds(), values...))
	req.TimeoutMillis = 5_000
	return producePartition(c.t, c.wait(tc.send(req)))
}

// blockBroker cuts every link between a broker and the other brokers and
// the controllers, both ways; the client machine still reaches it.
func (c *clusterRig) blockBroker(id int32) {
	c.t.Helper()
	var others []string
	for other := int32(1); other <= 3; other++ {
		if other != id {
			others = append(others, brokerName(other))
		}
	}
	others = append(others, "ctl1", "ctl2", "ctl3")
	for _, o := range others {
		if err := c.w.Block(brokerName(id), o); err != nil {
			c.t.Fatal(err)
		}
		if err := c.w.Block(o, brokerName(id)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// divergedLeader runs the classic KIP-101 case: a leader cut off from the
// cluster takes acks=1 writes nobody replicates while the others elect a
// new leader and take writes of their own; when the network heals, the
// deposed leader must cut its tail by leader epoch before it follows.
// It returns the deposed leader's id and the new leader's.
func (c *clusterRig) divergedLeader() (int32, int32) {
	c.t.Helper()
	c.createReplicated()
	old := c.partitionState().Leader
	for i := range 5 {
		sp := c.produceTo(old, -1, fmt.Sprintf("agreed-%d", i))
		expectCode(c.t, "acks=all produce", sp.ErrorCode, nil)
	}
	c.blockBroker(old)
	for i := range 3 {
		sp := c.produceTo(old, 1, fmt.Sprintf("tail-%d", i))
		expectCode(c.t, "acks=1 produce to the isolated leader", sp.ErrorCode, nil)
	}
	c.runUntil("a new leader", 20*time.Second, func() bool {
		for id := int32(1); id <= 3; id++ {
			if id == old {
				continue
			}
			if role, _, _, _ := c.brokers[id].ReplicaRole(clusterTopic, 0); role == "leader" {
				return true
			}
		}
		return false
	})
	var leader int32
	for id := int32(1); id <= 3; id++ {
		if role, _, _, _ := c.brokers[id].ReplicaRole(clusterTopic, 0); id != old && role == "leader" {
			leader = id
		}
	}
	for i := range 2 {
		sp := c.produceTo(leader, -1, fmt.Sprintf("new-%d", i))
		expectCode(c.t, "acks=all produce to the new leader", sp.ErrorCode, nil)
	}
	if err := c.w.Heal(); err != nil {
		c.t.Fatal(err)
	}
	return old, leader
}

// TestClusterEpochTruncation: a deposed leader's unreplicated tail is cut
// by leader epoch (OffsetForLeaderEpoch) when it becomes a follower, and
// its log then matches the new leader's batch for batch.
func TestClusterEpochTruncation(t *testing.T) {
	c := newClusterRig(t, 3, nil, nil)
	old, leader := c.divergedLeader()
	c.runUntil("the deposed leader back in the ISR", 30*time.Second, func() bool {
		return len(c.partitionState().ISR) == 3
	})
	if !c.logged("partition replicated-0: truncated from 8 to 5 as follower") {
		t.Fatalf("broker %d did not truncate its three unreplicated records", old)
	}
	if n := c.w.Probes()["broker/epoch-truncation"]; n == 0 {
		t.Fatalf("the epoch-truncation probe was not hit")
	}
	c.runFor(time.Second)
	want := c.brokers[leader].ReplicaLog(clusterTopic, 0)
	for id := int32(1); id <= 3; id++ {
		if got := c.brokers[id].ReplicaLog(clusterTopic, 0); !slices.Equal(got, want) {
			t.Fatalf("broker %d's log differs from broker %d's:\n%v\n%v", id, leader, got, want)
		}
	}
	for _, rec := range c.readFrom(c.partitionState().Leader) {
		if strings.HasPrefix(rec.value, "tail-") {
			t.Fatalf("the unreplicated %s survived at offset %d", rec.value, rec.offset)
		}
	}
}

// TestClusterNoEpochTruncationBugDiverges: with the planted bug
// no-epoch-truncation the deposed leader keeps its tail, and the replica
// comparison finds its log different from the new leader's.
func TestClusterNoEpochTruncationBugDiverges(t *testing.T) {
	c := newClusterRig(t, 3, faults.Bugs{faults.BugNoEpochTruncation: true}, nil)
	old, leader := c.divergedLeader()
	for i := range 4 {
		sp := c.produceTo(leader, -1, fmt.Sprintf("more-%d", i))
		if sp.ErrorCode != 0 && sp.ErrorCode != kerr.NotEnoughReplicas.Code && sp.ErrorCode != kerr.RequestTimedOut.Code {
			t.Fatalf("produce: %s", errName(sp.ErrorCode))
		}
	}
	c.runFor(5 * time.Second)
	if slices.Equal(c.brokers[old].ReplicaLog(clusterTopic, 0), c.brokers[leader].ReplicaLog(clusterTopic, 0)) {
		t.Fatalf("with no epoch truncation broker %d's log still matches the leader's", old)
	}
}

// blockBetweenBrokers cuts the links between one broker and the other
// brokers, both ways; the controllers and the client still reach it.
func (c *clusterRig) blockBetweenBrokers(id int32) {
	c.t.Helper()
	for other := int32(1); other <= 3; other++ {
		if other == id {
			continue
		}
		if err := c.w.Block(brokerName(id), brokerName(other)); err != nil {
			c.t.Fatal(err)
		}
		if err := c.w.Block(brokerName(other), brokerName(id)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// ackedThenLeaderDies writes one acks=all batch to a leader its followers
// cannot reach, kills the leader at once, heals, and waits for a new
// leader. It returns the produce answer and whether the value is readable
// from the new leader.
func (c *clusterRig) ackedThenLeaderDies() (kmsg.ProduceResponseTopicPartition, bool) {
	c.t.Helper()
	c.createReplicated()
	old := c.partitionState().Leader
	sp := c.produceTo(old, -1, "agreed")
	expectCode(c.t, "acks=all produce", sp.ErrorCode, nil)
	c.runFor(time.Second)
	c.blockBetweenBrokers(old)
	tc := c.dialTo(brokerName(old) + ":9092")
	req := produceRequest(clusterTopic, 0, -1, buildBatch(c.t, plain, c.w.Now().Milliseconds(), "at-risk"))
	req.TimeoutMillis = 5_000
	pending := tc.send(req)
	c.runFor(200 * time.Millisecond)
	if err := c.w.Kill(brokerName(old)); err != nil {
		c.t.Fatal(err)
	}
	if err := c.w.Heal(); err != nil {
		c.t.Fatal(err)
	}
	c.runUntil("a new leader", 20*time.Second, func() bool {
		l := c.partitionState().Leader
		return l != old && l != metadata.NoLeader
	})
	answer := kmsg.NewProduceResponseTopicPartition()
	answer.ErrorCode = kerr.NetworkException.Code // the kill cut the connection: no answer
	if pending.done {
		answer = producePartition(c.t, pending.resp)
	}
	for _, rec := range c.readFrom(c.partitionState().Leader) {
		if rec.value == "at-risk" {
			return answer, true
		}
	}
	return answer, false
}

// TestClusterAcksAllWaitsForISR: a leader whose followers cannot fetch
// does not acknowledge an acks=all write; with either planted bug
// (ack-before-isr, hw-from-leader-only) it does, and the write is lost
// when that leader dies, which the read from the new leader shows.
func TestClusterAcksAllWaitsForISR(t *testing.T) {
	for _, tc := range []struct {
		name string
		bugs faults.Bugs
	}{
		{"correct", nil},
		{string(faults.BugAckBeforeISR), faults.Bugs{faults.BugAckBeforeISR: true}},
		{string(faults.BugHWFromLeaderOnly), faults.Bugs{faults.BugHWFromLeaderOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClusterRig(t, 11, tc.bugs, nil)
			answer, readable := c.ackedThenLeaderDies()
			acked := answer.ErrorCode == 0
			switch {
			case tc.bugs == nil && acked && !readable:
				t.Fatalf("an acknowledged write was lost with the leader")
			case tc.bugs == nil && acked:
				t.Fatalf("the leader acknowledged a write its followers could not have fetched")
			case tc.bugs != nil && !(acked && !readable):
				t.Fatalf("with %s: acknowledged %v (%s), readable from the new leader %v; want an acknowledged write lost",
					tc.name, acked, errName(answer.ErrorCode), readable)
			}
		})
	}
}

// fetchAt fetches partition 0 at offset 0 from a broker, naming a leader
// epoch (-1: none), and returns the partition's error.
func (c *clusterRig) fetchAt(id int32, epoch int32) int16 {
	c.t.Helper()
	tc := c.dialTo(brokerName(id) + ":9092")
	defer tc.c.Close()
	req := fetchRequest(clusterTopic, 0, 0, 0, 0)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch
	return fetchPartition(c.t, c.wait(tc.send(req))).ErrorCode
}

// TestClusterMetadataFencingAndMinISR: Metadata names every broker and the
// partition's leader, replicas and ISR; followers refuse produce and
// consumer fetches; stale and future leader epochs are fenced; with the
// ISR below min.insync.replicas acks=all is refused and acks=1 is not.
func TestClusterMetadataFencingAndMinISR(t *testing.T) {
	c := newClusterRig(t, 5, nil, nil)
	c.createReplicated()
	ps := c.partitionState()
	md := c.metadataWith(metadataRequest(metadataVersion, false, clusterTopic))[clusterTopic]
	resp := c.roundTrip(metadataRequest(metadataVersion, false)).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 3 {
		t.Fatalf("metadata names %d brokers, want 3: %+v", len(resp.Brokers), resp.Brokers)
	}
	if len(md.Partitions) != 1 || md.Partitions[0].Leader != ps.Leader || len(md.Partitions[0].Replicas) != 3 ||
		len(md.Partitions[0].ISR) != 3 || md.Partitions[0].LeaderEpoch != ps.LeaderEpoch {
		t.Fatalf("metadata partition %+v, image %+v", md.Partitions, ps)
	}
	leader := ps.Leader
	follower := ps.Replicas[0]
	if follower == leader {
		follower = ps.Replicas[1]
	}
	expectCode(t, "consumer fetch at a follower", int16(c.fetchAt(follower, -1)), kerr.NotLeaderForPartition)
	expectCode(t, "produce at a follower", c.produceTo(follower, -1, "x").ErrorCode, kerr.NotLeaderForPartition)
	expectCode(t, "fetch with a future epoch", c.fetchAt(leader, ps.LeaderEpoch+1), kerr.UnknownLeaderEpoch)
	expectCode(t, "fetch with the current epoch", c.fetchAt(leader, ps.LeaderEpoch), nil)

	if err := c.w.Kill(brokerName(leader)); err != nil {
		t.Fatal(err)
	}
	c.runUntil("a new leader", 20*time.Second, func() bool {
		l := c.partitionState().Leader
		return l != leader && l != metadata.NoLeader
	})
	next := c.partitionState()
	expectCode(t, "fetch with the deposed leader's epoch", c.fetchAt(next.Leader, ps.LeaderEpoch), kerr.FencedLeaderEpoch)
	expectCode(t, "acks=all with an ISR of two", c.produceTo(next.Leader, -1, "two").ErrorCode, nil)

	for _, id := range next.ISR {
		if id != next.Leader {
			if err := c.w.Kill(brokerName(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.runUntil("an ISR of one", 20*time.Second, func() bool { return len(c.partitionState().ISR) == 1 })
	expectCode(t, "acks=all with an ISR of one", c.produceTo(next.Leader, -1, "one").ErrorCode, kerr.NotEnoughReplicas)
	expectCode(t, "acks=1 with an ISR of one", c.produceTo(next.Leader, 1, "one").ErrorCode, nil)
}

// TestClusterISRShrinksAndExpands: a follower that cannot fetch (its link
// to the leader cut, its controller session alive) leaves the ISR after
// replica.lag.time.max.ms through the leader's AlterPartition, writes go
// on with the two left, and once the link heals it catches up and joins
// the ISR again.
func TestClusterISRShrinksAndExpands(t *testing.T) {
	c := newClusterRig(t, 9, nil, nil)
	c.createReplicated()
	ps := c.partitionState()
	lagger := ps.Replicas[0]
	if lagger == ps.Leader {
		lagger = ps.Replicas[1]
	}
	for _, pair := range [][2]string{{brokerName(ps.Leader), brokerName(lagger)}, {brokerName(lagger), brokerName(ps.Leader)}} {
		if err := c.w.Block(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	cut := c.now()
	c.runUntil("the lagging follower out of the ISR", 10*time.Second, func() bool {
		return !slices.Contains(c.partitionState().ISR, lagger)
	})
	if waited := c.now() - cut; waited < 2*time.Second {
		t.Fatalf("the follower left the ISR after %v, before replica.lag.time.max.ms (2s)", waited)
	}
	if br := c.image().Brokers[lagger]; br == nil || br.Fenced {
		t.Fatalf("broker %d was fenced: the shrink should come from the leader, not the session", lagger)
	}
	if !c.logged(fmt.Sprintf("fell behind for more than 2s")) {
		t.Fatalf("the leader did not log asking to shrink the ISR")
	}
	for i := range 3 {
		expectCode(t, "acks=all with an ISR of two", c.produceTo(ps.Leader, -1, fmt.Sprintf("during-%d", i)).ErrorCode, nil)
	}
	if err := c.w.Heal(); err != nil {
		t.Fatal(err)
	}
	c.runUntil("the follower back in the ISR", 10*time.Second, func() bool {
		return slices.Contains(c.partitionState().ISR, lagger)
	})
	c.runFor(time.Second)
	if got, want := c.brokers[lagger].ReplicaLog(clusterTopic, 0), c.brokers[ps.Leader].ReplicaLog(clusterTopic, 0); !slices.Equal(got, want) {
		t.Fatalf("the rejoined follower's log differs:\n%v\n%v", got, want)
	}
}

// TestClusterNotEnoughReplicasAfterAppend: an acks=all write held for
// followers that cannot fetch is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND
// once the leader has shrunk the ISR below min.insync.replicas (the high
// watermark then passes the write, but fewer replicas than asked hold it).
func TestClusterNotEnoughReplicasAfterAppend(t *testing.T) {
	c := newClusterRig(t, 13, nil, nil)
	c.createReplicated()
	leader := c.partitionState().Leader
	c.blockBetweenBrokers(leader)
	sp := c.produceTo(leader, -1, "held")
	expectCode(t, "acks=all while the followers cannot fetch", sp.ErrorCode, kerr.NotEnoughReplicasAfterAppend)
	c.runUntil("the image to show the shrunk ISR", time.Second, func() bool {
		isr := c.partitionState().ISR
		return len(isr) == 1 && isr[0] == leader
	})
}

// TestClusterControlledShutdown: a leader stopped cleanly first has the
// controller move its leadership to another ISR member, so writes go on
// at once with no wait for its session to expire.
func TestClusterControlledShutdown(t *testing.T) {
	c := newClusterRig(t, 17, nil, nil)
	c.createReplicated()
	leader := c.partitionState().Leader
	stopped, at := false, c.now()
	var stopErr error
	c.w.At(c.now(), func() { c.brokers[leader].Stop(func(err error) { stopped, stopErr = true, err }) })
	c.runUntil("the leader stopped", 10*time.Second, func() bool { return stopped })
	if stopErr != nil {
		t.Fatalf("stop: %v", stopErr)
	}
	if took := c.now() - at; took >= 5*time.Second {
		t.Fatalf("stopping took %v: the leadership did not move before the bound", took)
	}
	ps := c.partitionState()
	if ps.Leader == leader || ps.Leader == metadata.NoLeader {
		t.Fatalf("after the controlled shutdown of broker %d the leader is %d", leader, ps.Leader)
	}
	if br := c.image().Brokers[leader]; br == nil || !br.ShuttingDown {
		t.Fatalf("broker %d is not shutting down in the image: %+v", leader, br)
	}
	expectCode(t, "acks=all to the new leader", c.produceTo(ps.Leader, -1, "after").ErrorCode, nil)
}

// TestClusterFailedFsyncOnLeaderLosesNothing: under group commit a leader
// whose fsyncs fail reopens its log without what was not on disk; it must
// not go on leading from the shorter log (its followers would truncate to
// match it), so it starts over and the others lead, and every
// acknowledged write survives.
func TestClusterFailedFsyncOnLeaderLosesNothing(t *testing.T) {
	c := newClusterRig(t, 4, nil, groupCommit)
	c.createReplicated()
	p := c.startProducer()
	var results []kafka.Result
	sent := 0
	start := c.now()
	c.sendEvery(p, 2*time.Millisecond, start+6*time.Second, &results, &sent)
	c.runFor(2 * time.Second)
	victim := c.partitionState().Leader
	if err := c.w.FailSyncs(brokerName(victim), 3); err != nil {
		t.Fatal(err)
	}
	c.runUntil("every send settled", 60*time.Second, func() bool { return len(results) == sent && c.now() > start+6*time.Second })
	if err := c.w.DiskHeal(brokerName(victim)); err != nil {
		t.Fatal(err)
	}
	if !c.logged(fmt.Sprintf("broker %d stopping: partition replicated-0: the log reopened after a failed fsync", victim)) {
		t.Fatalf("broker %d did not start over after its log reopened", victim)
	}
	c.runUntil("the ISR whole again", 30*time.Second, func() bool { return len(c.partitionState().ISR) == 3 })
	acked := c.acked(results)
	recs := c.checkAckedReadable(c.partitionState().Leader, acked)
	t.Logf("%d sends, %d acknowledged, %d read", sent, len(acked), len(recs))
}

// TestClusterISRShrinksOnlyThroughController: with min.insync.replicas 1,
// a leader whose followers cannot fetch shrinks the ISR to itself and
// acknowledges writes alone. Done through the controller, the ISR the
// controller keeps names only the leader, so when the leader dies no
// other replica may lead, and the write is there when it returns. With
// the planted bug isr-shrink-local the leader shrinks on its own word;
// the controller elects a follower that lacks the acknowledged write.
func TestClusterISRShrinksOnlyThroughController(t *testing.T) {
	for _, tc := range []struct {
		name string
		bugs faults.Bugs
	}{{"correct", nil}, {string(faults.BugISRShrinkLocal), faults.Bugs{faults.BugISRShrinkLocal: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClusterRig(t, 19, tc.bugs, nil)
			spec := newTopicSpec(clusterTopic, 1, "min.insync.replicas", "1")
			spec.ReplicationFactor = 3
			expectCode(t, "create", c.createTopics(false, spec)[0].ErrorCode, nil)
			c.runUntil("every replica in the ISR", 10*time.Second, func() bool { return len(c.partitionState().ISR) == 3 })
			leader := c.partitionState().Leader
			c.blockBetweenBrokers(leader)
			c.runFor(4 * time.Second) // past replica.lag.time.max.ms (2s)
			expectCode(t, "acks=all with the leader alone in the ISR", c.produceTo(leader, -1, "alone").ErrorCode, nil)
			if err := c.w.Kill(brokerName(leader)); err != nil {
				t.Fatal(err)
			}
			if err := c.w.Heal(); err != nil {
				t.Fatal(err)
			}
			c.runFor(5 * time.Second)
			if err := c.w.Restart(brokerName(leader)); err != nil {
				t.Fatal(err)
			}
			c.runUntil("a leader", 20*time.Second, func() bool { return c.partitionState().Leader != metadata.NoLeader })
			c.runFor(2 * time.Second)
			readable := false
			for _, rec := range c.readFrom(c.partitionState().Leader) {
				readable = readable || rec.value == "alone"
			}
			switch {
			case tc.bugs == nil && !readable:
				t.Fatalf("the write the leader acknowledged alone was lost")
			case tc.bugs != nil && readable:
				t.Fatalf("with isr-shrink-local the acknowledged write survived: the bug was not caught")
			}
		})
	}
}
