package checkers

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
)

// CheckerAvailability names the availability verdict.
const CheckerAvailability = "available"

// KindUnavailable: while at most one broker was down or cut off and the
// rest of the cluster was healthy, a partition acknowledged no write for
// longer than AvailabilityOptions.Bound although clients kept sending.
const KindUnavailable = "unavailable"

// AvailabilityOptions say what the cluster was, what the run did to it and
// how long a partition may take no write.
type AvailabilityOptions struct {
	// Brokers, Controllers and Clients are the nodes' names, as the
	// faults name them.
	Brokers, Controllers, Clients []string
	// Faults are every fault the run applied (planted episodes and the
	// generated schedule), in any order; At is on the history's clock.
	Faults []faults.Action
	// Bound is the longest a partition may go without acknowledging a
	// write, from a send invoked (or outstanding) inside a judged window.
	Bound time.Duration
	// Settle is how long a node or link still counts as faulted after its
	// fault ends: a restarted broker recovers, registers, catches up and
	// rejoins the ISR; a healed link waits for its stalled connections to
	// reset.
	Settle time.Duration
	// Start and End bound the judged time: the cluster comes up before
	// Start; the steady load (or the run) ends at End.
	Start, End time.Duration
	// ExamplesMax bounds the examples kept; zero means the default.
	ExamplesMax int
}

// CheckAvailability judges a broker cluster's availability from h and the
// faults: it finds the windows in which the faults leave at most one
// broker impaired, in a way a correct cluster rides out (down, paused, cut
// off from every other broker and controller, or cut off from one other
// broker while it reaches everything else), with every controller and
// client healthy and the rest of the network whole; or one controller
// down, paused or cut off from the rest, with every broker healthy (the
// others elect a leader among themselves; writes do not wait for the
// controllers). Windows with any other fault (a disk fault, a broker and
// a controller at once, a client cut off, a broker that reaches the
// controllers but no other broker, so that it keeps leading partitions
// whose ISR shrinks to itself) are not judged.
// Inside a judged window every send to a partition must be followed by
// an acknowledged send to that partition within Bound; a longer gap is
// reported as unavailable.
func CheckAvailability(h history.History, opts AvailabilityOptions) Verdict {
	if opts.ExamplesMax <= 0 {
		opts.ExamplesMax = examplesMaxDefault
	}
	f := newFindings(min(opts.ExamplesMax, examplesMaxLimit))
	windows := judgedWindows(opts)
	stats := map[string]int64{"windows-judged": int64(len(windows))}
	var judged time.Duration
	for _, w := range windows {
		judged += w.end - w.start
	}
	stats["judged-ms"] = judged.Milliseconds()
	sends := sendsByPartition(h)
	var longest time.Duration
	for _, tp := range sortedPartitions(sends) {
		longest = max(longest, checkPartitionAvailable(tp, sends[tp], windows, opts.Bound, f))
	}
	stats["longest-wait-ms"] = longest.Milliseconds()
	stats["bound-ms"] = opts.Bound.Milliseconds()
	notes := []string{}
	for i, w := range windows {
		if i == windowsNotedMax {
			notes = append(notes, fmt.Sprintf("and %d more judged windows", len(windows)-i))
			break
		}
		var whys []string
		for _, p := range w.parts {
			whys = append(whys, fmt.Sprintf("from %v %s", roundMs(p.start), p.why))
		}
		notes = append(notes, fmt.Sprintf("judged %v–%v: %s", roundMs(w.start), roundMs(w.end), strings.Join(whys, "; ")))
	}
	anomalies := f.anomalies()
	return Verdict{Checker: CheckerAvailability, Valid: len(anomalies) == 0, Anomalies: anomalies,
		Stats: stats, Notes: notes}
}

// windowsNotedMax bounds the judged windows a verdict's notes list.
const windowsNotedMax = 8

// partitionSends are one partition's sends: when each was invoked and
// completed (math.MaxInt64 if never), and the times of the acknowledged
// ones, sorted.
type partitionSends struct {
	invoked, done []int64
	invokeOps     []int
	acked         []int64
}

