// Package checkers reads a history (package history) and decides whether the
// system behaved: the Jepsen Kafka anomaly set (CheckKafka), linearizability
// of every partition's log under porcupine (CheckLinearizable), and the
// well-formedness of the history itself (CheckHistory). Check runs them all.
//
// Every result is deterministic: anomalies are sorted by kind, examples by a
// total order, statistics are keyed maps that encoding/json writes sorted.
// The one exception is a porcupine timeout, which depends on the machine's
// speed; it is reported as unknown, never as valid or invalid.
package checkers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// Checker names, as they appear in Verdict.Checker.
const (
	CheckerHistory      = "well-formed"
	CheckerKafka        = "kafka"
	CheckerLinearizable = "linearizable"
)

// Anomaly kinds. The Kafka kinds follow Jepsen's jepsen.tests.kafka.
const (
	// KindMalformedHistory: the history breaks its own format (a completion
	// without an invoke, a send value used twice, overlapping consumer ops).
	KindMalformedHistory = "malformed-history"
	// KindInconsistentOffsets: one offset of a partition holds two values.
	KindInconsistentOffsets = "inconsistent-offsets"
	// KindDuplicate: one value sits at two offsets of a partition.
	KindDuplicate = "duplicate"
	// KindLostWrite: an acknowledged send at or below the highest offset
	// any poll read on its partition, which no poll returned.
	KindLostWrite = "lost-write"
	// KindUnseen: an acknowledged send above the highest offset polled on
	// its partition, which no poll returned (disjoint from lost-write).
	KindUnseen = "unseen"
	// KindG1a: a poll returned a value whose send definitely failed.
	KindG1a = "G1a"
	// KindPhantomValue: a poll returned a value that no send of the history
	// carried to that partition. Jepsen stops with an error here.
	KindPhantomValue = "phantom-value"
	// KindPollSkip: two successive polls of one consumer, with no
	// reassignment between, jumped over offsets known to exist.
	KindPollSkip = "poll-skip"
	// KindNonmonotonicPoll: a consumer's next poll of a partition started at
	// or before the offset where its previous poll ended.
	KindNonmonotonicPoll = "nonmonotonic-poll"
	// KindIntPollSkip: inside one poll, two successive records of a
	// partition jump over offsets known to exist.
	KindIntPollSkip = "int-poll-skip"
	// KindIntNonmonotonicPoll: inside one poll, a record of a partition is
	// at or before the offset of the record before it.
	KindIntNonmonotonicPoll = "int-nonmonotonic-poll"
	// KindNonmonotonicSend: one producer's later send to a partition landed
	// at or below an earlier one (which pairs count: Options.SendOrder).
	KindNonmonotonicSend = "nonmonotonic-send"
	// KindNonlinearizable: porcupine found no linearization of a partition.
	KindNonlinearizable = "nonlinearizable"
)

// SendOrder selects which pairs of one producer's sends must land in order
// for nonmonotonic-send.
type SendOrder string

const (
	// SendOrderInvoke requires every acknowledged (or observed) send to a
	// partition to land after every send the same process invoked before
	// it, however they overlapped. This is Kafka's ordering promise for an
	// idempotent producer (the default in franz-go and Kafka 3+), which
	// holds with up to 5 requests in flight and across retries. Jepsen's
	// processes are synchronous, so there invoke order and completion
	// order coincide; this is the same check made for asynchronous sends.
	SendOrderInvoke SendOrder = "invoke"
	// SendOrderRealTime only requires a send to land after the sends of the
	// same process acknowledged before it was invoked. Any correct
	// append-only log promises this, even to a non-idempotent producer
	// whose retries may reorder records in flight.
	SendOrderRealTime SendOrder = "real-time"
)

// ParseSendOrder reads a SendOrder by name, for command lines.
func ParseSendOrder(name string) (SendOrder, error) {
	switch o := SendOrder(name); o {
	case SendOrderInvoke, SendOrderRealTime:
		return o, nil
	}
	return "", fmt.Errorf("send order %q: want %q or %q", name, SendOrderInvoke, SendOrderRealTime)
}

