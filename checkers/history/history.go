// Package history is the record a workload keeps of what it asked the
// system and what it was told: one operation per line, invoked and then
// completed ok, fail (definitely did not happen) or info (may or may not
// have happened), in the shape Jepsen uses. Checkers read a history and do
// not care whether it came from a simulated or a real run.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Type is an operation's phase or outcome.
type Type string

// Operation phases and outcomes.
const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	// Fail means the operation definitely did not take effect.
	Fail Type = "fail"
	// Info means the outcome is unknown: the operation may have taken
	// effect (a timeout, NOT_LEADER_OR_FOLLOWER, a reset connection).
	Info Type = "info"
)

// F is the function an operation performs.
type F string

// Operation functions.
const (
	// Send produces one record. Invoke carries Send without Offset; ok
	// carries the offset the broker assigned.
	Send F = "send"
	// Poll fetches records. Ok carries every record returned, in the
	// order returned.
	Poll F = "poll"
	// Assign replaces the consumer's assignment (Assign lists it); polls
	// after an assign may start anywhere. A group member's assign also
	// names its Group and the Generation the assignment belongs to.
	Assign F = "assign"
	// Commit commits a group's offsets (Offsets: the next offset to read
	// per partition) for Group in Generation. Ok means the coordinator
	// recorded them; Reset marks an administrative reset, the one way a
	// committed offset may move backwards.
	Commit F = "commit"
)

// Op is one line of a history.
type Op struct {
	Index int `json:"index"`
	// Time is nanoseconds on the run's reference clock: simulated time in
	// a simulated run, the harness's monotonic clock in a real one. It
	// orders operations across processes, so it is never a node's skewed
	// wall clock.
	Time    int64  `json:"time"`
	Process int    `json:"process"`
	Node    string `json:"node,omitempty"`
	Type    Type   `json:"type"`
	F       F      `json:"f"`
	// Record is the record a send carries; on ok, Offset is set.
	Record *Record `json:"record,omitempty"`
	// Records are what a poll returned, on ok.
	Records []Record `json:"records,omitempty"`
	// Assign is the assignment an assign op installs.
	Assign []TopicPartition `json:"assign,omitempty"`
	// Group names the group of a group member's ops; its assigns and
	// commits (and polls, for reading) carry the Generation they belong
	// to. A consumer outside any group leaves both empty.
	Group      string `json:"group,omitempty"`
	Generation int32  `json:"generation,omitempty"`
	// Offsets are what a commit commits.
	Offsets []Offset `json:"offsets,omitempty"`
	// Reset marks a commit that moves offsets on purpose (a reset).
	Reset bool   `json:"reset,omitempty"`
	Error string `json:"error,omitempty"`
}

// Offset is a committed position: the next offset to read of a partition.
type Offset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// TP is the offset's partition.
func (o Offset) TP() TopicPartition { return TopicPartition{o.Topic, o.Partition} }

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// String is "topic-partition". Progress reports and checkers name
// partitions often enough that fmt's cost shows.
func (tp TopicPartition) String() string {
	return tp.Topic + "-" + strconv.Itoa(int(tp.Partition))
}

// Record is a record sent or polled. Values are unique per history so that
// a checker can tell records apart.
type Record struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Key       string `json:"key,omitempty"`
	Value     string `json:"value"`
	// Offset is -1 when unknown (a send not yet acknowledged).
	Offset int64 `json:"offset"`
}

// TP is the record's partition.
func (r Record) TP() TopicPartition { return TopicPartition{r.Topic, r.Partition} }

// History is a sequence of operations in the order they happened.
type History []Op

// linesMax bounds the operations Read accepts; a larger history is an
// error rather than an unbounded allocation.
const linesMax = 50_000_000

// Read parses a history in JSON lines. A malformed line is an error naming
// its line number.
func Read(r io.Reader) (History, error) {
	var h History
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		if len(h) >= linesMax {
			return nil, fmt.Errorf("history line %d: more than %d operations", line, linesMax)
		}
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		if err := op.validate(); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		h = append(h, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history line %d: %w", line+1, err)
	}
	return h, nil
}

func (op Op) validate() error {
	switch op.Type {
	case Invoke, OK, Fail, Info:
	default:
		return fmt.Errorf("field type: unknown %q", op.Type)
	}
	switch op.F {
	case Send:
		if op.Record == nil {
			return fmt.Errorf("field record: a send needs one")
		}
	case Poll, Assign:
	case Commit:
		if op.Group == "" {
			return fmt.Errorf("field group: a commit needs one")
		}
	default:
		return fmt.Errorf("field f: unknown %q", op.F)
	}
	return nil
}

// Write writes a history as JSON lines.
func Write(w io.Writer, h History) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range h {
		if err := enc.Encode(&h[i]); err != nil {
			return fmt.Errorf("write history op %d: %w", h[i].Index, err)
		}
	}
	return bw.Flush()
}

// Recorder is how a workload adds to a history. The harness provides it and
// stamps each operation with the reference clock, so a workload never reads
// time for its history.
type Recorder interface {
	// Add appends op, setting its Index and Time, and returns the index.
	Add(op Op) int
}

// opsGrowMin is the least room a Log makes when it grows.
const opsGrowMin = 1024

// Log is an in-memory Recorder.
type Log struct {
	// Now reads the reference clock in nanoseconds.
	Now func() int64
	Ops History
}

// Reserve makes room for n more operations at once, for a caller that
// knows about how long its history will be: growing by doubling copies a
// long history about once over and leaves each copy to the collector.
func (l *Log) Reserve(n int) { l.Ops = slices.Grow(l.Ops, n) }

// Add implements Recorder.
func (l *Log) Add(op Op) int {
	op.Index = len(l.Ops)
	op.Time = l.Now()
	if len(l.Ops) == cap(l.Ops) {
		// Doubling: append grows a large slice by a quarter, and an Op
		// is large, so a long history was copied about four times over.
		l.Ops = slices.Grow(l.Ops, max(len(l.Ops), opsGrowMin))
	}
	l.Ops = append(l.Ops, op)
	return op.Index
}
