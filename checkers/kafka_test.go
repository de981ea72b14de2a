package checkers

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
)

// anomalyCase is a hand-built history and exactly what the Kafka checker
// must find in it, and whether porcupine must accept it.
type anomalyCase struct {
	name        string
	build       func(b *builder)
	kafkaKinds  []string // exactly these, sorted
	linearValid bool
	opts        func(o *Options)
}

var anomalyCases = []anomalyCase{
	{
		name: "valid",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.send(1, 1, "c", 0)
			b.assign(10, history.OK, 0, 1)
			b.poll(10, record(0, "a", 0), record(1, "c", 0))
			b.poll(10, record(0, "b", 1))
		},
		linearValid: true,
	},
	{
		// The last poll of offset 0 finds "b" where "a" was acknowledged,
		// and none reads "a" again: "a" is lost as well.
		name: "inconsistent-offsets",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.sendInvoke(1, 0, "b")
			b.sendEnd(1, 0, "b", history.Info)
			b.poll(10, record(0, "a", 0))
			b.poll(11, record(0, "b", 0))
		},
		kafkaKinds: []string{KindInconsistentOffsets, KindLostWrite},
	},
	{
		// Neither value was acknowledged: two values at one offset, and
		// nothing the producers were promised is gone.
		name: "inconsistent-offsets-unacknowledged",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendEnd(0, 0, "a", history.Info)
			b.sendInvoke(1, 0, "b")
			b.sendEnd(1, 0, "b", history.Info)
			b.poll(10, record(0, "a", 0))
			b.poll(11, record(0, "b", 0))
		},
		kafkaKinds: []string{KindInconsistentOffsets},
	},
	{
		// A poll reads "a" at offset 0 again after "b" was read there (a
		// stale leader serving it): "a" may still be in the log, so only
		// the two values at one offset are reported.
		name: "inconsistent-offsets-read-again",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.sendInvoke(1, 0, "b")
			b.sendEnd(1, 0, "b", history.Info)
			b.poll(10, record(0, "a", 0))
			b.poll(11, record(0, "b", 0))
			b.poll(12, record(0, "a", 0))
		},
		kafkaKinds: []string{KindInconsistentOffsets},
	},
	{
		// Jepsen's isolated leader with unclean election: "a" is
		// acknowledged by a leader alone and read from it; the replica
		// elected uncleanly acknowledges "b" at the same offset, and every
		// later read (the final drain) finds "b". "a" is lost.
		name: "lost-write-overwritten",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.poll(10, record(0, "a", 0))
			b.send(1, 0, "b", 0)
			b.poll(11, record(0, "b", 0))
			b.poll(12, record(0, "b", 0))
		},
		kafkaKinds: []string{KindInconsistentOffsets, KindLostWrite},
	},
	{
		name: "duplicate",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.poll(10, record(0, "a", 0), record(0, "a", 1))
		},
		kafkaKinds: []string{KindDuplicate},
	},
	{
		name: "lost-write",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.poll(10, record(0, "b", 1))
		},
		kafkaKinds:  []string{KindLostWrite},
		linearValid: true,
	},
	{
		name: "unseen",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.poll(10, record(0, "a", 0))
		},
		kafkaKinds:  []string{KindUnseen},
		linearValid: true,
	},
	{
		name: "unseen-allowed",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
		},
		linearValid: true,
		opts:        func(o *Options) { o.UnseenIsAnomaly = false },
	},
	{
		name: "G1a",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendEnd(0, 0, "a", history.Fail)
			b.poll(10, record(0, "a", 0))
		},
		kafkaKinds: []string{KindG1a},
	},
	{
		name: "phantom-value",
		build: func(b *builder) {
			b.poll(10, record(0, "z", 0))
		},
		kafkaKinds: []string{KindPhantomValue},
	},
	{
		name: "phantom-value-wrong-partition",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendEnd(0, 0, "a", history.Info)
			b.poll(10, record(1, "a", 0))
		},
		kafkaKinds: []string{KindPhantomValue},
	},
	{
		name: "poll-skip",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.send(0, 0, "c", 2)
			b.poll(10, record(0, "a", 0))
			b.poll(10, record(0, "c", 2))
			b.poll(11, record(0, "a", 0), record(0, "b", 1), record(0, "c", 2))
		},
		kafkaKinds:  []string{KindPollSkip},
		linearValid: true,
	},
	{
		name: "poll-skip-across-failed-assign",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.send(0, 0, "c", 2)
			b.poll(10, record(0, "a", 0))
			b.assign(10, history.Fail, 0)
			b.poll(10, record(0, "c", 2))
			b.poll(11, record(0, "a", 0), record(0, "b", 1), record(0, "c", 2))
		},
		kafkaKinds:  []string{KindPollSkip},
		linearValid: true,
	},
	{
		name: "no-poll-skip-after-assign",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.send(0, 0, "c", 2)
			b.poll(10, record(0, "a", 0))
			b.assign(10, history.OK, 0)
			b.poll(10, record(0, "c", 2))
			b.poll(10, record(0, "c", 2)) // nonmonotonic: no reset between
			b.assign(10, history.Info, 0)
			b.poll(10, record(0, "a", 0))
			b.pollInvoke(10)
			b.pollEnd(10, history.Info)
			b.poll(10, record(0, "a", 0))
			b.poll(11, record(0, "a", 0), record(0, "b", 1), record(0, "c", 2))
		},
		kafkaKinds:  []string{KindNonmonotonicPoll},
		linearValid: true,
	},
	{
		name: "nonmonotonic-poll",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.poll(10, record(0, "a", 0), record(0, "b", 1))
			b.poll(10, record(0, "b", 1))
		},
		kafkaKinds:  []string{KindNonmonotonicPoll},
		linearValid: true,
	},
	{
		name: "int-poll-skip",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.send(0, 0, "c", 2)
			b.poll(10, record(0, "a", 0), record(0, "c", 2))
			b.poll(11, record(0, "a", 0), record(0, "b", 1), record(0, "c", 2))
		},
		kafkaKinds: []string{KindIntPollSkip},
	},
	{
		name: "unobserved-gap-is-not-a-skip",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "c", 2)
			b.poll(10, record(0, "a", 0), record(0, "c", 2))
		},
		linearValid: true,
	},
	{
		name: "int-nonmonotonic-poll",
		build: func(b *builder) {
			b.send(0, 0, "a", 0)
			b.send(0, 0, "b", 1)
			b.poll(10, record(0, "b", 1), record(0, "a", 0))
		},
		kafkaKinds: []string{KindIntNonmonotonicPoll},
	},
	{
		name: "nonmonotonic-send",
		build: func(b *builder) {
			b.send(0, 0, "a", 1)
			b.send(0, 0, "b", 0)
			b.poll(10, record(0, "b", 0), record(0, "a", 1))
		},
		kafkaKinds: []string{KindNonmonotonicSend},
	},
	{
		name: "nonmonotonic-send-real-time",
		build: func(b *builder) {
			b.send(0, 0, "a", 1)
			b.send(0, 0, "b", 0)
			b.poll(10, record(0, "b", 0), record(0, "a", 1))
		},
		kafkaKinds: []string{KindNonmonotonicSend},
		opts:       func(o *Options) { o.SendOrder = SendOrderRealTime },
	},
	{
		name: "nonmonotonic-send-in-flight",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendInvoke(0, 0, "b")
			b.sendOK(0, 0, "b", 0)
			b.sendOK(0, 0, "a", 1)
			b.poll(10, record(0, "b", 0), record(0, "a", 1))
		},
		kafkaKinds:  []string{KindNonmonotonicSend},
		linearValid: true,
	},
	{
		name: "in-flight-reorder-allowed-in-real-time",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendInvoke(0, 0, "b")
			b.sendOK(0, 0, "b", 0)
			b.sendOK(0, 0, "a", 1)
			b.poll(10, record(0, "b", 0), record(0, "a", 1))
		},
		linearValid: true,
		opts:        func(o *Options) { o.SendOrder = SendOrderRealTime },
	},
	{
		name: "nonmonotonic-send-info-read",
		build: func(b *builder) {
			b.sendInvoke(0, 0, "a")
			b.sendEnd(0, 0, "a", history.Info)
			b.send(0, 0, "b", 0)
			b.poll(10, record(0, "b", 0), record(0, "a", 1))
		},
		kafkaKinds:  []string{KindNonmonotonicSend},
		linearValid: true,
	},
	{
		name: "nonlinearizable-read-before-send",
		build: func(b *builder) {
			b.poll(10, record(0, "a", 0))
			b.send(0, 0, "a", 0)
		},
	},
	{
		name: "concurrent-read-is-linearizable",
		build: func(b *builder) {
			b.pollInvoke(10)
			b.sendInvoke(0, 0, "a")
			b.sendInvoke(1, 0, "b")
			b.sendEnd(1, 0, "b", history.Info) // read later: landed
			b.sendInvoke(2, 0, "c")
			b.sendEnd(2, 0, "c", history.Info) // never read: unknown
			b.sendInvoke(3, 0, "d")
			b.sendEnd(3, 0, "d", history.Fail)
			b.pollOK(10, record(0, "a", 0))
			b.sendOK(0, 0, "a", 0)
			b.sendInvoke(4, 0, "e") // never completes, read
			b.poll(10, record(0, "b", 1), record(0, "e", 2))
		},
		linearValid: true,
	},
	{
		name: "nonlinearizable-stale-read",
		build: func(b *builder) {
			// The poll read c before c was sent.
			b.send(0, 0, "a", 0)
			b.poll(11, record(0, "a", 0))
			b.send(0, 0, "b", 1)
			b.poll(10, record(0, "b", 1), record(0, "c", 2))
			b.send(0, 0, "c", 2)
		},
	},
}

