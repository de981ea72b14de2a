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
		v.Duplicated != 1 || v.ExtraCopies != 2 || v.UnackedDelivered != 1 {
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
