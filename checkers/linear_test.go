package checkers

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/checkers/history"
)

// hardIllegal builds a history porcupine can only reject by trying every
// subset of pollsN concurrent polls: a poll reads a value before its send
// is invoked, and pollsN polls that overlap everything commute.
func hardIllegal(pollsN int) history.History {
	var b builder
	for i := range pollsN {
		b.pollInvoke(10 + i)
	}
	for i := range pollsN {
		b.send(0, 0, fmt.Sprintf("a%d", i), int64(i))
	}
	late := fmt.Sprintf("a%d", pollsN)
	b.poll(5, record(0, late, int64(pollsN)))
	b.send(0, 0, late, int64(pollsN))
	for i := range pollsN {
		b.pollOK(10+i, record(0, fmt.Sprintf("a%d", i), int64(i)))
	}
	return b.h
}

func TestLinearTimeoutIsUnknown(t *testing.T) {
	h := hardIllegal(26)
	opts := DefaultOptions()
	opts.LinearTimeout = time.Millisecond // each partition still gets linearTimeoutMin
	r := Check(h, opts)
	lv := verdictOf(t, r, CheckerLinearizable)
	if lv.Valid || !lv.Unknown || len(lv.Anomalies) != 0 || lv.Stats["partitions-unknown"] != 1 {
		t.Fatalf("want an unknown verdict, got\n%s", r.Text())
	}
	if len(lv.Notes) != 1 || !strings.Contains(lv.Notes[0], "timed out on partition t-0") {
		t.Fatalf("want a timeout note, got %q", lv.Notes)
	}
	if kv := verdictOf(t, r, CheckerKafka); !kv.Valid {
		t.Fatalf("the Kafka checker must pass this history:\n%s", r.Text())
	}
	if r.Valid || !r.Unknown || !strings.HasPrefix(r.Text(), "overall: UNKNOWN\n") {
		t.Fatalf("report must be unknown:\n%s", r.Text())
	}
}

func TestLinearDecidesSmallHardHistory(t *testing.T) {
	v := CheckLinearizable(hardIllegal(6), DefaultOptions())
	if v.Valid || v.Unknown || len(v.Anomalies) != 1 || v.Anomalies[0].Kind != KindNonlinearizable {
		t.Fatalf("want nonlinearizable, got %+v", v)
	}
	ex := v.Anomalies[0].Examples[0]
	if ex.Partition != "t-0" || !strings.Contains(ex.Detail, `poll read [6:"a6"]`) {
		t.Fatalf("example does not name the stale poll: %+v", ex)
	}
}

func TestLinearSkip(t *testing.T) {
	opts := Options{LinearSkip: true}
	r := Check(hardIllegal(3), opts)
	for _, v := range r.Verdicts {
		if v.Checker == CheckerLinearizable {
			t.Fatalf("LinearSkip still ran porcupine")
		}
	}
	if !r.Valid {
		t.Fatalf("without porcupine the history passes:\n%s", r.Text())
	}
}

// A violation after many quiescent points is found, in its window.
func TestLinearFindsLateViolation(t *testing.T) {
	var b builder
	for i := range 50 {
		b.send(0, 0, fmt.Sprintf("a%d", i), int64(i))
		b.poll(10, record(0, fmt.Sprintf("a%d", i), int64(i)))
	}
	stale := b.h[len(b.h)-1].Index + 1
	b.poll(11, record(0, "late", 50))
	b.send(0, 0, "late", 50)
	v := CheckLinearizable(b.h, DefaultOptions())
	if v.Valid || len(v.Anomalies) != 1 || v.Stats["windows"] < 50 {
		t.Fatalf("want one nonlinearizable partition over 50+ windows, got %+v", v)
	}
	detail := v.Anomalies[0].Examples[0].Detail
	if !strings.Contains(detail, fmt.Sprintf("from op %d on t-0", stale)) {
		t.Fatalf("detail does not start the window at the stale poll (op %d): %s", stale, detail)
	}
}

// An undecided window does not hide an illegal one after it.
func TestLinearUnknownWindowThenIllegal(t *testing.T) {
	b := builder{h: hardIllegal(26)}
	b.poll(11, record(0, "b", 100))
	b.send(0, 0, "b", 100)
	opts := DefaultOptions()
	opts.LinearTimeout = time.Millisecond
	v := CheckLinearizable(b.h, opts)
	if v.Valid || v.Unknown || v.Stats["partitions-nonlinearizable"] != 1 || len(v.Notes) != 1 {
		t.Fatalf("want nonlinearizable after a timeout note, got %+v", v)
	}
}

// linearWindows bounds a send that never completed by the first return of
// a send above it, and cuts where no op spans.
func TestLinearWindows(t *testing.T) {
	send := func(offset, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: &linOp{kind: linSend, entry: logEntry{offset: offset}}, Call: call, Return: ret}
	}
	poll := func(call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: &linOp{kind: linPoll}, Call: call, Return: ret}
	}
	ops := []porcupine.Operation{
		send(1, 2, 5),
		send(0, 1, math.MaxInt64), // bounded by the send at offset 1: returns by 5
		poll(3, 4),
		send(2, 6, 7),
		poll(8, 9),
		send(3, 10, math.MaxInt64), // nothing above it: spans the rest
		poll(11, 12),
		poll(13, 14),
	}
	windows := linearWindows(ops, sendOffsets(ops))
	var got [][]int64
	for _, w := range windows {
		var calls []int64
		for _, op := range w {
			calls = append(calls, op.Call)
		}
		got = append(got, calls)
	}
	want := [][]int64{{1, 2, 3}, {6}, {8}, {10, 11, 13}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("windows by call = %v, want %v", got, want)
	}
	if windows[0][0].Return != 5 {
		t.Fatalf("info send return = %d, want 5", windows[0][0].Return)
	}
}