func TestAnomalyCases(t *testing.T) {
	for _, c := range anomalyCases {
		t.Run(c.name, func(t *testing.T) {
			var b builder
			c.build(&b)
			opts := DefaultOptions()
			if c.opts != nil {
				c.opts(&opts)
			}
			r := Check(b.h, opts)
			if hv := verdictOf(t, r, CheckerHistory); !hv.Valid {
				t.Fatalf("history verdict invalid:\n%s", r.Text())
			}
			kv := verdictOf(t, r, CheckerKafka)
			if got := kinds(kv); !slices.Equal(got, c.kafkaKinds) {
				t.Fatalf("kafka kinds = %v, want %v\n%s", got, c.kafkaKinds, r.Text())
			}
			if kv.Valid != (len(c.kafkaKinds) == 0) {
				t.Fatalf("kafka Valid = %v with kinds %v", kv.Valid, c.kafkaKinds)
			}
			for _, a := range kv.Anomalies {
				if a.Count < 1 || len(a.Examples) < 1 || a.Examples[0].Detail == "" {
					t.Fatalf("anomaly %s without count or examples: %+v", a.Kind, a)
				}
			}
			lv := verdictOf(t, r, CheckerLinearizable)
			if lv.Unknown {
				t.Fatalf("porcupine undecided:\n%s", r.Text())
			}
			if lv.Valid != c.linearValid {
				t.Fatalf("linearizable Valid = %v, want %v\n%s", lv.Valid, c.linearValid, r.Text())
			}
			if !lv.Valid && !slices.Equal(kinds(lv), []string{KindNonlinearizable}) {
				t.Fatalf("linearizable kinds = %v", kinds(lv))
			}
			wantValid := len(c.kafkaKinds) == 0 && c.linearValid
			if r.Valid != wantValid || r.Unknown {
				t.Fatalf("report Valid = %v Unknown = %v, want Valid %v", r.Valid, r.Unknown, wantValid)
			}
		})
	}
}

