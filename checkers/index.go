package checkers

import (
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/checkers/history"
)

// outcome is how an operation completed.
type outcome uint8

const (
	// outcomePending: the history ends before the operation completes.
	outcomePending outcome = iota
	outcomeOK
	outcomeFail
	outcomeInfo
)

func outcomeOf(t history.Type) outcome {
	switch t {
	case history.OK:
		return outcomeOK
	case history.Fail:
		return outcomeFail
	case history.Info:
		return outcomeInfo
	}
	panic(fmt.Sprintf("checkers: %q is not a completion", t))
}

// sendRec is one send, invoke and completion together.
type sendRec struct {
	value     int32
	tp        int32
	process   int
	invokePos int
	// donePos is the completion's position in the history, -1 if pending.
	donePos int
	outcome outcome
	// offset is the acknowledged offset, -1 unless outcome is ok.
	offset int64
}

// polledRecord is one record a poll returned.
type polledRecord struct {
	tp     int32
	value  int32
	offset int64
}

// pollRec is one poll, invoke and completion together.
type pollRec struct {
	process   int
	invokePos int
	donePos   int
	outcome   outcome
	records   []polledRecord
}

// consumerStep is a poll or an assign in one consumer's sequence.
type consumerStep struct {
	// poll indexes indexed.polls, or is -1 for an assign.
	poll    int
	outcome outcome
}

// indexed is a history digested once for every checker: partitions and
// values interned to dense ids, invokes paired with completions. Positions
// (invokePos, donePos) are indices into h, which is in real-time order.
type indexed struct {
	h history.History
	// tps is every partition named by the history, sorted; a tp id indexes it.
	tps []history.TopicPartition
	// values is every record value, in order of first appearance.
	values []string
	// sendOf maps a value id to its send, -1 for a value never sent.
	sendOf []int32
	// keyOf maps a value id to its send's key id, -1 for no key (or a
	// value never sent); keys counts the distinct keys.
	keyOf []int32
	keys  int
	sends []sendRec
	polls []pollRec
	// consumers is each process's polls and assigns in order, by process.
	consumers []consumerSteps
	malformed []Example
	stats     map[string]int64
}

type consumerSteps struct {
	process int
	steps   []consumerStep
}

// pendingConsumerOp is a consumer op invoked and not yet completed.
type pendingConsumerOp struct {
	f    history.F
	poll int // index into polls, -1 for an assign
	pos  int
}

func indexHistory(h history.History) *indexed {
	ix := &indexed{h: h, stats: map[string]int64{}}
	tpID := ix.internPartitions()
	// Sized for a history of sends and their completions, at most one
	// value per two ops, so that interning does not keep rehashing.
	valueID := make(map[string]int32, len(h)/2)
	intern := func(v string) int32 {
		if id, ok := valueID[v]; ok {
			return id
		}
		id := int32(len(ix.values))
		if int(id) != len(ix.values) {
			panic("checkers: more than 2^31 distinct values")
		}
		valueID[v] = id
		ix.values = append(ix.values, v)
		ix.sendOf = append(ix.sendOf, -1)
		ix.keyOf = append(ix.keyOf, -1)
		return id
	}
	keyID := map[string]int32{}
	internKey := func(k string) int32 {
		if id, ok := keyID[k]; ok {
			return id
		}
		id := int32(ix.keys)
		keyID[k] = id
		ix.keys++
		return id
	}
	ix.reserve()
	pendingSends := map[int32]int{}
	pendingConsumer := map[int]pendingConsumerOp{}
	steps := map[int][]consumerStep{}
	// Every counter exists, so that reports of different runs line up.
	for _, o := range []outcome{outcomePending, outcomeOK, outcomeFail, outcomeInfo} {
		ix.stats["sends-"+outcomeName(o)] = 0
		ix.stats["polls-"+outcomeName(o)] = 0
		ix.stats["assigns-"+outcomeName(o)] = 0
	}
	for pos := range h {
		op := &h[pos]
		switch op.F {
		case history.Send:
			ix.indexSend(pos, tpID, intern, internKey, pendingSends)
		case history.Poll, history.Assign:
			ix.indexConsumerOp(pos, tpID, intern, pendingConsumer, steps)
		case history.Commit:
			// Commits are the group checkers' (groups.go); they neither
			// read nor write records.
		default:
			ix.malform(pos, fmt.Sprintf("unknown f %q", op.F))
		}
	}
	for _, p := range pendingConsumer {
		if p.f == history.Assign {
			ix.stats["assigns-pending"]++
		}
	}
	// Counted by outcome, then named: a key built per op allocated.
	var sendsBy, pollsBy [outcomeInfo + 1]int64
	for i := range ix.sends {
		sendsBy[ix.sends[i].outcome]++
	}
	for i := range ix.polls {
		pollsBy[ix.polls[i].outcome]++
		ix.stats["records-polled"] += int64(len(ix.polls[i].records))
	}
	for o := range outcomeInfo + 1 {
		ix.stats["sends-"+outcomeName(o)] += sendsBy[o]
		ix.stats["polls-"+outcomeName(o)] += pollsBy[o]
	}
	ix.stats["sends"] = int64(len(ix.sends))
	ix.stats["polls"] = int64(len(ix.polls))
	ix.stats["ops"] = int64(len(h))
	ix.stats["partitions"] = int64(len(ix.tps))
	ix.stats["values"] = int64(len(ix.values))
	ix.stats["consumers"] = int64(len(steps))
	processes := make([]int, 0, len(steps))
	for p := range steps {
		processes = append(processes, p)
	}
	slices.Sort(processes)
	for _, p := range processes {
		ix.consumers = append(ix.consumers, consumerSteps{process: p, steps: steps[p]})
	}
	return ix
}

