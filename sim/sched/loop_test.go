package sched

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestOrderByTimeThenSequence(t *testing.T) {
	l := New()
	var got []int
	for i, at := range []time.Duration{3, 1, 2, 1, 3, 0} {
		i := i
		l.At(at, nil, KindUser, 0, func() { got = append(got, i) })
	}
	l.Run(Limits{Until: time.Second})
	want := []int{5, 1, 3, 2, 0, 4}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if l.Now() != time.Second {
		t.Fatalf("time after run = %v, want 1s", l.Now())
	}
}

func TestCrashDropsPendingEvents(t *testing.T) {
	l := New()
	n := l.AddNode("n1")
	n.Boot()
	ran := 0
	l.At(10, n, KindTimer, 0, func() { ran++ })
	l.At(5, nil, KindWorld, 0, func() { n.Crash(); n.Boot() })
	l.At(20, n, KindTimer, 0, func() { ran += 10 })
	l.Run(Limits{Until: time.Second})
	// The event at 20 was scheduled before the crash too, so both drop.
	if ran != 0 {
		t.Fatalf("events of a crashed incarnation ran: %d", ran)
	}
	l.At(l.Now()+1, n, KindTimer, 0, func() { ran++ })
	l.Run(Limits{Until: 2 * time.Second})
	if ran != 1 {
		t.Fatalf("event of the new incarnation did not run")
	}
}

func TestPauseDefersInOrder(t *testing.T) {
	l := New()
	n := l.AddNode("n1")
	n.Boot()
	var got []time.Duration
	for _, at := range []time.Duration{10, 20, 30} {
		l.At(at, n, KindTimer, 0, func() { got = append(got, l.Now()) })
	}
	l.At(5, nil, KindWorld, 0, func() { n.Pause() })
	l.At(100, nil, KindWorld, 0, func() { n.Resume() })
	l.Run(Limits{Until: time.Second})
	if len(got) != 3 || got[0] != 100 || got[2] != 100 {
		t.Fatalf("paused events ran at %v, want three at 100", got)
	}
}

func TestTraceDivergenceNamed(t *testing.T) {
	run := func(detail uint64) []Record {
		l := New()
		l.Trace().Record()
		n := l.AddNode("n1")
		n.Boot()
		for i := uint64(0); i < 10; i++ {
			d := i
			if i == 7 {
				d = detail
			}
			l.At(time.Duration(i), n, KindTimer, d, func() {})
		}
		l.Run(Limits{Until: time.Second})
		recs, _ := l.Trace().Records()
		return recs
	}
	if _, diverged := Diverge(run(7), run(7)); diverged {
		t.Fatal("identical runs diverged")
	}
	d, diverged := Diverge(run(7), run(99))
	if !diverged {
		t.Fatal("different runs did not diverge")
	}
	// Entry 0 is the boot; timer i is entry i+1.
	if d.Index != 8 || d.First.Detail != 7 || d.Second.Detail != 99 {
		t.Fatalf("divergence named %+v", d)
	}
}

func TestEventsMaxBoundsRun(t *testing.T) {
	l := New()
	var tick func()
	tick = func() { l.After(1, nil, KindTimer, 0, tick) }
	tick()
	l.Run(Limits{Until: time.Hour, EventsMax: 1000})
	if l.Dispatched() != 1000 {
		t.Fatalf("dispatched %d, want 1000", l.Dispatched())
	}
}

// TestStoppedTimersAreWithdrawn: a stopped timer neither runs nor counts
// nor reaches the trace, whether the loop meets it in the queue or a sweep
// removes it, and the timers left run in (time, sequence) order.
func TestStoppedTimersAreWithdrawn(t *testing.T) {
	for _, timers := range []int{10, 4 * sweepQueueMin} {
		l := New()
		n := l.AddNode("n1")
		n.Boot()
		var ran []int
		all := make([]*Timer, timers)
		for i := range all {
			// Times repeat, so that order within a time is tested too.
			all[i] = l.AfterTimer(time.Duration(i%7), n, func() { ran = append(ran, i) })
		}
		stopped := 0
		for i, tm := range all {
			if i%3 != 0 {
				if !tm.Stop() {
					t.Fatalf("timers=%d: Stop of pending timer %d reported false", timers, i)
				}
				stopped++
			}
		}
		if timers > sweepQueueMin && l.Pending() >= timers {
			t.Fatalf("timers=%d: no sweep: %d pending", timers, l.Pending())
		}
		before := l.Trace().Count()
		l.Run(Limits{Until: time.Second})
		var want []int
		for at := 0; at < 7; at++ {
			for i := at; i < timers; i += 7 {
				if i%3 == 0 {
					want = append(want, i)
				}
			}
		}
		if !slices.Equal(ran, want) {
			t.Fatalf("timers=%d: ran %v, want %v", timers, ran, want)
		}
		if got := l.Dispatched(); got != uint64(timers-stopped) {
			t.Fatalf("timers=%d: dispatched %d, want %d", timers, got, timers-stopped)
		}
		if got := l.Trace().Count() - before; got != uint64(timers-stopped) {
			t.Fatalf("timers=%d: traced %d, want %d", timers, got, timers-stopped)
		}
		if all[0].Stop() {
			t.Fatalf("timers=%d: Stop of a fired timer reported true", timers)
		}
	}
}

// TestEventsRunInTimeThenSequenceOrder: whatever callbacks schedule (at
// the current instant, which the ready FIFO serves, or later, which the
// heap does; from inside a run or between runs), events run in the order
// of their (time, sequence) as one sorted queue would run them.
func TestEventsRunInTimeThenSequenceOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l := New()
		n := l.AddNode("n")
		n.Boot()
		type key struct {
			at  time.Duration
			seq int
		}
		var scheduled []key // by id
		var ran []int
		seq := 0
		var add func(d time.Duration, depth int)
		add = func(d time.Duration, depth int) {
			id := len(scheduled)
			seq++
			scheduled = append(scheduled, key{l.Now() + d, seq})
			// The children are drawn now, so that the program is fixed
			// whatever order the loop runs it in.
			var children []time.Duration
			if depth < 4 {
				for range rapid.IntRange(0, 3).Draw(t, "children") {
					children = append(children, time.Duration(rapid.SampledFrom([]int{0, 0, 1, 2, 5}).Draw(t, "delay")))
				}
			}
			l.After(d, n, KindTimer, 0, func() {
				ran = append(ran, id)
				for _, c := range children {
					add(c, depth+1)
				}
			})
		}
		for range rapid.IntRange(1, 4).Draw(t, "rounds") {
			for range rapid.IntRange(1, 4).Draw(t, "roots") {
				add(time.Duration(rapid.IntRange(0, 3).Draw(t, "root delay")), 0)
			}
			l.Run(Limits{Until: l.Now() + time.Duration(rapid.IntRange(0, 6).Draw(t, "run for"))})
		}
		l.Run(Limits{Until: 1 << 40})
		want := make([]int, len(scheduled))
		for i := range want {
			want[i] = i
		}
		slices.SortFunc(want, func(a, b int) int {
			if c := cmp.Compare(scheduled[a].at, scheduled[b].at); c != 0 {
				return c
			}
			return cmp.Compare(scheduled[a].seq, scheduled[b].seq)
		})
		if !slices.Equal(ran, want) {
			t.Fatalf("ran %v, want %v", ran, want)
		}
	})
}
