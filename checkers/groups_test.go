package checkers

import (
	"bytes"
	"slices"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

const testGroup = "g"

func (b *builder) groupAssign(proc int, gen int32, parts ...int32) {
	var tps []history.TopicPartition
	for _, p := range parts {
		tps = append(tps, history.TopicPartition{Topic: topic, Partition: p})
	}
	for _, t := range []history.Type{history.Invoke, history.OK} {
		b.add(history.Op{Process: proc, Type: t, F: history.Assign, Assign: tps, Group: testGroup, Generation: gen})
	}
}

// groupPoll is a member's poll, completed when the records were processed.
func (b *builder) groupPoll(proc int, records ...history.Record) {
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Poll, Group: testGroup})
	b.add(history.Op{Process: proc, Type: history.OK, F: history.Poll, Records: records, Group: testGroup})
}

func (b *builder) commit(proc int, gen int32, t history.Type, reset bool, part int32, offset int64) {
	offs := []history.Offset{{Topic: topic, Partition: part, Offset: offset}}
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Commit, Offsets: offs, Group: testGroup, Generation: gen})
	b.add(history.Op{Process: proc, Type: t, F: history.Commit, Offsets: offs, Group: testGroup, Generation: gen, Reset: reset})
}

// groupBase sends four records to partition 0; member 1 owns it in
// generation 1, reads two and commits 2.
func groupBase() *builder {
	b := &builder{}
	for i, v := range []string{"a", "b", "c", "d"} {
		b.send(0, 0, v, int64(i))
	}
	b.groupAssign(1, 1, 0)
	b.groupPoll(1, record(0, "a", 0), record(0, "b", 1))
	b.commit(1, 1, history.OK, false, 0, 2)
	return b
}

func groupKinds(t *testing.T, b *builder, unseen bool) []string {
	t.Helper()
	if r := CheckHistory(b.h, Options{}); !r.Valid {
		t.Fatalf("the hand-built history is malformed: %v", r.Anomalies)
	}
	v := CheckGroups(b.h, Options{UnseenIsAnomaly: unseen})
	if v.Valid != (len(v.Anomalies) == 0) {
		t.Fatalf("verdict valid %v with anomalies %v", v.Valid, v.Anomalies)
	}
	return kinds(v)
}

// TestGroupsValidRebalance: member 2 takes over at the committed offset,
// re-reading nothing lost; a later generation moves the partition back.
// Duplicates (b re-read after an uncommitted read) are no anomaly.
func TestGroupsValidRebalance(t *testing.T) {
	b := groupBase()
	b.groupPoll(1, record(0, "c", 2)) // read, never committed
	b.groupAssign(1, 2)
	b.groupAssign(2, 2, 0)
	b.groupPoll(2, record(0, "c", 2), record(0, "d", 3))
	b.commit(2, 2, history.OK, false, 0, 4)
	b.commit(1, 1, history.Fail, false, 0, 3) // a stale generation, refused
	b.groupAssign(1, 3, 0)
	if got := groupKinds(t, b, true); len(got) != 0 {
		t.Fatalf("a correct rebalance reported %v", got)
	}
	v := CheckGroups(b.h, Options{})
	if v.Stats["reads-again"] != 1 || v.Stats["commits-ok"] != 2 || v.Stats["generations"] != 3 {
		t.Fatalf("stats %v", v.Stats)
	}
}

func TestGroupsDoubleOwner(t *testing.T) {
	b := groupBase()
	b.groupAssign(2, 1, 0, 1)
	if got := groupKinds(t, b, false); !slices.Equal(got, []string{KindGroupDoubleOwner}) {
		t.Fatalf("got %v", got)
	}
	// The same partition in a later generation is a handover, not a clash.
	b = groupBase()
	b.groupAssign(2, 2, 0)
	if got := groupKinds(t, b, false); len(got) != 0 {
		t.Fatalf("a handover reported %v", got)
	}
}

