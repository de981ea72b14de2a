package checkers

import (
	"fmt"
	"slices"
	"strings"
)

// pipelineExamplesMax bounds the values a pipeline verdict names.
const pipelineExamplesMax = 5

// PipelineInput is what an end-to-end accounting needs, whatever the
// pipeline: the values each client sent, those acknowledged to it, and
// every value the destination holds, once per copy. Values are unique per
// event.
type PipelineInput struct {
	// Sent are the values offered to the pipeline, acknowledged or not.
	Sent []string
	// Acked are the values whose clients were told they were taken.
	Acked []string
	// Delivered are the values read back from the destination, once per
	// copy it holds.
	Delivered []string
	// AckOrder holds, per client, its acknowledged values in the order
	// the acknowledgements came; nil skips the order check. A pipeline
	// that keeps commit order (Flume's channels return a rolled-back take
	// to their front) delivers each client's values, by their first
	// copies, in this order.
	AckOrder [][]string
	// LossStage, if not nil, names the stage where an acknowledged value
	// that never arrived was lost ("source": never committed to a
	// channel; "channel": committed and never taken for good; "sink":
	// taken for good and not at the destination), from what the pipeline
	// saw of it; the verdict counts the lost values per stage. Stages
	// orders the names in the verdict's text.
	LossStage func(value string) string
	Stages    []string
}

// PipelineVerdict is the accounting of a pipeline run under an
// at-least-once contract: an acknowledged event must arrive, duplicates are
// allowed but counted, an unacknowledged event may or may not arrive.
type PipelineVerdict struct {
	Sent, Acked int
	// Delivered counts the copies the destination holds; Distinct the
	// values among them.
	Delivered, Distinct int
	// Lost are the acknowledged values never delivered, sorted.
	Lost []string
	// Duplicated counts the values delivered more than once;
	// ExtraCopies the copies beyond the first.
	Duplicated, ExtraCopies int
	// UnackedDelivered counts the values delivered though their clients
	// never heard an acknowledgement (allowed: the answer was lost);
	// UnackedLost those sent, never acknowledged and never delivered
	// (allowed too, and all a source that acknowledges nothing, such as
	// syslog, can lose).
	UnackedDelivered, UnackedLost int
	// Phantoms are delivered values nobody sent, sorted: corruption, or a
	// pipeline inventing events.
	Phantoms []string
	// Reordered counts the acknowledged values whose first copy arrived
	// before the first copy of a value acknowledged earlier to the same
	// client; ReorderedExamples names a few ("b before a").
	Reordered         int
	ReorderedExamples []string
	// LostByStage counts the lost values per stage, with
	// PipelineInput.LossStage; Stages are the stages in order, each
	// listed even when it lost nothing.
	LostByStage map[string]int
	Stages      []string
	// UnackedLostByStage counts the UnackedLost values per stage, with
	// PipelineInput.LossStage.
	UnackedLostByStage map[string]int
}

// InOrder reports whether every client's values arrived in the order
// they were acknowledged.
func (v PipelineVerdict) InOrder() bool { return v.Reordered == 0 }

// checkOrder counts, per client, the values delivered ahead of one
// acknowledged before them. Lost values are left to the loss count.
func (v *PipelineVerdict) checkOrder(order [][]string, delivered []string) {
	first := make(map[string]int, len(delivered))
	for i, d := range delivered {
		if _, ok := first[d]; !ok {
			first[d] = i
		}
	}
	for _, values := range order {
		latest, latestValue := -1, ""
		for _, val := range values {
			at, ok := first[val]
			if !ok {
				continue
			}
			if at < latest {
				v.Reordered++
				if len(v.ReorderedExamples) < pipelineExamplesMax {
					v.ReorderedExamples = append(v.ReorderedExamples, val+" before "+latestValue)
				}
				continue
			}
			latest, latestValue = at, val
		}
	}
}

// OK reports whether the contract held: nothing acknowledged was lost and
// nothing was invented.
func (v PipelineVerdict) OK() bool { return len(v.Lost) == 0 && len(v.Phantoms) == 0 }

