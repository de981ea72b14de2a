package checkers

import (
	"strings"
	"testing"
)

// TestPipelineAccountsEveryEvent: one input with each case the contract
// names: delivered once, twice, lost, unacknowledged and delivered,
// unacknowledged and not, and a value nobody sent.
func TestPipelineAccountsEveryEvent(t *testing.T) {
	v := CheckPipeline(PipelineInput{
		Sent:      []string{"a", "b", "c", "d", "e"},
		Acked:     []string{"a", "b", "c"},
		Delivered: []string{"a", "b", "b", "b", "d", "z"},
	})
	if v.OK() {
		t.Fatal("a lost acknowledged event and a phantom passed")
	}
	if strings.Join(v.Lost, ",") != "c" || strings.Join(v.Phantoms, ",") != "z" {
		t.Fatalf("lost %v phantoms %v", v.Lost, v.Phantoms)
	}
	if v.Sent != 5 || v.Acked != 3 || v.Delivered != 6 || v.Distinct != 4 ||
		v.Duplicated != 1 || v.ExtraCopies != 2 || v.UnackedDelivered != 1 || v.UnackedLost != 1 {
		t.Fatalf("counts %+v", v)
	}
	want := "1 lost of 3 acknowledged (5 sent); 6 delivered copies of 4 values, 1 duplicated (2 extra copies), 1 delivered unacknowledged; 1 phantom values; lost e.g. c; phantoms e.g. z"
	if v.String() != want {
		t.Fatalf("got  %q\nwant %q", v.String(), want)
	}
}

// TestPipelineDuplicatesAndUnackedLossesPass: at-least-once allows copies
// and the loss of what was never acknowledged.
func TestPipelineDuplicatesAndUnackedLossesPass(t *testing.T) {
	v := CheckPipeline(PipelineInput{
		Sent:      []string{"a", "b", "c"},
		Acked:     []string{"a", "b"},
		Delivered: []string{"b", "a", "a"},
	})
	if !v.OK() || v.Duplicated != 1 || len(v.Lost) != 0 {
		t.Fatalf("%+v", v)
	}
}

// TestPipelineNamesFewLostValues: many losses are counted in full and
// named by a few sorted examples.
func TestPipelineNamesFewLostValues(t *testing.T) {
	var sent []string
	for _, c := range "hgfedcba" {
		sent = append(sent, string(c))
	}
	v := CheckPipeline(PipelineInput{Sent: sent, Acked: sent})
	if len(v.Lost) != 8 || !strings.HasPrefix(v.String(), "8 lost of 8 acknowledged") ||
		!strings.HasSuffix(v.String(), "lost e.g. a, b, c, d, e and 3 more") {
		t.Fatalf("%s", v)
	}
}

// TestPipelineOrderPerClient: a client's values must arrive, by their
// first copies, in the order they were acknowledged; a later duplicate of
// an earlier value and another client's values in between are fine, a
// lost value is counted as lost, not as reordered.
func TestPipelineOrderPerClient(t *testing.T) {
	in := PipelineInput{
		Sent:      []string{"a1", "a2", "a3", "b1", "b2"},
		Acked:     []string{"a1", "a2", "a3", "b1", "b2"},
		Delivered: []string{"a1", "b1", "a2", "a1", "b2", "a3"},
		AckOrder:  [][]string{{"a1", "a2", "a3"}, {"b1", "b2"}},
	}
	if v := CheckPipeline(in); !v.InOrder() || !v.OK() {
		t.Fatalf("in order: %s", v)
	}
	in.Delivered = []string{"a2", "b1", "a1", "a3", "b2"}
	v := CheckPipeline(in)
	if v.InOrder() || v.Reordered != 1 || v.ReorderedExamples[0] != "a2 before a1" || !strings.Contains(v.String(), "1 delivered out of acknowledgement order") {
		t.Fatalf("a2 before a1: %+v", v)
	}
	in.Delivered = []string{"a1", "a3", "b1", "b2"}
	if v := CheckPipeline(in); !v.InOrder() || len(v.Lost) != 1 {
		t.Fatalf("a2 lost: %+v", v)
	}
}

// TestPipelineCountsLossesPerStage: each lost value is counted against
// the stage the pipeline last saw it pass, every stage listed in order
// even at zero, and a stage not listed is appended.
func TestPipelineCountsLossesPerStage(t *testing.T) {
	stage := map[string]string{"a": "source", "b": "channel", "c": "channel", "d": "mystery"}
	v := CheckPipeline(PipelineInput{
		Sent:      []string{"a", "b", "c", "d", "e"},
		Acked:     []string{"a", "b", "c", "d", "e"},
		Delivered: []string{"e"},
		LossStage: func(v string) string { return stage[v] },
		Stages:    []string{"source", "channel", "sink"},
	})
	if v.LostByStage["source"] != 1 || v.LostByStage["channel"] != 2 || v.LostByStage["sink"] != 0 || v.LostByStage["mystery"] != 1 ||
		v.UnackedLost != 0 {
		t.Fatalf("per stage %v", v.LostByStage)
	}
	if got := v.StagesText(); got != "source 1, channel 2, sink 0, mystery 1" {
		t.Fatalf("stages text %q", got)
	}
	if !strings.Contains(v.String(), "(lost by stage: source 1, channel 2, sink 0, mystery 1)") {
		t.Fatalf("verdict %q", v.String())
	}
	if plain := CheckPipeline(PipelineInput{Acked: []string{"a"}}); plain.LostByStage != nil || strings.Contains(plain.String(), "by stage") {
		t.Fatalf("stages without LossStage: %+v", plain)
	}
}
