package osenv

import (
	"container/heap"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// clock keeps the node's timers in one heap owned by the loop, ordered by
// (deadline, sequence) as the simulator orders them, and one real timer
// for the earliest deadline. Timers therefore fire on the loop in the
// order they were asked for, zero-delay ones included.
type clock struct {
	node   *Node
	origin time.Time
	timers timerHeap
	seq    uint64
	// real wakes the loop at armedAt; armed says it is counting down.
	real    *time.Timer
	armed   bool
	armedAt time.Duration
}

func newClock(n *Node) *clock {
	c := &clock{node: n, origin: time.Now(), real: time.NewTimer(time.Hour)}
	c.real.Stop()
	return c
}

func (c *clock) Now() time.Time { return time.Now() }

func (c *clock) Mono() time.Duration { return time.Since(c.origin) }

// AfterFunc implements sim.Clock; it is called on the loop.
func (c *clock) AfterFunc(d time.Duration, f func()) sim.Timer {
	c.seq++
	t := &timer{clock: c, deadline: c.Mono() + max(d, 0), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// runDueMax bounds the timers run in one round of the loop.
const runDueMax = 1 << 10

// runDue runs the timers due now, in (deadline, sequence) order. Timers
// made while it runs wait for the next round, so a zero-delay timer that
// re-arms itself cannot keep the loop from its sockets. It reports
// whether due timers are left.
func (c *clock) runDue() bool {
	if len(c.timers) == 0 {
		return false
	}
	now, seqMark := c.Mono(), c.seq
	for range runDueMax {
		if len(c.timers) == 0 {
			return false
		}
		t := c.timers[0]
		if t.deadline > now || t.seq > seqMark {
			return t.deadline <= c.Mono()
		}
		heap.Pop(&c.timers)
		t.f()
	}
	return len(c.timers) > 0 && c.timers[0].deadline <= c.Mono()
}

// arm sets the real timer for the earliest deadline and returns the
// channel to wait on, nil when no timer is pending.
func (c *clock) arm() <-chan time.Time {
	if len(c.timers) == 0 {
		return nil
	}
	at := c.timers[0].deadline
	if !c.armed || at != c.armedAt {
		c.real.Reset(max(at-c.Mono(), 0))
		c.armed, c.armedAt = true, at
	}
	return c.real.C
}

// fired notes that the real timer went off; the due timers run in the
// next round.
func (c *clock) fired() { c.armed = false }

func (c *clock) stop() { c.real.Stop() }

// timer is a pending AfterFunc; it is touched only on the loop, so a Stop
// before its round prevents the call, as in simulation.
type timer struct {
	clock    *clock
	deadline time.Duration
	seq      uint64
	f        func()
	index    int // in the heap; -1 once fired or stopped
}

func (t *timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.clock.timers, t.index)
	return true
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
