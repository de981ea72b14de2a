package scenario

import (
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

// TestFlumePipelineKafkaSourceLosesNothing: with source=kafka every line
// whose produce was acknowledged reaches the output topic through kills
// and power losses of the agent, whose kafka source reads again from its
// group's committed offsets (duplicates allowed); each seed runs twice to
// the same trace hash, and the seeds did crash the agent.
func TestFlumePipelineKafkaSourceLosesNothing(t *testing.T) {
	d, err := Lookup("flume-pipeline")
	if err != nil {
		t.Fatal(err)
	}
	const seeds = 4
	crashes := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		o := pipelineOptions(seed, "file")
		o.Params["source"] = "kafka"
		res, det, err := RunTwice(d, o)
		if err != nil {
			t.Fatal(err)
		}
		if !det.Same() {
			t.Fatalf("seed %d: trace %s then %s\n%s", seed, det.Hashes[0], det.Hashes[1], det.Divergence)
		}
		if !res.OK() {
			t.Fatalf("seed %d: %v", seed, res.Failed())
		}
		if res.Stats["lines_acked"] == 0 || res.Stats["records_read"] < res.Stats["lines_acked"] {
			t.Fatalf("seed %d: %d acknowledged, %d read back", seed, res.Stats["lines_acked"], res.Stats["records_read"])
		}
		if crashed(res) {
			crashes++
		}
	}
	if crashes < seeds/2 {
		t.Fatalf("only %d of %d seeds crashed the agent: the test shows little", crashes, seeds)
	}
}

// TestFlumePipelineCatchesKafkaSourceCommitBeforePut: a kafka source that
// commits a poll's offsets before putting its records loses them when the
// agent dies in between: its successor starts after them. The accounting
// finds acknowledged lines lost at the source, at seed 10, which passes
// with the bug off.
func TestFlumePipelineCatchesKafkaSourceCommitBeforePut(t *testing.T) {
	res := catchPlantedBug(t, faults.BugKafkaSourceCommitBeforePut, "acknowledged-delivered", map[string]string{"source": "kafka"})
	if res.Seed != 10 {
		t.Fatalf("first seed catching it is %d, want 10", res.Seed)
	}
	if !crashed(res) || res.Stats["lost_at_source"] == 0 {
		t.Fatalf("caught without a crash or a loss at the source: %v, %v", res.FaultsFired, res.Stats)
	}
}
