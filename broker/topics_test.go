package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/group"
	"github.com/sluice-sim/sluice/sim"
)

// dataDir is the broker's log directory under the default config.
const dataDir = "kafka-logs"

// partitionDirs lists the partition directories of topic on the broker's
// disk (the page cache: what a process would see).
func (r *rig) partitionDirs(topic string) []string {
	r.t.Helper()
	names, err := r.w.Node(brokerNode).Disk().FS().List(dataDir)
	if err != nil {
		r.t.Fatalf("list %s: %v", dataDir, err)
	}
	var out []string
	for _, n := range names {
		if i := strings.LastIndexByte(n, '-'); i > 0 && n[:i] == topic {
			out = append(out, n)
		}
	}
	return out
}

// checkTopic fails unless metadata shows topic with partitions partitions
// led by the broker, and returns its id.
func checkTopic(t *testing.T, md map[string]kmsg.MetadataResponseTopic, topic string, partitions int) [16]byte {
	t.Helper()
	mt, ok := md[topic]
	if !ok {
		t.Fatalf("metadata does not answer for %s", topic)
	}
	expectCode(t, "metadata "+topic, mt.ErrorCode, nil)
	if len(mt.Partitions) != partitions {
		t.Fatalf("%s has %d partitions, want %d", topic, len(mt.Partitions), partitions)
	}
	for i, p := range mt.Partitions {
		if p.Partition != int32(i) || p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) {
			t.Fatalf("%s partition %d: %+v", topic, i, p)
		}
	}
	if mt.TopicID == [16]byte{} {
		t.Fatalf("%s has no topic id", topic)
	}
	return mt.TopicID
}

func TestCreateTopicsThenMetadata(t *testing.T) {
	r := newRig(t, 10, nil)
	answers := r.createTopics(false, newTopicSpec("orders", 3), newTopicSpec("audit", 1, "retention.ms", "60000", "cleanup.policy", "compact"))
	for _, st := range answers {
		expectCode(t, "create "+st.Topic, st.ErrorCode, nil)
	}
	if answers[0].NumPartitions != 3 || answers[0].ReplicationFactor != 1 {
		t.Fatalf("create orders answered %d partitions, replication %d", answers[0].NumPartitions, answers[0].ReplicationFactor)
	}
	md := r.metadata("orders", "audit")
	id := checkTopic(t, md, "orders", 3)
	if id != answers[0].TopicID {
		t.Fatalf("metadata topic id %x, CreateTopics answered %x", id, answers[0].TopicID)
	}
	if checkTopic(t, md, "audit", 1) == id {
		t.Fatalf("two topics share the id %x", id)
	}
	if got := r.partitionDirs("orders"); !slices.Equal(got, []string{"orders-0", "orders-1", "orders-2"}) {
		t.Fatalf("partition directories of orders: %v", got)
	}
	all := r.allTopics()
	if len(all) != 2 {
		t.Fatalf("metadata for all topics lists %d, want 2", len(all))
	}
	// -1 partitions takes num.partitions; -1 replication is the default.
	dflt := newTopicSpec("defaulted", -1)
	dflt.ReplicationFactor = -1
	st := r.createTopics(false, dflt)[0]
	expectCode(t, "create with defaults", st.ErrorCode, nil)
	checkTopic(t, r.metadata("defaulted"), "defaulted", int(broker.DefaultConfig().NumPartitions))
}

