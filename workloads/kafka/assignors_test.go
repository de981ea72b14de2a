package kafka

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func tps(topic string, parts ...int32) []TopicPartition {
	out := []TopicPartition{}
	for _, p := range parts {
		out = append(out, TopicPartition{Topic: topic, Partition: p})
	}
	return out
}

func subs(ids ...string) []memberSubscription {
	var out []memberSubscription
	for _, id := range ids {
		out = append(out, memberSubscription{id: id, topics: []string{"t"}})
	}
	return out
}

func mustAssign(t *testing.T, name string, members []memberSubscription, parts map[string]int32) assignment {
	t.Helper()
	a, err := assign(name, members, parts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGroupAssignorRange(t *testing.T) {
	a := mustAssign(t, AssignorRange, subs("c", "a", "b"), map[string]int32{"t": 7})
	want := assignment{"a": tps("t", 0, 1, 2), "b": tps("t", 3, 4), "c": tps("t", 5, 6)}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Fatalf("range: got %v, want %v", a, want)
	}
}

func TestGroupAssignorRoundRobin(t *testing.T) {
	members := subs("a", "b")
	members = append(members, memberSubscription{id: "c", topics: []string{"u"}})
	a := mustAssign(t, AssignorRoundRobin, members, map[string]int32{"t": 3, "u": 2})
	want := assignment{"a": tps("t", 0, 2), "b": tps("t", 1), "c": tps("u", 0, 1)}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Fatalf("roundrobin: got %v, want %v", a, want)
	}
}

func TestGroupAssignorUnknown(t *testing.T) {
	if _, err := assign("sticky-ish", subs("a"), map[string]int32{"t": 1}); err == nil {
		t.Fatal("an unknown assignor was accepted")
	}
}

// owners counts, per partition, the members a round assigns it to.
func owners(a assignment) map[TopicPartition]int {
	n := map[TopicPartition]int{}
	for _, ps := range a {
		for _, tp := range ps {
			n[tp]++
		}
	}
	return n
}

// TestGroupAssignorCooperativeSticky runs KIP-429's two rounds: a member
// joins a group of two that owns everything; the first round withholds the
// partitions that move (so no partition has two owners), the second, after
// the owners revoked them, hands them over; the result is balanced and the
// members kept what they could.
func TestGroupAssignorCooperativeSticky(t *testing.T) {
	parts := map[string]int32{"t": 6}
	members := subs("a", "b", "c")
	members[0].owned = tps("t", 0, 1, 2)
	members[1].owned = tps("t", 3, 4, 5)
	first := mustAssign(t, AssignorCooperativeSticky, members, parts)
	if len(first["c"]) != 0 {
		t.Fatalf("the new member got %v while others still own them", first["c"])
	}
	if len(first["a"]) != 2 || len(first["b"]) != 2 {
		t.Fatalf("first round should leave a and b two each: %v", first)
	}
	for tp, n := range owners(first) {
		if n > 1 {
			t.Fatalf("%s assigned %d times: %v", tp, n, first)
		}
	}
	// The members revoke what they lost and rejoin owning what they kept.
	for i := range members {
		members[i].owned = first[members[i].id]
	}
	second := mustAssign(t, AssignorCooperativeSticky, members, parts)
	counts := owners(second)
	if len(counts) != 6 {
		t.Fatalf("second round assigns %d of 6 partitions: %v", len(counts), second)
	}
	for _, id := range []string{"a", "b", "c"} {
		if len(second[id]) != 2 {
			t.Fatalf("unbalanced: %v", second)
		}
	}
	for _, id := range []string{"a", "b"} {
		if !slices.Equal(second[id], first[id]) {
			t.Fatalf("%s lost %v it kept in round one: %v", id, first[id], second[id])
		}
	}
}

