package scenario

import (
	"fmt"
	"strings"

	"github.com/sluice-sim/sluice/checkers/history"
)

// writesResumeCheck fails when a producer that sent after the faults
// healed had fewer than half of those sends acknowledged. A failed send
// is allowed, so the safety checkers cannot see a producer stuck (fenced,
// or moving to a new epoch the broker refuses, again and again) while
// its consumers read on; but the broker is whole again, and the clients
// go on producing for drainSettle, time for a send to be retried to
// success. Half, not all: a send can still be caught in a producer's
// reset that a failure before the heal set off.
func (c *singleBrokerCluster) writesResumeCheck() Check {
	stuck, examples, judged := writersStuckAfter(c.log.Ops, c.o.Run.Nanoseconds())
	check := Check{Name: "writes-resume", OK: stuck == 0}
	if check.OK {
		check.Detail = fmt.Sprintf("each of the %d producers that sent after the faults healed had most of those sends acknowledged", judged)
		return check
	}
	check.Detail = fmt.Sprintf("%d of %d producers had fewer than half of their sends after the faults healed acknowledged: %s",
		stuck, judged, strings.Join(examples, "; "))
	return check
}

// writerStuckExamplesMax bounds the producers a verdict names.
const writerStuckExamplesMax = 4

// writersStuckAfter counts the producers (processes sending) that
// invoked sends at or after healedNs and had fewer than half of them
// acknowledged (examples names a few), and counts the producers that
// invoked any.
func writersStuckAfter(ops history.History, healedNs int64) (stuck int, examples []string, judged int) {
	type writer struct {
		invokedAfter map[string]bool // values of the sends invoked after the heal
		failed, ok   int
		lastError    string
	}
	writers := map[int]*writer{}
	var order []int
	for _, op := range ops {
		if op.F != history.Send || op.Record == nil {
			continue
		}
		w := writers[op.Process]
		switch {
		case op.Type == history.Invoke && op.Time >= healedNs:
			if w == nil {
				w = &writer{invokedAfter: map[string]bool{}}
				writers[op.Process] = w
				order = append(order, op.Process)
			}
			w.invokedAfter[op.Record.Value] = true
		case w == nil || !w.invokedAfter[op.Record.Value]:
		case op.Type == history.OK:
			w.ok++
		default:
			w.failed++
			w.lastError = op.Error
		}
	}
	for _, p := range order {
		w := writers[p]
		if 2*w.ok >= len(w.invokedAfter) {
			continue
		}
		stuck++
		if len(examples) < writerStuckExamplesMax {
			examples = append(examples, fmt.Sprintf("process %d: %d sends, %d acknowledged, %d failed or unknown (last: %s)",
				p, len(w.invokedAfter), w.ok, w.failed, w.lastError))
		}
	}
	return stuck, examples, len(order)
}
