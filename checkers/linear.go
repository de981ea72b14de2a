package checkers

import (
	"bytes"
	"cmp"
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluice-sim/sluice/checkers/history"
)

const (
	// linearTimeoutMin is the least budget a window gets, so that a small
	// window among large ones is still decided.
	linearTimeoutMin = 20 * time.Millisecond
	// linearWindowOpsMax bounds the ops porcupine is given at once: its
	// memory grows as ops squared over 8 bytes (a bitset per state).
	linearWindowOpsMax = 32_768
	// stuckShownMax bounds the ops an illegal partition's example names.
	stuckShownMax = 3
	// recordsShownMax bounds the records an op description lists.
	recordsShownMax = 4
)

// CheckLinearizable checks with porcupine that every partition behaved as
// one append-only log. Partitions are checked one by one, each cut into
// windows that no op spans (see linearWindows); the windows' budgets split
// Options.LinearTimeout in proportion to their op counts (at least
// linearTimeoutMin each), and a partition with a window that runs out is
// unknown.
//
// The model of a partition is its log as a sorted list of (offset, value):
//
//   - A send appends its value at its offset, and sends append in offset
//     order (see partitionModel). The offset is pinned: an acknowledged
//     send's is the one acknowledged, an info or never-completed send's is
//     the lowest offset at which a poll read its value. An info send nobody
//     read is left out: whether it landed is unobservable, and leaving it
//     out keeps every modelled send pinned, which keeps the search near
//     linear. Failed sends are left out: they did not happen. An op that
//     never completes returns at infinity, so it may linearize at any
//     point after its call.
//   - A poll becomes one observation per partition it read: its records
//     there must be entries of the log at the linearization point, and
//     consecutive ones (no entry of the log between two records read in a
//     row). Gaps in offsets that no entry fills are allowed: transaction
//     markers, compacted records and unread info sends leave them. Where a
//     poll starts is not modelled; the anomaly checker follows consumers.
//     Polls of several partitions are not atomic across them, as in Kafka.
//
// Time is the position in the history, which is in real-time order; Op.Time
// is not consulted.
func CheckLinearizable(h history.History, opts Options) Verdict {
	opts = opts.withDefaults()
	return checkLinearizable(indexHistory(h), opts)
}

type linKind uint8

const (
	linSend linKind = iota
	linPoll
)

// linOp is one modelled operation on one partition, the porcupine input.
type linOp struct {
	kind linKind
	// send: the entry appended.
	entry logEntry
	// poll: the records read on this partition, in order.
	records []polledRecord
	// ops are the history positions of the invoke and the completion (-1
	// if none), for reports.
	invokePos, donePos int
}

// partitionModel is the model of one partition whose modelled sends have
// the distinct offsets order, sorted, starting from the log init. Sends
// must append in offset order, each at the next offset of order: the log
// cannot grow past an offset some modelled send still has to fill. Without
// this rule an info send, which may linearize any time after its call,
// could jump ahead and every send below it would then be stuck until the
// search backtracks, exponential in the concurrent polls.
func partitionModel(order []int64, init *plog, superseded []bool) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init },
		Step: func(state, input, _ any) (bool, any) {
			l := state.(*plog)
			op := input.(*linOp)
			if op.kind == linSend {
				if l.Len() >= len(order) || op.entry.offset != order[l.Len()] {
					return false, nil
				}
				return true, l.Append(op.entry)
			}
			return pollFits(l, op.records, superseded), l
		},
		Equal: func(a, b any) bool { return a.(*plog).Equal(b.(*plog)) },
		Hash:  func(s any) uint64 { return s.(*plog).hash },
	}
}

// sendOffsets is the sorted, distinct offsets of the modelled sends in ops.
func sendOffsets(ops []porcupine.Operation) []int64 {
	var order []int64
	for _, op := range ops {
		if in := op.Input.(*linOp); in.kind == linSend {
			order = append(order, in.entry.offset)
		}
	}
	slices.Sort(order)
	return slices.Compact(order)
}

// pollFits reports whether records are consecutive entries of l, but for
// entries between them that compaction may have removed (superseded, nil
// when the partition is not compacted).
func pollFits(l *plog, records []polledRecord, superseded []bool) bool {
	at := l.Find(records[0].offset)
	if at < 0 {
		return false
	}
	for _, r := range records {
		for {
			if at >= l.Len() {
				return false
			}
			e := l.At(at)
			if e.offset == r.offset && e.value == r.value {
				break
			}
			if superseded == nil || e.offset > r.offset || !superseded[e.value] {
				return false
			}
			at++
		}
		at++
	}
	return true
}

