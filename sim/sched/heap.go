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

// eventHeap is a binary min-heap on (at, seq), written out rather than
// through container/heap so that no event is boxed into an interface: the
// loop's throughput is bounded by these two functions.
type eventHeap struct {
	items []event
}

func (h *eventHeap) push(ev event) {
	h.items = append(h.items, ev)
	items := h.items
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !items[i].before(&items[parent]) {
			break
		}
		items[i], items[parent] = items[parent], items[i]
		i = parent
	}
}

func (h *eventHeap) pop() event {
	items := h.items
	top := items[0]
	last := len(items) - 1
	items[0] = items[last]
	items[last] = event{} // let the closure be collected
	items = items[:last]
	h.items = items
	i := 0
	for {
		left := 2*i + 1
		if left >= last {
			break
		}
		least := left
		if right := left + 1; right < last && items[right].before(&items[left]) {
			least = right
		}
		if !items[least].before(&items[i]) {
			break
		}
		items[i], items[least] = items[least], items[i]
		i = least
	}
	return top
}