func TestCreateTopicsRefusals(t *testing.T) {
	r := newRig(t, 11, nil)
	r.createTopic("orders", 1)
	twoReplicas := newTopicSpec("replicated", 1)
	twoReplicas.ReplicationFactor = 2
	assigned := newTopicSpec("assigned", 1)
	assigned.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	nullValue := newTopicSpec("null-config", 1)
	nullValue.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}
	cases := []struct {
		spec kmsg.CreateTopicsRequestTopic
		want *kerr.Error
	}{
		{newTopicSpec("orders", 1), kerr.TopicAlreadyExists},
		{newTopicSpec("bad name!", 1), kerr.InvalidTopicException},
		{newTopicSpec("", 1), kerr.InvalidTopicException},
		{newTopicSpec("..", 1), kerr.InvalidTopicException},
		{newTopicSpec(strings.Repeat("x", 250), 1), kerr.InvalidTopicException},
		{twoReplicas, kerr.InvalidReplicationFactor},
		{assigned, kerr.InvalidReplicaAssignment},
		{newTopicSpec("zero", 0), kerr.InvalidPartitions},
		{newTopicSpec("negative", -2), kerr.InvalidPartitions},
		{newTopicSpec("unknown-config", 1, "no.such.config", "1"), kerr.InvalidConfig},
		{newTopicSpec("bad-value", 1, "retention.ms", "soon"), kerr.InvalidConfig},
		{newTopicSpec("bad-policy", 1, "cleanup.policy", "shred"), kerr.InvalidConfig},
		{nullValue, kerr.InvalidConfig},
	}
	for _, c := range cases {
		name := c.spec.Topic
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		t.Run(fmt.Sprintf("%s/%s", name, c.want.Message), func(t *testing.T) {
			defer r.bind(t)()
			st := r.createTopics(false, c.spec)[0]
			expectCode(t, "create", st.ErrorCode, c.want)
			if st.ErrorMessage == nil || *st.ErrorMessage == "" {
				t.Fatalf("refusal without a message")
			}
		})
	}
	// The 249-character limit is inclusive.
	r.createTopic(strings.Repeat("x", 249), 1)
	// Nothing refused exists.
	all := r.allTopics()
	if len(all) != 2 {
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		t.Fatalf("topics after the refusals: %v", names)
	}
	// One request: a refusal does not stop the other topics.
	answers := r.createTopics(false, newTopicSpec("good", 2), newTopicSpec("bad name!", 1), newTopicSpec("good", 2))
	expectCode(t, "good", answers[0].ErrorCode, nil)
	expectCode(t, "bad", answers[1].ErrorCode, kerr.InvalidTopicException)
	expectCode(t, "good named twice", answers[2].ErrorCode, kerr.InvalidRequest)
	checkTopic(t, r.metadata("good"), "good", 2)
}

func TestCreateTopicsValidateOnly(t *testing.T) {
	r := newRig(t, 12, nil)
	answers := r.createTopics(true, newTopicSpec("dry", 4), newTopicSpec("dry!", 1))
	expectCode(t, "validate dry", answers[0].ErrorCode, nil)
	expectCode(t, "validate dry!", answers[1].ErrorCode, kerr.InvalidTopicException)
	if answers[0].NumPartitions != 4 {
		t.Fatalf("validation answered %d partitions", answers[0].NumPartitions)
	}
	expectCode(t, "metadata after validate_only", r.metadata("dry")["dry"].ErrorCode, kerr.UnknownTopicOrPartition)
	if dirs := r.partitionDirs("dry"); len(dirs) != 0 {
		t.Fatalf("validate_only created directories %v", dirs)
	}
	// And a real creation afterwards works.
	r.createTopic("dry", 4)
}

func deleteTopicsRequest(names ...string) *kmsg.DeleteTopicsRequest {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(deleteTopicsVersion)
	req.TimeoutMillis = 30_000
	req.TopicNames = names
	return req
}

func TestDeleteTopics(t *testing.T) {
	r := newRig(t, 13, nil)
	r.createTopic("doomed", 2)
	r.createTopic("kept", 1)
	expectCode(t, "produce", r.produce("doomed", 1, buildBatch(t, plain, 1000, "x")).ErrorCode, nil)
	// A fetch waiting on the doomed topic is answered when it goes.
	waiting := r.dial().send(fetchRequest("doomed", 0, 0, 20*time.Second, 1))
	r.runFor(10 * time.Millisecond)
	resp := r.roundTrip(deleteTopicsRequest("doomed", "never-was")).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("delete answered %d topics", len(resp.Topics))
	}
	expectCode(t, "delete doomed", resp.Topics[0].ErrorCode, nil)
	expectCode(t, "delete never-was", resp.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)
	r.wait(waiting)
	if got := waiting.at - waiting.sentAt; got >= 20*time.Second {
		t.Fatalf("fetch on a deleted topic held for its whole wait (%v)", got)
	}
	expectCode(t, "fetch of the deleted topic", fetchPartition(t, waiting.resp).ErrorCode, kerr.UnknownTopicOrPartition)
	md := r.metadata("doomed", "kept")
	expectCode(t, "metadata doomed", md["doomed"].ErrorCode, kerr.UnknownTopicOrPartition)
	checkTopic(t, md, "kept", 1)
	if dirs := r.partitionDirs("doomed"); len(dirs) != 0 {
		t.Fatalf("deleted topic's directories remain: %v", dirs)
	}
	if dirs := r.partitionDirs("kept"); len(dirs) != 1 {
		t.Fatalf("kept topic's directories: %v", dirs)
	}
	expectCode(t, "produce to deleted", r.produce("doomed", 0, buildBatch(t, plain, 1000, "y")).ErrorCode, kerr.UnknownTopicOrPartition)
	// Deleting again: unknown.
	resp = r.roundTrip(deleteTopicsRequest("doomed")).(*kmsg.DeleteTopicsResponse)
	expectCode(t, "delete twice", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	// The deletion is durable: it holds across a power loss.
	r.runFor(100 * time.Millisecond)
	r.powerCycle()
	md = r.metadata("doomed", "kept")
	expectCode(t, "metadata doomed after restart", md["doomed"].ErrorCode, kerr.UnknownTopicOrPartition)
	checkTopic(t, md, "kept", 1)
}

