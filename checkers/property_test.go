package checkers

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/checkers/history"
)

func drawConfig(t *rapid.T) simConfig {
	return simConfig{
		partitions:  rapid.IntRange(1, 3).Draw(t, "partitions"),
		producers:   rapid.IntRange(1, 3).Draw(t, "producers"),
		consumers:   rapid.IntRange(1, 3).Draw(t, "consumers"),
		steps:       rapid.IntRange(30, 600).Draw(t, "steps"),
		inflightMax: rapid.IntRange(1, 4).Draw(t, "inflightMax"),
		batchMax:    rapid.IntRange(2, 6).Draw(t, "batchMax"),
	}
}

// A correct log, however its clients interleave, passes every checker
// under both send orders.
func TestSimulatedHistoriesAreValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := simulate(rapidChooser{t}, drawConfig(t))
		for _, order := range []SendOrder{SendOrderInvoke, SendOrderRealTime} {
			opts := DefaultOptions()
			opts.SendOrder = order
			if r := Check(h, opts); !r.Valid {
				t.Fatalf("send order %s: valid history rejected:\n%s", order, r.Text())
			}
		}
	})
}

// Without idempotence a producer's sends in flight may land in any order:
// the real-time send order accepts that, the invoke order does not.
func TestRealTimeSendOrderAllowsInFlightReordering(t *testing.T) {
	runs, reordered := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		runs++
		cfg := drawConfig(t)
		cfg.landAnyOrder = true
		h := simulate(rapidChooser{t}, cfg)
		opts := DefaultOptions()
		opts.SendOrder = SendOrderRealTime
		if r := Check(h, opts); !r.Valid {
			t.Fatalf("real-time order rejected a reordering in flight:\n%s", r.Text())
		}
		opts.SendOrder = SendOrderInvoke
		kinds := reportKinds(Check(h, opts))
		if len(kinds) > 0 && !slices.Equal(kinds, []string{KindNonmonotonicSend}) {
			t.Fatalf("invoke order found more than nonmonotonic-send: %v", kinds)
		}
		if len(kinds) > 0 {
			reordered++
		}
	})
	t.Logf("invoke order flagged %d of %d histories", reordered, runs)
	if reordered*10 < runs {
		t.Fatalf("invoke order flagged only %d of %d reordered histories", reordered, runs)
	}
}

// mutation plants one fault in a valid history; apply reports false when
// the history offers no place for it.
type mutation struct {
	name  string
	want  string
	apply func(c chooser, h history.History) (history.History, bool)
}

var mutations = []mutation{
	{"drop-inner-record", KindIntPollSkip, dropInnerRecord},
	{"drop-value-everywhere", KindLostWrite, dropValueEverywhere},
	{"drop-tail", KindUnseen, dropTail},
	{"duplicate-value", KindDuplicate, duplicateValue},
	{"rewrite-value", KindInconsistentOffsets, rewriteValue},
	{"read-failed-send", KindG1a, readFailedSend},
	{"swap-records", KindIntNonmonotonicPoll, swapRecords},
	{"repeat-poll", KindNonmonotonicPoll, repeatPoll},
	{"drop-first-record", KindPollSkip, dropFirstRecord},
	{"swap-acks", KindNonmonotonicSend, swapAcks},
	{"send-after-read", KindNonlinearizable, sendAfterRead},
	{"move-record-partition", KindPhantomValue, moveRecordPartition},
}

// appliedMin is the share of generated histories (in percent) a mutation
// must find a place in, so that its test proves something.
const appliedMin = 20

func TestMutationsAreFound(t *testing.T) {
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			runs, applied := 0, 0
			rapid.Check(t, func(t *rapid.T) {
				runs++
				c := rapidChooser{t}
				h, ok := m.apply(c, simulate(c, drawConfig(t)))
				if !ok {
					return
				}
				applied++
				renumber(h)
				r := Check(h, DefaultOptions())
				if !slices.Contains(reportKinds(r), m.want) {
					t.Fatalf("planted %s, want %s, found %v:\n%s", m.name, m.want, reportKinds(r), r.Text())
				}
				if hv := verdictOf(t, r, CheckerHistory); !hv.Valid {
					t.Fatalf("mutation broke the history format:\n%s", r.Text())
				}
			})
			t.Logf("applied in %d of %d histories", applied, runs)
			if applied*100 < runs*appliedMin {
				t.Fatalf("%s applied in %d of %d histories; the test proves too little", m.name, applied, runs)
			}
		})
	}
}

func renumber(h history.History) {
	for i := range h {
		h[i].Index = i
		h[i].Time = int64(i) * 1000
	}
}

func cloneHistory(h history.History) history.History {
	out := slices.Clone(h)
	for i := range out {
		if out[i].Record != nil {
			r := *out[i].Record
			out[i].Record = &r
		}
		out[i].Records = slices.Clone(out[i].Records)
	}
	return out
}

// sendFacts is what a mutation needs to know of a send.
type sendFacts struct {
	invokePos, donePos int
	outcome            history.Type
	offset             int64
	tp                 history.TopicPartition
	proc               int
}