// CheckPipeline accounts for every event from its client to the
// destination.
func CheckPipeline(in PipelineInput) PipelineVerdict {
	copies := make(map[string]int, len(in.Delivered))
	for _, v := range in.Delivered {
		copies[v]++
	}
	sent := make(map[string]bool, len(in.Sent))
	for _, v := range in.Sent {
		sent[v] = true
	}
	acked := make(map[string]bool, len(in.Acked))
	verdict := PipelineVerdict{Sent: len(sent), Delivered: len(in.Delivered), Distinct: len(copies)}
	for _, v := range in.Acked {
		if acked[v] {
			continue
		}
		acked[v] = true
		if copies[v] == 0 {
			verdict.Lost = append(verdict.Lost, v)
		}
	}
	verdict.Acked = len(acked)
	var unackedLost []string
	for v := range sent {
		if !acked[v] && copies[v] == 0 {
			unackedLost = append(unackedLost, v)
		}
	}
	verdict.UnackedLost = len(unackedLost)
	for v, n := range copies {
		if n > 1 {
			verdict.Duplicated++
			verdict.ExtraCopies += n - 1
		}
		switch {
		case acked[v]:
		case sent[v]:
			verdict.UnackedDelivered++
		default:
			verdict.Phantoms = append(verdict.Phantoms, v)
		}
	}
	slices.Sort(verdict.Lost)
	slices.Sort(verdict.Phantoms)
	if in.LossStage != nil {
		verdict.countLossStages(in.LossStage, in.Stages)
		verdict.UnackedLostByStage = map[string]int{}
		for _, v := range unackedLost {
			verdict.UnackedLostByStage[in.LossStage(v)]++
		}
	}
	verdict.checkOrder(in.AckOrder, in.Delivered)
	return verdict
}

func (v *PipelineVerdict) countLossStages(stageOf func(string) string, stages []string) {
	v.LostByStage = map[string]int{}
	v.Stages = slices.Clone(stages)
	for _, s := range stages {
		v.LostByStage[s] = 0
	}
	for _, lost := range v.Lost {
		s := stageOf(lost)
		if _, known := v.LostByStage[s]; !known {
			v.Stages = append(v.Stages, s)
		}
		v.LostByStage[s]++
	}
}

// StagesText lists the lost values per stage in the stages' order, as
// "source 0, channel 12, sink 0"; empty without stages.
func (v PipelineVerdict) StagesText() string {
	parts := make([]string, len(v.Stages))
	for i, s := range v.Stages {
		parts[i] = fmt.Sprintf("%s %d", s, v.LostByStage[s])
	}
	return strings.Join(parts, ", ")
}

// String is the verdict in one line: counts, then examples of what went
// wrong.
func (v PipelineVerdict) String() string {
	s := fmt.Sprintf("%d lost of %d acknowledged (%d sent); %d delivered copies of %d values, %d duplicated (%d extra copies), %d delivered unacknowledged",
		len(v.Lost), v.Acked, v.Sent, v.Delivered, v.Distinct, v.Duplicated, v.ExtraCopies, v.UnackedDelivered)
	if len(v.Phantoms) > 0 {
		s += fmt.Sprintf("; %d phantom values", len(v.Phantoms))
	}
	if len(v.Lost) > 0 {
		s += "; lost e.g. " + examples(v.Lost)
		if len(v.Stages) > 0 {
			s += " (lost by stage: " + v.StagesText() + ")"
		}
	}
	if len(v.Phantoms) > 0 {
		s += "; phantoms e.g. " + examples(v.Phantoms)
	}
	if v.Reordered > 0 {
		s += fmt.Sprintf("; %d delivered out of acknowledgement order, e.g. %s", v.Reordered, strings.Join(v.ReorderedExamples, ", "))
	}
	return s
}

func examples(values []string) string {
	shown := values[:min(len(values), pipelineExamplesMax)]
	s := strings.Join(shown, ", ")
	if len(values) > len(shown) {
		s += fmt.Sprintf(" and %d more", len(values)-len(shown))
	}
	return s
}
