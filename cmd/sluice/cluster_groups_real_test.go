package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-sim/sluice/broker/group"
)

// TestClusterUpGroupSurvivesCoordinatorKill: against `sluice cluster up
// --brokers 3`, kcat -G reads a topic through a group and commits;
// FindCoordinator names the leader of the group's __consumer_offsets
// partition and `sluice groups --describe` shows the committed offsets.
// Then more is written and the coordinator's process is killed with
// SIGKILL: a second kcat -G of the group reads only the new records, its
// offsets served by the partition's new leader.
func TestClusterUpGroupSurvivesCoordinatorKill(t *testing.T) {
	c := startLocalCluster(t, "--brokers", "3")
	const topic, groupID, partitions = "orders", "mygroup", 4
	bootstrap := c.file.Bootstrap
	wantRun(t, 0, "Created topic orders.", "topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
		"--partitions", fmt.Sprint(partitions), "--replication-factor", "3")
	produceN(t, c.node(1).Address, topic, partitions, 25)

	read := kcatGroup(t, bootstrap, groupID, topic)
	if len(read) != 100 {
		t.Fatalf("kcat -G read %d records, want 100", len(read))
	}
	wantValues(t, read, partitions, 0, 25)
	coord := groupCoordinator(t, c.node(1).Address, groupID)
	index := group.PartitionFor(groupID, group.DefaultConfig().Partitions)
	if leader, err := leaderOf(bootstrap, group.OffsetsTopic, index); err != nil || leader != coord {
		t.Fatalf("the coordinator of %s is %d; the leader of %s-%d is %d (%v)", groupID, coord, group.OffsetsTopic, index, leader, err)
	}
	wantDescribed(t, bootstrap, groupID, topic, partitions, 25)

	produceN(t, c.node(1).Address, topic, partitions, 30) // values <p>-0..29 again, at offsets 25..54
	if err := syscall.Kill(c.node(coord).PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var survivors []string
	for _, n := range c.file.Nodes {
		if n.ID != coord {
			survivors = append(survivors, n.Address)
		}
	}
	survivor := survivors[0]
	// kcat is given every broker, the dead one too, as a client would be.
	again := kcatGroup(t, bootstrap, groupID, topic)
	if len(again) != 120 {
		t.Fatalf("kcat -G after the coordinator's kill read %d records, want the 120 new ones", len(again))
	}
	wantValues(t, again, partitions, 0, 30)
	if next := groupCoordinator(t, survivor, groupID); next == coord {
		t.Fatalf("broker %d, killed, is still named the coordinator", coord)
	}
	wantCommitted(t, "after the coordinator's kill", committed(t, survivor, groupID, topic), partitions, 55)
	// franz-go's admin client may send a group request to the dead seed
	// broker and fail it ("unable to dial") rather than try another, so
	// the tool is given the live ones.
	wantDescribed(t, strings.Join(survivors, ","), groupID, topic, partitions, 55)
}

// groupCoordinator is the broker FindCoordinator names for a group.
func groupCoordinator(t *testing.T, addr, groupID string) int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	found := kadm.NewClient(cl).FindGroupCoordinators(ctx, groupID)
	r, ok := found[groupID]
	if !ok || r.Err != nil {
		t.Fatalf("find the coordinator of %s at %s: %v", groupID, addr, r.Err)
	}
	return r.NodeID
}

// wantDescribed runs `sluice groups --describe` and expects each
// partition's committed offset and log end at offset, lag 0.
func wantDescribed(t *testing.T, bootstrap, groupID, topic string, partitions int32, offset int) {
	t.Helper()
	out := wantRun(t, 0, "Group "+groupID+": Empty", "groups", "--bootstrap-server", bootstrap, "--describe", "--group", groupID)
	for p := range partitions {
		row := fmt.Sprintf("│ %s │ %s │ %-9d │ %-14d │ %-14d │ 0   │", groupID, topic, p, offset, offset)
		if !strings.Contains(out, row) {
			t.Fatalf("--describe lacks %q:\n%s", row, out)
		}
	}
}
