package group

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// modelMember is what a client knows of its membership.
type modelMember struct {
	id         string
	generation int32
	leader     bool
	members    []string // the generation's members, when leader
	join, sync ReplyTo
	// instance is the group.instance.id of a static member.
	instance *string
}

// groupMachine drives one group with up to four members through joins,
// syncs, heartbeats, commits, leaves, time and coordinator reloads, and
// checks what a consumer group promises.
type groupMachine struct {
	h       *harness
	members []*modelMember
	// committed is the model of committed offsets: the last commit the
	// coordinator accepted, per partition.
	committed map[int32]int64
	// assigned is each generation's assignment as its leader synced it.
	assigned map[int32]map[string]string
	// generation is the last generation the log recorded.
	generation int32
	// staticIDs are every member id the static instance has had: a new
	// one may inherit the assignment of any (a reload restores members
	// whose leave the log never recorded).
	staticIDs []string
}

func (m *groupMachine) init(t *rapid.T) {
	m.h = newHarness(t, testConfig())
	m.committed = map[int32]int64{}
	m.assigned = map[int32]map[string]string{}
}

// collect reads the answers that arrived for the members' waiting joins
// and syncs.
func (m *groupMachine) collect(t *rapid.T) {
	for _, mm := range m.members {
		if mm.join != 0 && m.h.answered(mm.join) {
			r := m.h.joinReply(mm.join)
			mm.join = 0
			if r.ErrorCode == 0 {
				mm.id = r.MemberID // a static member's id changes when it rejoins
				if mm.instance != nil && !slices.Contains(m.staticIDs, mm.id) {
					m.staticIDs = append(m.staticIDs, mm.id)
				}
				mm.generation, mm.leader = r.Generation, r.LeaderID == mm.id
				mm.members = nil
				for _, x := range r.Members {
					mm.members = append(mm.members, x.MemberID)
				}
			}
		}
		if mm.sync != 0 && m.h.answered(mm.sync) {
			r := m.h.syncReply(mm.sync)
			mm.sync = 0
			if r.ErrorCode == 0 {
				want, ok := m.assigned[mm.generation][mm.id]
				if mm.instance != nil { // a static member keeps its instance's assignment
					for _, past := range m.staticIDs {
						if a, found := m.assigned[mm.generation][past]; !ok && found && string(r.MemberAssignment) == a {
							want, ok = a, true
						}
					}
				}
				if !ok || string(r.MemberAssignment) != want {
					t.Fatalf("member %s got assignment %q in generation %d, the leader gave it %q", mm.id, r.MemberAssignment, mm.generation, want)
				}
			}
		}
	}
}

func (m *groupMachine) pick(t *rapid.T) *modelMember {
	if len(m.members) == 0 {
		t.Skip("no members")
	}
	return rapid.SampledFrom(m.members).Draw(t, "member")
}

func (m *groupMachine) Join(t *rapid.T) {
	if len(m.members) >= 4 {
		t.Skip("full")
	}
	id, to := m.h.newMember("g")
	m.members = append(m.members, &modelMember{id: id, join: to})
	m.collect(t)
}

// StaticJoin joins (or rejoins, as after a client restart) the one static
// member: it gets a new member id at once, and its old id is fenced.
func (m *groupMachine) StaticJoin(t *rapid.T) {
	var mm *modelMember
	for _, x := range m.members {
		if x.instance != nil {
			mm = x
		}
	}
	if mm == nil {
		if len(m.members) >= 4 {
			t.Skip("full")
		}
		instance := "static-1"
		mm = &modelMember{instance: &instance}
		m.members = append(m.members, mm)
	}
	if mm.join != 0 {
		t.Skip("already joining")
	}
	old := mm.id
	mm.id = "" // a restarted client knows its instance id only
	mm.join = m.h.join(joinRequest("g", "", mm.instance))
	m.collect(t)
	if old != "" {
		if code := m.h.heartbeat("g", old, mm.generation, mm.instance); code == 0 {
			t.Fatalf("the replaced static member id %s still heartbeats", old)
		}
		if code := m.h.commit("g", old, mm.generation, "t", 0, 1); code == 0 {
			t.Fatalf("the replaced static member id %s still commits", old)
		}
	}
}

func (m *groupMachine) Rejoin(t *rapid.T) {
	mm := m.pick(t)
	if mm.join != 0 {
		t.Skip("already joining")
	}
	mm.join = m.h.join(joinRequest("g", mm.id, nil))
	m.collect(t)
}

func (m *groupMachine) Sync(t *rapid.T) {
	mm := m.pick(t)
	if mm.sync != 0 || mm.join != 0 {
		t.Skip("waiting")
	}
	var assign map[string]string
	if mm.leader {
		assign = map[string]string{}
		for i, id := range mm.members {
			assign[id] = fmt.Sprintf("p%d-g%d", i, mm.generation)
		}
		if g := m.h.c.groups["g"]; g != nil && g.generation == mm.generation && g.state == CompletingRebalance {
			m.assigned[mm.generation] = assign
		}
	}
	mm.sync = m.h.sync("g", mm.id, mm.generation, assign)
	m.collect(t)
}

