package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The member process of TestFranzGoCooperativeStickyMemberKilledResumes
// is this test binary run again with coopMemberEnv set to
// "address,group,topic,limit": TestHelperCooperativeStickyMember then
// acts as the member and prints, one line each, every record it has
// processed ("read <partition> <offset>") and every offset it has
// committed ("commit <partition> <next offset>").
const coopMemberEnv = "SLUICE_TEST_COOP_MEMBER"

// coopUncommittedRecordsMax is how many records the first member reads
// past its last commit before it is killed: the new member must read
// exactly those again, and nothing below them.
const coopUncommittedRecordsMax = 10

// coopPollRecordsMax is how many records the member processes and
// commits at a time, so that its commits land inside partitions.
const coopPollRecordsMax = 7

// TestHelperCooperativeStickyMember is not a test: it is the member
// process, run only when coopMemberEnv is set.
func TestHelperCooperativeStickyMember(t *testing.T) {
	spec := os.Getenv(coopMemberEnv)
	if spec == "" {
		return
	}
	fields := strings.Split(spec, ",")
	if len(fields) != 4 {
		fmt.Fprintf(os.Stderr, "%s=%q: want address,group,topic,limit\n", coopMemberEnv, spec)
		os.Exit(2)
	}
	limit, err := strconv.Atoi(fields[3])
	if err != nil {
		fmt.Fprintf(os.Stderr, "limit %q: %v\n", fields[3], err)
		os.Exit(2)
	}
	runCooperativeStickyMember(fields[0], fields[1], fields[2], limit)
}

