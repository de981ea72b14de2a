// Package sched is the discrete-event loop of the simulated world: one heap
// of events keyed by (time, sequence number) that runs every node's
// callbacks, one at a time, and feeds each into the run's trace hash.
//
// Nodes have incarnations: a crash bumps the incarnation, and every event
// scheduled for an earlier one is dropped when it comes due, which is how a
// crash discards pending timers, in-flight I/O and deliveries at once.
package sched

import (
	"fmt"
	"time"
)

// Loop is the event loop. It is not safe for concurrent use; everything in a
// simulated world runs on the goroutine that calls Run.
type Loop struct {
	now   time.Duration
	seq   uint64
	queue eventHeap
	// ready holds, in order, the events scheduled for the current
	// instant from the current instant: callbacks that run "as soon as
	// this one returns" are a fifth of a run's events, and a FIFO serves
	// them without the heap's sifts. Their sequence numbers are above
	// every queued event of this instant (those were scheduled from
	// earlier instants), so the queue's events of this instant go first,
	// then ready's in order, and ready is empty whenever time moves on.
	ready     []event
	readyHead int
	trace     Trace
	nodes     []*Node
	// dispatched counts events popped and run (or dropped as stale).
	dispatched uint64
	// withdrawn estimates how many queued events are stopped timers;
	// past half the queue they are swept out (see Timer.Stop).
	withdrawn int
	stopped   bool
	// timerSlab is where the next timers are cut from (see newTimer).
	timerSlab []Timer
}

// New returns an empty loop at time zero.
func New() *Loop {
	l := &Loop{}
	l.queue.items = make([]event, 0, 1024)
	return l
}

// Now is the simulated time since the run began.
func (l *Loop) Now() time.Duration { return l.now }

// Trace is the run's trace.
func (l *Loop) Trace() *Trace { return &l.trace }

// Dispatched is the number of events the loop has taken off its queue.
func (l *Loop) Dispatched() uint64 { return l.dispatched }

// Pending is the number of events waiting.
func (l *Loop) Pending() int { return len(l.queue.items) + len(l.ready) - l.readyHead }

// readyEvents are the events of ready not yet taken.
func (l *Loop) readyEvents() []event { return l.ready[l.readyHead:] }

// nextAt is the time of the next event; false when there is none.
func (l *Loop) nextAt() (time.Duration, bool) {
	if l.readyHead < len(l.ready) {
		return l.now, true
	}
	if len(l.queue.items) > 0 {
		return l.queue.items[0].at, true
	}
	return 0, false
}

// take removes the next event in (time, sequence) order.
func (l *Loop) take() event {
	if l.readyHead == len(l.ready) || (len(l.queue.items) > 0 && l.queue.items[0].at <= l.now) {
		return l.queue.pop()
	}
	ev := l.ready[l.readyHead]
	l.ready[l.readyHead] = event{} // let the callback be collected
	l.readyHead++
	switch {
	case l.readyHead == len(l.ready):
		l.ready, l.readyHead = l.ready[:0], 0
	case l.readyHead >= readyCompactMin && 2*l.readyHead >= len(l.ready):
		n := copy(l.ready, l.ready[l.readyHead:])
		clear(l.ready[n:])
		l.ready, l.readyHead = l.ready[:n], 0
	}
	return ev
}

// readyCompactMin is how many taken events ready lets pile up at its
// front before moving the rest down, in a long chain of one instant.
const readyCompactMin = 1024

// Nodes returns the registered nodes in registration order.
func (l *Loop) Nodes() []*Node { return l.nodes }

// AddNode registers a node. It starts down; Boot brings it up.
func (l *Loop) AddNode(name string) *Node {
	for _, n := range l.nodes {
		Assert(n.Name != name, "node %q registered twice", name)
	}
	n := &Node{ID: int32(len(l.nodes)), Name: name, loop: l}
	l.nodes = append(l.nodes, n)
	return n
}