func TestUnseenNotedWhenAllowed(t *testing.T) {
	var b builder
	b.send(0, 0, "a", 0)
	opts := DefaultOptions()
	opts.UnseenIsAnomaly = false
	v := CheckKafka(b.h, opts)
	if !v.Valid || v.Stats["unseen"] != 1 || len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "unseen") {
		t.Fatalf("want valid with 1 unseen noted, got %+v", v)
	}
	opts.UnseenIsAnomaly = true
	if v := CheckKafka(b.h, opts); v.Valid || !slices.Equal(kinds(v), []string{KindUnseen}) {
		t.Fatalf("want unseen anomaly, got %+v", v)
	}
}

func TestLostWriteExampleNamesOps(t *testing.T) {
	var b builder
	b.send(0, 0, "a", 0) // ops 0, 1
	b.send(0, 0, "b", 1) // ops 2, 3
	b.poll(10, record(0, "b", 1))
	v := CheckKafka(b.h, DefaultOptions())
	want := Example{
		Partition: "t-0", Offset: 0, Values: []string{"a"}, Ops: []int{1, 5},
	}
	got := v.Anomalies[0].Examples[0]
	got.Detail = ""
	if v.Anomalies[0].Count != 1 || !exampleEqual(got, want) {
		t.Fatalf("example = %+v, want %+v", got, want)
	}
}

func exampleEqual(a, b Example) bool { return compareExamples(a, b) == 0 }

func TestMalformedHistory(t *testing.T) {
	var b builder
	b.sendOK(0, 0, "a", 0)           // no invoke
	b.sendInvoke(0, 0, "b")          //
	b.sendInvoke(1, 0, "b")          // value reused
	b.pollInvoke(10)                 //
	b.pollInvoke(10)                 // overlapping consumer ops
	b.pollOK(11)                     // no invoke
	b.sendInvoke(0, 0, "c")          //
	b.sendEnd(1, 0, "c", history.OK) // completed by another process
	b.pollOK(10, record(0, "x", -1)) // a record without an offset
	r := Check(b.h, DefaultOptions())
	hv := verdictOf(t, r, CheckerHistory)
	if hv.Valid || !slices.Equal(kinds(hv), []string{KindMalformedHistory}) || hv.Anomalies[0].Count != 6 {
		t.Fatalf("want 6 malformed ops, got\n%s", r.Text())
	}
	if r.Valid {
		t.Fatalf("a malformed history must not be valid")
	}
}