// Options tune the checkers. The zero value is usable; DefaultOptions is
// the recommended setting.
type Options struct {
	// UnseenIsAnomaly makes acknowledged-but-never-polled sends an anomaly.
	// Only sound when the history ends with a drain that polls every
	// partition to its end; otherwise they are reported in stats and notes.
	UnseenIsAnomaly bool
	// SendOrder picks the nonmonotonic-send rule; empty means invoke. Any
	// other value than the SendOrder constants is a programming error
	// (ParseSendOrder checks names from outside).
	SendOrder SendOrder
	// LinearTimeout is porcupine's time over all partitions together,
	// shared by the windows it checks in proportion to their ops; each
	// window gets at least linearTimeoutMin, so many hard windows can take
	// longer. Zero means linearTimeoutDefault.
	LinearTimeout time.Duration
	// LinearSkip leaves porcupine out (for histories too large for it).
	LinearSkip bool
	// ExamplesMax bounds the examples kept per anomaly; zero means
	// examplesMaxDefault.
	ExamplesMax int
	// LogStartOffsets are the partitions' log start offsets at the end of
	// a run whose logs have retention on: an acknowledged send below its
	// partition's that no poll returned was deleted by retention, neither
	// lost nor unseen (counted as deleted-unread). Partitions not named
	// keep every record.
	LogStartOffsets map[history.TopicPartition]int64
	// Compacted names the partitions whose topic is compacted: a record
	// with a newer record of its key may be missing from reads there
	// (counted as compacted-unread), and a gap over such records is no
	// skip. See compaction.go.
	Compacted map[history.TopicPartition]bool
}

const (
	linearTimeoutDefault = 10 * time.Second
	examplesMaxDefault   = 8
	// examplesMaxLimit keeps a report printable whatever a caller asks.
	examplesMaxLimit = 1000
)

// DefaultOptions are the options for a run that ends with a final drain.
func DefaultOptions() Options {
	return Options{
		UnseenIsAnomaly: true,
		SendOrder:       SendOrderInvoke,
		LinearTimeout:   linearTimeoutDefault,
		ExamplesMax:     examplesMaxDefault,
	}
}

func (o Options) withDefaults() Options {
	if o.SendOrder == "" {
		o.SendOrder = SendOrderInvoke
	}
	if o.SendOrder != SendOrderInvoke && o.SendOrder != SendOrderRealTime {
		panic("checkers: unknown Options.SendOrder " + string(o.SendOrder))
	}
	if o.LinearTimeout <= 0 {
		o.LinearTimeout = linearTimeoutDefault
	}
	if o.ExamplesMax <= 0 {
		o.ExamplesMax = examplesMaxDefault
	}
	o.ExamplesMax = min(o.ExamplesMax, examplesMaxLimit)
	return o
}

// Example is one instance of an anomaly.
type Example struct {
	// Partition is "topic-partition", empty when the anomaly has none.
	Partition string `json:"partition,omitempty"`
	// Offset is the offset the example is about, -1 when none.
	Offset int64 `json:"offset"`
	// Values are the record values involved.
	Values []string `json:"values,omitempty"`
	// Ops are the history indices (Op.Index) of the operations involved.
	Ops []int `json:"ops,omitempty"`
	// Detail explains the example in a sentence.
	Detail string `json:"detail"`
}

// compareExamples is a total order on examples, so that the examples kept
// and their order do not depend on the order they were found in.
func compareExamples(a, b Example) int {
	if c := strings.Compare(a.Partition, b.Partition); c != 0 {
		return c
	}
	if a.Offset != b.Offset {
		if a.Offset < b.Offset {
			return -1
		}
		return 1
	}
	if c := slices.Compare(a.Ops, b.Ops); c != 0 {
		return c
	}
	if c := slices.Compare(a.Values, b.Values); c != 0 {
		return c
	}
	return strings.Compare(a.Detail, b.Detail)
}

// Anomaly is every instance of one kind of misbehaviour a checker found.
type Anomaly struct {
	Kind string `json:"kind"`
	// Count is how many instances were found; Examples holds the first
	// few in example order.
	Count    int       `json:"count"`
	Examples []Example `json:"examples"`
}

