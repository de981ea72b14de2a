package scenario

import (
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

// TestWritersStuckAfterTheHeal: a producer with most of its sends after
// the heal acknowledged passes, one with fewer than half fails and is
// named, and a producer whose only sends (failed) came before the heal is
// not judged.
func TestWritersStuckAfterTheHeal(t *testing.T) {
	const healedNs = 1000
	var ops history.History
	send := func(process int, at int64, value string, outcome history.Type) {
		rec := &history.Record{Topic: "t", Value: value}
		done := history.Op{Time: at + 5, Process: process, Type: outcome, F: history.Send, Record: rec}
		if outcome != history.OK {
			done.Error = "refused"
		}
		ops = append(ops, history.Op{Time: at, Process: process, Type: history.Invoke, F: history.Send, Record: rec}, done)
	}
	for i, outcome := range []history.Type{history.OK, history.OK, history.Fail, history.OK} {
		send(1, healedNs+int64(i), "1-"+string(rune('a'+i)), outcome)
	}
	for i, outcome := range []history.Type{history.Fail, history.Info, history.OK, history.Fail} {
		send(2, healedNs+int64(i), "2-"+string(rune('a'+i)), outcome)
	}
	send(3, healedNs-100, "3-a", history.Fail)
	send(1, healedNs-50, "1-z", history.Fail) // before the heal: not counted
	stuck, examples, judged := writersStuckAfter(ops, healedNs)
	if stuck != 1 || judged != 2 || len(examples) != 1 || !strings.HasPrefix(examples[0], "process 2: 4 sends, 1 acknowledged, 3 failed") {
		t.Fatalf("stuck %d of %d judged, examples %q; want process 2 alone of 2", stuck, judged, examples)
	}
}