// runCooperativeStickyMember processes and commits up to limit records,
// then reads coopUncommittedRecordsMax more without committing them and
// waits to be killed, still a member (franz-go heartbeats on its own).
func runCooperativeStickyMember(addr, groupID, topic string, limit int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(10*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A fetch sent before every partition's start is known waits its
		// full max wait at the log end (5 s by default) before the next
		// fetch asks for the rest.
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	processed := 0
	for processed < limit+coopUncommittedRecordsMax {
		commit := processed < limit
		want := limit - processed
		if !commit {
			want = limit + coopUncommittedRecordsMax - processed
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs := cl.PollRecords(ctx, min(want, coopPollRecordsMax)).Records()
		cancel()
		for _, r := range recs {
			fmt.Fprintf(out, "read %d %d\n", r.Partition, r.Offset)
		}
		processed += len(recs)
		if commit && len(recs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.CommitRecords(ctx, recs...)
			cancel()
			if err != nil {
				fmt.Fprintf(out, "commit-failed %v\n", err)
			} else {
				next := map[int32]int64{}
				for _, r := range recs {
					next[r.Partition] = max(next[r.Partition], r.Offset+1)
				}
				for _, p := range slices.Sorted(maps.Keys(next)) {
					fmt.Fprintf(out, "commit %d %d\n", p, next[p])
				}
			}
		}
		out.Flush()
	}
	fmt.Fprintln(out, "done")
	out.Flush()
	select {} // until killed
}

// coopMember is a member process and what it printed.
type coopMember struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
}

func startCoopMember(t *testing.T, addr, groupID, topic string, limit int) *coopMember {
	t.Helper()
	m := &coopMember{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	m.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperCooperativeStickyMember$", "-test.count=1")
	m.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s,%d", coopMemberEnv, addr, groupID, topic, limit))
	m.cmd.Stdout, m.cmd.Stderr = m.stdout, m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.kill)
	return m
}

// kill is a crash: SIGKILL, so the member never leaves its group.
func (m *coopMember) kill() {
	if m.cmd.ProcessState == nil {
		m.cmd.Process.Signal(syscall.SIGKILL)
		m.cmd.Wait()
	}
}

// coopReport is what a member printed: offsets read per partition in
// order, its last commit per partition, and whether it is done.
type coopReport struct {
	read      map[int32][]int64
	committed map[int32]int64
	failures  []string
	done      bool
}

func (m *coopMember) report() coopReport {
	r := coopReport{read: map[int32][]int64{}, committed: map[int32]int64{}}
	for _, line := range strings.Split(m.stdout.String(), "\n") {
		var p int32
		var o int64
		switch {
		case line == "done":
			r.done = true
		case strings.HasPrefix(line, "commit-failed"):
			r.failures = append(r.failures, line)
		default:
			if n, _ := fmt.Sscanf(line, "read %d %d", &p, &o); n == 2 {
				r.read[p] = append(r.read[p], o)
			} else if n, _ := fmt.Sscanf(line, "commit %d %d", &p, &o); n == 2 {
				r.committed[p] = o
			}
		}
	}
	return r
}

func (r coopReport) count() int {
	n := 0
	for _, offs := range r.read {
		n += len(offs)
	}
	return n
}

// TestFranzGoCooperativeStickyMemberKilledResumes: a franz-go member
// with the cooperative-sticky balancer processes part of a 4-partition
// topic, committing what it processed, reads a few records more without
// committing them and is killed with SIGKILL. A new member process of the
// group is assigned the partitions once the dead member's session times
// out and starts exactly at the committed offsets: over both processes
// every record is read, and the only records read twice are the ones the
// first member read but had not committed.
func TestFranzGoCooperativeStickyMemberKilledResumes(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	const topic, groupID, partitions, perPartition, firstLimit = "sticky", "sticky-readers", 4, 50, 90
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, topic, partitions)
	cl.Close()
	produceN(t, b.addr, topic, partitions, perPartition)

	first := startCoopMember(t, b.addr, groupID, topic, firstLimit)
	waitFor(t, "the first member processes its share and reads past its commits", 30*time.Second, func() bool { return first.report().done })
	firstReport := first.report()
	if len(firstReport.failures) > 0 {
		t.Fatalf("the first member's commits failed: %v", firstReport.failures)
	}
	if got := firstReport.count(); got != firstLimit+coopUncommittedRecordsMax {
		t.Fatalf("the first member read %d records, want %d", got, firstLimit+coopUncommittedRecordsMax)
	}
	onBroker := committed(t, b.addr, groupID, topic)
	for p := range int32(partitions) {
		if onBroker[p] != firstReport.committed[p] {
			t.Fatalf("the broker holds commits %v; the member committed %v", onBroker, firstReport.committed)
		}
	}
	// 90 records committed over partitions of 50: at least one commit
	// lies inside a partition.
	inside := false
	for _, o := range onBroker {
		inside = inside || (o > 0 && o < perPartition)
	}
	if !inside {
		t.Fatalf("no commit inside a partition: %v", onBroker)
	}
	first.kill()

	began := time.Now()
	second := startCoopMember(t, b.addr, groupID, topic, 1<<30)
	total := partitions * perPartition
	waitFor(t, "the new member reads what was not committed", 30*time.Second, func() bool {
		return second.report().count() >= total-firstLimit
	})
	resumed := time.Since(began)
	waitFor(t, "the new member commits the rest", 20*time.Second, func() bool {
		got := committed(t, b.addr, groupID, topic)
		return got[0] == perPartition && got[1] == perPartition && got[2] == perPartition && got[3] == perPartition
	})
	time.Sleep(300 * time.Millisecond) // room for any record read twice to show
	second.kill()
	secondReport := second.report()
	if len(secondReport.failures) > 0 {
		t.Fatalf("the new member's commits failed: %v", secondReport.failures)
	}

	reread := 0
	for p := range int32(partitions) {
		start := onBroker[p] // 0 where nothing was committed
		offs := secondReport.read[p]
		if int64(len(offs)) != perPartition-start {
			t.Fatalf("partition %d: the new member read offsets %v, want %d..%d once each", p, offs, start, perPartition-1)
		}
		for i, o := range offs {
			if o != start+int64(i) {
				t.Fatalf("partition %d: the new member read offsets %v, want %d..%d in order", p, offs, start, perPartition-1)
			}
		}
		// Every record was read by one process or the other, and the
		// first member read only a prefix of each partition.
		firstOffs := firstReport.read[p]
		for i, o := range firstOffs {
			if o != int64(i) {
				t.Fatalf("partition %d: the first member read offsets %v, want 0.. in order", p, firstOffs)
			}
		}
		if int64(len(firstOffs)) < start {
			t.Fatalf("partition %d: committed %d but the first member read only %d records", p, start, len(firstOffs))
		}
		reread += len(firstOffs) - int(start)
	}
	if reread != coopUncommittedRecordsMax {
		t.Fatalf("%d records were read twice, want the %d the first member read and did not commit", reread, coopUncommittedRecordsMax)
	}
	t.Logf("the new member resumed in %v (the killed member's session is 6 s) from commits %v; %d uncommitted records read again",
		resumed.Round(100*time.Millisecond), onBroker, reread)
}

