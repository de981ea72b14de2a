package sched

import "time"

// event is one scheduled callback, 48 bytes: the heap moves events by
// value, so their size is much of what a sift costs.
type event struct {
	at time.Duration
	// seq orders events of the same time: the loop's sequence number
	// shifted left by seqKindBits, with the kind in the low bits.
	seq    uint64
	run    Runner
	detail uint64
	// node is the owning node's index in the loop, or worldNode.
	node int32
	inc  uint32
}

// seqKindBits is where an event's sequence number leaves room for its
// kind: 2^56 events is far past any run's budget.
const seqKindBits = 8

// worldNode marks an event that belongs to no node.
const worldNode = -1

func (ev *event) kind() Kind { return Kind(ev.seq & (1<<seqKindBits - 1)) }

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

// removeAll drops the events drop selects and restores the heap order
// (Floyd's bottom-up build, linear in the queue). The heap's shape never
// shows in the order events come out, so neither does a sweep.
func (h *eventHeap) removeAll(drop func(*event) bool) {
	kept := h.items[:0]
	for i := range h.items {
		if !drop(&h.items[i]) {
			kept = append(kept, h.items[i])
		}
	}
	clear(h.items[len(kept):]) // let the closures be collected
	h.items = kept
	for i := (len(kept) - 2) / heapArity; i >= 0 && len(kept) > 1; i-- {
		h.siftDown(i)
	}
}

func (h *eventHeap) siftDown(i int) {
	items := h.items
	moving := items[i]
	for {
		first := heapArity*i + 1
		if first >= len(items) {
			break
		}
		least := first
		for c := first + 1; c < first+heapArity && c < len(items); c++ {
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
}