// linearOps splits the history into per-partition porcupine operations,
// each partition's in history order (sends and polls merged by their
// invoke positions, which are distinct), the order linearWindows sorts
// them into: it then finds them sorted and sorts nothing.
func linearOps(ix *indexed, reads readSummary) [][]porcupine.Operation {
	byTP := make([][]porcupine.Operation, len(ix.tps))
	for tp, n := range linearOpsBound(ix) {
		byTP[tp] = make([]porcupine.Operation, 0, n)
	}
	si, pi := 0, 0
	for si < len(ix.sends) || pi < len(ix.polls) {
		if pi == len(ix.polls) || (si < len(ix.sends) && ix.sends[si].invokePos < ix.polls[pi].invokePos) {
			addSendOp(byTP, &ix.sends[si], reads)
			si++
		} else {
			addPollOps(byTP, &ix.polls[pi])
			pi++
		}
	}
	return byTP
}

// linearOpsBound is, per partition, at least how many ops linearOps gives
// it (a send each, a poll per run of its records), so that each
// partition's ops are allocated once.
func linearOpsBound(ix *indexed) []int {
	bound := make([]int, len(ix.tps))
	for i := range ix.sends {
		bound[ix.sends[i].tp]++
	}
	for i := range ix.polls {
		records := ix.polls[i].records
		for k, r := range records {
			if k == 0 || records[k-1].tp != r.tp {
				bound[r.tp]++
			}
		}
	}
	return bound
}

func addSendOp(byTP [][]porcupine.Operation, s *sendRec, reads readSummary) {
	op := &linOp{kind: linSend, invokePos: s.invokePos, donePos: s.donePos}
	ret := int64(math.MaxInt64)
	switch {
	case s.outcome == outcomeOK:
		op.entry = logEntry{offset: s.offset, value: s.value}
		ret = int64(s.donePos)
	case s.outcome == outcomeFail:
		return
	case reads.polledOffset[s.value] >= 0:
		op.entry = logEntry{offset: reads.polledOffset[s.value], value: s.value}
	default:
		return
	}
	byTP[s.tp] = append(byTP[s.tp], porcupine.Operation{
		ClientId: s.process, Input: op, Call: int64(s.invokePos), Return: ret,
	})
}

// addPollOps adds a poll's op on each partition it read. Records of one
// partition keep their order; partitions are taken in id order so that op
// order is deterministic. A poll's records come in runs of one partition,
// one run per partition, so each op's records are a run of the poll's own
// (ops only read them); a partition met in two runs has its records
// copied together.
func addPollOps(byTP [][]porcupine.Operation, p *pollRec) {
	if p.outcome != outcomeOK || len(p.records) == 0 {
		return
	}
	var runRoom [8][]polledRecord
	runs := runRoom[:0]
	for start := 0; start < len(p.records); {
		end := start + 1
		for end < len(p.records) && p.records[end].tp == p.records[start].tp {
			end++
		}
		runs = append(runs, p.records[start:end:end])
		start = end
	}
	slices.SortStableFunc(runs, func(a, b []polledRecord) int { return cmp.Compare(a[0].tp, b[0].tp) })
	for i := 0; i < len(runs); {
		j := i + 1
		for j < len(runs) && runs[j][0].tp == runs[i][0].tp {
			j++
		}
		records := runs[i]
		if j > i+1 {
			records = slices.Concat(runs[i:j]...)
		}
		addPollOp(byTP, p, records)
		i = j
	}
}

// addPollOp adds a poll's op on the partition of records.
func addPollOp(byTP [][]porcupine.Operation, p *pollRec, records []polledRecord) {
	tp := records[0].tp
	byTP[tp] = append(byTP[tp], porcupine.Operation{
		ClientId: p.process,
		Input: &linOp{kind: linPoll, records: records,
			invokePos: p.invokePos, donePos: p.donePos},
		Call: int64(p.invokePos), Return: int64(p.donePos),
	})
}

