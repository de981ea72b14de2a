package scenario

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/faults"
)

func pipelineOptions(seed uint64, channel string, bugs ...faults.Bug) Options {
	set := faults.Bugs{}
	for _, b := range bugs {
		set[b] = true
	}
	return Options{Seed: seed, Bugs: set, Params: map[string]string{"channel": channel}}
}

func runPipeline(t *testing.T, o Options) Result {
	t.Helper()
	d, err := Lookup("flume-pipeline")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// crashed reports whether a seed's faults killed the agent or cut its
// power.
func crashed(res Result) bool { return res.FaultsFired["kill"]+res.FaultsFired["power-loss"] > 0 }

// TestFlumePipelineFileChannelLosesNothing: with the file channel, every
// line acknowledged to a client reaches the topic through crashes, power
// loss, disk and network faults, and the seeds did crash the agent while
// lines were being acknowledged. `sluice sim run --scenario flume-pipeline
// --seeds 50` runs more.
func TestFlumePipelineFileChannelLosesNothing(t *testing.T) {
	const seeds = 12
	crashes := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		res := runPipeline(t, pipelineOptions(seed, "file"))
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

// TestFlumePipelineMemoryChannelLosesOnCrash: the memory channel holds
// acknowledged lines only in memory, so a seed that kills the agent while
// its channel holds some loses them, and the check names how many.
func TestFlumePipelineMemoryChannelLosesOnCrash(t *testing.T) {
	const seedsMax = 20
	for seed := uint64(1); seed <= seedsMax; seed++ {
		res := runPipeline(t, pipelineOptions(seed, "memory"))
		c := checkNamed(t, res, "acknowledged-delivered")
		if c.OK {
			continue
		}
		lost := res.Stats["lost"]
		if lost == 0 || !strings.HasPrefix(c.Detail, fmt.Sprintf("%d lost of %d acknowledged", lost, res.Stats["lines_acked"])) {
			t.Fatalf("seed %d: %d lost, check says %q", seed, lost, c.Detail)
		}
		if !crashed(res) {
			t.Fatalf("seed %d lost %d lines without a crash of the agent: %v", seed, lost, res.Schedule.Actions)
		}
		t.Logf("seed %d: %s", seed, c.Detail)
		return
	}
	t.Fatalf("no seed of %d lost a line with a memory channel", seedsMax)
}

// TestFlumePipelineCatchesFileChannelAckBeforeFsync: a file channel that
// answers commits before their fsync loses acknowledged lines at a power
// loss; the checker catches it within 200 seeds, and the same seed without
// the bug loses nothing.
func TestFlumePipelineCatchesFileChannelAckBeforeFsync(t *testing.T) {
	const seedsMax = 200
	for seed := uint64(1); seed <= seedsMax; seed++ {
		res := runPipeline(t, pipelineOptions(seed, "file", faults.BugFileChannelAckBeforeFsync))
		if checkNamed(t, res, "acknowledged-delivered").OK {
			continue
		}
		if res.FaultsFired["power-loss"] == 0 {
			t.Fatalf("seed %d lost lines without a power loss: %s", seed, checkNamed(t, res, "acknowledged-delivered").Detail)
		}
		clean := runPipeline(t, pipelineOptions(seed, "file"))
		if c := checkNamed(t, clean, "acknowledged-delivered"); !c.OK {
			t.Fatalf("seed %d loses lines without the bug too: %s", seed, c.Detail)
		}
		t.Logf("caught at seed %d: %s", seed, checkNamed(t, res, "acknowledged-delivered").Detail)
		return
	}
	t.Fatalf("%s not caught in %d seeds", faults.BugFileChannelAckBeforeFsync, seedsMax)
}

// TestFlumePipelineRejectsUnknownChannel: the channel knob names its
// values.
func TestFlumePipelineRejectsUnknownChannel(t *testing.T) {
	d, _ := Lookup("flume-pipeline")
	err := d.Validate(Options{Params: map[string]string{"channel": "kafka"}})
	if err == nil || !strings.Contains(err.Error(), "want one of file, memory") {
		t.Fatalf("got %v", err)
	}
}

// TestFlumePipelineHopLosesNothing: with hop=on and file channels, lines
// acknowledged by the edge agent reach the topic through the avro hop
// while both agents crash; the seeds did crash them.
func TestFlumePipelineHopLosesNothing(t *testing.T) {
	const seeds = 6
	crashes := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		o := pipelineOptions(seed, "file")
		o.Params["hop"] = "on"
		res := runPipeline(t, o)
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
		t.Fatalf("only %d of %d seeds crashed an agent: the test shows little", crashes, seeds)
	}
}