// At schedules fn to run at time at. A nil node means a world event, which
// always runs; otherwise the event belongs to the node's current
// incarnation and is dropped if the node crashes first, and deferred while
// the node is paused. kind and detail identify the event in the trace.
func (l *Loop) At(at time.Duration, n *Node, kind Kind, detail uint64, fn func()) {
	// A func is pointer-shaped: boxing it in the interface allocates
	// nothing.
	l.schedule(at, n, kind, detail, funcRunner(fn))
}

// AtRunner is At for a Runner: a caller whose callback is a method of a
// struct it allocates anyway saves the closure.
func (l *Loop) AtRunner(at time.Duration, n *Node, kind Kind, detail uint64, r Runner) {
	l.schedule(at, n, kind, detail, r)
}

// After schedules fn to run d from now; see At.
func (l *Loop) After(d time.Duration, n *Node, kind Kind, detail uint64, fn func()) {
	l.At(l.now+d, n, kind, detail, fn)
}

// AfterTimer schedules f to run d from now on node n as a timer (see At),
// returning the Timer that can stop it. The timer is the event's callback
// itself, so a timer costs one allocation.
func (l *Loop) AfterTimer(d time.Duration, n *Node, f func()) *Timer {
	t := l.newTimer()
	*t = Timer{f: f, loop: l}
	l.schedule(l.now+d, n, KindTimer, 0, t)
	return t
}

// timerSlabLen is how many timers one allocation makes room for: a run
// arms a timer every few events, and one allocation per timer was the
// largest count of any call site. A slab is kept alive by any of its
// timers still referenced, at most a couple of kilobytes.
const timerSlabLen = 64

// newTimer returns room for a timer, cut from the current slab.
func (l *Loop) newTimer() *Timer {
	if len(l.timerSlab) == 0 {
		l.timerSlab = make([]Timer, timerSlabLen)
	}
	t := &l.timerSlab[0]
	l.timerSlab = l.timerSlab[1:]
	return t
}

func (l *Loop) schedule(at time.Duration, n *Node, kind Kind, detail uint64, r Runner) {
	if at < l.now {
		at = l.now
	}
	l.seq++
	ev := event{at: at, seq: l.seq<<seqKindBits | uint64(kind), run: r, node: worldNode, detail: detail}
	if n != nil {
		ev.node = n.ID
		ev.inc = n.inc
	}
	if at == l.now {
		l.ready = append(l.ready, ev)
		return
	}
	l.queue.push(ev)
}

// Runner is an event's callback.
type Runner interface{ Run() }

type funcRunner func()

func (f funcRunner) Run() { f() }

// Timer is a callback scheduled by AfterTimer. It implements sim.Timer.
//
// A stopped timer's event is withdrawn: the loop neither runs it nor
// counts it nor feeds it to the trace, exactly as if it had been taken out
// of the queue when stopped, and when stopped timers are more than half of
// a large queue they are swept out of it. Clients stop most of their
// timers (a request's timeout, once answered), so this keeps a third of a
// run's events and most of its queue away from the heap.
type Timer struct {
	f       func()
	loop    *Loop
	stopped bool
	fired   bool
}

// Run is the timer's event.
func (t *Timer) Run() {
	Assert(!t.stopped, "a stopped timer ran")
	t.fired = true
	t.f()
}

// Stop prevents the call if it has not happened yet and reports whether it
// did so.
func (t *Timer) Stop() bool {
	if t.fired || t.stopped {
		return false
	}
	t.stopped = true
	t.loop.withdraw()
	return true
}

// sweepQueueMin is the queue length below which withdrawn timers are left
// for the loop to skip: sweeping a very short queue saves nothing. At
// 1024, a simulated client's request timeouts (stopped within
// milliseconds, due 30 s later) kept a queue of a few dozen live events
// at about a thousand, and every push and pop sifted through them.
const sweepQueueMin = 64

func (l *Loop) withdraw() {
	l.withdrawn++
	if l.Pending() < sweepQueueMin || 2*l.withdrawn <= l.Pending() {
		return
	}
	l.queue.removeAll(withdrawn)
	kept := l.ready[:0]
	for _, ev := range l.readyEvents() {
		if !withdrawn(&ev) {
			kept = append(kept, ev)
		}
	}
	clear(l.ready[len(kept):])
	l.ready, l.readyHead = kept, 0
	// Timers parked by a paused node are not in the queue and may still
	// be stopped; the count is an estimate, so starting it again at zero
	// only delays the next sweep.
	l.withdrawn = 0
}