func sendsByPartition(h history.History) map[history.TopicPartition]*partitionSends {
	byTP := map[history.TopicPartition]*partitionSends{}
	pending := map[string]int{} // value → index in its partition's sends
	var lastTP history.TopicPartition
	var ps *partitionSends
	for i := range h {
		op := &h[i] // an op is large: not copied per op
		if op.F != history.Send || op.Record == nil {
			continue
		}
		// Runs of one partition are the rule: the map is asked once a run.
		if tp := op.Record.TP(); ps == nil || tp != lastTP {
			lastTP, ps = tp, byTP[tp]
			if ps == nil {
				ps = &partitionSends{}
				byTP[tp] = ps
			}
		}
		if op.Type == history.Invoke {
			pending[op.Record.Value] = len(ps.invoked)
			ps.invoked = append(ps.invoked, op.Time)
			ps.done = append(ps.done, math.MaxInt64)
			ps.invokeOps = append(ps.invokeOps, op.Index)
			continue
		}
		if i, ok := pending[op.Record.Value]; ok {
			ps.done[i] = op.Time
			delete(pending, op.Record.Value)
		}
		if op.Type == history.OK {
			ps.acked = append(ps.acked, op.Time)
		}
	}
	for _, ps := range byTP {
		slices.Sort(ps.acked)
	}
	return byTP
}

