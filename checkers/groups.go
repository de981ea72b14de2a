package checkers

import (
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/checkers/history"
)

// CheckerGroups names the consumer-group verdict.
const CheckerGroups = "groups"

// Consumer-group anomalies.
const (
	// KindGroupDoubleOwner: two members of one group own a partition in
	// one generation.
	KindGroupDoubleOwner = "group-double-owner"
	// KindCommitBackwards: a group's committed offset of a partition moved
	// backwards without a reset.
	KindCommitBackwards = "commit-backwards"
	// KindStartPastCommit: a member that took a partition over first read
	// past a record at or above the group's last committed offset that no
	// member of the group had read.
	KindStartPastCommit = "start-past-commit"
	// KindLostToGroup: a record below a committed offset that no member of
	// the group ever read: the group committed past what it processed.
	KindLostToGroup = "lost-to-group"
	// KindGroupUnread: an acknowledged record no member of the group read
	// (only with Options.UnseenIsAnomaly: the run drained the group).
	KindGroupUnread = "group-unread"
)

// groupState is what the history says of one group.
type groupState struct {
	name string
	// owners maps a generation to each partition's owning process.
	owners map[int32]map[history.TopicPartition]int
	// committed is each partition's last committed offset, in the order
	// commits completed ok; maxCommitted the highest since the last reset.
	committed    map[history.TopicPartition]int64
	maxCommitted map[history.TopicPartition]int64
	// before is, per process with a commit in flight, the highest offset
	// per partition that commits completed before it was invoked: only
	// those it must not go below. A commit that overlaps another may
	// take effect in either order (a member paused with its answer in
	// flight hears of it long after).
	before map[int]map[history.TopicPartition]int64
	// readAt maps a partition's offsets to the history position of the
	// first poll of the group that returned them.
	readAt map[history.TopicPartition]map[int64]int
	// starts are takeovers waiting for the member's first read.
	starts map[int]*takeover
}

// takeover is a member's newly owned partitions, with the group's
// committed offsets when it took them.
type takeover struct {
	pos       int
	committed map[history.TopicPartition]int64
}