// TestGroupAssignorStickyKeepsOnLeave: when a member leaves, the others
// keep theirs and share the orphans; nothing moves between them.
func TestGroupAssignorStickyKeepsOnLeave(t *testing.T) {
	members := subs("a", "c")
	members[0].owned = tps("t", 0, 1)
	members[1].owned = tps("t", 4, 5)
	a := mustAssign(t, AssignorCooperativeSticky, members, map[string]int32{"t": 6})
	if !slices.Equal(a["a"][:2], tps("t", 0, 1)) || !slices.Contains(a["c"], TopicPartition{Topic: "t", Partition: 4}) ||
		!slices.Contains(a["c"], TopicPartition{Topic: "t", Partition: 5}) || len(a["a"])+len(a["c"]) != 6 {
		t.Fatalf("sticky after a leave: %v", a)
	}
	// Two members claiming one partition: only the first keeps it.
	members[1].owned = tps("t", 1)
	a = mustAssign(t, AssignorCooperativeSticky, members, map[string]int32{"t": 6})
	for tp, n := range owners(a) {
		if n > 1 {
			t.Fatalf("%s assigned %d times: %v", tp, n, a)
		}
	}
}

// TestGroupAssignorsCoverEveryPartition: every eager assignor hands out
// each partition exactly once, whatever the member count.
func TestGroupAssignorsCoverEveryPartition(t *testing.T) {
	for _, name := range Assignors {
		for members := 1; members <= 5; members++ {
			var ids []string
			for i := range members {
				ids = append(ids, fmt.Sprintf("m%d", i))
			}
			a := mustAssign(t, name, subs(ids...), map[string]int32{"t": 7})
			counts := owners(a)
			if len(counts) != 7 {
				t.Fatalf("%s with %d members assigns %d of 7: %v", name, members, len(counts), a)
			}
			for tp, n := range counts {
				if n != 1 {
					t.Fatalf("%s: %s assigned %d times", name, tp, n)
				}
			}
		}
	}
}

// TestGroupAssignorStickyProperties: for any group (members subscribed to
// the one topic, owning disjoint partitions, some gone), every round of
// cooperative-sticky gives no partition to two members and none to a
// member while another owns it; members revoking what they lose, the
// group reaches a balanced assignment of every partition by the second
// round, and a member never loses a partition it was given in round one.
func TestGroupAssignorStickyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		parts := rapid.Int32Range(1, 24).Draw(t, "partitions")
		n := rapid.IntRange(1, 6).Draw(t, "members")
		members := make([]memberSubscription, n)
		for i := range members {
			members[i] = memberSubscription{id: fmt.Sprintf("m%d", rapid.IntRange(0, 99).Draw(t, "id")*10+i), topics: []string{"t"}}
		}
		for p := range parts {
			if owner := rapid.IntRange(-1, n-1).Draw(t, "owner"); owner >= 0 {
				members[owner].owned = append(members[owner].owned, TopicPartition{Topic: "t", Partition: p})
			}
		}
		var first assignment
		for round := 1; round <= 2; round++ {
			a, err := assign(AssignorCooperativeSticky, members, map[string]int32{"t": parts})
			if err != nil {
				t.Fatal(err)
			}
			owner := map[TopicPartition]string{}
			for _, m := range members {
				for _, tp := range m.owned {
					owner[tp] = m.id
				}
			}
			for tp, count := range owners(a) {
				if count > 1 {
					t.Fatalf("round %d: %s given %d times: %v", round, tp, count, a)
				}
			}
			for id, tps := range a {
				for _, tp := range tps {
					if o, ok := owner[tp]; ok && o != id {
						t.Fatalf("round %d: %s given to %s while %s owns it", round, tp, id, o)
					}
				}
			}
			if round == 1 {
				first = a
			}
			for i := range members {
				members[i].owned = a[members[i].id]
			}
		}
		final := assignment{}
		for _, m := range members {
			final[m.id] = m.owned
			for _, tp := range first[m.id] {
				if !slices.Contains(m.owned, tp) {
					t.Fatalf("%s lost %s it was given in round one", m.id, tp)
				}
			}
		}
		counts := owners(final)
		if len(counts) != int(parts) {
			t.Fatalf("after two rounds %d of %d partitions are assigned: %v", len(counts), parts, final)
		}
		lo, hi := int(parts)/n, (int(parts)+n-1)/n
		for id, tps := range final {
			if len(tps) < lo || len(tps) > hi {
				t.Fatalf("%s holds %d, want %d..%d: %v", id, len(tps), lo, hi, final)
			}
		}
	})
}