func TestExamplesBoundedAndOrderFree(t *testing.T) {
	build := func(order []int) Verdict {
		var b builder
		for _, i := range order {
			b.send(i, int32(i%3), string(rune('a'+i)), int64(i))
		}
		opts := DefaultOptions()
		opts.ExamplesMax = 4
		return CheckKafka(b.h, opts)
	}
	forward := build([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
	backward := build([]int{19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	a := forward.Anomalies[0]
	if a.Kind != KindUnseen || a.Count != 20 || len(a.Examples) != 4 {
		t.Fatalf("want 20 unseen with 4 examples, got %+v", a)
	}
	for i := range a.Examples {
		if i > 0 && compareExamples(a.Examples[i-1], a.Examples[i]) >= 0 {
			t.Fatalf("examples out of order: %+v", a.Examples)
		}
		if a.Examples[i].Partition != "t-0" {
			t.Fatalf("kept example %+v, want the smallest (partition t-0)", a.Examples[i])
		}
		// Ops differ with the order sends were made; the rest must not.
		x, y := a.Examples[i], backward.Anomalies[0].Examples[i]
		if x.Partition != y.Partition || x.Offset != y.Offset || !slices.Equal(x.Values, y.Values) {
			t.Fatalf("examples depend on discovery order: %+v vs %+v", x, y)
		}
	}
}

func TestReportJSONAndTextDeterministic(t *testing.T) {
	var b builder
	for _, c := range anomalyCases {
		c.build(&b)
	}
	// The concatenated cases share values, which is malformed; good: every
	// verdict has something to say.
	r1 := Check(b.h, DefaultOptions())
	r2 := Check(b.h, DefaultOptions())
	j1, err := json.Marshal(r1)
	if err != nil {
		t.Fatal(err)
	}
	j2, err := json.Marshal(r2)
	if err != nil {
		t.Fatal(err)
	}
	if string(j1) != string(j2) || r1.Text() != r2.Text() {
		t.Fatalf("reports differ between runs")
	}
	var back Report
	if err := json.Unmarshal(j1, &back); err != nil || back.Text() != r1.Text() {
		t.Fatalf("report does not survive JSON: %v", err)
	}
	text := r1.Text()
	for _, want := range []string{"overall: INVALID", "\nwell-formed: INVALID", "\nkafka: INVALID",
		"\nlinearizable: INVALID", "anomaly malformed-history:", "stats:", "note:"} {
		if !strings.Contains(text, want) {
			t.Fatalf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestParseSendOrder(t *testing.T) {
	for _, o := range []SendOrder{SendOrderInvoke, SendOrderRealTime} {
		if got, err := ParseSendOrder(string(o)); err != nil || got != o {
			t.Fatalf("ParseSendOrder(%q) = %q, %v", o, got, err)
		}
	}
	if _, err := ParseSendOrder("completion"); err == nil {
		t.Fatalf("an unknown send order was accepted")
	}
}

// An unread acknowledged send below the log start retention left is
// deleted, not lost; one at or above it is still a lost write.
func TestLogStartExcusesOnlyDeletedSends(t *testing.T) {
	var b builder
	b.send(0, 0, "a", 0)
	b.send(0, 0, "b", 1)
	b.send(0, 0, "c", 2)
	b.poll(10, record(0, "c", 2))
	tp := history.TopicPartition{Topic: "t", Partition: 0}
	opts := DefaultOptions()
	opts.LogStartOffsets = map[history.TopicPartition]int64{tp: 1}
	v := CheckKafka(b.h, opts)
	if v.Valid || !slices.Equal(kinds(v), []string{KindLostWrite}) || v.Stats["lost-write"] != 1 ||
		v.Stats["deleted-unread"] != 1 || v.Anomalies[0].Examples[0].Offset != 1 {
		t.Fatalf("log start 1: want offset 1 lost and offset 0 deleted, got %+v", v)
	}
	opts.LogStartOffsets[tp] = 2
	if v := CheckKafka(b.h, opts); !v.Valid || v.Stats["deleted-unread"] != 2 {
		t.Fatalf("log start 2: want valid with 2 deleted, got %+v", v)
	}
	opts.LogStartOffsets = map[history.TopicPartition]int64{{Topic: "t", Partition: 1}: 5}
	if v := CheckKafka(b.h, opts); v.Valid || v.Stats["lost-write"] != 2 {
		t.Fatalf("another partition's log start: want 2 lost, got %+v", v)
	}
}
