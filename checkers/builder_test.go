package checkers

import (
	"slices"

	"github.com/sluice-sim/sluice/checkers/history"
)

// topic is the topic every hand-built history uses.
const topic = "t"

// builder writes small histories by hand, one op per call, stamping Index
// and Time with the position.
type builder struct{ h history.History }

func (b *builder) add(op history.Op) {
	op.Index = len(b.h)
	op.Time = int64(len(b.h)) * 1000
	b.h = append(b.h, op)
}

func record(part int32, value string, offset int64) history.Record {
	return history.Record{Topic: topic, Partition: part, Value: value, Offset: offset}
}

func (b *builder) sendInvoke(proc int, part int32, value string) {
	r := record(part, value, -1)
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Send, Record: &r})
}

func (b *builder) sendOK(proc int, part int32, value string, offset int64) {
	r := record(part, value, offset)
	b.add(history.Op{Process: proc, Type: history.OK, F: history.Send, Record: &r})
}

func (b *builder) sendEnd(proc int, part int32, value string, t history.Type) {
	r := record(part, value, -1)
	b.add(history.Op{Process: proc, Type: t, F: history.Send, Record: &r, Error: "test"})
}

// send is a send invoked and acknowledged at once.
func (b *builder) send(proc int, part int32, value string, offset int64) {
	b.sendInvoke(proc, part, value)
	b.sendOK(proc, part, value, offset)
}

func (b *builder) pollInvoke(proc int) {
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Poll})
}

func (b *builder) pollOK(proc int, records ...history.Record) {
	b.add(history.Op{Process: proc, Type: history.OK, F: history.Poll, Records: records})
}

func (b *builder) pollEnd(proc int, t history.Type) {
	b.add(history.Op{Process: proc, Type: t, F: history.Poll, Error: "test"})
}

// poll is a poll invoked and completed at once.
func (b *builder) poll(proc int, records ...history.Record) {
	b.pollInvoke(proc)
	b.pollOK(proc, records...)
}

func (b *builder) assign(proc int, t history.Type, parts ...int32) {
	var tps []history.TopicPartition
	for _, p := range parts {
		tps = append(tps, history.TopicPartition{Topic: topic, Partition: p})
	}
	b.add(history.Op{Process: proc, Type: history.Invoke, F: history.Assign, Assign: tps})
	b.add(history.Op{Process: proc, Type: t, F: history.Assign, Assign: tps})
}

// kinds lists the anomaly kinds of a verdict.
func kinds(v Verdict) []string {
	var out []string
	for _, a := range v.Anomalies {
		out = append(out, a.Kind)
	}
	return out
}

// reportKinds lists the anomaly kinds of every verdict of a report.
func reportKinds(r Report) []string {
	var out []string
	for _, v := range r.Verdicts {
		out = append(out, kinds(v)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fatalHelper is what *testing.T and *rapid.T share that helpers need.
type fatalHelper interface {
	Helper()
	Fatalf(format string, args ...any)
}

func verdictOf(t fatalHelper, r Report, checker string) Verdict {
	t.Helper()
	for _, v := range r.Verdicts {
		if v.Checker == checker {
			return v
		}
	}
	t.Fatalf("report has no %s verdict:\n%s", checker, r.Text())
	return Verdict{}
}
