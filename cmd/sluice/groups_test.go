package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestGroupsCommand(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", groupBrokerArgs...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, cl, "orders", 2)
	cl.Close()
	produceN(t, b.addr, "orders", 2, 10)
	bs := []string{"groups", "--bootstrap-server", b.addr}
	cmd := func(args ...string) []string { return append(append([]string{}, bs...), args...) }

	// A live member reading both partitions, committing as it goes.
	m := startGroupMember(t, "m", b.addr, "readers", "orders")
	waitFor(t, "20 records read", 20*time.Second, func() bool { return m.count() == 20 })
	waitFor(t, "offsets committed", 20*time.Second, func() bool {
		got := committed(t, b.addr, "readers", "orders")
		return got[0] == 10 && got[1] == 10
	})
	if out := wantRun(t, 0, "readers", cmd("--list")...); !strings.Contains(out, "Stable") {
		t.Fatalf("--list: %s", out)
	}
	out := wantRun(t, 0, "Group readers: Stable", cmd("--describe", "--group", "readers")...)
	for _, want := range []string{"CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "│ readers │ orders │ 1         │ 10             │ 10             │ 0   │",
		"#PARTITIONS", "orders-0,orders-1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("--describe lacks %q:\n%s", want, out)
		}
	}
	wantRun(t, 1, "offsets can be reset only while the group has no members, but it is Stable",
		cmd("--reset-offsets", "--group", "readers", "--topic", "orders", "--to-earliest", "--execute")...)
	m.leave()

	// The plan alone commits nothing.
	wantRun(t, 0, "Not committed", cmd("--reset-offsets", "--group", "readers", "--topic", "orders", "--to-offset", "4")...)
	if got := committed(t, b.addr, "readers", "orders"); got[0] != 10 {
		t.Fatalf("a plan without --execute committed: %v", got)
	}
	wantRun(t, 0, "NEW-OFFSET", cmd("--reset-offsets", "--group", "readers", "--all-topics", "--to-offset", "4", "--execute")...)
	if got := committed(t, b.addr, "readers", "orders"); got[0] != 4 || got[1] != 4 {
		t.Fatalf("after --to-offset 4: %v", got)
	}
	wantRun(t, 0, "NEW-OFFSET", cmd("--reset-offsets", "--group", "readers", "--topic", "orders", "--to-earliest", "--execute")...)
	if got := committed(t, b.addr, "readers", "orders"); got[0] != 0 || got[1] != 0 {
		t.Fatalf("after --to-earliest: %v", got)
	}
	// --to-offset past the end is kept at the log end, as Kafka does.
	wantRun(t, 0, "NEW-OFFSET", cmd("--reset-offsets", "--group", "readers", "--topic", "orders", "--to-offset", "999", "--execute")...)
	if got := committed(t, b.addr, "readers", "orders"); got[0] != 10 || got[1] != 10 {
		t.Fatalf("after --to-offset 999: %v", got)
	}
	wantRun(t, 0, "NEW-OFFSET", cmd("--reset-offsets", "--group", "readers", "--topic", "orders", "--to-earliest", "--execute")...)
	_, js := runStdout(t, t.TempDir(), cmd("--describe", "--group", "readers", "--json")...)
	var d describedGroupOut
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatalf("--describe --json: %v\n%s", err, js)
	}
	if d.State != "Empty" || len(d.Partitions) != 2 || d.Partitions[0].Committed != 0 || d.Partitions[0].Lag != 10 || d.Partitions[1].LogEnd != 10 {
		t.Fatalf("--describe --json after the reset: %+v", d)
	}
	// A consumer of the group starts again from the reset offsets.
	again := startGroupMember(t, "again", b.addr, "readers", "orders")
	waitFor(t, "the 20 records read again", 20*time.Second, func() bool { return again.count() == 20 })
	wantRun(t, 1, "delete group readers on "+b.addr+": NON_EMPTY_GROUP", cmd("--delete", "--group", "readers")...)
	again.leave()
	wantRun(t, 0, "Deleted group readers.", cmd("--delete", "--group", "readers")...)
	if got := committed(t, b.addr, "readers", "orders"); len(got) != 0 {
		t.Fatalf("a deleted group's offsets: %v", got)
	}
	wantRun(t, 1, "delete group readers on "+b.addr+": GROUP_ID_NOT_FOUND", cmd("--delete", "--group", "readers")...)

	wantRun(t, 1, "describe group nope on "+b.addr+": the group does not exist", cmd("--describe", "--group", "nope")...)
	wantRun(t, 1, "topic nope on "+b.addr+": UNKNOWN_TOPIC_OR_PARTITION",
		cmd("--reset-offsets", "--group", "other", "--topic", "nope", "--to-latest", "--execute")...)
}

func TestGroupsCommandBadInput(t *testing.T) {
	wantRun(t, 1, "broker 127.0.0.1:1", "groups", "--bootstrap-server", "127.0.0.1:1", "--timeout", "2s", "--list")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "--list"}, "--bootstrap-server is required"},
		{[]string{"groups", "--bootstrap-server", "x:1"}, "give exactly one of --list"},
		{[]string{"groups", "--bootstrap-server", "x:1", "--describe"}, "--group is required"},
		{[]string{"groups", "--bootstrap-server", "x:1", "--reset-offsets", "--group", "g", "--topic", "t"}, "exactly one of --to-earliest"},
		{[]string{"groups", "--bootstrap-server", "x:1", "--reset-offsets", "--group", "g", "--to-latest"}, "--topic T (repeatable) or --all-topics"},
		{[]string{"groups", "--bootstrap-server", "x:1", "--reset-offsets", "--group", "g", "--to-latest", "--to-earliest", "--all-topics"}, "exactly one of --to-earliest"},
		{[]string{"groups", "--bootstrap-server", "x:1", "--descibe"}, "unknown flag: --descibe"},
	} {
		wantRun(t, 2, tc.want, tc.args...)
	}
	wantRun(t, 0, "sluice groups --bootstrap-server localhost:9092 --describe --group readers", "groups", "--help")
}
