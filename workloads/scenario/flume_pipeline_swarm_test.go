package scenario

import "testing"

// swarmPipelineProbe runs swarm seeds of flume-pipeline (the swarm's
// draws, the scenario's own run length) and checks each passed and hit
// the probe.
func swarmPipelineProbe(t *testing.T, probe string, seeds ...uint64) {
	t.Helper()
	for _, seed := range seeds {
		res := runPipeline(t, Options{Seed: seed, Swarm: true})
		if !res.OK() {
			t.Fatalf("swarm seed %d: %v", seed, res.Failed())
		}
		if res.Stats["lines_acked"] == 0 {
			t.Fatalf("swarm seed %d acknowledged nothing", seed)
		}
		if res.Probes[probe] == 0 {
			t.Fatalf("swarm seed %d missed %s; probes %v", seed, probe, res.Probes)
		}
	}
}

// TestFlumePipelineSwarmFollowsRotations: a swarm seed draws its entry
// source, and seeds 2 and 4 draw taildir, whose writer rotates the log:
// the source follows the renamed file (the probe no netcat seed reaches)
// and every acknowledged line arrives.
func TestFlumePipelineSwarmFollowsRotations(t *testing.T) {
	swarmPipelineProbe(t, "collector/taildir-rotation-followed", 2, 4)
}

// TestFlumePipelineSwarmResumesSpooledFile: swarm seeds 9 and 15 draw
// spooldir and crash the agent part way through a spooled file; the
// source resumes it from its tracker (the probe random faults alone
// seldom reach) and every acknowledged line arrives.
func TestFlumePipelineSwarmResumesSpooledFile(t *testing.T) {
	swarmPipelineProbe(t, "collector/spooldir-resumed", 9, 15)
	res := runPipeline(t, Options{Seed: 9, Params: map[string]string{"source": "spooldir"}})
	if res.Stats[plantedEpisodesStat] != 0 {
		t.Fatalf("a plain run planted %d episodes", res.Stats[plantedEpisodesStat])
	}
}

// TestFlumePipelineSwarmDamagesCheckpoint: swarm seeds 1 and 2 flip bits
// in the agent's file channel checkpoint as it crashes; the channel
// replays every log file (the probe no random fault reaches) and every
// acknowledged line arrives.
func TestFlumePipelineSwarmDamagesCheckpoint(t *testing.T) {
	swarmPipelineProbe(t, "collector/file-channel-checkpoint-damaged", 1, 2)
}

// TestFlumePipelineSwarmReplaysThroughReadErrors: swarm seed 41 draws
// read errors on the agent's disk, and a restart meets them while its
// file channel replays: the channel replays again rather than drop the
// records after the failed read (which lost 364 acknowledged lines of
// this seed), and every acknowledged line arrives.
func TestFlumePipelineSwarmReplaysThroughReadErrors(t *testing.T) {
	swarmPipelineProbe(t, "collector/file-channel-replay-read-failed", 41)
}