// TestTopicsAndGroupsCommandsOnCluster: `sluice topics` and `sluice
// groups` against a `sluice cluster up --brokers 3` cluster: a topic of
// replication factor 3 is created, listed and described (a leader and
// three in sync replicas per partition); a group that kcat -G read
// through is listed and described with its offsets and lag; and the
// errors: an unknown topic, an unreachable bootstrap, a bad flag.
func TestTopicsAndGroupsCommandsOnCluster(t *testing.T) {
	c := startLocalCluster(t, "--brokers", "3")
	const topic, groupID, partitions = "ledger", "auditors", 3
	bootstrap := c.file.Bootstrap
	topics := func(args ...string) []string {
		return append([]string{"topics", "--bootstrap-server", bootstrap}, args...)
	}
	groups := func(args ...string) []string {
		return append([]string{"groups", "--bootstrap-server", bootstrap}, args...)
	}

	wantRun(t, 0, "Created topic "+topic+".", topics("--create", "--topic", topic, "--partitions", "3", "--replication-factor", "3")...)
	// The broker asked may learn of the topic from the metadata log a
	// moment after the controller answered the creation, as in Kafka.
	waitUntil(t, 15*time.Second, topic+" on a line of its own in --list", func() bool {
		code, out := sluiceAdmin(t, topics("--list")...)
		return code == 0 && strings.Contains("\n"+out, "\n"+topic+"\n")
	})
	var described []describedTopic
	waitUntil(t, 15*time.Second, "three in sync replicas of each partition in --describe --json", func() bool {
		_, js := runStdout(t, t.TempDir(), topics("--describe", "--topic", topic, "--json")...)
		described = nil
		if err := json.Unmarshal([]byte(js), &described); err != nil {
			t.Fatalf("--describe --json: %v\n%s", err, js)
		}
		return fullyReplicated(described, topic, partitions)
	})
	if d := described[0]; d.ReplicationFactor != 3 || d.PartitionCount != partitions {
		t.Fatalf("--describe --json: %+v", d)
	}

	produceN(t, c.node(1).Address, topic, partitions, 25)
	if read := kcatGroup(t, bootstrap, groupID, topic); len(read) != partitions*25 {
		t.Fatalf("kcat -G read %d records, want %d", len(read), partitions*25)
	}
	if out := wantRun(t, 0, groupID, groups("--list")...); !strings.Contains(out, "consumer") {
		t.Fatalf("--list does not give %s's protocol type:\n%s", groupID, out)
	}
	_, js := runStdout(t, t.TempDir(), groups("--describe", "--group", groupID, "--json")...)
	var d describedGroupOut
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatalf("groups --describe --json: %v\n%s", err, js)
	}
	if d.Group != groupID || d.State != "Empty" || len(d.Partitions) != partitions {
		t.Fatalf("groups --describe --json: %+v", d)
	}
	for i, p := range d.Partitions {
		if p.Topic != topic || p.Partition != int32(i) || p.Committed != 25 || p.LogEnd != 25 || p.Lag != 0 {
			t.Fatalf("groups --describe --json partition %d: %+v, want committed 25, log end 25, lag 0", i, p)
		}
	}

	wantRun(t, 1, "describe topic nope on "+bootstrap+": UNKNOWN_TOPIC_OR_PARTITION", topics("--describe", "--topic", "nope")...)
	closed := freeAddr(t)
	wantRun(t, 1, "broker "+closed, "topics", "--bootstrap-server", closed, "--timeout", "2s", "--list")
	wantRun(t, 1, "broker "+closed, "groups", "--bootstrap-server", closed, "--timeout", "2s", "--list")
	wantRun(t, 2, "unknown flag: --partitons", topics("--describe", "--partitons", "3")...)
	wantRun(t, 2, "unknown flag: --grup", groups("--describe", "--grup", groupID)...)
}

// fullyReplicated: the one topic described has its partitions, each with
// a leader among three replicas, all three in sync.
func fullyReplicated(described []describedTopic, topic string, partitions int) bool {
	if len(described) != 1 || described[0].Topic != topic || len(described[0].Partitions) != partitions {
		return false
	}
	for _, p := range described[0].Partitions {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 || !slices.Contains(p.Replicas, p.Leader) {
			return false
		}
	}
	return true
}