func TestGroupsCommitBackwards(t *testing.T) {
	b := groupBase()
	b.commit(1, 1, history.OK, false, 0, 1)
	if got := groupKinds(t, b, false); !slices.Equal(got, []string{KindCommitBackwards}) {
		t.Fatalf("got %v", got)
	}
	// A commit begun before another completed may have taken effect
	// first: member 1 paused with its answer in flight.
	b = groupBase()
	offs := []history.Offset{{Topic: topic, Partition: 0, Offset: 3}}
	b.add(history.Op{Process: 1, Type: history.Invoke, F: history.Commit, Offsets: offs, Group: testGroup, Generation: 1})
	b.groupAssign(2, 2, 0)
	b.groupPoll(2, record(0, "c", 2), record(0, "d", 3))
	b.commit(2, 2, history.OK, false, 0, 4)
	b.add(history.Op{Process: 1, Type: history.OK, F: history.Commit, Offsets: offs, Group: testGroup, Generation: 1})
	if got := groupKinds(t, b, false); len(got) != 0 {
		t.Fatalf("overlapping commits reported %v", got)
	}
	// A reset may move it back; a failed commit does not count.
	b = groupBase()
	b.commit(1, 1, history.Fail, false, 0, 0)
	b.commit(1, 1, history.OK, true, 0, 0)
	if got := groupKinds(t, b, false); len(got) != 0 {
		t.Fatalf("a reset reported %v", got)
	}
}

// TestGroupsStartPastCommit: the next owner starts at 3 while the group
// committed 2 and nobody read c at 2.
func TestGroupsStartPastCommit(t *testing.T) {
	b := groupBase()
	b.groupAssign(2, 2, 0)
	b.groupPoll(2, record(0, "d", 3))
	if got := groupKinds(t, b, false); !slices.Equal(got, []string{KindStartPastCommit}) {
		t.Fatalf("got %v", got)
	}
	// Past the commit over what the group had read is no skip: the old
	// owner's commit of it may have been lost.
	b = groupBase()
	b.groupPoll(1, record(0, "c", 2))
	b.groupAssign(2, 2, 0)
	b.groupPoll(2, record(0, "d", 3))
	if got := groupKinds(t, b, true); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
}

// TestGroupsLostToGroup is commit-before-process: member 1 commits 4
// having processed only up to 2, and dies; its successor starts at 4, so
// c and d are lost to the group.
func TestGroupsLostToGroup(t *testing.T) {
	b := groupBase()
	b.add(history.Op{Process: 1, Type: history.Invoke, F: history.Poll, Group: testGroup})
	b.commit(1, 1, history.OK, false, 0, 4) // the poll never completes
	b.groupAssign(2, 2, 0)
	b.send(0, 0, "e", 4)
	b.groupPoll(2, record(0, "e", 4))
	got := groupKinds(t, b, false)
	if !slices.Equal(got, []string{KindLostToGroup}) {
		t.Fatalf("got %v", got)
	}
	if v := CheckGroups(b.h, Options{}); v.Anomalies[0].Count != 2 {
		t.Fatalf("want c and d lost: %v", v.Anomalies)
	}
}

func TestGroupsUnread(t *testing.T) {
	b := groupBase()
	if got := groupKinds(t, b, false); len(got) != 0 {
		t.Fatalf("without a drain, unread records are no anomaly: %v", got)
	}
	if got := groupKinds(t, b, true); !slices.Equal(got, []string{KindGroupUnread}) {
		t.Fatalf("got %v", got)
	}
}

// TestGroupsHistoryRoundTrip: commit ops and group fields survive the
// JSON lines format, and an old history without them still reads.
func TestGroupsHistoryRoundTrip(t *testing.T) {
	b := groupBase()
	var buf bytes.Buffer
	if err := history.Write(&buf, b.h); err != nil {
		t.Fatal(err)
	}
	h, err := history.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(h, b.h, func(x, y history.Op) bool {
		return x.Group == y.Group && x.Generation == y.Generation && slices.Equal(x.Offsets, y.Offsets)
	}) {
		t.Fatal("group fields lost in the round trip")
	}
	var bad bytes.Buffer
	bad.WriteString(`{"index":0,"time":0,"process":1,"type":"invoke","f":"commit"}` + "\n")
	if _, err := history.Read(&bad); err == nil {
		t.Fatal("a commit without a group was accepted")
	}
}
