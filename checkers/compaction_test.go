package checkers

import (
	"slices"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

// keyedSend is a keyed send invoked and acknowledged at once.
func (b *builder) keyedSend(proc int, part int32, key, value string, offset int64) {
	r := record(part, value, -1)
	r.Key = key
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Send, Record: &r})
	done := record(part, value, offset)
	done.Key = key
	b.add(history.Op{Process: proc, Type: history.OK, F: history.Send, Record: &done})
}

// compactedLog sends k1=a@0 k2=b@1 k1=c@2 k2=d@3 to partition 0: a and b
// have newer records of their keys, c and d are the newest.
func compactedLog() *builder {
	b := &builder{}
	b.keyedSend(1, 0, "k1", "a", 0)
	b.keyedSend(1, 0, "k2", "b", 1)
	b.keyedSend(1, 0, "k1", "c", 2)
	b.keyedSend(1, 0, "k2", "d", 3)
	return b
}

func compactedOptions(on bool) Options {
	opts := DefaultOptions()
	opts.UnseenIsAnomaly = true
	if on {
		opts.Compacted = map[history.TopicPartition]bool{{Topic: topic, Partition: 0}: true}
	}
	return opts
}

// TestCompactionExcusesOnlySupersededRecords: on a compacted partition a
// read that misses records with a newer record of their key is neither a
// lost write nor a skip, in both checkers; without the option it is both;
// and missing the newest record of a key stays an anomaly either way.
func TestCompactionExcusesOnlySupersededRecords(t *testing.T) {
	cleaned := compactedLog()
	cleaned.poll(2, record(0, "a", 0), record(0, "c", 2), record(0, "d", 3)) // b compacted away

	r := Check(cleaned.h, compactedOptions(true))
	if got := reportKinds(r); len(got) != 0 {
		t.Fatalf("compacted partition: anomalies %v, want none:\n%s", got, r.Text())
	}
	if n := verdictOf(t, r, CheckerKafka).Stats["compacted-unread"]; n != 1 {
		t.Errorf("compacted-unread = %d, want 1 (b)", n)
	}
	plain := reportKinds(Check(cleaned.h, compactedOptions(false)))
	for _, want := range []string{KindIntPollSkip, KindLostWrite} {
		if !slices.Contains(plain, want) {
			t.Errorf("without compaction: anomalies %v, want %s among them", plain, want)
		}
	}

	skipsNewest := compactedLog()
	skipsNewest.poll(2, record(0, "a", 0), record(0, "b", 1), record(0, "d", 3)) // c is k1's newest
	r = Check(skipsNewest.h, compactedOptions(true))
	got := reportKinds(r)
	for _, want := range []string{KindIntPollSkip, KindLostWrite} {
		if !slices.Contains(got, want) {
			t.Errorf("newest of k1 missing: anomalies %v, want %s among them", got, want)
		}
	}
	if v := verdictOf(t, r, CheckerLinearizable); v.Valid {
		t.Errorf("newest of k1 missing: linearizable, want not:\n%s", r.Text())
	}

	across := compactedLog()
	across.poll(2, record(0, "a", 0))
	across.poll(2, record(0, "c", 2), record(0, "d", 3)) // b removed between polls
	if got := reportKinds(Check(across.h, compactedOptions(true))); len(got) != 0 {
		t.Errorf("gap between polls over a superseded record: anomalies %v, want none", got)
	}
	if got := reportKinds(Check(across.h, compactedOptions(false))); !slices.Contains(got, KindPollSkip) {
		t.Errorf("without compaction: anomalies %v, want %s", got, KindPollSkip)
	}
}