func checkLinearizable(ix *indexed, opts Options) Verdict {
	c := linearCheck{
		ix: ix, opts: opts, f: newFindings(opts.ExamplesMax), notes: []string{},
		stats: map[string]int64{
			"partitions-ok": 0, "partitions-nonlinearizable": 0, "partitions-unknown": 0,
			"ops-modelled": 0, "windows": 0, "windows-witnessed": 0,
		},
	}
	c.superseded = supersededValues(ix, opts.Compacted)
	byTP := linearOps(ix, summariseReads(ix))
	for _, ops := range byTP {
		c.total += len(ops)
	}
	c.stats["ops-modelled"] = int64(c.total)
	for tp, ops := range byTP {
		if len(ops) > 0 {
			c.checkPartition(int32(tp), ops)
		}
	}
	if len(ix.malformed) > 0 {
		c.notes = append(c.notes, fmt.Sprintf(
			"%d malformed ops were skipped; see the well-formed verdict", len(ix.malformed)))
	}
	anomalies := c.f.anomalies()
	unknown := len(anomalies) == 0 && c.stats["partitions-unknown"] > 0
	return Verdict{
		Checker:        CheckerLinearizable,
		Valid:          len(anomalies) == 0 && !unknown,
		Unknown:        unknown,
		Anomalies:      anomalies,
		Stats:          c.stats,
		Notes:          c.notes,
		Visualizations: c.visualizations,
	}
}

// linearCheck is one run of CheckLinearizable.
type linearCheck struct {
	ix    *indexed
	opts  Options
	f     *findings
	stats map[string]int64
	notes []string
	total int // ops over all partitions, to share the time budget
	// visualizations hold porcupine's pages of the first illegal windows.
	visualizations []Visualization
	// superseded marks what compaction may have removed (compaction.go).
	superseded []bool
}

// visualizationsMax bounds the porcupine pages one check keeps.
const visualizationsMax = 3

// checkPartition checks one partition window by window. A window that
// runs out of time leaves the partition unknown, but later windows are
// still checked: their starting log is forced (every earlier send, in
// offset order), so an illegal later window proves the partition illegal.
func (c *linearCheck) checkPartition(tp int32, ops []porcupine.Operation) {
	order := sendOffsets(ops)
	windows := linearWindows(ops, order)
	c.stats["windows"] += int64(len(windows))
	prefix := emptyPlog
	unknown := false
	for _, w := range windows {
		if len(w) > linearWindowOpsMax {
			unknown = true
			c.notes = append(c.notes, fmt.Sprintf("partition %s has a window of %d concurrent ops, more than "+
				"porcupine is given (%d): result unknown", c.ix.tpName(tp), len(w), linearWindowOpsMax))
		} else {
			budget := max(linearTimeoutMin,
				time.Duration(float64(c.opts.LinearTimeout)*float64(len(w))/float64(c.total)))
			model := partitionModel(order, prefix, c.superseded)
			if c.witnessed(model, order, prefix, w) {
				prefix = appendSends(prefix, w)
				continue
			}
			switch porcupine.CheckOperationsTimeout(model, w, budget) {
			case porcupine.Unknown:
				unknown = true
				c.notes = append(c.notes, fmt.Sprintf("porcupine timed out on partition %s "+
					"(window of %d ops from op %d, budget %v): result unknown",
					c.ix.tpName(tp), len(w), c.ix.opIndex(int(w[0].Call)), budget))
			case porcupine.Illegal:
				c.stats["partitions-nonlinearizable"]++
				ex, info := c.ix.explainIllegal(tp, model, w, budget)
				c.f.add(KindNonlinearizable, ex)
				if len(c.visualizations) < visualizationsMax {
					c.visualizations = append(c.visualizations, c.ix.visualize(tp, model, info))
				}
				return
			}
		}
		prefix = appendSends(prefix, w)
	}
	if unknown {
		c.stats["partitions-unknown"]++
		return
	}
	c.stats["partitions-ok"]++
}

