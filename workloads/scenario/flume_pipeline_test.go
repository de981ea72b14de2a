package scenario

import (
	"fmt"
	"maps"
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
	pipelineLosesNothing(t, "", 12, false)
}

// TestFlumePipelineFileChannelDataDirsLosesNothing: a file channel with
// three data directories loses nothing either, each seed twice with one
// trace hash; and with data-dirs=auto a swarm draws one to three while a
// run without --swarm keeps one.
func TestFlumePipelineFileChannelDataDirsLosesNothing(t *testing.T) {
	pipelineLosesNothingWith(t, map[string]string{"data-dirs": "3"}, 6, true)
	drawn := map[int]int{}
	for seed := uint64(1); seed <= 30; seed++ {
		o := Options{Seed: seed, Params: map[string]string{"data-dirs": "auto"}}
		if n := pipelineDataDirs(o); n != 1 {
			t.Fatalf("seed %d without --swarm: %d data directories, want 1", seed, n)
		}
		o.Swarm = true
		drawn[pipelineDataDirs(o)]++
	}
	if len(drawn) != 3 || drawn[1] == 0 || drawn[2] == 0 || drawn[3] == 0 {
		t.Fatalf("swarm seeds drew %v data directories, want each of 1, 2 and 3", drawn)
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
	err := d.Validate(Options{Params: map[string]string{"channel": "jdbc"}})
	if err == nil || !strings.Contains(err.Error(), "want one of file, memory, spillable, kafka") {
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

// TestFlumePipelineKafkaChannelLosesNothing: with channel=kafka the
// events wait in a topic of the broker, so agent kills and power losses
// lose no acknowledged line, alone, behind an edge agent (hop=on, both
// with kafka channels) and from a tailed log; the seeds did crash agents.
func TestFlumePipelineKafkaChannelLosesNothing(t *testing.T) {
	crashes, runs := 0, 0
	for _, params := range []map[string]string{{}, {"hop": "on"}, {"source": "taildir"}} {
		for seed := uint64(1); seed <= 4; seed++ {
			o := pipelineOptions(seed, "kafka")
			for k, v := range params {
				o.Params[k] = v
			}
			res := runPipeline(t, o)
			if !res.OK() {
				t.Fatalf("seed %d %v: %v", seed, params, res.Failed())
			}
			if res.Stats["lines_acked"] == 0 || res.Stats["records_read"] < res.Stats["lines_acked"] {
				t.Fatalf("seed %d %v: %d acknowledged, %d read back", seed, params, res.Stats["lines_acked"], res.Stats["records_read"])
			}
			runs++
			if crashed(res) {
				crashes++
			}
		}
	}
	if crashes < runs/2 {
		t.Fatalf("only %d of %d runs crashed an agent: the test shows little", crashes, runs)
	}
}

// catchPlantedBug runs seeds with bug on until one fails the named check,
// within 200 seeds, and shows the same seed passes it with the bug off.
// It returns the failing run.
func catchPlantedBug(t *testing.T, bug faults.Bug, check string, params map[string]string) Result {
	t.Helper()
	const seedsMax = 200
	with := func(seed uint64, bugs ...faults.Bug) Result {
		o := pipelineOptions(seed, "file", bugs...)
		for k, v := range params {
			o.Params[k] = v
		}
		return runPipeline(t, o)
	}
	for seed := uint64(1); seed <= seedsMax; seed++ {
		res := with(seed, bug)
		c := checkNamed(t, res, check)
		if c.OK {
			continue
		}
		if clean := checkNamed(t, with(seed), check); !clean.OK {
			t.Fatalf("seed %d fails %s without %s too: %s", seed, check, bug, clean.Detail)
		}
		t.Logf("%s caught at seed %d: %s", bug, seed, c.Detail)
		return res
	}
	t.Fatalf("%s not caught by %s in %d seeds", bug, check, seedsMax)
	return Result{}
}

// TestFlumePipelineTaildirLosesNothing: with source=taildir every line
// the writer synced reaches the topic, in order, through kills and power
// losses of the node it shares with the agent.
func TestFlumePipelineTaildirLosesNothing(t *testing.T) {
	pipelineLosesNothing(t, "taildir", 8, true)
}

// TestFlumePipelineSpooldirLosesNothing: with source=spooldir a writer on
// the agent's node spools files of lines; through agent crashes every
// line of a file acknowledged (durably moved into the spooled directory)
// arrives, in order, and each run replays.
func TestFlumePipelineSpooldirLosesNothing(t *testing.T) {
	pipelineLosesNothing(t, "spooldir", 6, true)
}

// pipelineLosesNothing runs seeds of flume-pipeline with a file channel
// and the given source ("" for the default), each twice when twice is
// set (both runs must give one trace hash): every check passes, every
// acknowledged line is read back, and at least half the seeds crashed the
// agent, or the test shows little.
func pipelineLosesNothing(t *testing.T, source string, seeds uint64, twice bool) {
	t.Helper()
	params := map[string]string{}
	if source != "" {
		params["source"] = source
	}
	pipelineLosesNothingWith(t, params, seeds, twice)
}

// pipelineLosesNothingWith is pipelineLosesNothing with any params.
func pipelineLosesNothingWith(t *testing.T, params map[string]string, seeds uint64, twice bool) {
	t.Helper()
	d, err := Lookup("flume-pipeline")
	if err != nil {
		t.Fatal(err)
	}
	crashes, replays := uint64(0), uint64(0)
	for seed := uint64(1); seed <= seeds; seed++ {
		o := pipelineOptions(seed, "file")
		maps.Copy(o.Params, params)
		var res Result
		if twice {
			var det Determinism
			res, det, err = RunTwice(d, o)
			if err != nil {
				t.Fatal(err)
			}
			if !det.Same() {
				t.Fatalf("seed %d: trace %s then %s\n%s", seed, det.Hashes[0], det.Hashes[1], det.Divergence)
			}
		} else {
			res = runPipeline(t, o)
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
		if res.Probes["collector/file-channel-replayed"] > 0 {
			replays++
		}
	}
	if crashes < seeds/2 {
		t.Fatalf("only %d of %d seeds crashed the agent: the test shows little", crashes, seeds)
	}
	// A crashed agent's file channel replays its log on the way back up.
	if replays == 0 {
		t.Fatalf("no file channel replayed a log in %d seeds with %d crashes", seeds, crashes)
	}
}

// TestFlumePipelineCatchesTaildirPositionBeforeCommit: a TAILDIR source
// that records a batch as read before its commit skips it when the agent
// dies with the commit waiting; the accounting finds the synced lines
// missing.
func TestFlumePipelineCatchesTaildirPositionBeforeCommit(t *testing.T) {
	res := catchPlantedBug(t, faults.BugTaildirPositionBeforeCommit, "acknowledged-delivered", map[string]string{"source": "taildir"})
	if !crashed(res) {
		t.Fatalf("lines lost without a crash of the agent: %v", res.Schedule.Actions)
	}
}

// TestFlumePipelineCatchesSourceAckBeforeCommit: a netcat source that
// answers OK before the commit loses acknowledged lines.
func TestFlumePipelineCatchesSourceAckBeforeCommit(t *testing.T) {
	res := catchPlantedBug(t, faults.BugSourceAckBeforeCommit, "acknowledged-delivered", nil)
	if res.Stats["lost"] == 0 {
		t.Fatalf("caught without a loss: %v", res.Stats)
	}
}

// TestFlumePipelineCatchesSourceAckBeforeCommitAtHop: with hop=on the
// bug is in both the edge's netcat source and the Kafka agent's avro
// source, whose early acknowledgement lets the edge take batches off its
// channel that the Kafka agent never committed.
func TestFlumePipelineCatchesSourceAckBeforeCommitAtHop(t *testing.T) {
	catchPlantedBug(t, faults.BugSourceAckBeforeCommit, "acknowledged-delivered", map[string]string{"hop": "on"})
}

// TestFlumePipelineCatchesTakeRollbackReorders: a channel that puts a
// rolled-back take behind what it holds sends the batch an avro sink
// failed to hand over after later lines; the per-client order check finds
// them.
func TestFlumePipelineCatchesTakeRollbackReorders(t *testing.T) {
	res := catchPlantedBug(t, faults.BugTakeRollbackReorders, "client-order", map[string]string{"hop": "on"})
	if res.Stats["reordered"] == 0 {
		t.Fatalf("caught without a reordered line: %v", res.Stats)
	}
}

// TestFlumePipelineLossStages: the accounting says where lost lines were
// lost. A memory channel loses committed lines (channel); a netcat source
// that answers before its commit loses lines no channel ever held
// (source); with hop=on the same bug in the Kafka agent's avro source
// loses lines the edge gave up but the Kafka agent never committed (hop);
// a Kafka sink that commits its take before the broker's acknowledgement
// loses lines the channel gave up and the topic never got (sink).
// Each run's stages add up to its losses.
func TestFlumePipelineLossStages(t *testing.T) {
	for _, c := range []struct {
		name    string
		channel string
		bug     faults.Bug
		hop     bool
		stage   string
		// only: every loss is at stage.
		only bool
	}{
		{"memory channel", "memory", "", false, "channel", true},
		{"source-ack-before-commit", "file", faults.BugSourceAckBeforeCommit, false, "source", true},
		{"source-ack-before-commit at the hop", "file", faults.BugSourceAckBeforeCommit, true, "hop", false},
		{"kafka-sink-commit-before-ack", "file", faults.BugKafkaSinkCommitBeforeAck, false, "sink", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 30; seed++ {
				o := pipelineOptions(seed, c.channel)
				if c.bug != "" {
					o.Bugs = faults.Bugs{c.bug: true}
				}
				if c.hop {
					o.Params["hop"] = "on"
				}
				res := runPipeline(t, o)
				stages, sum := pipelineStages(c.hop), int64(0)
				for _, s := range stages {
					sum += res.Stats["lost_at_"+strings.ReplaceAll(s, " ", "_")]
				}
				if sum != res.Stats["lost"] {
					t.Fatalf("seed %d: stages add up to %d of %d lost: %v", seed, sum, res.Stats["lost"], res.Stats)
				}
				at := res.Stats["lost_at_"+c.stage]
				if at == 0 {
					continue
				}
				if c.only && at != res.Stats["lost"] {
					t.Fatalf("seed %d: %d of %d lost at %s: %v", seed, at, res.Stats["lost"], c.stage, res.Stats)
				}
				detail := checkNamed(t, res, "acknowledged-delivered").Detail
				if !strings.Contains(detail, "lost by stage: ") {
					t.Fatalf("seed %d: the verdict does not name the stages: %s", seed, detail)
				}
				t.Logf("seed %d: %s", seed, detail[strings.Index(detail, "(lost by stage"):])
				return
			}
			t.Fatalf("no seed of 30 lost lines at %s", c.stage)
		})
	}
}

// TestFlumePipelineHTTPAndSyslogSources: clients of the http source
// (a JSON event per POST, acknowledged by 200) lose nothing acknowledged
// through a file channel while the agent crashes, alone and behind an edge
// agent; clients of the syslogtcp source get no acknowledgement, so the
// run is judged on progress and the lines lost are counted, by stage, as
// unacknowledged losses.
func TestFlumePipelineHTTPAndSyslogSources(t *testing.T) {
	crashes := 0
	for seed := uint64(1); seed <= 4; seed++ {
		for _, hop := range []string{"off", "on"} {
			o := pipelineOptions(seed, "file")
			o.Params["source"], o.Params["hop"] = "http", hop
			res := runPipeline(t, o)
			if !res.OK() {
				t.Fatalf("http seed %d hop=%s: %v", seed, hop, res.Failed())
			}
			if res.Stats["lines_acked"] == 0 || res.Stats["records_read"] < res.Stats["lines_acked"] {
				t.Fatalf("http seed %d hop=%s: %d acknowledged, %d read back", seed, hop, res.Stats["lines_acked"], res.Stats["records_read"])
			}
			if crashed(res) {
				crashes++
			}
		}
	}
	if crashes < 4 {
		t.Fatalf("only %d of 8 http runs crashed an agent", crashes)
	}
	unackedLost := int64(0)
	for seed := uint64(1); seed <= 4; seed++ {
		o := pipelineOptions(seed, "memory")
		o.Params["source"] = "syslogtcp"
		res := runPipeline(t, o)
		if !res.OK() {
			t.Fatalf("syslogtcp seed %d: %v", seed, res.Failed())
		}
		if res.Stats["lines_acked"] != 0 || res.Stats["records_read"] == 0 {
			t.Fatalf("syslogtcp seed %d: %d acknowledged, %d read back", seed, res.Stats["lines_acked"], res.Stats["records_read"])
		}
		sum := int64(0)
		for _, s := range pipelineStages(false) {
			sum += res.Stats["unacked_lost_at_"+s]
		}
		if sum != res.Stats["unacked_lost"] || res.Stats["unacked_lost"] > res.Stats["lines_sent"] {
			t.Fatalf("syslogtcp seed %d: sent lines do not add up: %v", seed, res.Stats)
		}
		unackedLost += res.Stats["unacked_lost"]
	}
	if unackedLost == 0 {
		t.Fatal("syslog over a memory channel lost nothing in four crashing seeds: the accounting shows nothing")
	}
}

// TestFlumePipelineCatchesKafkaSinkCommitBeforeAck: a Kafka sink that
// commits its take before the broker acknowledged the batch, and drops a
// batch whose send failed, loses acknowledged lines that the channel gave
// up and the topic never got: every one of them is lost at the sink stage.
// The first seed catching it passes with the bug off.
func TestFlumePipelineCatchesKafkaSinkCommitBeforeAck(t *testing.T) {
	res := catchPlantedBug(t, faults.BugKafkaSinkCommitBeforeAck, "acknowledged-delivered", nil)
	lost := res.Stats["lost"]
	if lost == 0 || res.Stats["lost_at_sink"] != lost {
		t.Fatalf("seed %d: %d lost, %d of them at the sink: %v", res.Seed, lost, res.Stats["lost_at_sink"], res.Stats)
	}
	t.Logf("seed %d: %d lost at the sink; faults fired %v", res.Seed, lost, res.FaultsFired)
}
