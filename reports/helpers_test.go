package reports

import (
	"slices"
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
)

// builder makes histories for tests: operations are added in any order
// and come out sorted by time, an invoke before its completion.
type builder struct {
	ops    history.History
	values int
}

func ms(n float64) int64 { return int64(n * float64(time.Millisecond)) }
func us(n int64) int64   { return n * int64(time.Microsecond) }

// send adds a send invoked at invokeNs by process and completed at doneNs
// with outcome; a zero outcome leaves it pending.
func (b *builder) send(process int, invokeNs, doneNs int64, outcome history.Type) {
	b.values++
	value := strconv.Itoa(b.values)
	rec := history.Record{Topic: "t", Partition: 0, Value: value, Offset: -1}
	inv := rec
	b.ops = append(b.ops, history.Op{Time: invokeNs, Process: process, Type: history.Invoke, F: history.Send, Record: &inv})
	if outcome == "" {
		return
	}
	done := rec
	if outcome == history.OK {
		done.Offset = int64(b.values)
	}
	b.ops = append(b.ops, history.Op{Time: doneNs, Process: process, Type: outcome, F: history.Send, Record: &done})
}

// poll adds a poll returning records records.
func (b *builder) poll(process int, invokeNs, doneNs int64, outcome history.Type, records int) {
	b.ops = append(b.ops, history.Op{Time: invokeNs, Process: process, Type: history.Invoke, F: history.Poll})
	done := history.Op{Time: doneNs, Process: process, Type: outcome, F: history.Poll}
	if outcome == history.OK {
		for range records {
			b.values++
			done.Records = append(done.Records, history.Record{Topic: "t", Value: strconv.Itoa(b.values), Offset: int64(b.values)})
		}
	}
	b.ops = append(b.ops, done)
}

func (b *builder) history() history.History {
	h := slices.Clone(b.ops)
	slices.SortStableFunc(h, func(x, y history.Op) int {
		switch {
		case x.Time < y.Time:
			return -1
		case x.Time > y.Time:
			return 1
		}
		return 0
	})
	for i := range h {
		h[i].Index = i
	}
	return h
}
