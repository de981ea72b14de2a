package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// sluiceAdmin runs an admin command of the built binary and returns its
// exit status and output (stdout and stderr together).
func sluiceAdmin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return run(t, t.TempDir(), args...)
}

func wantRun(t *testing.T, wantCode int, wantOut string, args ...string) string {
	t.Helper()
	code, out := sluiceAdmin(t, args...)
	if code != wantCode || !strings.Contains(out, wantOut) {
		t.Fatalf("sluice %s: exit %d, want %d with %q in:\n%s", strings.Join(args, " "), code, wantCode, wantOut, out)
	}
	return out
}

func TestTopicsCommand(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	bs := []string{"topics", "--bootstrap-server", b.addr}
	cmd := func(args ...string) []string { return append(append([]string{}, bs...), args...) }

	wantRun(t, 0, "Created topic orders.", cmd("--create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=60000")...)
	wantRun(t, 0, "Created topic audit.", cmd("--create", "--topic", "audit")...)
	if out := wantRun(t, 0, "orders", cmd("--list")...); !strings.Contains(out, "audit\norders\n") {
		t.Fatalf("--list: %q, want audit and orders in order", out)
	}
	out := wantRun(t, 0, "retention.ms=60000", cmd("--describe", "--topic", "orders")...)
	for _, want := range []string{"TOPIC", "LEADER-EPOCH", "ISR", "│ orders │ 2         │ 1      │"} {
		if !strings.Contains(out, want) {
			t.Fatalf("--describe lacks %q:\n%s", want, out)
		}
	}
	wantRun(t, 0, "Topic orders now has 5 partitions.", cmd("--alter", "--topic", "orders", "--partitions", "5")...)
	_, js := runStdout(t, t.TempDir(), cmd("--describe", "--json")...)
	var described []describedTopic
	if err := json.Unmarshal([]byte(js), &described); err != nil {
		t.Fatalf("--describe --json: %v\n%s", err, js)
	}
	if len(described) != 2 || described[1].Topic != "orders" || described[1].PartitionCount != 5 ||
		described[1].Configs["retention.ms"] != "60000" || described[1].Partitions[4].Leader != 1 {
		t.Fatalf("--describe --json: %+v", described)
	}
	wantRun(t, 0, "Deleted topic audit.", cmd("--delete", "--topic", "audit")...)
	if out := wantRun(t, 0, "orders", cmd("--list")...); strings.Contains(out, "audit") {
		t.Fatalf("a deleted topic is listed: %s", out)
	}

	// Errors name the broker, the topic and Kafka's error.
	wantRun(t, 1, "create topic orders on "+b.addr+": TOPIC_ALREADY_EXISTS", cmd("--create", "--topic", "orders")...)
	wantRun(t, 1, "describe topic nope on "+b.addr+": UNKNOWN_TOPIC_OR_PARTITION", cmd("--describe", "--topic", "nope")...)
	wantRun(t, 1, "alter topic nope on "+b.addr+": UNKNOWN_TOPIC_OR_PARTITION", cmd("--alter", "--topic", "nope", "--partitions", "2")...)
	wantRun(t, 1, "alter topic orders on "+b.addr+": INVALID_PARTITIONS", cmd("--alter", "--topic", "orders", "--partitions", "2")...)
	wantRun(t, 1, "delete topic nope on "+b.addr+": UNKNOWN_TOPIC_OR_PARTITION", cmd("--delete", "--topic", "nope")...)
	wantRun(t, 1, "INVALID_CONFIG", cmd("--create", "--topic", "bad", "--config", "retention.ms=soon")...)
}

func TestTopicsCommandBadInput(t *testing.T) {
	wantRun(t, 1, "broker 127.0.0.1:1", "topics", "--bootstrap-server", "127.0.0.1:1", "--timeout", "2s", "--list")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topics", "--list"}, "--bootstrap-server is required"},
		{[]string{"topics", "--bootstrap-server", "x:1"}, "give exactly one of --create"},
		{[]string{"topics", "--bootstrap-server", "x:1", "--list", "--delete"}, "give exactly one of --create"},
		{[]string{"topics", "--bootstrap-server", "x:1", "--create"}, "--topic is required"},
		{[]string{"topics", "--bootstrap-server", "x:1", "--alter", "--topic", "t"}, "--alter needs --partitions"},
		{[]string{"topics", "--bootstrap-server", "x:1", "--create", "--topic", "t", "--config", "nonsense"}, "want name=value"},
		{[]string{"topics", "--bootstrap-server", "x:1", "--lsit"}, "unknown flag: --lsit"},
	} {
		wantRun(t, 2, tc.want, tc.args...)
	}
	wantRun(t, 0, "sluice topics --bootstrap-server localhost:9092 --create", "topics", "--help")
}