func outcomeName(o outcome) string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeFail:
		return "fail"
	case outcomeInfo:
		return "info"
	}
	return "pending"
}

// internPartitions gives every partition the history names a dense id in
// sorted order, so that everything keyed by id iterates deterministically.
func (ix *indexed) internPartitions() *tpIDs {
	seen := map[history.TopicPartition]struct{}{}
	var last history.TopicPartition
	see := func(tp history.TopicPartition) {
		// Runs of one partition are the rule: the map is asked once a run.
		if len(seen) == 0 || tp != last {
			seen[tp] = struct{}{}
			last = tp
		}
	}
	for i := range ix.h {
		op := &ix.h[i]
		if op.Record != nil {
			see(op.Record.TP())
		}
		for j := range op.Records {
			see(op.Records[j].TP())
		}
		for _, tp := range op.Assign {
			see(tp)
		}
	}
	for tp := range seen {
		ix.tps = append(ix.tps, tp)
	}
	slices.SortFunc(ix.tps, compareTP)
	ids := &tpIDs{ids: make(map[history.TopicPartition]int32, len(ix.tps))}
	for i, tp := range ix.tps {
		ids.ids[tp] = int32(i)
	}
	return ids
}

// tpIDs maps partitions to their ids, remembering the last one asked for:
// a poll's records and a producer's sends come in runs of one partition,
// and hashing a topic name per record showed in profiles.
type tpIDs struct {
	ids    map[history.TopicPartition]int32
	last   history.TopicPartition
	lastID int32
	asked  bool
}

// of is tp's id; 0 for a partition never interned, as a map lookup gives.
func (t *tpIDs) of(tp history.TopicPartition) int32 {
	if t.asked && tp == t.last {
		return t.lastID
	}
	t.last, t.lastID, t.asked = tp, t.ids[tp], true
	return t.lastID
}

