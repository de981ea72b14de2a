package checkers

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
)

// steadySends is a history of one producer sending to partition 0 every
// 100 ms for 30 s, each send acknowledged 10 ms later, except those
// invoked in [stallFrom, stallTo): they are acknowledged at stallTo, or
// never when stallTo is negative.
func steadySends(stallFrom, stallTo time.Duration) history.History {
	type event struct {
		at time.Duration
		op history.Op
	}
	var events []event
	for i := range 300 {
		at := time.Duration(i) * 100 * time.Millisecond
		r := history.Record{Topic: topic, Partition: 0, Value: "v" + strconv.Itoa(i), Offset: -1}
		events = append(events, event{at, history.Op{Process: 1, Type: history.Invoke, F: history.Send, Record: &r}})
		done := at + 10*time.Millisecond
		if at >= stallFrom && at < stallTo {
			done = stallTo
		} else if at >= stallFrom && stallTo < 0 {
			continue
		}
		acked := r
		acked.Offset = int64(i)
		events = append(events, event{done, history.Op{Process: 1, Type: history.OK, F: history.Send, Record: &acked}})
	}
	// Stable by time: an invoke before the acknowledgements of its instant.
	for i := 1; i < len(events); i++ {
		for j := i; j > 0 && events[j].at < events[j-1].at; j-- {
			events[j], events[j-1] = events[j-1], events[j]
		}
	}
	h := make(history.History, len(events))
	for i, e := range events {
		e.op.Index, e.op.Time = i, int64(e.at)
		h[i] = e.op
	}
	return h
}

func at(s float64) faults.Duration { return faults.Duration(time.Duration(s * float64(time.Second))) }

func availabilityOpts(actions ...faults.Action) AvailabilityOptions {
	return AvailabilityOptions{
		Brokers: []string{"b1", "b2", "b3"}, Controllers: []string{"ctl1", "ctl2", "ctl3"}, Clients: []string{"p1"},
		Faults: actions, Bound: 10 * time.Second, Settle: 2 * time.Second, End: 30 * time.Second,
	}
}

func block(s float64, from, to string) []faults.Action {
	return []faults.Action{{At: at(s), Op: faults.Block, From: from, To: to}, {At: at(s), Op: faults.Block, From: to, To: from}}
}

