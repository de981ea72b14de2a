package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/faults"
)

func leaderCrashDef(t *testing.T) Definition {
	t.Helper()
	d, err := Lookup("leader-crash")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// leaderCrashShort is a short run with room for a crash or two and a
// drain long enough for the restarted brokers to rejoin.
func leaderCrashShort(seed uint64, params map[string]string, bugs ...faults.Bug) Options {
	o := short(seed, bugs...)
	o.Run, o.Drain, o.Params = 10*time.Second, 12*time.Second, params
	return o
}

// TestLeaderCrashSeedsHoldAndReplay: seeds of leader crashes (by kill and
// by power loss) pass every check, the Jepsen ones included, twice each
// with one trace hash, and really crashed leaders and acknowledged writes.
func TestLeaderCrashSeedsHoldAndReplay(t *testing.T) {
	d := leaderCrashDef(t)
	for _, tc := range []struct {
		seed   uint64
		params map[string]string
	}{{1, nil}, {2, map[string]string{"crash": "power"}}} {
		r, det, err := RunTwice(d, leaderCrashShort(tc.seed, tc.params))
		if err != nil {
			t.Fatal(err)
		}
		if !det.Same() {
			t.Fatalf("seed %d: trace %s then %s\n%s", tc.seed, det.Hashes[0], det.Hashes[1], det.Divergence)
		}
		if !r.OK() {
			t.Fatalf("seed %d %v failed: %+v", tc.seed, tc.params, r.Failed())
		}
		if r.Stats["planted_faults"] == 0 || r.Stats["sends_ok"] < 1000 || r.Stats["leader_epochs"] == 0 {
			t.Fatalf("seed %d: too little happened to judge: %v", tc.seed, r.Stats)
		}
	}
}

// TestLeaderCrashCatchesAckBeforeISR plants ack-before-isr: acks=all is
// answered before the followers have the write, so a crashed leader takes
// acknowledged writes with it, and the Kafka checker reports them lost.
func TestLeaderCrashCatchesAckBeforeISR(t *testing.T) {
	d := leaderCrashDef(t)
	for seed := uint64(1); seed <= 5; seed++ {
		r, err := Run(d, leaderCrashShort(seed, nil, faults.BugAckBeforeISR))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Failed() {
			if c.Name == "kafka" && strings.Contains(c.Detail, "lost-write") {
				t.Logf("seed %d: %s", seed, c.Detail)
				return
			}
		}
	}
	t.Fatalf("ack-before-isr lost no acknowledged write in 5 seeds")
}

// TestLeaderCrashPowerLossOfAllByFlushPolicy: a power loss of every broker
// at once loses acknowledged writes when brokers rely on replication
// alone (flush=none: nothing was on any disk), and loses none under group
// commit, where the leader counts only what is on its disk and followers
// sync what they fetched before they fetch again.
func TestLeaderCrashPowerLossOfAllByFlushPolicy(t *testing.T) {
	d, err := Lookup("power-loss-all")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(d, leaderCrashShort(1, map[string]string{"flush": "none"}))
	if err != nil {
		t.Fatal(err)
	}
	lost := false
	for _, c := range r.Failed() {
		lost = lost || (c.Name == "kafka" && strings.Contains(c.Detail, "lost-write"))
	}
	if !lost {
		t.Fatalf("flush=none: a power loss of every broker lost no acknowledged write: %+v", r.Checks)
	}
	r, err = Run(d, leaderCrashShort(1, map[string]string{"flush": "group"}))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Stats["planted_faults"] == 0 {
		t.Fatalf("flush=group: %+v (crashes %d)", r.Failed(), r.Stats["planted_faults"])
	}
}

// TestClusterSwarmAndIsolatedLeaderHold: the generated fault mix on
// brokers and controllers, and isolated leaders, lose no acknowledged
// write. cluster-swarm seed 4 fails a leader's fsyncs under group commit:
// a leader that went on leading from the log its reopen cut short let its
// followers truncate an acknowledged write to match it.
func TestClusterSwarmAndIsolatedLeaderHold(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		seed     uint64
	}{{"cluster-swarm", 4}, {"isolated-leader", 1}} {
		d, err := Lookup(tc.scenario)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(d, leaderCrashShort(tc.seed, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("%s seed %d: %+v", tc.scenario, tc.seed, r.Failed())
		}
		if r.FaultsApplied == 0 && r.Stats["planted_faults"] == 0 {
			t.Fatalf("%s seed %d: no fault acted", tc.scenario, tc.seed)
		}
	}
}

// TestIsolatedLeaderUncleanElectionLosesWrites reproduces Jepsen's finding
// in Kafka: a leader cut off from its followers shrinks the ISR to itself
// and, with min.insync.replicas=1, acknowledges writes alone; cut off from
// the controllers too, it is replaced by an out-of-sync replica when
// unclean election is on, and the writes it acknowledged are gone, which
// the Kafka checker reports as lost writes (they were read from the cut
// off leader, then found replaced at their offsets). With unclean election off the same episode
// loses nothing: the partition waits for its last in-sync replica.
func TestIsolatedLeaderUncleanElectionLosesWrites(t *testing.T) {
	d, err := Lookup("isolated-leader")
	if err != nil {
		t.Fatal(err)
	}
	run := func(unclean string) Result {
		o := short(1)
		o.Run, o.Drain = 20*time.Second, 15*time.Second
		o.Params = map[string]string{"unclean.leader.election.enable": unclean, "min.insync.replicas": "1"}
		r, err := Run(d, o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := run("false"); !r.OK() || lostWrites(t, r) != 0 {
		t.Fatalf("unclean election off: %+v", r.Failed())
	}
	r := run("true")
	if lostWrites(t, r) == 0 {
		t.Fatalf("unclean election on: the Kafka checker reports no lost write: %+v", r.Checks)
	}
	for _, c := range r.Failed() {
		if c.Name == "kafka" {
			t.Logf("unclean election on: %s", c.Detail)
		}
	}
}

// lostWrites is the Kafka checker's count of acknowledged writes lost.
func lostWrites(t *testing.T, r Result) int64 {
	t.Helper()
	if r.CheckReport == nil {
		t.Fatalf("no checker report")
	}
	for _, v := range r.CheckReport.Verdicts {
		if v.Checker == checkers.CheckerKafka {
			return v.Stats["lost-write"]
		}
	}
	t.Fatalf("no kafka verdict")
	return 0
}

// staleLeaderAcksSeed is the first pauses seed in which stale-leader-acks
// loses an acknowledged write.
const staleLeaderAcksSeed = 1

// TestPausedLeaderCatchesStaleLeaderAcks plants stale-leader-acks: a
// leader paused past its session is replaced at a newer leader epoch;
// resumed, it still holds acks=all writes its followers never had, and
// instead of fencing them (NOT_LEADER_OR_FOLLOWER) it answers them as
// written, then truncates them as a follower of the new leader. The Kafka
// checker reports the acknowledged writes lost; the same seed without the
// bug passes.
func TestPausedLeaderCatchesStaleLeaderAcks(t *testing.T) {
	d, err := Lookup("pauses")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(d, leaderCrashShort(staleLeaderAcksSeed, nil, faults.BugStaleLeaderAcks))
	if err != nil {
		t.Fatal(err)
	}
	caught := false
	for _, c := range r.Failed() {
		if c.Name == "kafka" && strings.Contains(c.Detail, "lost-write") {
			t.Logf("seed %d: %s", staleLeaderAcksSeed, c.Detail)
			caught = true
		}
	}
	if !caught {
		t.Fatalf("seed %d: stale-leader-acks lost no acknowledged write: %+v", staleLeaderAcksSeed, r.Checks)
	}
	r, err = Run(d, leaderCrashShort(staleLeaderAcksSeed, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("seed %d without the bug: %+v", staleLeaderAcksSeed, r.Failed())
	}
}

// TestProducerWithNothingLeftToSendIsNotStuck: in cluster-swarm seed
// 100482 (a swarm draw) a broker loses power while its followers wait on
// fetches to it; when it comes back as leader at 21.1s they learn of it only
// as those fetches time out, so p2's last sends time out too, after the
// faults healed, and the drain phase sends nothing more. Once every
// consumer has read to the end the producer has no work left: its failed
// sends do not make it a stuck client.
func TestProducerWithNothingLeftToSendIsNotStuck(t *testing.T) {
	d, err := Lookup("cluster-swarm")
	if err != nil {
		t.Fatal(err)
	}
	o := withParams(100482, map[string]string{"flush": "group", "workload": "fixed"})
	o.Run, o.Drain, o.Swarm = 20*time.Second, 20*time.Second, true
	r, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("%+v", r.Failed())
	}
	if r.Stats["sends_unknown"] == 0 {
		t.Fatal("no send ended with its outcome unknown: the seed no longer reaches the case")
	}
}