// powerCycle cuts the broker's power and boots it again.
func (r *rig) powerCycle() {
	r.t.Helper()
	starts := r.starts
	if err := r.w.PowerLoss(brokerNode); err != nil {
		r.t.Fatal(err)
	}
	if err := r.w.Restart(brokerNode); err != nil {
		r.t.Fatal(err)
	}
	if r.starts != starts+1 {
		r.t.Fatalf("broker did not start again after a power loss")
	}
	r.awaitServing()
	r.admin = nil
}

// killCycle kills the broker's process (its disk's page cache survives)
// and starts it again.
func (r *rig) killCycle() {
	r.t.Helper()
	starts := r.starts
	if err := r.w.Kill(brokerNode); err != nil {
		r.t.Fatal(err)
	}
	if err := r.w.Restart(brokerNode); err != nil {
		r.t.Fatal(err)
	}
	if r.starts != starts+1 {
		r.t.Fatalf("broker did not start again after a kill")
	}
	r.awaitServing()
	r.admin = nil
}

func TestMetadataAutoCreation(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		r := newRig(t, 14, func(cfg *broker.Config) { cfg.AutoCreateTopics, cfg.NumPartitions = true, 3 })
		// Not allowed by the request: not created.
		md := r.metadata("made")
		expectCode(t, "metadata without permission", md["made"].ErrorCode, kerr.UnknownTopicOrPartition)
		md = r.metadataWith(metadataRequest(metadataVersion, true, "made", "bad name!"))
		checkTopic(t, md, "made", 3)
		expectCode(t, "auto-create of a bad name", md["bad name!"].ErrorCode, kerr.InvalidTopicException)
		// The topic is real: listed, on disk and writable.
		checkTopic(t, r.allTopics(), "made", 3)
		if dirs := r.partitionDirs("made"); len(dirs) != 3 {
			t.Fatalf("auto-created directories: %v", dirs)
		}
		expectCode(t, "produce to auto-created", r.produce("made", 2, buildBatch(t, plain, 1000, "x")).ErrorCode, nil)
		// Before v4 requests cannot refuse auto-creation.
		old := r.metadataWith(metadataRequest(3, false, "old-client"))["old-client"]
		if old.ErrorCode != 0 || len(old.Partitions) != 3 {
			t.Fatalf("v3 metadata did not auto-create: %s, %d partitions", errName(old.ErrorCode), len(old.Partitions))
		}
		checkTopic(t, r.metadata("old-client"), "old-client", 3)
		// The same name twice in one request is created once.
		checkTopic(t, r.metadataWith(metadataRequest(metadataVersion, true, "twice", "twice")), "twice", 3)
		if len(r.allTopics()) != 3 {
			t.Fatalf("topics: %d, want made, old-client and twice", len(r.allTopics()))
		}
	})
	// Asking for __consumer_offsets makes it as the group coordinator
	// does: its own partition count and compacted, reported as internal.
	t.Run("internal", func(t *testing.T) {
		r := newRig(t, 16, func(cfg *broker.Config) {
			cfg.AutoCreateTopics, cfg.NumPartitions, cfg.Groups.Partitions = true, 3, 5
		})
		r.metadataWith(metadataRequest(metadataVersion, true, group.OffsetsTopic))
		r.runFor(time.Second)
		md := r.metadata(group.OffsetsTopic)[group.OffsetsTopic]
		if md.ErrorCode != 0 || len(md.Partitions) != 5 || !md.IsInternal {
			t.Fatalf("%s: %s, %d partitions, internal %v; want 5 partitions, internal",
				group.OffsetsTopic, errName(md.ErrorCode), len(md.Partitions), md.IsInternal)
		}
		if user := r.metadataWith(metadataRequest(metadataVersion, true, "user"))["user"]; user.IsInternal || len(user.Partitions) != 3 {
			t.Fatalf("a user topic: internal %v, %d partitions", user.IsInternal, len(user.Partitions))
		}
	})
	t.Run("off", func(t *testing.T) {
		r := newRig(t, 15, func(cfg *broker.Config) { cfg.AutoCreateTopics = false })
		md := r.metadataWith(metadataRequest(metadataVersion, true, "wanted"))
		expectCode(t, "metadata with auto-creation off", md["wanted"].ErrorCode, kerr.UnknownTopicOrPartition)
		md = r.metadataWith(metadataRequest(1, false, "wanted"))
		expectCode(t, "v1 metadata with auto-creation off", md["wanted"].ErrorCode, kerr.UnknownTopicOrPartition)
		if len(r.allTopics()) != 0 || len(r.partitionDirs("wanted")) != 0 {
			t.Fatalf("a topic was created with auto-creation off")
		}
	})
}