// witnessed reports whether a linearization of window w, found without
// porcupine, replays through the model: then porcupine, which is
// complete, would find one too, and the window is linearizable. It finds
// one for nearly every window of a correct run, in O(n log n) where
// porcupine's search keeps a bitset of the window per state it visits.
// When it finds none (an illegal window, or one it does not understand),
// porcupine decides as before.
//
// The model's log only grows, in offset order, so a send's place is
// fixed, and a poll that fits a log fits every longer one. Each send is
// put as early as its call and the send before it allow, which puts every
// send as early as any linearization can; each poll just after the send
// that completes what it read. A point is a history position plus a
// count of infinitesimal steps, and must lie before the op's return.
func (c *linearCheck) witnessed(model porcupine.Model, order []int64, prefix *plog, w []porcupine.Operation) bool {
	type point struct{ at, step int64 }
	before := func(a, b point) bool { return a.at < b.at || (a.at == b.at && a.step < b.step) }
	placed := make([]point, len(w))
	var sends []int
	for i := range w {
		if w[i].Input.(*linOp).kind == linSend {
			sends = append(sends, i)
		}
	}
	slices.SortFunc(sends, func(a, b int) int {
		return cmp.Compare(w[a].Input.(*linOp).entry.offset, w[b].Input.(*linOp).entry.offset)
	})
	base := prefix.Len()
	if base+len(sends) > len(order) {
		return false
	}
	// sendAt[k] is where the send of order[base+k] is placed.
	sendAt := make([]point, len(sends))
	last := point{at: math.MinInt64}
	for k, i := range sends {
		if w[i].Input.(*linOp).entry.offset != order[base+k] {
			return false // a repeated or missing offset: porcupine's call
		}
		p := point{at: w[i].Call}
		if !before(last, p) {
			p = point{at: last.at, step: last.step + 1}
		}
		if p.at >= w[i].Return {
			return false
		}
		placed[i], sendAt[k], last = p, p, p
	}
	for i := range w {
		in := w[i].Input.(*linOp)
		if in.kind != linPoll {
			continue
		}
		p := point{at: w[i].Call}
		// The poll needs the log up to its last record's offset.
		k, _ := slices.BinarySearch(order, in.records[len(in.records)-1].offset)
		if k -= base; k >= len(sendAt) {
			return false
		} else if k >= 0 && !before(sendAt[k], p) {
			p = point{at: sendAt[k].at, step: sendAt[k].step + 1}
		}
		if p.at >= w[i].Return {
			return false
		}
		placed[i] = p
	}
	seq := make([]int, len(w))
	for i := range seq {
		seq[i] = i
	}
	slices.SortStableFunc(seq, func(a, b int) int {
		if c := cmp.Compare(placed[a].at, placed[b].at); c != 0 {
			return c
		}
		return cmp.Compare(placed[a].step, placed[b].step)
	})
	return c.replays(model, w, seq)
}

// replays reports whether the ops of w in the order seq respect real time
// (no op placed after another that returned before it was called) and
// are each accepted by the model in turn.
func (c *linearCheck) replays(model porcupine.Model, w []porcupine.Operation, seq []int) bool {
	earliestReturn := int64(math.MaxInt64)
	for j := len(seq) - 1; j >= 0; j-- {
		if earliestReturn < w[seq[j]].Call {
			return false
		}
		earliestReturn = min(earliestReturn, w[seq[j]].Return)
	}
	state := model.Init()
	for _, i := range seq {
		ok, next := model.Step(state, w[i].Input, nil)
		if !ok {
			return false
		}
		state = next
	}
	c.stats["windows-witnessed"]++
	return true
}

// appendSends is l with the sends of window w appended in offset order,
// which is the log after w if w is linearizable.
func appendSends(l *plog, w []porcupine.Operation) *plog {
	var entries []logEntry
	for _, op := range w {
		if in := op.Input.(*linOp); in.kind == linSend {
			entries = append(entries, in.entry)
		}
	}
	slices.SortFunc(entries, func(a, b logEntry) int { return cmp.Compare(a.offset, b.offset) })
	for _, e := range entries {
		if l.Len() == 0 || e.offset > l.Last().offset {
			l = l.Append(e)
		}
	}
	return l
}

// linearWindows cuts one partition's ops into windows that no op spans,
// so that porcupine, whose memory grows with the square of the ops it is
// given, sees one window at a time.
//
// First it tightens the returns of sends that never completed: a send at
// offset o linearizes before any send at a higher offset, so it returns,
// at the latest, when the first of those returns. Without this an info
// send would span the rest of the history.
func linearWindows(ops []porcupine.Operation, order []int64) [][]porcupine.Operation {
	// latest[k] is the earliest finite return among sends whose offset is
	// order[k] or above.
	latest := make([]int64, len(order)+1)
	for k := range latest {
		latest[k] = math.MaxInt64
	}
	for _, op := range ops {
		if in := op.Input.(*linOp); in.kind == linSend && op.Return != math.MaxInt64 {
			k, _ := slices.BinarySearch(order, in.entry.offset)
			latest[k] = min(latest[k], op.Return)
		}
	}
	for k := len(order) - 1; k >= 0; k-- {
		latest[k] = min(latest[k], latest[k+1])
	}
	for i := range ops {
		in := ops[i].Input.(*linOp)
		if in.kind != linSend || ops[i].Return != math.MaxInt64 {
			continue
		}
		k, _ := slices.BinarySearch(order, in.entry.offset)
		// A return before the call would be illegal anyway; leave it
		// to porcupine to say so.
		if bound := latest[k+1]; bound != math.MaxInt64 && bound >= ops[i].Call {
			ops[i].Return = bound
		}
	}
	byCall := func(a, b porcupine.Operation) int {
		if c := cmp.Compare(a.Call, b.Call); c != 0 {
			return c
		}
		return cmp.Compare(a.Return, b.Return)
	}
	// linearOps gives them sorted: checking is linear, sorting is not.
	if !slices.IsSortedFunc(ops, byCall) {
		slices.SortFunc(ops, byCall)
	}
	var windows [][]porcupine.Operation
	start := 0
	reach := int64(math.MinInt64)
	for i, op := range ops {
		if i > start && reach < op.Call {
			windows = append(windows, ops[start:i])
			start = i
		}
		reach = max(reach, op.Return)
	}
	return append(windows, ops[start:])
}