func (m *groupMachine) Heartbeat(t *rapid.T) {
	mm := m.pick(t)
	m.h.heartbeat("g", mm.id, mm.generation, nil)
	m.collect(t)
}

func (m *groupMachine) Commit(t *rapid.T) {
	mm := m.pick(t)
	partition := rapid.Int32Range(0, 2).Draw(t, "partition")
	offset := rapid.Int64Range(0, 1000).Draw(t, "offset")
	g := m.h.c.groups["g"]
	allowed := g != nil && g.member(mm.id) != nil && g.generation == mm.generation && g.state != CompletingRebalance
	code := m.h.commit("g", mm.id, mm.generation, "t", partition, offset)
	if code == 0 && !allowed {
		t.Fatalf("commit from %s of generation %d accepted outside its generation", mm.id, mm.generation)
	}
	if code == 0 {
		m.committed[partition] = offset
	}
	m.collect(t)
}

func (m *groupMachine) Leave(t *rapid.T) {
	mm := m.pick(t)
	m.h.leaveAs("g", mm.id, mm.instance)
	m.collect(t)
	for i, x := range m.members {
		if x == mm {
			m.members = append(m.members[:i], m.members[i+1:]...)
			break
		}
	}
	if mm.join != 0 || mm.sync != 0 {
		if (mm.join != 0 && !m.h.answered(mm.join)) || (mm.sync != 0 && !m.h.answered(mm.sync)) {
			t.Fatal("a member that left still has a request waiting")
		}
	}
}

func (m *groupMachine) Advance(t *rapid.T) {
	m.h.advance(time.Duration(rapid.IntRange(0, 15_000).Draw(t, "ms")) * time.Millisecond)
	m.collect(t)
}

// Reload restarts the coordinator on its log, as a broker restart does:
// waiting requests are answered NOT_COORDINATOR first.
func (m *groupMachine) Reload(t *rapid.T) {
	before := m.h.c.groups["g"]
	var state State
	var generation int32
	var ids []string
	if before != nil {
		state, generation = before.state, before.generation
		for _, x := range before.members {
			ids = append(ids, x.id)
		}
	}
	for _, r := range m.h.c.Unload(m.h.c.Partition("g")) {
		m.h.apply(Output{Replies: []Reply{r}})
	}
	m.h.reload()
	m.collect(t)
	after := m.h.c.groups["g"]
	if before != nil && (state == Stable || state == Empty) && before.generation > 0 {
		if after == nil || after.state != state || after.generation != generation || len(after.members) != len(ids) {
			t.Fatalf("reload of a %s group at generation %d with %d members gave %+v", state, generation, len(ids), after)
		}
	}
}

func (m *groupMachine) Check(t *rapid.T) {
	// The deadline heap agrees with a walk over every group.
	var want time.Duration
	found := false
	for _, g := range m.h.c.groups {
		if d, ok := g.nextDeadline(); ok && (!found || d < want) {
			want, found = d, true
		}
	}
	if got, ok := m.h.c.NextDeadline(); ok != found || got != want {
		t.Fatalf("next deadline %v (%v), every group says %v (%v)", got, ok, want, found)
	}
	for p, want := range m.committed {
		got, ok := m.h.c.Committed("g", "t", p)
		if !ok || got.Offset != want {
			t.Fatalf("partition %d: committed %d (%v), the model says %d", p, got.Offset, ok, want)
		}
	}
	g := m.h.c.groups["g"]
	if g == nil {
		return
	}
	// Generations are recorded when a rebalance completes (Stable) or the
	// group empties; one that ended in between is not in the log, and a
	// reload may hand its number out again (as Kafka does; new member ids
	// fence the old members).
	if g.generation < m.generation {
		t.Fatalf("generation went back from the recorded %d to %d", m.generation, g.generation)
	}
	if g.state == Stable || g.state == Empty {
		m.generation = g.generation
	}
	if g.state == Stable {
		for _, x := range g.members {
			if x.assignment == nil {
				t.Fatalf("stable member %s has no assignment", x.id)
			}
		}
	}
}

func TestGroupStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &groupMachine{}
		m.init(t)
		t.Repeat(rapid.StateMachineActions(m))
		// Silence: every member's session ends, every waiting request is
		// answered and the group is empty.
		m.h.advance(2 * time.Minute)
		m.collect(t)
		for _, mm := range m.members {
			if mm.join != 0 || mm.sync != 0 {
				t.Fatalf("member %s still waits after every session ended", mm.id)
			}
		}
		if g := m.h.c.groups["g"]; g != nil && (g.state != Empty || len(g.members) > 0) {
			t.Fatalf("group %s with %d members after every session ended", g.state, len(g.members))
		}
	})
}