// CreateTopics answers only once topics.json holds the topics, so a power
// loss at any moment after the answer keeps them, with their ids. Several
// seeds vary what the crash keeps of everything not yet durable.
func TestCreatedTopicsSurvivePowerLoss(t *testing.T) {
	for seed := uint64(2000); seed < 2100; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			r := newRig(t, seed, nil)
			ids := map[string][16]byte{}
			tc := r.dial()
			// Pipelined creations: the registry folds concurrent changes
			// into later writes; each answer must still wait for its own.
			var calls []*call
			for i := range 6 {
				calls = append(calls, tc.send(createTopicsRequest(false, newTopicSpec(fmt.Sprintf("t%d", i), int32(1+i%3)))))
			}
			last := calls[len(calls)-1]
			r.runUntil("creations answered", answerWaitMax, func() bool { return last.done })
			for i, c := range calls {
				st := c.resp.(*kmsg.CreateTopicsResponse).Topics[0]
				expectCode(t, st.Topic, st.ErrorCode, nil)
				ids[fmt.Sprintf("t%d", i)] = st.TopicID
			}
			// Cut the power the moment the last answer arrives.
			r.powerCycle()
			all := r.allTopics()
			if len(all) != len(ids) {
				t.Fatalf("%d topics after a power loss, want %d", len(all), len(ids))
			}
			for i := range 6 {
				name := fmt.Sprintf("t%d", i)
				if id := checkTopic(t, all, name, 1+i%3); id != ids[name] {
					t.Fatalf("%s came back with id %x, created as %x", name, id, ids[name])
				}
			}
		})
	}
}