func sortedPartitions(m map[history.TopicPartition]*partitionSends) []history.TopicPartition {
	tps := make([]history.TopicPartition, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b history.TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return tps
}

// checkPartitionAvailable reports each gap longer than bound between a
// send wanting the partition inside a judged window (from its invoke, or
// from the window's start if it was outstanding then) and the next
// acknowledgement of a send to the partition, when the window lasts past
// the bound. It returns the longest wait it judged.
func checkPartitionAvailable(tp history.TopicPartition, ps *partitionSends, windows []window,
	bound time.Duration, f *findings) time.Duration {
	var longest time.Duration
	reported := map[int64]bool{} // the acknowledgement ending a reported gap
	for i := range ps.invoked {
		for _, w := range windows {
			from := max(ps.invoked[i], int64(w.start))
			if from >= ps.done[i] || from >= int64(w.end) || from+int64(bound) > int64(w.end) {
				continue
			}
			next := int64(math.MaxInt64)
			if j, _ := slices.BinarySearch(ps.acked, from); j < len(ps.acked) {
				next = ps.acked[j]
			}
			wait := time.Duration(next - from)
			longest = max(longest, min(wait, w.end-time.Duration(from)))
			if wait <= bound || reported[next] {
				continue
			}
			reported[next] = true
			until := "the end of the history"
			if next != math.MaxInt64 {
				until = roundMs(time.Duration(next)).String()
			}
			f.add(KindUnavailable, Example{Partition: tp.String(), Offset: -1, Ops: []int{ps.invokeOps[i]},
				Detail: fmt.Sprintf("%s acknowledged no write from %v (send op %d) until %s, more than %v, "+
					"though %s (judged %v–%v)", tp, roundMs(time.Duration(from)), ps.invokeOps[i], until, bound,
					w.whyAt(time.Duration(from)), roundMs(w.start), roundMs(w.end))})
		}
	}
	return longest
}

// window is a stretch of time the faults leave judgeable, made of parts
// each with its own reason.
type window struct {
	start, end time.Duration
	parts      []windowPart
}

type windowPart struct {
	start time.Duration
	why   string
}

// whyAt says what the faults were at t, inside the window.
func (w window) whyAt(t time.Duration) string {
	why := w.parts[0].why
	for _, p := range w.parts {
		if p.start <= t {
			why = p.why
		}
	}
	return why
}

// impairment is one fault in force on a node or a link, from start until
// end (the fault's end plus Settle).
type impairment struct {
	start, end time.Duration
	// node is set for a node's fault, from and to for a link's.
	node, from, to string
	// disk marks a disk fault: such windows are not judged.
	disk bool
}

// impairments turns the faults into what each did to a node or a link and
// for how long.
func impairments(opts AvailabilityOptions) []impairment {
	actions := slices.Clone(opts.Faults)
	slices.SortStableFunc(actions, func(a, b faults.Action) int { return cmp.Compare(a.At, b.At) })
	forever := time.Duration(math.MaxInt64)
	var out []impairment
	type key struct{ kind, node, from, to string }
	open := map[key]time.Duration{}
	begin := func(k key, at time.Duration) {
		if _, ok := open[k]; !ok {
			open[k] = at
		}
	}
	finish := func(k key, at time.Duration) {
		if start, ok := open[k]; ok {
			out = append(out, impairment{start: start, end: at + opts.Settle, node: k.node, from: k.from,
				to: k.to, disk: k.kind == "disk"})
			delete(open, k)
		}
	}
	for _, a := range actions {
		at := time.Duration(a.At)
		switch a.Op {
		case faults.Kill, faults.PowerLoss:
			begin(key{kind: "down", node: a.Node}, at)
		case faults.Restart:
			finish(key{kind: "down", node: a.Node}, at)
		case faults.Pause:
			begin(key{kind: "paused", node: a.Node}, at)
		case faults.Resume:
			finish(key{kind: "paused", node: a.Node}, at)
		case faults.SlowDisk, faults.FailSyncs, faults.DiskFull, faults.ReadErrors, faults.MetaErrors:
			begin(key{kind: "disk", node: a.Node}, at)
		case faults.DiskHeal:
			finish(key{kind: "disk", node: a.Node}, at)
		case faults.Corrupt:
			// Corrupt bytes stay: nothing on that node is judged again.
			out = append(out, impairment{start: at, end: forever, node: a.Node, disk: true})
		case faults.Block:
			begin(key{kind: "link", from: a.From, to: a.To}, at)
		case faults.Partition:
			for gi, g := range a.Groups {
				for _, other := range a.Groups[gi+1:] {
					for _, x := range g {
						for _, y := range other {
							begin(key{kind: "link", from: x, to: y}, at)
							begin(key{kind: "link", from: y, to: x}, at)
						}
					}
				}
			}
		case faults.Heal:
			for _, k := range sortedKeys(open) {
				if k.kind == "link" {
					finish(k, at)
				}
			}
		}
		// Clock jumps and drift leave every node serving: time-outs run
		// on monotonic clocks.
	}
	for _, k := range sortedKeys(open) {
		out = append(out, impairment{start: open[k], end: forever, node: k.node, from: k.from, to: k.to,
			disk: k.kind == "disk"})
	}
	return out
}

// sortedKeys lists a map's keys in a fixed order, so that what depends
// on the order does not vary between runs.
func sortedKeys[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return keys
}

// judgedWindows cuts [Start, End) at every impairment's start and end and
// keeps the stretches the faults leave judgeable, joining neighbours.
func judgedWindows(opts AvailabilityOptions) []window {
	imps := impairments(opts)
	cuts := []time.Duration{opts.Start, opts.End}
	for _, im := range imps {
		for _, t := range []time.Duration{im.start, im.end} {
			if t > opts.Start && t < opts.End {
				cuts = append(cuts, t)
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out []window
	for i := 0; i+1 < len(cuts); i++ {
		from, to := cuts[i], cuts[i+1]
		var active []impairment
		for _, im := range imps {
			if im.start <= from && im.end >= to {
				active = append(active, im)
			}
		}
		why, ok := judgeable(opts, active)
		if !ok {
			continue
		}
		// Neighbouring stretches join: a wait that starts in one and ends
		// in the next is judged whole, since both must take writes.
		if n := len(out); n > 0 && out[n-1].end == from {
			w := &out[n-1]
			w.end = to
			if w.parts[len(w.parts)-1].why != why {
				w.parts = append(w.parts, windowPart{start: from, why: why})
			}
			continue
		}
		out = append(out, window{start: from, end: to, parts: []windowPart{{start: from, why: why}}})
	}
	return out
}

// judgeable decides whether the cluster, with these impairments in force,
// must keep taking writes, and says why.
func judgeable(opts AvailabilityOptions, active []impairment) (string, bool) {
	var brokersHit, controllersHit []string
	links := map[[2]string]bool{}
	for _, im := range active {
		switch {
		case im.disk:
			return "", false
		case im.node != "" && slices.Contains(opts.Brokers, im.node):
			brokersHit = appendOnce(brokersHit, im.node)
		case im.node != "" && slices.Contains(opts.Controllers, im.node):
			controllersHit = appendOnce(controllersHit, im.node)
		case im.node != "":
			return "", false // a client down or paused
		default:
			links[[2]string{im.from, im.to}] = true
		}
	}
	switch {
	case len(brokersHit)+len(controllersHit) > 1:
		return "", false
	case len(controllersHit) == 1:
		if !touchesAll(controllersHit[0], links) {
			return "", false
		}
		return "only controller " + controllersHit[0] + " was down or paused and the rest of the cluster was healthy", true
	case len(brokersHit) == 0 && len(links) == 0:
		return "the cluster was healthy", true
	case len(brokersHit) == 1:
		if !touchesAll(brokersHit[0], links) {
			return "", false
		}
		return "only " + brokersHit[0] + " was down or paused and the rest of the cluster was healthy", true
	}
	for _, c := range opts.Controllers {
		if touchesAll(c, links) && isolated(opts, c, links) {
			return "only controller " + c + " was cut off from the other controllers and the brokers, " +
				"and the rest of the cluster was healthy", true
		}
	}
	for _, x := range opts.Brokers {
		if !touchesAll(x, links) {
			continue
		}
		if why, ok := cutOffJudgeable(opts, x, links); ok {
			return why, true
		}
	}
	return "", false
}

func appendOnce(list []string, name string) []string {
	if slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}

// isolated reports whether every link between n and the other brokers
// and controllers is cut both ways.
func isolated(opts AvailabilityOptions, n string, links map[[2]string]bool) bool {
	for _, other := range append(slices.Clone(opts.Brokers), opts.Controllers...) {
		if other != n && !(links[[2]string{n, other}] && links[[2]string{other, n}]) {
			return false
		}
	}
	return true
}

// touchesAll reports whether every cut link has x at one end.
func touchesAll(x string, links map[[2]string]bool) bool {
	for l := range links {
		if l[0] != x && l[1] != x {
			return false
		}
	}
	return true
}

// cutOffJudgeable decides for a broker x that every cut link touches: it
// is judged when x is cut off from every other broker and controller
// (both ways; the controllers fence it and the others lead), or when it
// reaches every controller and client and all but one other broker (both
// ways): the leaders on either side of the cut link drop the other from
// their ISRs through the controller. A broker that reaches the
// controllers but no other broker keeps leading partitions whose ISR
// shrinks to itself, which with min.insync.replicas 2 take no write by
// design; such windows are not judged.
func cutOffJudgeable(opts AvailabilityOptions, x string, links map[[2]string]bool) (string, bool) {
	cut := func(a, b string) bool { return links[[2]string{a, b}] || links[[2]string{b, a}] }
	if isolated(opts, x, links) {
		return "only " + x + " was cut off from the other brokers and the controllers, and the rest of the cluster was healthy", true
	}
	for _, n := range append(slices.Clone(opts.Controllers), opts.Clients...) {
		if cut(x, n) {
			return "", false
		}
	}
	var cutFrom []string
	for _, n := range opts.Brokers {
		if n != x && cut(x, n) {
			cutFrom = append(cutFrom, n)
		}
	}
	if len(cutFrom) != 1 {
		return "", false
	}
	return "only the link between " + x + " and " + cutFrom[0] + " was cut and the rest of the cluster was healthy", true
}

func roundMs(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// With is the report with one more verdict, its validity recomputed.
func (r Report) With(v Verdict) Report {
	return newReport(append(slices.Clone(r.Verdicts), v))
}