// summariseReads is checkReads without reporting nor the last reads of
// each offset.
func summariseReads(ix *indexed) readSummary {
	return checkReads(ix, nil, newFindings(1))
}

// explainIllegal reruns porcupine on an illegal partition to name the ops
// its longest partial linearization could not take in.
func (ix *indexed) explainIllegal(tp int32, model porcupine.Model, ops []porcupine.Operation,
	budget time.Duration) (Example, porcupine.LinearizationInfo) {
	ex := Example{Partition: ix.tpName(tp), Offset: -1}
	result, info := porcupine.CheckOperationsVerbose(model, ops, budget)
	partials := info.PartialLinearizations()
	if result != porcupine.Illegal || len(partials) != 1 {
		ex.Detail = fmt.Sprintf("no linearization of the %d ops from op %d on %s",
			len(ops), ix.opIndex(int(ops[0].Call)), ix.tpName(tp))
		return ex, info
	}
	var longest []int
	for _, p := range partials[0] {
		if len(p) > len(longest) || (len(p) == len(longest) && slices.Compare(p, longest) < 0) {
			longest = p
		}
	}
	taken := make([]bool, len(ops))
	for _, id := range longest {
		taken[id] = true
	}
	var stuck []int
	for id := range ops {
		if !taken[id] {
			stuck = append(stuck, id)
		}
	}
	slices.SortFunc(stuck, func(a, b int) int {
		if c := cmp.Compare(ops[a].Call, ops[b].Call); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	var described []string
	for _, id := range stuck[:min(len(stuck), stuckShownMax)] {
		op := ops[id].Input.(*linOp)
		ex.Ops = append(ex.Ops, ix.opIndex(op.invokePos))
		described = append(described, ix.describeLinOp(op))
	}
	slices.Sort(ex.Ops)
	ex.Detail = fmt.Sprintf("no linearization of the %d ops from op %d on %s: at most %d fit; "+
		"%d cannot follow, first %s", len(ops), ix.opIndex(int(ops[0].Call)), ix.tpName(tp),
		len(longest), len(stuck), strings.Join(described, "; "))
	return ex, info
}

// visualize renders porcupine's page of an illegal window, with the
// operations and log states described in the history's own values.
func (ix *indexed) visualize(tp int32, model porcupine.Model, info porcupine.LinearizationInfo) Visualization {
	model.DescribeOperation = func(input, _ any) string { return ix.describeLinOp(input.(*linOp)) }
	model.DescribeState = func(state any) string {
		l := state.(*plog)
		if l.Len() == 0 {
			return "empty log"
		}
		last := l.Last()
		return fmt.Sprintf("%d records, last %d:%q", l.Len(), last.offset, ix.values[last.value])
	}
	var page bytes.Buffer
	if err := porcupine.Visualize(model, info, &page); err != nil {
		// Rendering into memory fails only on a programming error in
		// the describe functions; say so on the page rather than lose
		// the verdict.
		page.Reset()
		fmt.Fprintf(&page, "<p>porcupine could not render partition %s: %s</p>", html.EscapeString(ix.tpName(tp)), html.EscapeString(err.Error()))
	}
	return Visualization{Partition: ix.tpName(tp), HTML: page.Bytes()}
}

func (ix *indexed) describeLinOp(op *linOp) string {
	done := "never completed"
	if op.donePos >= 0 {
		done = fmt.Sprintf("%s op %d", ix.h[op.donePos].Type, ix.opIndex(op.donePos))
	}
	if op.kind == linSend {
		return fmt.Sprintf("send %q at offset %d (op %d, %s)",
			ix.values[op.entry.value], op.entry.offset, ix.opIndex(op.invokePos), done)
	}
	var recs []string
	for _, r := range op.records[:min(len(op.records), recordsShownMax)] {
		recs = append(recs, fmt.Sprintf("%d:%q", r.offset, ix.values[r.value]))
	}
	if len(op.records) > recordsShownMax {
		recs = append(recs, fmt.Sprintf("+%d more", len(op.records)-recordsShownMax))
	}
	return fmt.Sprintf("poll read [%s] (op %d, %s)", strings.Join(recs, " "), ix.opIndex(op.invokePos), done)
}
