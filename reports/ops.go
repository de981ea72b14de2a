package reports

import (
	"github.com/sluice-sim/sluice/checkers/history"
)

// completedOp is one send or poll, its invoke and completion together.
type completedOp struct {
	f       history.F
	outcome history.Type
	// invokeNs and doneNs are times on the run's reference clock.
	invokeNs, doneNs int64
	// records is how many records an ok poll returned.
	records int
}

// latencyNs is how long the operation took.
func (op completedOp) latencyNs() int64 { return op.doneNs - op.invokeNs }

// opCounts are what pairing a history could not turn into a completed op.
type opCounts struct {
	// pending counts invokes the history ends before completing.
	pending int64
	// unpaired counts completions without a matching invoke, or that
	// complete before they were invoked: a malformed history.
	unpaired int64
}

// sendKey names one send: a producer may have several in flight, told
// apart by the record's value (values are unique per history).
type sendKey struct {
	process int
	value   string
}

// pairOps pairs every send and poll invoke with its completion, in the
// order the completions appear in h. Sends pair by process and record
// value, polls by process (a consumer has one operation in flight), the
// rules the checkers use. Assigns are not measured.
func pairOps(h history.History) (ops []completedOp, sends, polls opCounts) {
	pendingSends := map[sendKey]int64{}
	pendingPolls := map[int]int64{}
	for i := range h {
		op := &h[i]
		switch op.F {
		case history.Send:
			if op.Record == nil {
				sends.unpaired++
				continue
			}
			key := sendKey{op.Process, op.Record.Value}
			if !isPhase(op.Type) {
				sends.unpaired++
				continue
			}
			if op.Type == history.Invoke {
				if _, dup := pendingSends[key]; dup {
					sends.unpaired++
				}
				pendingSends[key] = op.Time
				continue
			}
			invokeNs, ok := pendingSends[key]
			if !ok || op.Time < invokeNs {
				sends.unpaired++
				continue
			}
			delete(pendingSends, key)
			ops = append(ops, completedOp{f: history.Send, outcome: op.Type, invokeNs: invokeNs, doneNs: op.Time})
		case history.Poll:
			if !isPhase(op.Type) {
				polls.unpaired++
				continue
			}
			if op.Type == history.Invoke {
				if _, dup := pendingPolls[op.Process]; dup {
					polls.unpaired++
				}
				pendingPolls[op.Process] = op.Time
				continue
			}
			invokeNs, ok := pendingPolls[op.Process]
			if !ok || op.Time < invokeNs {
				polls.unpaired++
				continue
			}
			delete(pendingPolls, op.Process)
			done := completedOp{f: history.Poll, outcome: op.Type, invokeNs: invokeNs, doneNs: op.Time}
			if op.Type == history.OK {
				done.records = len(op.Records)
			}
			ops = append(ops, done)
		}
	}
	// Only the maps' sizes are read: their order never reaches output.
	sends.pending = int64(len(pendingSends))
	polls.pending = int64(len(pendingPolls))
	return ops, sends, polls
}

// isPhase reports whether t is a type a history may hold; an Op built in
// memory, unlike one Read, is not validated.
func isPhase(t history.Type) bool {
	switch t {
	case history.Invoke, history.OK, history.Fail, history.Info:
		return true
	}
	return false
}