func withdrawn(ev *event) bool {
	t, ok := ev.run.(*Timer)
	return ok && t.stopped
}

// Stop makes Run return after the current event.
func (l *Loop) Stop() { l.stopped = true }

// Limits bound a run.
type Limits struct {
	// Until is the simulated time at which the run ends.
	Until time.Duration
	// EventsMax bounds the number of events; zero means no bound.
	EventsMax uint64
}

// Run dispatches events in (time, sequence) order until the queue is empty,
// the next event is later than lim.Until, Stop is called, or lim.EventsMax
// events have run. Simulated time is then lim.Until if the queue ran past it.
func (l *Loop) Run(lim Limits) {
	l.stopped = false
	for !l.stopped {
		at, ok := l.nextAt()
		if !ok {
			break
		}
		if lim.EventsMax > 0 && l.dispatched >= lim.EventsMax {
			return
		}
		if at > lim.Until {
			break
		}
		l.step()
	}
	if !l.stopped && l.now < lim.Until {
		l.now = lim.Until
	}
}

// Step dispatches one event and reports whether there was one.
func (l *Loop) Step() bool {
	for l.Pending() > 0 {
		if l.step() {
			return true
		}
	}
	return false
}

// step takes the first event off the queue and dispatches it, unless it is
// a withdrawn timer (see Timer), which it drops and reports false for.
func (l *Loop) step() bool {
	ev := l.take()
	if withdrawn(&ev) {
		l.withdrawn = max(l.withdrawn-1, 0)
		return false
	}
	l.now = ev.at
	l.dispatched++
	var n *Node
	if ev.node != worldNode {
		n = l.nodes[ev.node]
		if ev.inc != n.inc || !n.up {
			return true // the incarnation it belonged to has crashed
		}
		if n.paused {
			n.parked = append(n.parked, ev)
			return true
		}
	}
	l.trace.add(l.now, n, ev.kind(), ev.detail, "")
	ev.run.Run()
	return true
}

// Node is one simulated machine as the loop sees it.
type Node struct {
	ID     int32
	Name   string
	inc    uint32
	up     bool
	paused bool
	parked []event
	loop   *Loop
}

// Incarnation counts the node's crashes.
func (n *Node) Incarnation() uint32 { return n.inc }

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.up }

// Paused reports whether the node is paused.
func (n *Node) Paused() bool { return n.paused }

// Boot brings a down node up, in a new incarnation.
func (n *Node) Boot() {
	Assert(!n.up, "boot of running node %s", n.Name)
	n.up = true
	n.loop.trace.add(n.loop.now, n, KindBoot, uint64(n.inc), "")
}

// Crash takes the node down: every event scheduled for it is dropped.
func (n *Node) Crash() {
	Assert(n.up, "crash of stopped node %s", n.Name)
	n.loop.trace.add(n.loop.now, n, KindCrash, uint64(n.inc), "")
	n.up = false
	n.paused = false
	n.parked = nil
	n.inc++
}

// Pause stops running the node's events, as a long GC pause or SIGSTOP
// would; they are kept and run, in order, after Resume.
func (n *Node) Pause() {
	if !n.up || n.paused {
		return
	}
	n.loop.trace.add(n.loop.now, n, KindPause, 0, "")
	n.paused = true
}

// Resume runs the events deferred by Pause, in their original order.
func (n *Node) Resume() {
	if !n.paused {
		return
	}
	n.loop.trace.add(n.loop.now, n, KindResume, uint64(len(n.parked)), "")
	n.paused = false
	parked := n.parked
	n.parked = nil
	for _, ev := range parked {
		n.loop.schedule(n.loop.now, n, ev.kind(), ev.detail, ev.run)
	}
}

// Assert panics when cond is false; it marks programmer errors in the
// simulator itself.
func Assert(cond bool, format string, args ...any) {
	if !cond {
		panic("sched: assertion failed: " + fmt.Sprintf(format, args...))
	}
}
