package osenv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// newSmallQueueNode makes a node whose queue of posted events holds only a
// few, so that the paths that fill it are exercised quickly.
func newSmallQueueNode(t *testing.T, workers int) *Node {
	t.Helper()
	n, err := NewNode(Options{Name: "small", DataDir: t.TempDir(), Seed: 1, SyncWorkers: workers})
	if err != nil {
		t.Fatal(err)
	}
	n.events = make(chan func(), 4)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go n.Run(ctx)
	return n
}

// The loop submits more fsyncs in one callback than any queue between it
// and the workers holds, while the workers' completions fill the queue of
// posted events. Neither side may wait on the other: every sync completes.
func TestSyncFloodDoesNotDeadlockTheLoop(t *testing.T) {
	n := newSmallQueueNode(t, 1)
	const syncs = 5000 // more than the old bounded sync queue and event queue together
	done := 0
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		n.Call(func() {
			f, err := n.Env().FS.Create("flood")
			if err != nil {
				panic(err)
			}
			for range syncs {
				f.Sync(func(error) { done++ })
			}
			for range 10 {
				n.Env().FS.SyncDir("../outside", func(error) { done++ }) // the path-error branch
			}
		})
		for {
			var all bool
			n.Call(func() { all = done == syncs+10 })
			if all {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatalf("loop and fsync workers deadlocked: the loop never came back")
	}
}

// Zero-delay timers and timers with mixed deadlines fire on the loop in
// (deadline, sequence) order, as in simulation, round after round. The
// mixed deadlines are 10 ms apart: they are taken from the real clock at
// each call, and a machine under load may pause between two calls for
// more than a millisecond, which would rightly reorder closer ones.
func TestTimersFireInDeadlineThenSequenceOrder(t *testing.T) {
	n := newTestNode(t, "timers")
	const rounds, mixedEvery = 200, 5
	for round := range rounds {
		var got []int
		done := false
		mixed := round%mixedEvery == 0
		n.Call(func() {
			clock := n.Env().Clock
			for i := range 20 {
				clock.AfterFunc(0, func() { got = append(got, i) })
			}
			end := time.Millisecond
			if mixed {
				// Asked for out of order: 30 ms, 10 ms, 20 ms, then a
				// second 10 ms one, which must follow the first.
				clock.AfterFunc(30*time.Millisecond, func() { got = append(got, 103) })
				clock.AfterFunc(10*time.Millisecond, func() { got = append(got, 101) })
				clock.AfterFunc(20*time.Millisecond, func() { got = append(got, 102) })
				clock.AfterFunc(10*time.Millisecond, func() { got = append(got, 111) })
				end = 40 * time.Millisecond
			}
			stopped := clock.AfterFunc(0, func() { got = append(got, -1) })
			if !stopped.Stop() {
				t.Errorf("Stop of a pending zero-delay timer reported false")
			}
			clock.AfterFunc(end, func() { done = true })
		})
		waitFor(t, n, "the timers of a round", func() bool { return done })
		n.Call(func() {
			want := []int{}
			for i := range 20 {
				want = append(want, i)
			}
			if mixed {
				want = append(want, 101, 111, 102, 103)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d: timers fired in order %v, want %v", round, got, want)
			}
		})
	}
}

// A zero-delay timer that re-arms itself must not starve the rest of the
// loop.
func TestSelfRearmingTimerDoesNotStarveTheLoop(t *testing.T) {
	n := newTestNode(t, "spin")
	spins := 0
	n.Call(func() {
		var again func()
		again = func() { spins++; n.Env().Clock.AfterFunc(0, again) }
		n.Env().Clock.AfterFunc(0, again)
	})
	for range 100 { // each Call is a posted event that must get its turn
		n.Call(func() {})
	}
	n.Call(func() {
		if spins == 0 {
			t.Fatalf("the self re-arming timer never ran")
		}
	})
}