// A topics.json that fails its checksum must stop the broker, loudly,
// rather than let it serve (or delete the data of) topics it misread.
func TestCorruptTopicsFileRefusesToStart(t *testing.T) {
	r := newRig(t, 31, nil)
	r.createTopic("alpha", 2)
	r.createTopic("beta", 1)
	expectCode(t, "produce", r.produce("alpha", 0, buildBatch(t, plain, 1000, "precious")).ErrorCode, nil)
	r.runFor(time.Second)
	if err := r.w.Kill(brokerNode); err != nil {
		t.Fatal(err)
	}
	// Rename "alpha" to "alpho" inside the file: still valid JSON naming a
	// legal topic, which only the checksum can tell from the truth.
	fs := r.w.Node(brokerNode).Disk().FS()
	name := dataDir + "/topics.json"
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	content := make([]byte, size)
	if _, err := f.ReadAt(content, 0); err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(content, []byte(`"alpha"`))
	if at < 0 {
		t.Fatalf("topics.json does not name alpha:\n%s", content)
	}
	if _, err := f.WriteAt([]byte("o"), int64(at+len(`"alph`))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	starts := r.starts
	if err := r.w.Restart(brokerNode); err != nil {
		t.Fatal(err)
	}
	// It keeps trying (as a supervisor would restart it) and keeps failing.
	r.runFor(3500 * time.Millisecond)
	if r.starts != starts+1 {
		t.Fatalf("broker process started %d times", r.starts-starts)
	}
	if !r.logged("broker 1 stopping", "topics.json", "checksum") {
		t.Fatalf("no log line says topics.json failed its checksum")
	}
	if n := strings.Count(r.logs.String(), "serving on"); n != 1 {
		t.Fatalf("the broker served after restarting on a corrupt topics.json")
	}
	if n := strings.Count(r.logs.String(), "broker 1 stopping"); n < 3 {
		t.Fatalf("the broker tried %d times in 3.5 s, want a retry every second", n)
	}
	tc := r.dial()
	r.runUntil("dial answered", answerWaitMax, func() bool { return tc.opened || tc.closed })
	if !tc.closed || !errors.Is(tc.closeErr, sim.ErrRefused) {
		t.Fatalf("dial to a broker that must not serve: opened %v, closed with %v", tc.opened, tc.closeErr)
	}
	// Nothing was deleted as a stray: the data waits for an operator.
	if dirs := r.partitionDirs("alpha"); len(dirs) != 2 {
		t.Fatalf("alpha's directories after the refused start: %v", dirs)
	}
	if dirs := r.partitionDirs("alpho"); len(dirs) != 0 {
		t.Fatalf("directories of the misread topic were made: %v", dirs)
	}
}

// TestRecreateAfterDeleteStartsEmpty: a topic deleted and at once created
// again under the same name starts empty, and what is acknowledged to the
// new topic survives a power loss.
func TestRecreateAfterDeleteStartsEmpty(t *testing.T) {
	r := newRig(t, 200, groupCommit)
	r.createTopic("t", 1)
	expectCode(t, "produce old", r.produce("t", 0, buildBatch(t, plain, 1000, "old-0", "old-1")).ErrorCode, nil)
	tc := r.dial()
	del := tc.send(deleteTopicsRequest("t"))
	create := tc.send(createTopicsRequest(false, newTopicSpec("t", 1)))
	r.wait(del)
	r.wait(create)
	expectCode(t, "delete", del.resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, nil)
	expectCode(t, "create again", create.resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
	if recs := r.readAll("t", 0); len(recs) != 0 {
		t.Errorf("the new topic serves the deleted topic's records: %v", recs)
	}
	sp := r.produce("t", 0, buildBatch(t, plain, 2000, "new"))
	expectCode(t, "produce new", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Errorf("first batch of the new topic at offset %d, want 0", sp.BaseOffset)
	}
	r.powerCycle()
	r.runFor(100 * time.Millisecond)
	fp := r.fetchNow("t", 0, 0)
	if fp.ErrorCode != 0 {
		t.Fatalf("after a power loss the new topic answers %s", errName(fp.ErrorCode))
	}
	expectRecords(t, decodeRecords(t, fp.RecordBatches), []string{"new"})
}

// TestRecreateAfterRestartStartsAtZero: a topic deleted and created again
// after a restart does not inherit the recovery point its predecessor had
// in the checkpoint read at start: the new topic's first record gets
// offset 0 and recovery reports no lost flushed data.
func TestRecreateAfterRestartStartsAtZero(t *testing.T) {
	r := newRig(t, 201, groupCommit)
	r.createTopic("t4", 1)
	values := make([]string, 50)
	for i := range values {
		values[i] = fmt.Sprintf("old-%d", i)
	}
	expectCode(t, "produce old", r.produce("t4", 0, buildBatch(t, plain, 1000, values...)).ErrorCode, nil)
	// Let the maintenance checkpoint record the recovery point 50, then
	// restart so that the broker reads it back.
	r.runFor(3 * time.Second)
	r.killCycle()
	if got := r.latest("t4", 0); got != 50 {
		t.Fatalf("before the deletion the topic ends at %d, want 50", got)
	}
	resp := r.roundTrip(deleteTopicsRequest("t4")).(*kmsg.DeleteTopicsResponse)
	expectCode(t, "delete", resp.Topics[0].ErrorCode, nil)
	if got := r.createTopic("t4", 1); got.ErrorCode != 0 {
		t.Fatalf("create again: %s", errName(got.ErrorCode))
	}
	sp := r.produce("t4", 0, buildBatch(t, plain, 2000, "new"))
	expectCode(t, "produce new", sp.ErrorCode, nil)
	if sp.BaseOffset != 0 {
		t.Errorf("first record of the re-created topic at offset %d, want 0", sp.BaseOffset)
	}
	if r.logged("FLUSHED DATA LOST") || r.logged("the disk lost flushed writes") {
		t.Errorf("re-creating the topic logged lost flushed data")
	}
	// The next start must not resurrect the old recovery point either.
	r.runFor(3 * time.Second)
	r.killCycle()
	expectRecords(t, r.readAll("t4", 0), []string{"new"})
	if r.logged("the disk lost flushed writes") {
		t.Errorf("restarting after the re-creation logged lost flushed data")
	}
}
