package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// TestFailedReopenRetriesWithBackoff: a flush whose file and directory
// syncs fail reopens the log; while the disk fails every read the reload
// fails too and the log is offline. It retries after 100 ms, doubling to
// 10 s, logging each failure; once reads work again the next attempt
// brings it back, with everything it held.
func TestFailedReopenRetriesWithBackoff(t *testing.T) {
	r := newRig(t, 51, testDiskConfig())
	l, _ := r.open(Config{}, 0)
	for i := range 5 {
		mustAppend(t, l, testBatch(t, testRecords(2, fmt.Sprintf("a%d", i), 1)), 0)
	}
	if err := r.flush(l); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, l)
	// A new epoch rewrites the leader epoch checkpoint: the next round
	// syncs that file and the directory, and both fail.
	if err := l.AssignEpoch(1, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	r.disk.FailSyncs(2)
	r.disk.SetReadErrorRate(1)
	var flushErr error
	l.Flush(func(err error) { flushErr = err })
	r.advance(time.Millisecond)
	if !errors.Is(flushErr, sim.ErrIO) || l.Err() == nil {
		t.Fatalf("after the failed sync with reads failing: flush %v, log error %v", flushErr, l.Err())
	}
	if _, err := l.Append(testBatch(t, testRecords(1, "offline", 1)), 1); err == nil {
		t.Fatal("an offline log took an append")
	}
	r.advance(30 * time.Second)
	retries := r.retryDelays()
	wantDelays := []string{"100ms", "200ms", "400ms", "800ms", "1.6s", "3.2s", "6.4s", "10s", "10s"}
	if len(retries) < len(wantDelays) || strings.Join(retries[:len(wantDelays)], " ") != strings.Join(wantDelays, " ") {
		t.Fatalf("retry delays %v, want %v then 10s", retries, wantDelays)
	}
	for _, rest := range retries[len(wantDelays):] {
		if rest != "10s" {
			t.Fatalf("retry delays %v: past 10 s the delay stays 10 s", retries)
		}
	}
	r.disk.SetReadErrorRate(0)
	r.advance(10 * time.Second)
	if l.Err() != nil || r.linesContaining("back online after") != 1 {
		t.Fatalf("reads work again, the log is still offline: %v\n%s", l.Err(), strings.Join(r.lines, "\n"))
	}
	if got := readAll(t, l); !sameStrings(got, want) {
		t.Fatalf("back online the log holds %v, want %v", got, want)
	}
	mustAppend(t, l, testBatch(t, testRecords(1, "after", 1)), 1)
	if err := r.flush(l); err != nil {
		t.Fatalf("flush once back online: %v", err)
	}
	if testing.Verbose() {
		t.Log(strings.Join(r.lines, "\n"))
	}
	// Attempts stop once the log is back.
	attempts := len(r.retryDelays())
	r.advance(time.Minute)
	if len(r.retryDelays()) != attempts {
		t.Fatal("reopen attempts went on after the log came back")
	}
}

// retryDelays lists the delays the log's reopen attempts announced.
func (r *rig) retryDelays() []string {
	var out []string
	for _, line := range r.lines {
		if _, delay, ok := strings.Cut(line, "; retrying in "); ok {
			out = append(out, delay)
		}
	}
	return out
}
