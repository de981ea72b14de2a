package reports

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"
	"pgregory.net/rapid"
)

func TestParseWorldEvents(t *testing.T) {
	lines := []string{
		"2.285989s kill b1",
		"9.089957s power-loss b1",
		"9.089957s   b1 disk: 00000000000000000000.log cut to 512 of 4096 bytes",
		"9.089957s   b1 disk: topics.json kept",
		"10.5s partition b1 | p1 p2",
		"20.000000s heal",
		"21s some-future-action x y",
		// Malformed: each is skipped, none crashes.
		"",
		"kill b1",
		"2.5 kill b1",
		"xs kill b1",
		"-1s kill b1",
		"1e400s kill b1",
		"3s",
		"3s ",
		"3s    ",
	}
	events, skipped := parseWorldEvents(lines)
	want := []WorldEvent{
		{At: 2285989 * time.Microsecond, Action: "kill", Args: "b1", Kind: EventFault},
		{At: 9089957 * time.Microsecond, Action: "power-loss", Args: "b1", Kind: EventFault, Details: []string{
			"b1 disk: 00000000000000000000.log cut to 512 of 4096 bytes", "b1 disk: topics.json kept"}},
		{At: 10500 * time.Millisecond, Action: "partition", Args: "b1 | p1 p2", Kind: EventFault},
		{At: 20 * time.Second, Action: "heal", Kind: EventRecovery},
		{At: 21 * time.Second, Action: "some-future-action", Args: "x y", Kind: EventOther},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", events, want)
	}
	if len(skipped) != 9 {
		t.Fatalf("skipped %d lines, want 9: %q", len(skipped), skipped)
	}
	if got := ParseWorldEvents(lines); !reflect.DeepEqual(got, want) {
		t.Fatal("ParseWorldEvents differs from parseWorldEvents")
	}
	labels := []string{"kill b1", "power-loss b1", "partition", "heal", "some-future-action x"}
	for i, e := range events {
		if e.Label() != labels[i] {
			t.Errorf("label %q, want %q", e.Label(), labels[i])
		}
	}
	if events[2].Text() != "partition b1 | p1 p2" || events[3].Text() != "heal" {
		t.Errorf("texts %q %q", events[2].Text(), events[3].Text())
	}
}

// TestParseWorldEventsOutOfOrder: a hand-edited list is put in time order,
// equal times keeping their order.
func TestParseWorldEventsOutOfOrder(t *testing.T) {
	events := ParseWorldEvents([]string{"5s restart b1", "1s kill b1", "5s heal"})
	var got []string
	for _, e := range events {
		got = append(got, e.Text())
	}
	if !slices.Equal(got, []string{"kill b1", "restart b1", "heal"}) {
		t.Fatalf("order %q", got)
	}
}

// TestParseWorldEventsNeverPanics: any lines at all parse to events in
// time order at non-negative times.
func TestParseWorldEventsNeverPanics(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		line := rapid.OneOf(
			rapid.String(),
			rapid.StringMatching(`-?[0-9.e+]{0,8}s? {0,3}[a-z-]{0,6}( [a-z0-9|>-]{0,5}){0,3}`),
		)
		lines := rapid.SliceOfN(line, 0, 20).Draw(t, "lines")
		events := ParseWorldEvents(lines)
		for i, e := range events {
			if e.At < 0 || e.Action == "" {
				t.Fatalf("event %+v from %q", e, lines)
			}
			if i > 0 && events[i-1].At > e.At {
				t.Fatalf("events out of order: %+v", events)
			}
		}
	})
}

func TestFaultSpans(t *testing.T) {
	events := ParseWorldEvents([]string{
		"1s kill b1",
		"1.5s slow-disk b2 x10",
		"2s restart b1",
		"3s pause b2",
		"4s block p1->b1",
		"4.5s partition b1 | b2",
		"5s heal",
		"6s fail-syncs b2 3",  // b2's disk span is already open: no second
		"6s disk-heal b2",     // closes the disk span opened at 1.5 s
		"7s restart b3",       // closes nothing
		"8s power-loss b1",    // never restarted: runs to the end
		"9s heal",             // nothing open
		"9s clock-jump b1 5s", // a moment, not a span
	})
	got := faultSpans(events, 10*time.Second)
	want := []faultSpan{
		{kind: spanDown, node: "b1", from: time.Second, to: 2 * time.Second},
		{kind: spanDisk, node: "b2", from: 1500 * time.Millisecond, to: 6 * time.Second},
		{kind: spanPaused, node: "b2", from: 3 * time.Second, to: 10 * time.Second},
		{kind: spanNetwork, from: 4 * time.Second, to: 5 * time.Second},
		{kind: spanDown, node: "b1", from: 8 * time.Second, to: 10 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans:\n got %+v\nwant %+v", got, want)
	}
}

// TestLayoutLabels: labels that would overlap go to the next row; a label
// that would run past the right edge ends at its line instead; with rows
// exhausted a label goes where it overlaps least.
func TestLayoutLabels(t *testing.T) {
	w := vg.Length(40)
	xs := []vg.Length{0, 10, 100, 105, 110, 395}
	widths := []vg.Length{w, w, w, w, w, w}
	rows, lefts, used := layoutLabels(xs, widths, 0, 400, 2)
	if !slices.Equal(rows, []int{0, 1, 0, 1, 0, 0}) {
		t.Fatalf("rows %v", rows)
	}
	if used != 2 {
		t.Fatalf("used %d rows, want 2", used)
	}
	// The fifth label, at 110, found no free row and took row 0, whose
	// last label ended earliest (at 142, against row 1's 147).
	if lefts[5] != 395-labelInset-w {
		t.Fatalf("last label left %v, want right-aligned at %v", lefts[5], 395-labelInset-w)
	}
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if rows[i] == rows[j] && i != 4 && j != 4 && lefts[j] < lefts[i]+widths[i]+labelGap {
				t.Errorf("labels %d and %d overlap in row %d", i, j, rows[i])
			}
		}
	}
}