func compareTP(a, b history.TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

func (ix *indexed) malform(pos int, detail string) {
	ix.malformed = append(ix.malformed, Example{
		Offset: -1,
		Ops:    []int{ix.h[pos].Index},
		Detail: fmt.Sprintf("op %d (process %d): %s", ix.h[pos].Index, ix.h[pos].Process, detail),
	})
}

func (ix *indexed) indexSend(pos int, tpID *tpIDs,
	intern, internKey func(string) int32, pending map[int32]int) {
	op := &ix.h[pos]
	if op.Record == nil {
		ix.malform(pos, "send without a record")
		return
	}
	value := intern(op.Record.Value)
	if op.Type == history.Invoke {
		if ix.sendOf[value] >= 0 {
			ix.malform(pos, fmt.Sprintf("value %q sent twice; values must be unique", op.Record.Value))
			return
		}
		ix.sendOf[value] = int32(len(ix.sends))
		if op.Record.Key != "" {
			ix.keyOf[value] = internKey(op.Record.Key)
		}
		pending[value] = len(ix.sends)
		ix.sends = append(ix.sends, sendRec{
			value: value, tp: tpID.of(op.Record.TP()), process: op.Process,
			invokePos: pos, donePos: -1, outcome: outcomePending, offset: -1,
		})
		return
	}
	i, ok := pending[value]
	if !ok || ix.sends[i].process != op.Process {
		ix.malform(pos, fmt.Sprintf("%s of send %q without a pending invoke by this process", op.Type, op.Record.Value))
		return
	}
	delete(pending, value)
	s := &ix.sends[i]
	s.donePos = pos
	s.outcome = outcomeOf(op.Type)
	if s.outcome != outcomeOK {
		return
	}
	if op.Record.Offset < 0 {
		ix.malform(pos, fmt.Sprintf("ok send %q without an offset; taken as info", op.Record.Value))
		s.outcome = outcomeInfo
		return
	}
	// The completion's partition wins: a client may pick the partition
	// only when it sends.
	s.tp = tpID.of(op.Record.TP())
	s.offset = op.Record.Offset
}

func (ix *indexed) indexConsumerOp(pos int, tpID *tpIDs,
	intern func(string) int32, pending map[int]pendingConsumerOp, steps map[int][]consumerStep) {
	op := &ix.h[pos]
	if op.Type == history.Invoke {
		if prev, ok := pending[op.Process]; ok {
			ix.malform(pos, fmt.Sprintf("%s invoked while op %d of the same consumer is pending",
				op.F, ix.h[prev.pos].Index))
		}
		p := pendingConsumerOp{f: op.F, poll: -1, pos: pos}
		if op.F == history.Poll {
			p.poll = len(ix.polls)
			ix.polls = append(ix.polls, pollRec{
				process: op.Process, invokePos: pos, donePos: -1, outcome: outcomePending,
			})
		}
		pending[op.Process] = p
		return
	}
	p, ok := pending[op.Process]
	if !ok || p.f != op.F {
		ix.malform(pos, fmt.Sprintf("%s of %s without a pending invoke by this process", op.Type, op.F))
		return
	}
	delete(pending, op.Process)
	o := outcomeOf(op.Type)
	steps[op.Process] = append(steps[op.Process], consumerStep{poll: p.poll, outcome: o})
	if op.F == history.Assign {
		ix.stats["assigns-"+outcomeName(o)]++
		return
	}
	poll := &ix.polls[p.poll]
	poll.donePos = pos
	poll.outcome = o
	if o != outcomeOK {
		return
	}
	poll.records = make([]polledRecord, 0, len(op.Records))
	for i := range op.Records {
		r := &op.Records[i] // a record is large: not copied per read
		if r.Offset < 0 {
			ix.malform(pos, fmt.Sprintf("polled record %q without an offset; ignored", r.Value))
			continue
		}
		poll.records = append(poll.records, polledRecord{
			tp: tpID.of(r.TP()), value: intern(r.Value), offset: r.Offset,
		})
	}
}

// reserve makes room for every send and poll the history invokes, and
// for their values, so that indexing a long history does not grow and
// copy its lists.
func (ix *indexed) reserve() {
	var sends, polls int
	for i := range ix.h {
		if ix.h[i].Type != history.Invoke {
			continue
		}
		switch ix.h[i].F {
		case history.Send:
			sends++
		case history.Poll:
			polls++
		}
	}
	ix.sends = make([]sendRec, 0, sends)
	ix.polls = make([]pollRec, 0, polls)
	// Nearly every value is sent once.
	ix.values = make([]string, 0, sends)
	ix.sendOf = make([]int32, 0, sends)
	ix.keyOf = make([]int32, 0, sends)
}

// opIndex is the history's own index of the op at pos.
func (ix *indexed) opIndex(pos int) int { return ix.h[pos].Index }

func (ix *indexed) tpName(tp int32) string { return ix.tps[tp].String() }

// checkHistory reports how well-formed the history is and counts its ops.
func checkHistory(ix *indexed, opts Options) Verdict {
	f := newFindings(opts.ExamplesMax)
	for _, ex := range ix.malformed {
		f.add(KindMalformedHistory, ex)
	}
	stats := make(map[string]int64, len(ix.stats))
	for k, v := range ix.stats {
		stats[k] = v
	}
	anomalies := f.anomalies()
	return Verdict{
		Checker:   CheckerHistory,
		Valid:     len(anomalies) == 0,
		Anomalies: anomalies,
		Stats:     stats,
		Notes:     []string{},
	}
}

// CheckHistory checks that h is well-formed (every completion has its
// invoke, send values are unique, a consumer's ops do not overlap) and
// counts its operations by kind and outcome.
func CheckHistory(h history.History, opts Options) Verdict {
	opts = opts.withDefaults()
	return checkHistory(indexHistory(h), opts)
}
