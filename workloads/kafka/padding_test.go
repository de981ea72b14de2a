package kafka

import (
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

// TestPaddingRecorderTrimsOnlyIntactPadding: a padded value is recorded
// by its prefix; one whose padding changed is recorded whole, so the
// checkers see a value nobody sent.
func TestPaddingRecorderTrimsOnlyIntactPadding(t *testing.T) {
	const size = 100
	intact := string(paddedValue("3-17", size))
	if len(intact) != size || intact[:5] != "3-17." {
		t.Fatalf("padded value %q", intact)
	}
	damaged := []byte(intact)
	damaged[size-1]++
	log := &history.Log{Now: func() int64 { return 0 }}
	r := paddingRecorder{next: log, valueBytes: size}
	r.Add(history.Op{F: history.Send, Type: history.Invoke, Record: &history.Record{Value: intact}})
	r.Add(history.Op{F: history.Poll, Type: history.OK, Records: []history.Record{{Value: intact}, {Value: string(damaged)}, {Value: "5-2"}}})
	if got := log.Ops[0].Record.Value; got != "3-17" {
		t.Errorf("send recorded %q, want the prefix", got)
	}
	got := log.Ops[1].Records
	if got[0].Value != "3-17" || got[1].Value != string(damaged) || got[2].Value != "5-2" {
		t.Errorf("poll recorded %q, %q, %q", got[0].Value, got[1].Value, got[2].Value)
	}
	if short := string(paddedValue("12345-1", 4)); short != "12345-1" {
		t.Errorf("a size below the prefix padded to %q", short)
	}
}