func TestAvailabilityCases(t *testing.T) {
	kill := func(s float64, node string) faults.Action {
		return faults.Action{At: at(s), Op: faults.Kill, Node: node}
	}
	restart := func(s float64, node string) faults.Action {
		return faults.Action{At: at(s), Op: faults.Restart, Node: node}
	}
	heal := faults.Action{At: at(26), Op: faults.Heal}
	for _, tc := range []struct {
		name             string
		stallFrom, until time.Duration
		actions          []faults.Action
		unavailable      bool
		why              string
	}{
		{name: "one broker down, writes stop", stallFrom: 6 * time.Second, until: 20 * time.Second,
			actions: []faults.Action{kill(5, "b2"), restart(25, "b2")}, unavailable: true, why: "only b2 was down"},
		{name: "one broker down, writes resume within the bound", stallFrom: 6 * time.Second, until: 15 * time.Second,
			actions: []faults.Action{kill(5, "b2"), restart(25, "b2")}},
		{name: "healthy cluster, writes never acknowledged again", stallFrom: 6 * time.Second, until: -1,
			unavailable: true, why: "the cluster was healthy"},
		{name: "two brokers down: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{kill(5, "b2"), kill(5, "b3")}},
		{name: "one controller down, writes stop", stallFrom: 6 * time.Second, until: 20 * time.Second,
			actions: []faults.Action{kill(5, "ctl2"), restart(25, "ctl2")}, unavailable: true, why: "only controller ctl2 was down"},
		{name: "one controller cut off", stallFrom: 6 * time.Second, until: 20 * time.Second,
			actions: []faults.Action{{At: at(5), Op: faults.Partition,
				Groups: [][]string{{"ctl3"}, {"b1", "b2", "b3", "ctl1", "ctl2", "p1"}}}, heal},
			unavailable: true, why: "only controller ctl3 was cut off"},
		{name: "two controllers down: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{kill(5, "ctl1"), kill(5, "ctl2")}},
		{name: "a controller down too: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{kill(5, "b2"), kill(5, "ctl1")}},
		{name: "a broker down and another's disk slow: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{kill(5, "b2"), {At: at(5), Op: faults.SlowDisk, Node: "b1", Factor: 10}}},
		{name: "the link between two brokers cut", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: append(block(5, "b1", "b2"), heal), unavailable: true, why: "only the link between b1 and b2 was cut"},
		{name: "one way of a link cut", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{{At: at(5), Op: faults.Block, From: "b3", To: "b1"}, heal}, unavailable: true,
			why: "only the link between b1 and b3 was cut"},
		{name: "a broker cut off from the cluster", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{{At: at(5), Op: faults.Partition,
				Groups: [][]string{{"b1"}, {"b2", "b3", "ctl1", "ctl2", "ctl3", "p1"}}}, heal},
			unavailable: true, why: "only b1 was cut off from the other brokers and the controllers"},
		{name: "a broker cut off from the brokers only keeps leading: not judged", stallFrom: 6 * time.Second,
			until: 28 * time.Second, actions: append(append(block(5, "b1", "b2"), block(5, "b1", "b3")...), heal)},
		{name: "a client cut off from a broker: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: append(block(5, "b1", "p1"), heal)},
		{name: "a link between controllers cut: not judged", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: append(block(5, "ctl1", "ctl2"), heal)},
		// Without the 2 s settle after b1's restart the wait from 10 s
		// would be 10.5 s; b2 is down alone only from 11 s, 9.5 s before.
		{name: "a restarted broker is still settling when another dies: not judged", stallFrom: 10 * time.Second,
			until:   20*time.Second + 500*time.Millisecond,
			actions: []faults.Action{kill(2, "b1"), restart(9, "b1"), kill(10, "b2"), restart(19, "b2")}},
		{name: "too short a judged window for the bound", stallFrom: 6 * time.Second, until: 28 * time.Second,
			actions: []faults.Action{kill(5, "b1"), kill(15, "b2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckAvailability(steadySends(tc.stallFrom, tc.until), availabilityOpts(tc.actions...))
			if v.Valid == tc.unavailable {
				t.Fatalf("valid %v, want %v:\n%s", v.Valid, !tc.unavailable, v.Text())
			}
			if !tc.unavailable {
				return
			}
			a := v.Anomalies[0]
			if a.Kind != KindUnavailable || a.Count != 1 || a.Examples[0].Partition != "t-0" ||
				!strings.Contains(a.Examples[0].Detail, tc.why) {
				t.Fatalf("want one unavailable example saying %q, got %+v", tc.why, v.Anomalies)
			}
		})
	}
}

// TestAvailabilityWaitIsMeasuredFromTheWindow: a send outstanding when a
// judged window opens is waited for from the window's start, not from its
// invoke while nothing was judged.
func TestAvailabilityWaitIsMeasuredFromTheWindow(t *testing.T) {
	// Two brokers down from 1 s to 10 s (not judged; b2 settles until
	// 12 s), then b1 alone until the end; writes stall from 2 s.
	actions := []faults.Action{{At: at(1), Op: faults.Kill, Node: "b1"}, {At: at(1), Op: faults.Kill, Node: "b2"},
		{At: at(10), Op: faults.Restart, Node: "b2"}}
	v := CheckAvailability(steadySends(2*time.Second, 21*time.Second), availabilityOpts(actions...))
	if !v.Valid || v.Stats["longest-wait-ms"] != 9000 {
		t.Fatalf("a 19 s stall, 9 s of it judged: want valid with a longest wait of 9s:\n%s", v.Text())
	}
	v = CheckAvailability(steadySends(2*time.Second, 23*time.Second), availabilityOpts(actions...))
	if v.Valid || !strings.Contains(v.Anomalies[0].Examples[0].Detail, "from 12s") {
		t.Fatalf("want the wait judged from 12s:\n%s", v.Text())
	}
	v = CheckAvailability(steadySends(2*time.Second, -1), availabilityOpts(actions[:2]...))
	if !v.Valid || v.Stats["judged-ms"] != 1000 {
		t.Fatalf("two brokers down to the end: want only the first second judged:\n%s", v.Text())
	}
}
