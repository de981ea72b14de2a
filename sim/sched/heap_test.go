package sched

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestHeapPopsInTimeThenSequenceOrder: whatever mix of pushes and pops,
// each pop returns the least (at, seq) still held, as a sorted list would.
func TestHeapPopsInTimeThenSequenceOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var h eventHeap
		var model []event
		seq := uint64(0)
		steps := rapid.IntRange(1, 400).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			if len(model) > 0 && rapid.Bool().Draw(t, "pop") {
				got := h.pop()
				want := model[0]
				model = model[1:]
				if got.at != want.at || got.seq != want.seq {
					t.Fatalf("pop %d: got (%v, %d), want (%v, %d)", i, got.at, got.seq, want.at, want.seq)
				}
				continue
			}
			seq++
			// Few distinct times, so that ties on at are common.
			ev := event{at: time.Duration(rapid.IntRange(0, 8).Draw(t, "at")), seq: seq}
			h.push(ev)
			model = append(model, ev)
			slices.SortFunc(model, func(a, b event) int {
				if a.before(&b) {
					return -1
				}
				return 1
			})
		}
		if len(h.items) != len(model) {
			t.Fatalf("heap holds %d, model %d", len(h.items), len(model))
		}
	})
}

// TestHeapRemoveAllKeepsOrder: after dropping any subset, the events left
// pop in (at, seq) order.
func TestHeapRemoveAllKeepsOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var h eventHeap
		var model []event
		n := rapid.IntRange(0, 300).Draw(t, "n")
		for i := 0; i < n; i++ {
			ev := event{at: time.Duration(rapid.IntRange(0, 8).Draw(t, "at")), seq: uint64(i + 1), detail: uint64(rapid.IntRange(0, 1).Draw(t, "drop"))}
			h.push(ev)
			if ev.detail == 0 {
				model = append(model, ev)
			}
		}
		h.removeAll(func(ev *event) bool { return ev.detail == 1 })
		slices.SortFunc(model, func(a, b event) int {
			if a.before(&b) {
				return -1
			}
			return 1
		})
		for i, want := range model {
			got := h.pop()
			if got.at != want.at || got.seq != want.seq {
				t.Fatalf("pop %d: got (%v, %d), want (%v, %d)", i, got.at, got.seq, want.at, want.seq)
			}
		}
		if len(h.items) != 0 {
			t.Fatalf("%d events left over", len(h.items))
		}
	})
}
