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
	pipelineLosesNothing(t, "kafka", 4, true)
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
