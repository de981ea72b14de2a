package sched

import "time"

type event struct {
	at     time.Duration
	seq    uint64
	fn     func()
	node   *Node
	detail uint64
	inc    uint32
	kind   Kind
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// eventHeap is a 4-ary min-heap on (at, seq), written out rather than
// through container/heap so that no event is boxed into an interface: the
// loop's throughput is bounded by these two functions. Four children per
// node halve the depth a deep queue's sift walks, and the sifts move one
// hole instead of swapping. (at, seq) is a total order, so the heap's
// shape never shows in the order events come out.
type eventHeap struct {
	items []event
}

const heapArity = 4

func (h *eventHeap) push(ev event) {
	h.items = append(h.items, event{})
	items := h.items
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / heapArity
		if !ev.before(&items[parent]) {
			break
		}
		items[i] = items[parent]
		i = parent
	}
	items[i] = ev
}

func (h *eventHeap) pop() event {
	items := h.items
	top := items[0]
	last := len(items) - 1
	moving := items[last]
	items[last] = event{} // let the closure be collected
	items = items[:last]
	h.items = items
	if last == 0 {
		return top
	}
	i := 0
	for {
		first := heapArity*i + 1
		if first >= last {
			break
		}
		least := first
		for c := first + 1; c < first+heapArity && c < last; c++ {
			if items[c].before(&items[least]) {
				least = c
			}
		}
		if !items[least].before(&moving) {
			break
		}
		items[i] = items[least]
		i = least
	}
	items[i] = moving
	return top
}