func sendsByValue(h history.History) map[string]*sendFacts {
	out := map[string]*sendFacts{}
	for i, op := range h {
		if op.F != history.Send {
			continue
		}
		if op.Type == history.Invoke {
			out[op.Record.Value] = &sendFacts{invokePos: i, donePos: -1, offset: -1, tp: op.Record.TP(), proc: op.Process}
			continue
		}
		s := out[op.Record.Value]
		s.donePos, s.outcome, s.offset = i, op.Type, op.Record.Offset
	}
	return out
}

func isAcked(sends map[string]*sendFacts, value string) bool {
	s := sends[value]
	return s != nil && s.outcome == history.OK
}

func okPolls(h history.History) []int {
	var out []int
	for i, op := range h {
		if op.F == history.Poll && op.Type == history.OK && len(op.Records) > 0 {
			out = append(out, i)
		}
	}
	return out
}

// recordAt names records[i] of the op at pos.
type recordAt struct{ pos, i int }

func pickRecord(c chooser, cands []recordAt) (recordAt, bool) {
	if len(cands) == 0 {
		return recordAt{}, false
	}
	return cands[c.intn(len(cands))], true
}

func maxOffsets(h history.History) map[history.TopicPartition]int64 {
	out := map[history.TopicPartition]int64{}
	see := func(r history.Record) {
		if o, ok := out[r.TP()]; !ok || r.Offset > o {
			out[r.TP()] = r.Offset
		}
	}
	for _, op := range h {
		if op.Type == history.OK && op.Record != nil {
			see(*op.Record)
		}
		for _, r := range op.Records {
			see(r)
		}
	}
	return out
}

func removeValue(h history.History, value string) {
	for i := range h {
		h[i].Records = slices.DeleteFunc(h[i].Records, func(r history.Record) bool { return r.Value == value })
	}
}

func dropInnerRecord(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	var cands []recordAt
	for _, pos := range okPolls(h) {
		rs := h[pos].Records
		for i := 1; i+1 < len(rs); i++ {
			if rs[i-1].TP() == rs[i].TP() && rs[i+1].TP() == rs[i].TP() && isAcked(sends, rs[i].Value) {
				cands = append(cands, recordAt{pos, i})
			}
		}
	}
	at, ok := pickRecord(c, cands)
	if ok {
		h[at.pos].Records = slices.Delete(h[at.pos].Records, at.i, at.i+1)
	}
	return h, ok
}

func dropValueEverywhere(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	polledMax := map[history.TopicPartition]int64{}
	for _, pos := range okPolls(h) {
		for _, r := range h[pos].Records {
			polledMax[r.TP()] = max(polledMax[r.TP()], r.Offset)
		}
	}
	var cands []string
	for _, op := range h {
		if op.F == history.Send && op.Type == history.OK {
			if m, ok := polledMax[op.Record.TP()]; ok && op.Record.Offset < m {
				cands = append(cands, op.Record.Value)
			}
		}
	}
	if len(cands) == 0 {
		return h, false
	}
	removeValue(h, cands[c.intn(len(cands))])
	return h, true
}

func dropTail(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	tail := map[history.TopicPartition]history.Record{}
	for _, pos := range okPolls(h) {
		for _, r := range h[pos].Records {
			if t, ok := tail[r.TP()]; !ok || r.Offset > t.Offset {
				tail[r.TP()] = r
			}
		}
	}
	var cands []string
	for _, r := range tail {
		if isAcked(sends, r.Value) {
			cands = append(cands, r.Value)
		}
	}
	if len(cands) == 0 {
		return h, false
	}
	slices.Sort(cands) // map order must not reach the choice
	removeValue(h, cands[c.intn(len(cands))])
	return h, true
}

func duplicateValue(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	polls := okPolls(h)
	if len(polls) == 0 {
		return h, false
	}
	pos := polls[c.intn(len(polls))]
	r := h[pos].Records[c.intn(len(h[pos].Records))]
	r.Offset = maxOffsets(h)[r.TP()] + 1
	h[pos].Records = append(h[pos].Records, r)
	return h, true
}

func rewriteValue(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	var cands []recordAt
	for _, pos := range okPolls(h) {
		for i, r := range h[pos].Records {
			if isAcked(sends, r.Value) {
				cands = append(cands, recordAt{pos, i})
			}
		}
	}
	at, ok := pickRecord(c, cands)
	if !ok {
		return h, false
	}
	r := &h[at.pos].Records[at.i]
	var others []string
	for _, op := range h {
		if op.F == history.Send && op.Type == history.Invoke && op.Record.TP() == r.TP() && op.Record.Value != r.Value {
			others = append(others, op.Record.Value)
		}
	}
	if len(others) == 0 {
		return h, false
	}
	r.Value = others[c.intn(len(others))]
	return h, true
}