// greedyLinearizable decides the partition model without search. Sends are
// pinned to offsets and must linearize in offset order, and a poll only
// needs the sends it read to be in the log, so linearizing every send as
// early as it can is optimal: send k at max(its call, send k-1's point),
// which must not pass its return; a poll at max(its call, the point of the
// last send it read), which must not pass its return.
func greedyLinearizable(ops []porcupine.Operation) bool {
	var sends []porcupine.Operation
	for _, op := range ops {
		if op.Input.(*linOp).kind == linSend {
			sends = append(sends, op)
		}
	}
	slices.SortFunc(sends, func(a, b porcupine.Operation) int {
		return cmp.Compare(a.Input.(*linOp).entry.offset, b.Input.(*linOp).entry.offset)
	})
	point := map[int64]int64{} // offset -> linearization point of its send
	value := map[int64]int32{}
	rank := map[int64]int{}
	at := int64(math.MinInt64)
	for k, op := range sends {
		e := op.Input.(*linOp).entry
		if _, dup := point[e.offset]; dup {
			return false
		}
		at = max(at, op.Call)
		if at > op.Return {
			return false
		}
		point[e.offset], value[e.offset], rank[e.offset] = at, e.value, k
	}
	for _, op := range ops {
		in := op.Input.(*linOp)
		if in.kind != linPoll {
			continue
		}
		for k, r := range in.records {
			if _, ok := point[r.offset]; !ok || value[r.offset] != r.value {
				return false
			}
			if k > 0 && rank[r.offset] != rank[in.records[k-1].offset]+1 {
				return false
			}
		}
		if max(op.Call, point[in.records[len(in.records)-1].offset]) > op.Return {
			return false
		}
	}
	return true
}

// Porcupine, with windows and tightened returns, agrees with the greedy
// decision on simulated histories, whole or with a fault planted.
func TestLinearAgreesWithGreedy(t *testing.T) {
	runs, illegal := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		runs++
		c := rapidChooser{t}
		h := simulate(c, drawConfig(t))
		if m := rapid.IntRange(-1, len(mutations)-1).Draw(t, "mutation"); m >= 0 {
			if mutated, ok := mutations[m].apply(c, h); ok {
				h = mutated
				renumber(h)
			}
		}
		ix := indexHistory(h)
		want := true
		for _, ops := range linearOps(ix, summariseReads(ix)) {
			want = want && greedyLinearizable(ops)
		}
		if !want {
			illegal++
		}
		// The question is agreement, not speed: a budget a loaded machine
		// cannot exhaust keeps porcupine from answering unknown.
		opts := DefaultOptions().withDefaults()
		opts.LinearTimeout = time.Minute
		v := checkLinearizable(ix, opts)
		if v.Unknown || v.Valid != want {
			t.Fatalf("porcupine Valid = %v Unknown = %v, greedy says %v:\n%s", v.Valid, v.Unknown, want, v.Text())
		}
	})
	// Both outcomes must be common, or agreement proves little.
	t.Logf("%d of %d histories not linearizable", illegal, runs)
	if illegal*10 < runs || (runs-illegal)*10 < runs {
		t.Fatalf("%d of %d histories not linearizable: too lopsided", illegal, runs)
	}
}

// The witness vouches only for windows porcupine accepts, on simulated
// histories whole or with a fault planted, and vouches for most of those:
// otherwise the check would be as slow as before, or wrong.
func TestLinearWitnessOnlyVouchesForLegalWindows(t *testing.T) {
	legal, witnessed := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		c := rapidChooser{t}
		h := simulate(c, drawConfig(t))
		if m := rapid.IntRange(-1, len(mutations)-1).Draw(t, "mutation"); m >= 0 {
			if mutated, ok := mutations[m].apply(c, h); ok {
				h = mutated
				renumber(h)
			}
		}
		ix := indexHistory(h)
		lc := &linearCheck{ix: ix, stats: map[string]int64{}}
		for _, ops := range linearOps(ix, summariseReads(ix)) {
			if len(ops) == 0 {
				continue
			}
			order := sendOffsets(ops)
			prefix := emptyPlog
			for _, w := range linearWindows(ops, order) {
				model := partitionModel(order, prefix, nil)
				ok := porcupine.CheckOperations(model, w)
				if lc.witnessed(model, order, prefix, w) {
					witnessed++
					if !ok {
						t.Fatalf("the witness vouches for a window of %d ops porcupine rejects", len(w))
					}
				}
				if !ok {
					break // as checkPartition: later windows start from no known log
				}
				legal++
				prefix = appendSends(prefix, w)
			}
		}
	})
	t.Logf("the witness vouched for %d of %d legal windows", witnessed, legal)
	if legal == 0 || witnessed*10 < legal*9 {
		t.Fatalf("the witness vouched for %d of %d legal windows: too few", witnessed, legal)
	}
}