// Verdict is one checker's finding.
type Verdict struct {
	Checker string `json:"checker"`
	// Valid is true when the checker found nothing wrong and decided.
	Valid bool `json:"valid"`
	// Unknown is true when the checker could not decide (a timeout) and
	// found nothing wrong before it gave up; Valid is then false.
	Unknown   bool             `json:"unknown"`
	Anomalies []Anomaly        `json:"anomalies"`
	Stats     map[string]int64 `json:"stats"`
	Notes     []string         `json:"notes"`
	// Visualizations are porcupine's pages of the partitions it found no
	// linearization of, for reports; not part of the JSON verdict.
	Visualizations []Visualization `json:"-"`
}

// Visualization is porcupine's interactive page of one partition window:
// the operations on a timeline and the longest partial linearizations.
type Visualization struct {
	Partition string
	HTML      []byte
}

// Report is the verdicts of all checkers run on one history.
type Report struct {
	// Valid is true when every verdict is valid.
	Valid bool `json:"valid"`
	// Unknown is true when no verdict is invalid but some are unknown.
	Unknown  bool      `json:"unknown"`
	Verdicts []Verdict `json:"verdicts"`
}

// Check runs every checker on h.
func Check(h history.History, opts Options) Report {
	opts = opts.withDefaults()
	ix := indexHistory(h)
	verdicts := []Verdict{
		checkHistory(ix, opts),
		checkKafka(ix, opts),
	}
	if !opts.LinearSkip {
		verdicts = append(verdicts, checkLinearizable(ix, opts))
	}
	if hasGroups(h) {
		verdicts = append(verdicts, CheckGroups(h, opts))
	}
	return newReport(verdicts)
}

func newReport(verdicts []Verdict) Report {
	r := Report{Valid: true, Verdicts: verdicts}
	invalid := false
	for _, v := range verdicts {
		if !v.Valid {
			r.Valid = false
			if !v.Unknown {
				invalid = true
			}
		}
	}
	r.Unknown = !r.Valid && !invalid
	return r
}

// findings gathers anomalies while a checker runs, keeping a bounded number
// of examples per kind: the smallest in example order, so that the result
// does not depend on the order of discovery.
type findings struct {
	examplesMax int
	byKind      map[string]*kindFindings
}

type kindFindings struct {
	count    int
	examples []Example
}

func newFindings(examplesMax int) *findings {
	if examplesMax <= 0 {
		panic("checkers: findings need examplesMax > 0")
	}
	return &findings{examplesMax: examplesMax, byKind: map[string]*kindFindings{}}
}

func (f *findings) add(kind string, ex Example) {
	k := f.byKind[kind]
	if k == nil {
		k = &kindFindings{}
		f.byKind[kind] = k
	}
	k.count++
	k.examples = append(k.examples, ex)
	// Trim in batches: amortised O(log examplesMax) per add.
	if len(k.examples) >= 4*f.examplesMax {
		k.trim(f.examplesMax)
	}
}

func (k *kindFindings) trim(examplesMax int) {
	slices.SortFunc(k.examples, compareExamples)
	k.examples = slices.Clip(k.examples[:min(len(k.examples), examplesMax)])
}

func (f *findings) count(kind string) int {
	if k := f.byKind[kind]; k != nil {
		return k.count
	}
	return 0
}

// anomalies returns the findings sorted by kind, skipping excluded kinds.
func (f *findings) anomalies(excluded ...string) []Anomaly {
	kinds := make([]string, 0, len(f.byKind))
	for kind := range f.byKind {
		if !slices.Contains(excluded, kind) {
			kinds = append(kinds, kind)
		}
	}
	slices.Sort(kinds)
	out := make([]Anomaly, 0, len(kinds))
	for _, kind := range kinds {
		k := f.byKind[kind]
		k.trim(f.examplesMax)
		out = append(out, Anomaly{Kind: kind, Count: k.count, Examples: k.examples})
	}
	return out
}