func readFailedSend(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	tp := history.TopicPartition{Topic: topic, Partition: 0}
	planted := history.Record{Topic: topic, Partition: 0, Value: "planted", Offset: -1}
	invoke := history.Op{Process: 0, Type: history.Invoke, F: history.Send, Record: &planted}
	failed := planted
	fail := history.Op{Process: 0, Type: history.Fail, F: history.Send, Record: &failed}
	read := planted
	read.Offset = maxOffsets(h)[tp] + 1
	at := c.intn(len(h) + 1)
	h = slices.Insert(h, at, invoke, fail)
	h = append(h,
		history.Op{Process: 998, Type: history.Invoke, F: history.Poll},
		history.Op{Process: 998, Type: history.OK, F: history.Poll, Records: []history.Record{read}})
	return h, true
}

func swapRecords(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	var cands []recordAt
	for _, pos := range okPolls(h) {
		rs := h[pos].Records
		for i := 0; i+1 < len(rs); i++ {
			if rs[i].TP() == rs[i+1].TP() {
				cands = append(cands, recordAt{pos, i})
			}
		}
	}
	at, ok := pickRecord(c, cands)
	if ok {
		rs := h[at.pos].Records
		rs[at.i], rs[at.i+1] = rs[at.i+1], rs[at.i]
	}
	return h, ok
}

func repeatPoll(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	polls := okPolls(h)
	if len(polls) == 0 {
		return h, false
	}
	pos := polls[c.intn(len(polls))]
	again := h[pos]
	again.Records = slices.Clone(again.Records)
	invoke := history.Op{Process: again.Process, Type: history.Invoke, F: history.Poll}
	return slices.Insert(h, pos+1, invoke, again), true
}

// dropFirstRecord removes the first record of a partition from a poll that
// follows, with no reset between, another poll of that partition by the
// same consumer, and reads at least one more record of it.
func dropFirstRecord(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	var cands []recordAt
	read := map[int]map[history.TopicPartition]bool{} // process -> partitions read since reset
	for pos, op := range h {
		if op.F == history.Send || op.Type == history.Invoke {
			continue
		}
		seen := read[op.Process]
		if seen == nil {
			seen = map[history.TopicPartition]bool{}
			read[op.Process] = seen
		}
		if (op.F == history.Assign && op.Type != history.Fail) || (op.F == history.Poll && op.Type == history.Info) {
			clear(seen)
			continue
		}
		if op.Type != history.OK || op.F != history.Poll {
			continue
		}
		for i, r := range op.Records {
			first := i == 0 || op.Records[i-1].TP() != r.TP()
			more := i+1 < len(op.Records) && op.Records[i+1].TP() == r.TP()
			if first && more && seen[r.TP()] && isAcked(sends, r.Value) {
				cands = append(cands, recordAt{pos, i})
			}
		}
		for _, r := range op.Records {
			seen[r.TP()] = true
		}
	}
	at, ok := pickRecord(c, cands)
	if ok {
		h[at.pos].Records = slices.Delete(h[at.pos].Records, at.i, at.i+1)
	}
	return h, ok
}

func swapAcks(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	type pair struct{ a, b *sendFacts }
	var cands []pair
	var acked []*sendFacts
	for _, op := range h {
		if op.F == history.Send && op.Type == history.Invoke && isAcked(sends, op.Record.Value) {
			acked = append(acked, sends[op.Record.Value])
		}
	}
	for i, a := range acked {
		for _, b := range acked[i+1:] {
			if a.proc == b.proc && a.tp == b.tp && a.donePos < b.invokePos {
				cands = append(cands, pair{a, b})
			}
		}
	}
	if len(cands) == 0 {
		return h, false
	}
	p := cands[c.intn(len(cands))]
	ra, rb := h[p.a.donePos].Record, h[p.b.donePos].Record
	ra.Offset, rb.Offset = rb.Offset, ra.Offset
	return h, true
}

func sendAfterRead(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	sends := sendsByValue(h)
	var cands []recordAt
	for _, pos := range okPolls(h) {
		for i, r := range h[pos].Records {
			if isAcked(sends, r.Value) {
				cands = append(cands, recordAt{pos, i})
			}
		}
	}
	at, ok := pickRecord(c, cands)
	if !ok {
		return h, false
	}
	s := sends[h[at.pos].Records[at.i].Value]
	invoke, done := h[s.invokePos], h[s.donePos]
	var out history.History
	for pos, op := range h {
		if pos != s.invokePos && pos != s.donePos {
			out = append(out, op)
		}
		if pos == at.pos {
			out = append(out, invoke, done)
		}
	}
	return out, true
}

func moveRecordPartition(c chooser, h history.History) (history.History, bool) {
	h = cloneHistory(h)
	partitions := map[int32]bool{}
	for _, op := range h {
		if op.Record != nil {
			partitions[op.Record.Partition] = true
		}
	}
	polls := okPolls(h)
	if len(partitions) < 2 || len(polls) == 0 {
		return h, false
	}
	pos := polls[c.intn(len(polls))]
	r := &h[pos].Records[c.intn(len(h[pos].Records))]
	r.Partition = (r.Partition + 1) % int32(len(partitions))
	return h, true
}
