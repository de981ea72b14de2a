package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// TestSeriesWindows: operations land in the window their completion falls
// in, [k×100ms, (k+1)×100ms); rates are counts over the window's width.
func TestSeriesWindows(t *testing.T) {
	var b builder
	// Window 0: three acked sends; one fails, one is indeterminate.
	b.send(0, ms(1), ms(2), history.OK)
	b.send(0, ms(3), ms(5), history.OK)
	b.send(0, ms(10), ms(99.999), history.OK)
	b.send(1, ms(10), ms(20), history.Fail)
	b.send(1, ms(30), ms(40), history.Info)
	// Window 1: nothing completes; a send invoked here completes in 2.
	b.send(2, ms(150), ms(200), history.OK) // exactly on the boundary: window 2
	// Window 2: four more acked, 100..400 µs, and the 50 ms one above.
	for i := int64(1); i <= 4; i++ {
		b.send(3, ms(250), ms(250)+us(100*i), history.OK)
	}
	// Polls: 7 records in window 0, 5 in window 3; a failed poll's
	// records (none) and an info poll count nothing.
	b.poll(9, ms(0), ms(50), history.OK, 7)
	b.poll(9, ms(60), ms(70), history.Fail, 0)
	b.poll(9, ms(80), ms(250), history.Info, 0)
	b.poll(9, ms(300), ms(310), history.OK, 5)
	s, err := NewSeries(b.history(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Windows) != 4 || s.End() != 400*time.Millisecond {
		t.Fatalf("%d windows ending %v, want 4 ending 400ms", len(s.Windows), s.End())
	}
	type counts struct{ acked, failed, unknown, polled int64 }
	want := []counts{{3, 1, 1, 7}, {0, 0, 0, 0}, {5, 0, 0, 0}, {0, 0, 0, 5}}
	for i, w := range s.Windows {
		got := counts{w.SendsAcked, w.SendsFailed, w.SendsUnknown, w.RecordsPolled}
		if got != want[i] {
			t.Errorf("window %d: %+v, want %+v", i, got, want[i])
		}
		if w.Index != i || w.Start != time.Duration(i)*100*time.Millisecond {
			t.Errorf("window %d: index %d start %v", i, w.Index, w.Start)
		}
	}
	if r := s.Rate(s.Windows[0].SendsAcked); r != 30 {
		t.Errorf("rate of 3 in 100ms = %v, want 30/s", r)
	}
	// Window 0 latencies 1, 2, 89.999 ms: p50 is rank 2 (2 ms), p99 rank 3.
	if w := s.Windows[0]; w.SendP50 != 2*time.Millisecond || w.SendP99 < 89990*time.Microsecond || w.SendP99 > 90100*time.Microsecond {
		t.Errorf("window 0 p50 %v p99 %v, want 2ms and 89.999ms within precision", w.SendP50, w.SendP99)
	}
	// Window 2 latencies 100, 200, 300, 400 µs and 50 ms: rank
	// round(2.5)=3 is 300 µs; rank round(4.95)=5 is 50 ms.
	if w := s.Windows[2]; w.SendP50 != 300*time.Microsecond || w.SendP99 < 50*time.Millisecond || w.SendP99 > 50050*time.Microsecond {
		t.Errorf("window 2 p50 %v p99 %v, want 300µs and 50ms", w.SendP50, w.SendP99)
	}
	if w := s.Windows[1]; w.SendP50 != 0 || w.SendP99 != 0 {
		t.Errorf("empty window has latencies %v %v", w.SendP50, w.SendP99)
	}
}

func TestSeriesEdges(t *testing.T) {
	s, err := NewSeries(nil, time.Second)
	if err != nil || len(s.Windows) != 0 {
		t.Fatalf("empty history: %d windows, %v", len(s.Windows), err)
	}
	var b builder
	b.send(0, 0, ms(2000), history.OK)
	if _, err := NewSeries(b.history(), 0); err == nil {
		t.Error("a zero window was accepted")
	}
	if _, err := NewSeries(b.history(), time.Nanosecond); err == nil || !strings.Contains(err.Error(), "windows") {
		t.Errorf("two billion windows: err %v", err)
	}
	var neg builder
	neg.send(0, -5, 10, history.OK)
	if _, err := NewSeries(neg.history(), time.Millisecond); err == nil {
		t.Error("an op before time zero was accepted")
	}
}