// CheckGroups judges the consumer groups of h: ownership per generation,
// committed offsets that never go backwards, at-least-once delivery across
// rebalances (a new owner starts at or before the committed offset, and
// nothing below a committed offset went unread by the group), and, with
// Options.UnseenIsAnomaly, every acknowledged record read by the group.
// Duplicates after a rebalance are counted (stats), never an anomaly.
// Per-partition order is the kafka checker's.
func CheckGroups(h history.History, opts Options) Verdict {
	opts = opts.withDefaults()
	f := newFindings(opts.ExamplesMax)
	stats := map[string]int64{"groups": 0, "commits-ok": 0, "generations": 0, "reads-again": 0}
	known := knownOffsets(h)
	groups := map[string]*groupState{}
	var names []string
	groupOf := func(name string) *groupState {
		g := groups[name]
		if g == nil {
			g = &groupState{name: name, owners: map[int32]map[history.TopicPartition]int{},
				committed: map[history.TopicPartition]int64{}, maxCommitted: map[history.TopicPartition]int64{},
				readAt: map[history.TopicPartition]map[int64]int{}, starts: map[int]*takeover{},
				before: map[int]map[history.TopicPartition]int64{}}
			groups[name] = g
			names = append(names, name)
		}
		return g
	}
	for pos := range h {
		op := &h[pos]
		if op.Group == "" {
			continue
		}
		g := groupOf(op.Group)
		if op.F == history.Commit && op.Type == history.Invoke {
			g.onCommitInvoke(op)
		}
		if op.Type != history.OK {
			continue
		}
		switch op.F {
		case history.Assign:
			g.onAssign(h, pos, f)
		case history.Commit:
			stats["commits-ok"]++
			g.onCommit(h, pos, f)
		case history.Poll:
			stats["reads-again"] += g.onPoll(h, pos, known, f)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		g := groups[name]
		stats["groups"]++
		stats["generations"] += int64(len(g.owners))
		g.checkUnread(h, known, opts.UnseenIsAnomaly, f)
	}
	anomalies := f.anomalies()
	return Verdict{Checker: CheckerGroups, Valid: len(anomalies) == 0, Anomalies: anomalies,
		Stats: stats, Notes: []string{}}
}

// hasGroups reports whether h has group members' ops: only then does
// Check add the groups verdict, so reports of other histories keep theirs.
func hasGroups(h history.History) bool {
	for i := range h {
		if h[i].Group != "" {
			return true
		}
	}
	return false
}

// knownOffsets is every partition's offsets known to hold a record: an
// acknowledged send's or a polled record's, with its value.
func knownOffsets(h history.History) map[history.TopicPartition]map[int64]string {
	known := map[history.TopicPartition]map[int64]string{}
	add := func(r history.Record) {
		if r.Offset < 0 {
			return
		}
		m := known[r.TP()]
		if m == nil {
			m = map[int64]string{}
			known[r.TP()] = m
		}
		m[r.Offset] = r.Value
	}
	for i := range h {
		op := &h[i]
		if op.Type != history.OK {
			continue
		}
		if op.F == history.Send && op.Record != nil {
			add(*op.Record)
		}
		for _, r := range op.Records {
			add(r)
		}
	}
	return known
}

// sortedOffsets lists a partition's known offsets in order.
func sortedOffsets(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

func (g *groupState) onAssign(h history.History, pos int, f *findings) {
	op := &h[pos]
	if op.Generation <= 0 || len(op.Assign) == 0 {
		return // giving up an assignment, or outside a generation
	}
	owners := g.owners[op.Generation]
	if owners == nil {
		owners = map[history.TopicPartition]int{}
		g.owners[op.Generation] = owners
	}
	t := &takeover{pos: pos, committed: map[history.TopicPartition]int64{}}
	for _, tp := range op.Assign {
		if other, taken := owners[tp]; taken && other != op.Process {
			f.add(KindGroupDoubleOwner, Example{Partition: tp.String(), Offset: -1, Ops: []int{op.Index},
				Detail: fmt.Sprintf("group %s generation %d: process %d and process %d both own %s",
					g.name, op.Generation, other, op.Process, tp)})
			continue
		}
		owners[tp] = op.Process
		if c, ok := g.committed[tp]; ok {
			t.committed[tp] = c
		}
	}
	g.starts[op.Process] = t
}

// onCommitInvoke notes what the commit must not go below: the highest
// offsets committed before it began.
func (g *groupState) onCommitInvoke(op *history.Op) {
	floor := map[history.TopicPartition]int64{}
	for _, o := range op.Offsets {
		if c, ok := g.maxCommitted[o.TP()]; ok {
			floor[o.TP()] = c
		}
	}
	g.before[op.Process] = floor
}

func (g *groupState) onCommit(h history.History, pos int, f *findings) {
	op := &h[pos]
	floor := g.before[op.Process]
	delete(g.before, op.Process)
	for _, o := range op.Offsets {
		tp := o.TP()
		if last, ok := floor[tp]; ok && o.Offset < last && !op.Reset {
			f.add(KindCommitBackwards, Example{Partition: tp.String(), Offset: o.Offset, Ops: []int{op.Index},
				Detail: fmt.Sprintf("group %s: process %d committed %d, begun after %d was committed",
					g.name, op.Process, o.Offset, last)})
		}
		g.committed[tp] = o.Offset
		if op.Reset {
			g.maxCommitted[tp] = o.Offset
		} else {
			g.maxCommitted[tp] = max(g.maxCommitted[tp], o.Offset)
		}
	}
}

// onPoll notes what the group read, checks a takeover's first reads and
// returns how many records the group had read before.
func (g *groupState) onPoll(h history.History, pos int, known map[history.TopicPartition]map[int64]string, f *findings) int64 {
	op := &h[pos]
	t := g.starts[op.Process]
	first := map[history.TopicPartition]int64{}
	var again int64
	for _, r := range op.Records {
		tp := r.TP()
		if _, seen := first[tp]; !seen {
			first[tp] = r.Offset
		}
		m := g.readAt[tp]
		if m == nil {
			m = map[int64]int{}
			g.readAt[tp] = m
		}
		if _, read := m[r.Offset]; read {
			again++
			continue
		}
		m[r.Offset] = pos
	}
	if t == nil {
		return again
	}
	for tp, start := range first {
		c, ok := t.committed[tp]
		if !ok {
			continue
		}
		delete(t.committed, tp)
		for _, o := range sortedOffsets(known[tp]) {
			if o < c || o >= start {
				continue
			}
			if at, read := g.readAt[tp][o]; !read || at >= pos {
				f.add(KindStartPastCommit, Example{Partition: tp.String(), Offset: o, Values: []string{known[tp][o]},
					Ops: []int{h[t.pos].Index, op.Index},
					Detail: fmt.Sprintf("group %s: process %d took %s over at committed offset %d and first read %d, "+
						"past %d which no member had read", g.name, op.Process, tp, c, start, o)})
				break
			}
		}
	}
	return again
}

// checkUnread reports records below the group's highest committed offset
// that it never read (lost to the group) and, when the run drained,
// acknowledged records it never read at all.
func (g *groupState) checkUnread(h history.History, known map[history.TopicPartition]map[int64]string, unseen bool, f *findings) {
	tps := make([]history.TopicPartition, 0, len(g.readAt))
	for _, owners := range g.owners {
		for tp := range owners {
			if !slices.Contains(tps, tp) {
				tps = append(tps, tp)
			}
		}
	}
	slices.SortFunc(tps, compareTP)
	acked := ackedOffsets(h)
	for _, tp := range tps {
		top, committed := g.maxCommitted[tp]
		for _, o := range sortedOffsets(known[tp]) {
			if _, read := g.readAt[tp][o]; read {
				continue
			}
			ex := Example{Partition: tp.String(), Offset: o, Values: []string{known[tp][o]}}
			switch {
			case committed && o < top:
				ex.Detail = fmt.Sprintf("group %s committed %d but no member read offset %d", g.name, top, o)
				f.add(KindLostToGroup, ex)
			case unseen && acked[tp][o]:
				ex.Detail = fmt.Sprintf("group %s never read acknowledged offset %d", g.name, o)
				f.add(KindGroupUnread, ex)
			}
		}
	}
}

// ackedOffsets marks the offsets acknowledged sends landed at.
func ackedOffsets(h history.History) map[history.TopicPartition]map[int64]bool {
	out := map[history.TopicPartition]map[int64]bool{}
	for i := range h {
		op := &h[i]
		if op.F != history.Send || op.Type != history.OK || op.Record == nil || op.Record.Offset < 0 {
			continue
		}
		tp := op.Record.TP()
		if out[tp] == nil {
			out[tp] = map[int64]bool{}
		}
		out[tp][op.Record.Offset] = true
	}
	return out
}
