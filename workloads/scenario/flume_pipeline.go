package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/collector"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The flume-pipeline scenario: the seeds' pipeline, netcat -> channel ->
// KafkaSink. Clients write unique lines over TCP into an agent's netcat
// source, which answers OK once a line is committed to its channel; the
// agent's Kafka sink delivers into one broker. Faults fall on the agent
// (process, disk, clock) and on the network between every pair of nodes.
// After the drain the topic is read back in full and every line
// acknowledged to its client must be in it at least once. With hop=on the
// clients write into an edge agent instead, whose avro sink hands batches
// to the Kafka agent's avro source (Flume's multi-hop flow); faults fall
// on both agents. With source=taildir a writer on the entry agent's node
// appends lines to a log file its TAILDIR source follows, and a line
// counts as acknowledged once a sync of the file covering it returned.
// Syncs of that node's disk never
// fail in this variant: after a failed sync a later one can succeed over
// a hole, and no writer can tell which of its lines survived. Each
// client's lines (or the writer's) must arrive in the order they were
// acknowledged. With source=spooldir a writer on the entry agent's node
// spools files of lines into the directory a spooldir source reads, and
// a file's lines count as acknowledged once it was durably moved in. In a
// swarm the seed draws netcat, taildir or spooldir (source=auto), and
// plants crashes part way through a spooled file and damage to a file
// channel's checkpoint (flume_pipeline_spool.go, flume_pipeline_damage.go).
// With source=kafka the clients are Kafka producers (acks=all,
// idempotent) writing into the broker's topic "input", which the entry
// agent's kafka source reads as a consumer group member; a line counts as
// acknowledged once its produce is, and the source is at-least-once: a
// crashed agent reads again from its group's committed offsets.
func init() {
	Register(Definition{
		Name:    "flume-pipeline",
		Summary: "netcat clients or a tailed log -> a collector agent (memory, file, spillable or kafka channel) -> Kafka sink -> one broker, under agent crashes, power loss, disk and network faults",
		Bugs: []faults.Bug{faults.BugFileChannelAckBeforeFsync, faults.BugSourceAckBeforeCommit,
			faults.BugTaildirPositionBeforeCommit, faults.BugTakeRollbackReorders,
			faults.BugKafkaSourceCommitBeforePut, faults.BugKafkaSinkCommitBeforeAck},
		Params: []Param{
			{Name: "channel", Default: "file", Values: []string{"file", "memory", "spillable", "kafka"},
				Help: "the agent's channel: file (durable: nothing acknowledged is lost), memory (a crash loses what it holds), spillable (SPILLABLEMEMORY: a crash loses what is in memory, not what overflowed to disk) or kafka (a topic of the broker, one per agent: an agent crash loses nothing)"},
			{Name: "broker", Default: "network", Values: []string{"network", "crash"},
				Help: "faults on the broker: network only, or also kills and power loss (it syncs before acknowledging)"},
			{Name: "hop", Default: "off", Values: []string{"off", "on"},
				Help: "on: clients write into an edge agent chained to the Kafka agent by an avro sink and source"},
			{Name: "source", Default: "auto", Values: []string{"auto", "netcat", "taildir", "spooldir", "http", "syslogtcp", "kafka"},
				Help: "the entry agent's source: auto (netcat in a plain run; in a swarm the seed draws netcat, taildir or spooldir), netcat (TCP clients, OK per line), taildir (a writer on the agent's node appends and syncs a log file; no failing syncs), spooldir (a writer on the agent's node writes files of lines, syncs each and moves it into the spooled directory), http (clients POST each line as a JSON event, 200 acknowledges), syslogtcp (clients send RFC 5424 lines, which syslog never acknowledges) or kafka (clients produce lines with acks=all to the broker's topic input, which the agent reads as a consumer group member)"},
			{Name: "data-dirs", Default: "auto", Values: []string{"auto", "1", "2", "3"},
				Help: "data directories of a file channel (or a spillable channel's overflow), each a log of its own: auto is one, or with --swarm one to three drawn from the seed"},
		},
		Run:   20 * time.Second,
		Drain: 10 * time.Second,
		Budget: Budget{
			// About 20 times what seeds use: 5.5k events per simulated
			// second and an estimated 2.1 MiB at most over 50 seeds.
			EventsPerSecMax: 110_000,
			MemoryBytesMax:  64 << 20,
			// A client waits for answers and reconnects after a delay,
			// so it cannot spin: time alone bounds a stall.
			StallMax: 10 * time.Second,
		},
		Build: buildFlumePipeline,
	})
}

const (
	pipelineAgent = "agent"
	// pipelineEdge is the first agent with hop=on.
	pipelineEdge    = "edge"
	pipelineHopPort = 4545
	pipelineBroker  = "b1"
	// pipelineReader is the node that reads the topic back at the end;
	// no fault touches it.
	pipelineReader = "reader"
	pipelineTopic  = "flume"
	pipelinePort   = 44444
	// pipelineAgentRetry is how long an agent that could not start (a
	// full disk while its file channel opened) waits before trying
	// again, as a supervisor restarting it would.
	pipelineAgentRetry = time.Second
	// pipelineSettleMax bounds how long Finish waits for the agent to
	// empty its channel before reading the topic.
	pipelineSettleMax = 30 * time.Second
	// pipelineReadMax bounds how long Finish reads the topic.
	pipelineReadMax = 20 * time.Second
	pipelinePoll    = 100 * time.Millisecond
	// pipelineLogFile is the file the writer appends with
	// source=taildir, on the entry agent's node.
	pipelineLogFile = "logs/app.log"
	// pipelineInputTopic is the topic the clients produce to with
	// source=kafka, and pipelineSourceGroup the entry source's group.
	pipelineInputTopic  = "input"
	pipelineSourceGroup = "flume-source"
	// pipelineSourceIdlePolls is how many empty polls of the kafka source,
	// after the clients stopped, settle waits for: it has then read the
	// input topic to its end.
	pipelineSourceIdlePolls = 2
)

var pipelineClients = []string{"c1", "c2", "c3"}

// pipelineConfig is the Kafka agent's configuration file, in Flume's
// format: its source is the entry source, or with hop the edge agent's.
func pipelineConfig(channel, source string, hop bool, dataDirs int) string {
	lines := []string{
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
	}
	if hop {
		lines = append(lines,
			"a1.sources.r1.type = avro",
			"a1.sources.r1.bind = 0.0.0.0",
			fmt.Sprintf("a1.sources.r1.port = %d", pipelineHopPort))
	} else {
		lines = append(lines, pipelineEntrySource(source)...)
	}
	lines = append(lines, pipelineChannel(channel, source, !hop, pipelineAgent, dataDirs)...)
	lines = append(lines,
		"a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink",
		fmt.Sprintf("a1.sinks.k1.kafka.bootstrap.servers = %s:9092", pipelineBroker),
		"a1.sinks.k1.kafka.topic = "+pipelineTopic,
		"a1.sinks.k1.kafka.producer.acks = all",
		// A kafka source names each event's topic (input) in its topic
		// header, which would otherwise send the event back there.
		"a1.sinks.k1.allowTopicOverride = false",
		"a1.sinks.k1.batchSize = 20",
		"a1.sinks.k1.channel = c1")
	return strings.Join(lines, "\n") + "\n"
}

// pipelineEntrySource is the source the pipeline's input enters by.
func pipelineEntrySource(source string) []string {
	if source == "taildir" {
		return []string{
			"a1.sources.r1.type = TAILDIR",
			"a1.sources.r1.filegroups = f1",
			// The live file and the files rotation renamed it to.
			"a1.sources.r1.filegroups.f1 = /" + strings.ReplaceAll(pipelineLogFile, ".", `\.`) + `(\.[0-9]+)?`,
			"a1.sources.r1.positionFile = flume/taildir_position.json",
			"a1.sources.r1.batchSize = 20",
			"a1.sources.r1.writePosInterval = 500",
			"a1.sources.r1.backoffSleepIncrement = 20",
			"a1.sources.r1.maxBackoffSleep = 200",
		}
	}
	switch source {
	case "spooldir":
		return []string{
			"a1.sources.r1.type = spooldir",
			"a1.sources.r1.spoolDir = /" + spoolWriterDir,
			"a1.sources.r1.batchSize = 20",
			"a1.sources.r1.pollDelay = 20",
			"a1.sources.r1.maxBackoff = 200",
		}
	case "kafka":
		// A restarted agent's member waits for its predecessor's session
		// to expire before it owns the partition: the broker's least.
		return []string{
			"a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource",
			fmt.Sprintf("a1.sources.r1.kafka.bootstrap.servers = %s:9092", pipelineBroker),
			"a1.sources.r1.kafka.topics = " + pipelineInputTopic,
			"a1.sources.r1.kafka.consumer.group.id = " + pipelineSourceGroup,
			"a1.sources.r1.kafka.consumer.auto.offset.reset = earliest",
			"a1.sources.r1.kafka.consumer.session.timeout.ms = 6000",
			"a1.sources.r1.batchSize = 20",
			"a1.sources.r1.batchDurationMillis = 100",
		}
	case "http":
		return []string{
			"a1.sources.r1.type = http",
			"a1.sources.r1.bind = 0.0.0.0",
			fmt.Sprintf("a1.sources.r1.port = %d", pipelinePort),
		}
	case "syslogtcp":
		return []string{
			"a1.sources.r1.type = syslogtcp",
			"a1.sources.r1.host = 0.0.0.0",
			fmt.Sprintf("a1.sources.r1.port = %d", pipelinePort),
		}
	}
	return []string{
		"a1.sources.r1.type = netcat",
		"a1.sources.r1.bind = 0.0.0.0",
		fmt.Sprintf("a1.sources.r1.port = %d", pipelinePort),
		"a1.sources.r1.ack-every-event = true",
	}
}

// pipelineEdgeConfig is the edge agent's file with hop=on: the entry
// source -> channel -> avro sink to the Kafka agent.
func pipelineEdgeConfig(channel, source string, dataDirs int) string {
	lines := []string{
		"a1.sources = r1",
		"a1.channels = c1",
		"a1.sinks = k1",
	}
	lines = append(lines, pipelineEntrySource(source)...)
	lines = append(lines, pipelineChannel(channel, source, true, pipelineEdge, dataDirs)...)
	lines = append(lines,
		"a1.sinks.k1.type = avro",
		"a1.sinks.k1.hostname = "+pipelineAgent,
		fmt.Sprintf("a1.sinks.k1.port = %d", pipelineHopPort),
		"a1.sinks.k1.batch-size = 50",
		"a1.sinks.k1.request-timeout = 3000",
		"a1.sinks.k1.channel = c1")
	return strings.Join(lines, "\n") + "\n"
}

// pipelineChannel is an agent's channel c1 and its source's link to it.
// A file source's channel is small, so that a sink that cannot
// deliver fills it within a fault's length and the source's commits wait
// for room: crashes then find lines read and not yet committed, the
// moment a source must not have recorded them as done. A kafka channel
// keeps its events in the topic "<agent>-channel" of the pipeline's broker.
func pipelineChannel(channel, source string, entry bool, agent string, dataDirs int) []string {
	capacity := 10000
	if entry && (source == "taildir" || source == "spooldir") {
		capacity = 500
	}
	lines := []string{
		"a1.sources.r1.channels = c1",
		"a1.channels.c1.type = " + channel,
		fmt.Sprintf("a1.channels.c1.capacity = %d", capacity),
		"a1.channels.c1.transactionCapacity = 100",
	}
	if channel == "spillable" {
		// The first hundred events in memory, the rest on disk: a sink
		// that cannot deliver for a moment makes the channel overflow.
		lines[1] = "a1.channels.c1.type = SPILLABLEMEMORY"
		lines[2] = "a1.channels.c1.memoryCapacity = 100"
		lines = append(lines, fmt.Sprintf("a1.channels.c1.overflowCapacity = %d", capacity-100))
	}
	if channel == "kafka" {
		// A restarted agent's member waits for its predecessor's session
		// to expire before it owns the partition: the broker's least.
		lines = append(lines,
			fmt.Sprintf("a1.channels.c1.kafka.bootstrap.servers = %s:9092", pipelineBroker),
			"a1.channels.c1.kafka.topic = "+agent+"-channel",
			"a1.channels.c1.kafka.consumer.group.id = "+agent+"-channel",
			"a1.channels.c1.kafka.consumer.session.timeout.ms = 6000")
	}
	if channel == "file" || channel == "spillable" {
		lines = append(lines,
			"a1.channels.c1.checkpointDir = flume/checkpoint",
			"a1.channels.c1.dataDirs = "+strings.Join(collector.DataDirsUnder("flume", dataDirs), ","),
			"a1.channels.c1.checkpointInterval = 2000",
			"a1.channels.c1.maxFileSize = 65536")
	}
	return lines
}

// pipelineSwarmSources are the entry sources a swarm seed draws from,
// netcat as often as the others together: a TAILDIR source follows a log
// file through rotations and a spooldir source resumes a file after a
// restart, which netcat's clients never reach.
var pipelineSwarmSources = []string{"netcat", "taildir", "spooldir"}

// pipelineSourceFor is the run's entry source: the source param, or with
// auto, netcat in a plain run and one drawn from the seed's "source"
// stream in a swarm.
func pipelineSourceFor(o Options) string {
	source := o.Param("source")
	if source != "auto" {
		return source
	}
	if !o.Swarm {
		return "netcat"
	}
	r := sched.NewRand(o.Seed, "source", 0)
	if r.IntN(2) == 0 {
		return "netcat"
	}
	return pipelineSwarmSources[1+r.IntN(len(pipelineSwarmSources)-1)]
}

// pipelineDataDirs is how many data directories a file channel gets: one,
// or with data-dirs=auto under --swarm one to three drawn from the seed's
// "data-dirs" stream (so a run without --swarm is unchanged).
func pipelineDataDirs(o Options) int {
	switch mode := o.Param("data-dirs"); {
	case mode == "auto" && o.Swarm:
		return 1 + sched.NewRand(o.Seed, "data-dirs", 0).IntN(3)
	case mode == "auto":
		return 1
	default:
		n, err := strconv.Atoi(mode)
		sched.Assert(err == nil, "scenario: data-dirs %q passed validation: %v", mode, err)
		return n
	}
}

type pipelineCluster struct {
	o Options
	// source is the entry agent's source: the source param, or the one
	// the seed drew (see pipelineSourceFor).
	source  string
	w       *world.World
	clients []*lineClient
	// writer writes the lines on the entry agent's node with a file
	// source (source=taildir or spooldir), written its accounting; nil
	// otherwise.
	writer  entryWriter
	written *writtenLines
	// episodes counts the crash episodes planted (begun or skipped):
	// an episode's number in Options.EpisodesSkipped; spoolCrashes
	// those that crashed the agent part way through a spooled file,
	// checkpointsDamaged those that damaged its checkpoint.
	episodes, spoolCrashes, checkpointsDamaged int
	// agent is the Kafka agent of the latest start, edge the edge agent
	// (hop=on); nil until they run.
	agent       *collector.Agent
	edge        *collector.Agent
	hop         bool
	agentStarts int
	agentFatals []string
	reader      sim.Env
	delivered   []string
	readUpTo    string
	verdict     checkers.PipelineVerdict
	// reached records, per line, the hand-overs the agents' channels
	// committed (reachedEntryPut, …), to tell where a lost line was lost.
	reached map[string]uint8
}

// The hand-overs a line passes, as the agents' channels commit them: put
// into the entry (edge) agent's channel and taken from it for good, put
// into the Kafka agent's channel and taken from it for good (the Kafka
// sink acknowledged). With hop=off the Kafka agent is the entry agent and
// only its bits are set.
// pipelineReachedEntryBytes estimates one line's entry in reached.
const pipelineReachedEntryBytes = 48

const (
	reachedEntryPut uint8 = 1 << iota
	reachedEntryTake
	reachedAgentPut
	reachedAgentTake
)

func buildFlumePipeline(w *world.World, o Options) Cluster {
	c := &pipelineCluster{o: o, w: w, hop: o.Param("hop") == "on", reached: map[string]uint8{}}
	source := pipelineSourceFor(o)
	c.source = source
	dataDirs := pipelineDataDirs(o)
	cfg, err := config.Parse(pipelineConfig(o.Param("channel"), source, c.hop, dataDirs), "a1", nil)
	sim.Assert(err == nil, "flume-pipeline: configuration: %v", err)
	entry := pipelineAgent
	if c.hop {
		entry = pipelineEdge
	}
	// Clients stop offering lines halfway through the drain, so that
	// what they sent has the rest of it to reach the topic.
	stopAt := o.Run + o.Drain/2
	switch source {
	case "taildir":
		lw := &logWriter{writtenLines: writtenLines{stopAt: stopAt}}
		c.writer, c.written = lw, &lw.writtenLines
	case "spooldir":
		sw := &spoolWriter{writtenLines: writtenLines{stopAt: stopAt}}
		c.writer, c.written = sw, &sw.writtenLines
	}
	// startOn starts an agent, and on the entry node the log writer
	// first, so that both come back with the node.
	startOn := func(node string, cfg *config.Agent, slot **collector.Agent) sim.Start {
		return func(env sim.Env) {
			var onReady func()
			if c.writer != nil && node == entry {
				c.writer.start(env)
				onReady = c.writer.resume
			}
			c.startAgent(env, cfg, slot, onReady)
		}
	}

	bcfg := broker.DefaultConfig()
	bcfg.Log.Flush = storage.FlushPolicy{Mode: storage.FlushGroupCommit}
	w.AddNode(pipelineBroker, broker.Start(bcfg, nil))
	w.AddNode(pipelineAgent, startOn(pipelineAgent, cfg, &c.agent))
	if c.hop {
		edgeCfg, err := config.Parse(pipelineEdgeConfig(o.Param("channel"), source, dataDirs), "a1", nil)
		sim.Assert(err == nil, "flume-pipeline: edge configuration: %v", err)
		w.AddNode(pipelineEdge, startOn(pipelineEdge, edgeCfg, &c.edge))
	}
	w.AddNode(pipelineReader, func(env sim.Env) { c.reader = env })
	if source == "spooldir" && o.Swarm {
		c.scheduleSpoolCrashes(w, entry)
	}
	if channel := o.Param("channel"); (channel == "file" || channel == "spillable") && o.Swarm {
		c.scheduleCheckpointDamage(w)
	}
	if c.writer != nil {
		return c
	}
	for _, name := range pipelineClients {
		cl := &lineClient{name: name, addr: fmt.Sprintf("%s:%d", entry, pipelinePort), stopAt: stopAt,
			healAt: o.Run, proto: pipelineProtocols[source], produce: source == "kafka"}
		c.clients = append(c.clients, cl)
		w.AddNode(name, cl.start)
	}
	return c
}

// startAgent runs one incarnation of an agent into *slot; one that
// cannot start tries again, as a supervisor would restart it.
// onReady, if not nil, is called once it runs.
func (c *pipelineCluster) startAgent(env sim.Env, cfg *config.Agent, slot **collector.Agent, onReady func()) {
	*slot = nil
	c.agentStarts++
	putBit, takeBit := reachedAgentPut, reachedAgentTake
	if slot == &c.edge {
		putBit, takeBit = reachedEntryPut, reachedEntryTake
	}
	opts := collector.Options{
		Bugs:     c.o.Bugs,
		EventLog: sim.LoggerFunc(func(string, ...any) {}),
		OnCommit: func(_ string, puts, takes []collector.Event) {
			for _, e := range puts {
				c.reached[string(e.Body)] |= putBit
			}
			for _, e := range takes {
				c.reached[string(e.Body)] |= takeBit
			}
		},
		OnFatal: func(err error) {
			c.agentFatals = append(c.agentFatals, err.Error())
			env.Log.Logf("%v; starting again in %v", err, pipelineAgentRetry)
			restart := func() {
				env.Clock.AfterFunc(pipelineAgentRetry, func() { c.startAgent(env, cfg, slot, onReady) })
			}
			running := *slot
			if running == nil {
				restart()
				return
			}
			// A source stopped for good (a spooldir source that
			// cannot retire a file) in a running agent: stop the
			// rest of it first.
			*slot = nil
			running.Stop(restart)
		},
	}
	collector.Start(cfg, opts, func(a *collector.Agent) {
		*slot = a
		if onReady != nil {
			onReady()
		}
	})(env)
}

func (c *pipelineCluster) Profile() faults.Profile {
	targets := []string{pipelineAgent}
	if c.hop {
		targets = append(targets, pipelineEdge)
	}
	var others []string
	if c.writer == nil {
		others = append(others, pipelineClients...)
	}
	if c.o.Param("broker") == "crash" {
		targets = append(targets, pipelineBroker)
	} else {
		others = append(others, pipelineBroker)
	}
	kinds := []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause,
		faults.KindPartition, faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs,
		faults.KindDiskFull, faults.KindClockJump, faults.KindClockDrift}
	if c.source == "taildir" {
		// See init.
		kinds = slices.DeleteFunc(kinds, func(k faults.Kind) bool { return k == faults.KindFailSyncs })
	}
	if c.o.Swarm {
		// Read errors meet the agents only as they start (replaying a
		// file channel) and in the file sources; a plain run keeps
		// the mix its seeds were drawn with.
		kinds = append(kinds, faults.KindReadErrors)
	}
	return faults.Profile{
		Targets:      targets,
		Clients:      others,
		IntervalMean: 2 * time.Second,
		DurationMax:  3 * time.Second,
		Kinds:        kinds,
		// Failed creates, renames and removes and short writes meet
		// the file channel's logs and checkpoints and the sources'
		// position files; a quarter of the swarm's seeds draw them,
		// so that the rest keep their mixes.
		SwarmOccasional:      []faults.Kind{faults.KindMetaErrors},
		SwarmOccasionalShare: pipelineMetaErrorsShare,
	}
}

// pipelineMetaErrorsShare is the share of swarm seeds that draw
// meta-errors.
const pipelineMetaErrorsShare = 0.25

// Footprint estimates what the run holds, for the memory budget.
func (c *pipelineCluster) Footprint() Footprint {
	f := Footprint{DiskBytes: c.w.Node(pipelineAgent).Disk().UsedBytes() + c.w.Node(pipelineBroker).Disk().UsedBytes()}
	if c.hop {
		f.DiskBytes += c.w.Node(pipelineEdge).Disk().UsedBytes()
	}
	for _, cl := range c.clients {
		f.ClientBytes += cl.bytes
	}
	if c.written != nil {
		f.ClientBytes += c.written.bytes
	}
	// The hand-overs seen per line: a map entry and the line's key.
	f.ClientBytes += int64(len(c.reached)) * pipelineReachedEntryBytes
	return f
}

// Progress reports each client's acknowledged lines, for the no-progress
// watchdog; a client has work until it stops offering lines and every
// line it sent was answered.
func (c *pipelineCluster) Progress() []Activity {
	acts := make([]Activity, len(c.clients))
	for i, cl := range c.clients {
		mark := len(cl.acked)
		if !cl.produce && !cl.proto.answers() {
			mark = len(cl.sent) // nothing is acknowledged: sending is progress
		}
		acts[i] = Activity{Name: "client " + cl.name, Mark: int64(mark),
			Waiting: !cl.stopped() || len(cl.outstanding) > 0, Attempts: cl.connects,
			Describe: cl.describe}
	}
	if wr := c.written; wr != nil {
		acts = append(acts, Activity{Name: "log writer", Mark: int64(len(wr.acked)),
			Waiting: !wr.stopped(), Attempts: wr.starts, Describe: c.writer.describe})
	}
	return acts
}

// Finish lets the agent empty its channel, reads the topic back in full
// and accounts for every line.
func (c *pipelineCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	settled := c.settle(w)
	caughtUp := c.readTopic(w)
	var in checkers.PipelineInput
	stats := map[string]int64{"agent_starts": int64(c.agentStarts), "agent_fatals": int64(len(c.agentFatals)),
		plantedEpisodesStat: int64(c.episodes), "spool_crashes": int64(c.spoolCrashes),
		"checkpoints_damaged": int64(c.checkpointsDamaged)}
	for _, cl := range c.clients {
		in.Sent = append(in.Sent, cl.sent...)
		in.Acked = append(in.Acked, cl.acked...)
		in.AckOrder = append(in.AckOrder, cl.acked)
		stats["lines_failed"] += int64(cl.failed)
		stats["lines_unanswered"] += int64(cl.unanswered)
		stats["client_connects"] += int64(cl.connects)
	}
	if wr := c.written; wr != nil {
		in.Sent = append(in.Sent, wr.sent...)
		in.Acked = append(in.Acked, wr.acked...)
		in.AckOrder = append(in.AckOrder, wr.acked)
		stats["lines_failed"] += int64(wr.failed)
	}
	in.Delivered = c.delivered
	in.LossStage, in.Stages = c.lossStage, pipelineStages(c.hop)
	v := checkers.CheckPipeline(in)
	c.verdict = v
	stats["lines_sent"] = int64(v.Sent)
	stats["lines_acked"] = int64(v.Acked)
	stats["records_read"] = int64(v.Delivered)
	stats["lost"] = int64(len(v.Lost))
	stats["duplicated"] = int64(v.Duplicated)
	stats["phantoms"] = int64(len(v.Phantoms))
	stats["unacked_lost"] = int64(v.UnackedLost)
	if c.source == "syslogtcp" {
		// Syslog acknowledges nothing: where the lines it lost were lost.
		for _, stage := range v.Stages {
			stats["unacked_lost_at_"+strings.ReplaceAll(stage, " ", "_")] = int64(v.UnackedLostByStage[stage])
		}
	}
	stats["reordered"] = int64(v.Reordered)
	for _, stage := range v.Stages {
		stats["lost_at_"+strings.ReplaceAll(stage, " ", "_")] = int64(v.LostByStage[stage])
	}
	for name, us := range c.ackLatencyPercentiles() {
		stats[name] = us
	}
	order := "every client's lines arrived in the order they were acknowledged"
	if !v.InOrder() {
		order = fmt.Sprintf("%d lines arrived ahead of a line acknowledged before them, e.g. %s",
			v.Reordered, strings.Join(v.ReorderedExamples, ", "))
	}
	checks := []Check{
		{Name: "acknowledged-delivered", OK: v.OK(), Detail: v.String()},
		{Name: "client-order", OK: v.InOrder(), Detail: order},
		c.progressAfterHeal(v),
		{Name: "drained", OK: settled && caughtUp, Detail: c.drainDetail(settled, caughtUp)},
	}
	return checks, stats
}

// pipelineStages are where a line can be lost, in the order it passes
// them: its source (acknowledged and never committed to a channel), a
// channel (committed and never taken for good), the avro hop (taken from
// the edge's channel for good, never committed by the Kafka agent) and the
// sink (taken for good, not in the topic: the Kafka sink or the broker).
func pipelineStages(hop bool) []string {
	if hop {
		return []string{"source", "edge channel", "hop", "channel", "sink"}
	}
	return []string{"source", "channel", "sink"}
}

// lossStage names where a lost line was lost, from the hand-overs its
// agents committed.
func (c *pipelineCluster) lossStage(line string) string {
	r := c.reached[line]
	switch {
	case !c.hop && r&reachedAgentPut == 0, c.hop && r&reachedEntryPut == 0:
		return "source"
	case c.hop && r&reachedAgentPut == 0 && r&reachedEntryTake == 0:
		return "edge channel"
	case c.hop && r&reachedAgentPut == 0:
		return "hop"
	case r&reachedAgentTake == 0:
		return "channel"
	}
	return "sink"
}

// ackLatencyQuantiles name the percentiles of the time from a line's
// send (or append) to its acknowledgement that Finish reports, in µs.
var ackLatencyQuantiles = []struct {
	stat       string
	percentile float64
}{{"ack_latency_p50_us", 50}, {"ack_latency_p99_us", 99}, {"ack_latency_p999_us", 99.9}}

// ackLatencyPercentiles summarizes every acknowledged line's latency
// (HdrHistogram, 3 significant figures, 1 µs to an hour).
func (c *pipelineCluster) ackLatencyPercentiles() map[string]int64 {
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	record := func(latencies []time.Duration) {
		for _, d := range latencies {
			h.RecordValue(max(int64(d/time.Microsecond), 1))
		}
	}
	for _, cl := range c.clients {
		record(cl.ackLatencies)
	}
	if c.written != nil {
		record(c.written.ackLatencies)
	}
	out := map[string]int64{}
	if h.TotalCount() == 0 {
		return out
	}
	for _, q := range ackLatencyQuantiles {
		out[q.stat] = h.ValueAtQuantile(q.percentile)
	}
	return out
}

// PipelineVerdict is the accounting Finish made.
func (c *pipelineCluster) PipelineVerdict() checkers.PipelineVerdict { return c.verdict }

// progressAfterHeal checks that the pipeline took lines after the faults
// healed: acknowledged ones, or where the source acknowledges nothing
// (syslog), delivered ones sent after the heal.
func (c *pipelineCluster) progressAfterHeal(v checkers.PipelineVerdict) Check {
	if c.source != "syslogtcp" {
		return Check{Name: "progress-after-heal", OK: v.Acked > 0 && c.ackedAfterHeal() > 0,
			Detail: fmt.Sprintf("%d lines acknowledged after the faults healed", c.ackedAfterHeal())}
	}
	delivered := make(map[string]bool, len(c.delivered))
	for _, d := range c.delivered {
		delivered[d] = true
	}
	n := 0
	for _, cl := range c.clients {
		for _, line := range cl.sent[cl.sentByHeal:] {
			if delivered[line] {
				n++
			}
		}
	}
	return Check{Name: "progress-after-heal", OK: n > 0,
		Detail: fmt.Sprintf("%d lines sent after the faults healed were delivered (syslog acknowledges none)", n)}
}

func (c *pipelineCluster) ackedAfterHeal() int {
	n := 0
	for _, cl := range c.clients {
		n += len(cl.acked) - cl.ackedAt(c.o.Run)
	}
	if wr := c.written; wr != nil {
		after, _ := slices.BinarySearch(wr.ackTimes, c.o.Run+1)
		n += len(wr.acked) - after
	}
	return n
}

func (c *pipelineCluster) drainDetail(settled, caughtUp bool) string {
	var notes []string
	if !settled {
		notes = append(notes, fmt.Sprintf("the agent did not empty its channel within %v (%d starts, fatal: %s)",
			pipelineSettleMax, c.agentStarts, strings.Join(c.agentFatals[max(0, len(c.agentFatals)-1):], "")))
	}
	if !caughtUp {
		notes = append(notes, "the reader did not reach the end of the topic: "+c.readUpTo)
	}
	if len(notes) == 0 {
		return "the agent emptied its channel and the reader read the topic to its end (" + c.readUpTo + ")"
	}
	return strings.Join(notes, "; ")
}

// settle runs the world until the running agents' channels are empty; a
// kafka channel's ChannelSize counts only what it read ahead, so it must
// also have read its topic to the end.
func (c *pipelineCluster) settle(w *world.World) bool {
	empty := func(a *collector.Agent) bool {
		if a == nil || !a.Ready() || a.Metrics()["CHANNEL.c1"]["ChannelSize"] != "0" {
			return false
		}
		k, ok := a.Channel("c1").(*collector.KafkaChannel)
		return !ok || k.CaughtUp()
	}
	entry := &c.agent
	if c.hop {
		entry = &c.edge
	}
	idle := sourceIdle{}
	deadline := w.Now() + pipelineSettleMax
	for w.Now() < deadline {
		if empty(c.agent) && (!c.hop || empty(c.edge)) && c.producersDone() && idle.reached(*entry) {
			return true
		}
		w.Run(w.Now()+pipelinePoll, 0)
	}
	return false
}

// sourceIdle tells when an agent's kafka source has read its topics to
// their end: it counts the empty polls since settle began, which come only
// after every earlier poll's records were put.
type sourceIdle struct {
	agent      *collector.Agent
	emptyFirst int64
}

// reached reports whether a's kafka source (if it has one) polled nothing
// pipelineSourceIdlePolls times since it was first seen; a restarted agent
// starts the count again.
func (s *sourceIdle) reached(a *collector.Agent) bool {
	if a == nil || !a.Ready() {
		return false
	}
	src, ok := a.Source("r1").(*collector.KafkaSource)
	if !ok {
		return true
	}
	emptyPolls := src.Counters().Kafka.KafkaEmptyCount
	if s.agent != a {
		s.agent, s.emptyFirst = a, emptyPolls
	}
	return emptyPolls-s.emptyFirst >= pipelineSourceIdlePolls
}

// producersDone reports whether every producing client knows the outcome
// of all it sent, so that no retried produce lands after settle.
func (c *pipelineCluster) producersDone() bool {
	for _, cl := range c.clients {
		if cl.produce && len(cl.outstanding) > 0 {
			return false
		}
	}
	return true
}

// readTopic reads the topic's one partition from its start to its high
// watermark.
func (c *pipelineCluster) readTopic(w *world.World) bool {
	tp := kafka.TopicPartition{Topic: pipelineTopic, Partition: 0}
	co, err := kafka.NewConsumer(c.reader, kafka.ConsumerConfig{Bootstrap: []string{pipelineBroker + ":9092"},
		FetchMaxWait: pipelinePoll})
	sim.Assert(err == nil, "flume-pipeline: consumer: %v", err)
	defer co.Close()
	if err := co.Assign([]kafka.TopicPartition{tp}); err != nil {
		c.readUpTo = err.Error()
		return false
	}
	var poll func(kafka.PollResult)
	poll = func(r kafka.PollResult) {
		for _, rec := range r.Records {
			c.delivered = append(c.delivered, string(rec.Value))
		}
		co.Poll(poll)
	}
	co.Poll(poll)
	deadline := w.Now() + pipelineReadMax
	for w.Now() < deadline {
		w.Run(w.Now()+pipelinePoll, 0)
		pos, known := co.Position(tp)
		hw := co.HighWatermark(tp)
		c.readUpTo = fmt.Sprintf("position %d of high watermark %d", pos, hw)
		if known && hw >= 0 && pos >= hw && len(c.delivered) >= int(hw) {
			return true
		}
	}
	return false
}

// lineClient writes unique lines into a netcat source and counts a line
// acknowledged only when it reads its OK. Answers come in the order of the
// lines on a connection; a connection that ends, or answers nothing for
// lineAnswerTimeout, leaves its unanswered lines unknown, and the client
// connects again.
type lineClient struct {
	name   string
	addr   string
	stopAt time.Duration
	// proto frames lines for the entry source and reads its answers.
	proto lineProtocol
	// produce: the client is a Kafka producer to the input topic
	// (source=kafka) instead of a connection to the entry source.
	produce  bool
	producer *kafka.Producer
	// sentByHeal counts the lines sent by healAt, when the faults end.
	healAt     time.Duration
	sentByHeal int
	env        sim.Env
	conn       sim.Conn
	// gen tells a current connection's callbacks from an abandoned one's.
	gen         int
	open        bool
	outstanding []string
	// sentAt is when each outstanding line was sent.
	sentAt      []time.Duration
	replies     []byte
	seq         int
	lastAnswer  time.Duration
	sent, acked []string
	// ackTimes are when each acknowledgement came, by Mono;
	// ackLatencies how long after its line was sent.
	ackTimes, ackLatencies []time.Duration
	failed, unanswered     int
	connects               int
	lastClose              string
	bytes                  int64
}

const (
	lineWindowMax     = 8
	lineInterval      = 5 * time.Millisecond
	lineAnswerTimeout = 2 * time.Second
	lineReconnect     = 200 * time.Millisecond
	// lineReplyBytesMax bounds an answer line: the netcat source's
	// longest is a FAILED with its reason.
	lineReplyBytesMax = 4096
)

func (l *lineClient) start(env sim.Env) {
	l.env = env
	if l.produce {
		l.startProducer()
		return
	}
	l.connect()
	l.tick()
}

func (l *lineClient) stopped() bool { return l.env.Clock != nil && l.env.Clock.Mono() >= l.stopAt }

func (l *lineClient) connect() {
	l.gen++
	l.connects++
	l.open = false
	gen := l.gen
	l.conn = l.env.Net.Dial(l.addr, sim.ConnOptions{Framing: sim.FrameStream}, &lineConn{l: l, gen: gen})
	l.lastAnswer = l.env.Clock.Mono()
}

// abandon gives up on the connection: its unanswered lines stay unknown.
func (l *lineClient) abandon(why string) {
	l.unanswered += len(l.outstanding)
	l.outstanding, l.sentAt, l.replies = nil, nil, nil
	l.lastClose = why
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
	l.gen++
	l.open = false
	gen := l.gen
	l.env.Clock.AfterFunc(lineReconnect, func() {
		if gen == l.gen {
			l.connect()
		}
	})
}

// tick offers the next line while the window has room, and gives up on a
// connection that stopped answering.
func (l *lineClient) tick() {
	now := l.env.Clock.Mono()
	if l.conn != nil && now-l.lastAnswer > lineAnswerTimeout && (len(l.outstanding) > 0 || !l.open) {
		l.abandon(fmt.Sprintf("no answer for %v", lineAnswerTimeout))
	}
	if now <= l.healAt {
		l.sentByHeal = len(l.sent)
	}
	if l.open && !l.stopped() && len(l.outstanding) < lineWindowMax {
		l.seq++
		line := fmt.Sprintf("%s-%06d", l.name, l.seq)
		l.sent = append(l.sent, line)
		l.bytes += int64(2 * len(line))
		if len(l.outstanding) == 0 {
			l.lastAnswer = now
		}
		if l.proto.answers() {
			l.outstanding = append(l.outstanding, line)
			l.sentAt = append(l.sentAt, now)
		}
		if err := l.conn.Send(l.proto.frame(line)); err != nil {
			l.abandon("send: " + err.Error())
		}
	}
	if l.stopped() && len(l.outstanding) == 0 {
		return
	}
	l.env.Clock.AfterFunc(lineInterval, l.tick)
}

func (l *lineClient) onReplies(frame []byte) {
	l.replies = append(l.replies, frame...)
	for {
		ok, n, err := l.proto.answer(l.replies)
		if err != nil {
			l.abandon(err.Error())
			return
		}
		if n == 0 {
			if len(l.replies) > lineReplyBytesMax {
				l.abandon("an answer longer than " + fmt.Sprint(lineReplyBytesMax) + " bytes")
			}
			return
		}
		answer := string(l.replies[:min(n, 80)])
		l.replies = l.replies[n:]
		if len(l.outstanding) == 0 {
			l.abandon("an answer to no line: " + answer)
			return
		}
		line, sentAt := l.outstanding[0], l.sentAt[0]
		l.outstanding, l.sentAt = l.outstanding[1:], l.sentAt[1:]
		l.lastAnswer = l.env.Clock.Mono()
		if ok {
			l.acked = append(l.acked, line)
			l.ackTimes = append(l.ackTimes, l.lastAnswer)
			l.ackLatencies = append(l.ackLatencies, l.lastAnswer-sentAt)
		} else {
			l.failed++
		}
	}
}

// lineDeliveryTimeout bounds a produce's wait for its outcome, so that a
// producing client knows every line's before the drain ends.
const lineDeliveryTimeout = 5 * time.Second

// startProducer starts the client as a Kafka producer: idempotent with
// acks=all, so a line is acknowledged once every in-sync replica has it.
func (l *lineClient) startProducer() {
	prod, err := kafka.NewProducer(l.env, kafka.ProducerConfig{
		Bootstrap: []string{pipelineBroker + ":9092"}, ClientID: l.name, Acks: kafka.AcksAll,
		AllowAutoTopicCreation: true, DeliveryTimeout: lineDeliveryTimeout,
	})
	sim.Assert(err == nil, "flume-pipeline: producer %s: %v", l.name, err)
	l.producer = prod
	l.connects++
	l.produceTick()
}

// produceTick sends the next line while the window has room.
func (l *lineClient) produceTick() {
	now := l.env.Clock.Mono()
	if now <= l.healAt {
		l.sentByHeal = len(l.sent)
	}
	if !l.stopped() && len(l.outstanding) < lineWindowMax {
		l.seq++
		line := fmt.Sprintf("%s-%06d", l.name, l.seq)
		l.sent = append(l.sent, line)
		l.bytes += int64(2 * len(line))
		l.outstanding = append(l.outstanding, line)
		l.sentAt = append(l.sentAt, now)
		err := l.producer.Send(kafka.Record{Topic: pipelineInputTopic, Value: []byte(line)},
			func(r kafka.Result) { l.produced(line, r) })
		if err != nil {
			l.produced(line, kafka.Result{Outcome: history.Fail, Err: err})
		}
		l.producer.Flush()
	}
	if l.stopped() && len(l.outstanding) == 0 {
		return
	}
	l.env.Clock.AfterFunc(lineInterval, l.produceTick)
}

// produced takes a line's produce outcome: acknowledged when ok; an
// unknown outcome (the write may have happened) counts as unanswered.
func (l *lineClient) produced(line string, r kafka.Result) {
	i := slices.Index(l.outstanding, line)
	sim.Assert(i >= 0, "flume-pipeline: outcome of %s, not outstanding", line)
	sentAt := l.sentAt[i]
	l.outstanding = slices.Delete(l.outstanding, i, i+1)
	l.sentAt = slices.Delete(l.sentAt, i, i+1)
	now := l.env.Clock.Mono()
	l.lastAnswer = now
	switch r.Outcome {
	case history.OK:
		l.acked = append(l.acked, line)
		l.ackTimes = append(l.ackTimes, now)
		l.ackLatencies = append(l.ackLatencies, now-sentAt)
	case history.Fail:
		l.failed++
		l.lastClose = fmt.Sprint(r.Err)
	default:
		l.unanswered++
		l.lastClose = fmt.Sprint(r.Err)
	}
}

// ackedAt counts the lines acknowledged by t.
func (l *lineClient) ackedAt(t time.Duration) int {
	n, _ := slices.BinarySearch(l.ackTimes, t+1)
	return n
}

func (l *lineClient) describe() string {
	return fmt.Sprintf("%d lines acknowledged, %d outstanding, %d sent, %d connects; last connection ended: %s",
		len(l.acked), len(l.outstanding), len(l.sent), l.connects, l.lastClose)
}

// lineProtocol is how a client frames its lines for the entry source and
// reads the source's answers, one per line, in order.
type lineProtocol interface {
	frame(line string) []byte
	// answer reads the first answer in buf: whether it acknowledges its
	// line, and how many bytes it took (0: more are needed).
	answer(buf []byte) (ok bool, n int, err error)
	// answers reports whether the source answers at all.
	answers() bool
}

var pipelineProtocols = map[string]lineProtocol{
	"netcat":    netcatProtocol{},
	"http":      httpProtocol{},
	"syslogtcp": syslogProtocol{},
}

// netcatProtocol: a line per event, "OK" per committed line.
type netcatProtocol struct{}

func (netcatProtocol) frame(line string) []byte { return []byte(line + "\n") }
func (netcatProtocol) answers() bool            { return true }
func (netcatProtocol) answer(buf []byte) (bool, int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false, 0, nil
	}
	return strings.TrimSuffix(string(buf[:i]), "\r") == "OK", i + 1, nil
}

// httpProtocol: a POST of one JSON event per line (Flume's JSONHandler),
// pipelined on the connection; 200 acknowledges it, 503 (the channel
// refused) does not.
type httpProtocol struct{}

func (httpProtocol) frame(line string) []byte {
	body := `[{"headers":{},"body":"` + line + `"}]`
	return []byte(fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		pipelineAgent, len(body), body))
}

func (httpProtocol) answers() bool { return true }

func (httpProtocol) answer(buf []byte) (bool, int, error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return false, 0, nil
	}
	head := string(buf[:end])
	status, rest, _ := strings.Cut(head, "\r\n")
	var code int
	if _, err := fmt.Sscanf(status, "HTTP/1.1 %d", &code); err != nil {
		return false, 0, fmt.Errorf("an answer that is not HTTP/1.1: %q", status)
	}
	length := 0
	for _, h := range strings.Split(rest, "\r\n") {
		name, value, _ := strings.Cut(h, ":")
		if strings.EqualFold(name, "Content-Length") {
			if _, err := fmt.Sscanf(strings.TrimSpace(value), "%d", &length); err != nil || length < 0 {
				return false, 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
	if len(buf) < end+4+length {
		return false, 0, nil
	}
	return code == 200, end + 4 + length, nil
}

// syslogProtocol: RFC 5424 lines whose message is the line; syslog over
// TCP answers nothing, so no line is ever acknowledged.
type syslogProtocol struct{}

func (syslogProtocol) frame(line string) []byte {
	return []byte("<14>1 - " + pipelineAgent + " sluice - - - " + line + "\n")
}
func (syslogProtocol) answers() bool { return false }
func (syslogProtocol) answer([]byte) (bool, int, error) {
	return false, 0, errors.New("syslog answered")
}

// lineConn is one connection's handler.
type lineConn struct {
	l   *lineClient
	gen int
}

func (h *lineConn) OnOpen(sim.Conn) {
	if h.gen == h.l.gen {
		h.l.open = true
		h.l.lastAnswer = h.l.env.Clock.Mono()
	}
}

func (h *lineConn) OnFrame(_ sim.Conn, f []byte) {
	if h.gen == h.l.gen {
		h.l.onReplies(f)
	}
}

func (h *lineConn) OnClose(_ sim.Conn, err error) {
	if h.gen != h.l.gen {
		return
	}
	h.l.conn = nil
	why := "closed by the agent"
	if err != nil {
		why = err.Error()
	}
	h.l.abandon(why)
}

// logWriter appends unique lines to the log file a TAILDIR source
// follows, as an application on the agent's node would, and syncs them in
// groups; a line counts as acknowledged once a sync covering it returned.
// Past logWriterRotateBytes it rotates the file as logrotate's rename
// does: app.log becomes app.log.N and a new app.log is begun, so that the
// source must follow the renamed file to its end without reading it again.
// It runs again with every boot of its node, naming its lines by the
// boot: it first cuts the file at its first line that is not whole (a
// power loss keeps, drops or tears what was not synced), then waits for
// the agent to run, so that the source sees a file cut below its position
// before the file grows past it again.
type logWriter struct {
	writtenLines
	file    sim.File
	size    int64
	writing bool
	syncing bool
	// nameSynced: the log file's name is known durable; every open
	// checks again with the first sync.
	nameSynced bool
	// unsynced are the lines appended since the last sync began,
	// appendedAt when.
	unsynced   []string
	appendedAt []time.Duration
	// rotations counts the renames; the next rotated file's suffix.
	rotations int
}

// entryWriter is a writer of lines on the entry agent's node, which a
// file source reads: it runs again with every boot of the node and
// begins writing once the agent runs.
type entryWriter interface {
	start(env sim.Env)
	resume()
	describe() string
}

// writtenLines is an entry writer's accounting: the lines it wrote and
// those acknowledged (made durable where its source finds them).
type writtenLines struct {
	stopAt time.Duration
	env    sim.Env
	// starts counts the boots; a sync answered to an earlier boot is
	// ignored.
	starts, seq  int
	ackLatencies []time.Duration
	sent, acked  []string
	ackTimes     []time.Duration
	failed       int
	bytes        int64
	lastErr      string
}

func (l *writtenLines) stopped() bool { return l.env.Clock != nil && l.env.Clock.Mono() >= l.stopAt }

// nextLine names and counts the next line: by the boot, so that lines
// stay unique across boots.
func (l *writtenLines) nextLine() string {
	l.seq++
	line := fmt.Sprintf("w%d-%06d", l.starts, l.seq)
	l.sent = append(l.sent, line)
	l.bytes += int64(2 * len(line))
	return line
}

// settle records the outcome of making lines durable, appended at the
// times given: acknowledged when err is nil.
func (l *writtenLines) settle(lines []string, appended []time.Duration, err error) {
	if err != nil {
		l.failed += len(lines)
		l.lastErr = err.Error()
		return
	}
	now := l.env.Clock.Mono()
	for i, line := range lines {
		l.acked = append(l.acked, line)
		l.ackTimes = append(l.ackTimes, now)
		l.ackLatencies = append(l.ackLatencies, now-appended[i])
	}
}

const (
	// logWriterInterval paces the lines: about as many as the three
	// netcat clients offer.
	logWriterInterval = 2 * time.Millisecond
	// logWriterFileBytesMax bounds the log file the writer reads back.
	logWriterFileBytesMax = 64 << 20
	// logWriterRotateBytes is the size past which the log file is
	// rotated: a few times a run.
	logWriterRotateBytes = 32 << 10
)

var logWriterLine = regexp.MustCompile(`^w[0-9]+-[0-9]{6}$`)

func (l *logWriter) start(env sim.Env) {
	l.env = env
	l.starts++
	l.seq = 0
	l.file, l.writing, l.syncing, l.unsynced, l.appendedAt = nil, false, false, nil, nil
	if err := l.open(); err != nil {
		l.lastErr = err.Error()
		env.Log.Logf("log writer: %v", err)
	}
}

// resume starts appending, once the agent runs.
func (l *logWriter) resume() {
	if !l.writing {
		l.writing = true
		l.env.Clock.AfterFunc(logWriterInterval, l.tick)
	}
}

// open opens the log file, creating it, and cuts it before its first line
// that is not whole.
func (l *logWriter) open() error {
	fs := l.env.FS
	if err := fs.MkdirAll(path.Dir(pipelineLogFile)); err != nil {
		return fmt.Errorf("create %s: %w", path.Dir(pipelineLogFile), err)
	}
	f, err := fs.Open(pipelineLogFile)
	if errors.Is(err, sim.ErrNotExist) {
		f, err = fs.Create(pipelineLogFile)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", pipelineLogFile, err)
	}
	size, err := f.Size()
	if err == nil && size > logWriterFileBytesMax {
		err = fmt.Errorf("%d bytes, beyond %d", size, logWriterFileBytesMax)
	}
	data := make([]byte, max(size, 0))
	if err == nil {
		if _, rerr := f.ReadAt(data, 0); rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("read %s: %w", pipelineLogFile, err)
	}
	keep := int64(0)
	for rest := data; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 || !logWriterLine.Match(rest[:i]) {
			break
		}
		keep += int64(i + 1)
		rest = rest[i+1:]
	}
	if keep < size {
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return fmt.Errorf("cut %s at byte %d: %w", pipelineLogFile, keep, err)
		}
	}
	l.file, l.size, l.nameSynced = f, keep, false
	return nil
}

func (l *logWriter) tick() {
	if l.stopped() {
		return
	}
	l.env.Clock.AfterFunc(logWriterInterval, l.tick)
	if l.file != nil && l.size >= logWriterRotateBytes && !l.syncing && len(l.unsynced) == 0 {
		l.rotate()
	}
	if l.file == nil {
		if err := l.open(); err != nil {
			l.lastErr = err.Error()
			return
		}
	}
	line := l.nextLine()
	if _, err := l.file.Append([]byte(line + "\n")); err != nil {
		l.failed++
		l.lastErr = err.Error()
		// Cut what a short append left, or the next line would run on
		// from it.
		if err := l.file.Truncate(l.size); err != nil {
			l.file.Close()
			l.file = nil
		}
		return
	}
	l.size += int64(len(line) + 1)
	l.unsynced = append(l.unsynced, line)
	l.appendedAt = append(l.appendedAt, l.env.Clock.Mono())
	l.sync()
}

// rotate renames the log file, every line of it synced, to its next
// rotated name; the next tick opens a new one, whose first sync makes
// both names durable. A failed rename leaves the file where it was.
func (l *logWriter) rotate() {
	l.rotations++
	rotated := fmt.Sprintf("%s.%d", pipelineLogFile, l.rotations)
	if err := l.env.FS.Rename(pipelineLogFile, rotated); err != nil {
		l.lastErr = fmt.Sprintf("rotate %s: %v", pipelineLogFile, err)
		return
	}
	l.file.Close()
	l.file = nil
}

// sync makes the lines appended so far durable, one sync at a time.
func (l *logWriter) sync() {
	if l.syncing || len(l.unsynced) == 0 || l.file == nil {
		return
	}
	l.syncing = true
	lines, appended, boot := l.unsynced, l.appendedAt, l.starts
	l.unsynced, l.appendedAt = nil, nil
	l.file.Sync(func(err error) {
		if boot != l.starts {
			return
		}
		if err == nil && !l.nameSynced {
			// The file's bytes are durable; its name, and its
			// directory's, only once the directories are synced too. A
			// power loss would otherwise take the whole file with lines
			// the source had not read yet.
			l.syncNames(func(err error) { l.synced(lines, appended, err) })
			return
		}
		l.synced(lines, appended, err)
	})
}

// syncNames makes the log file's name and its directory's durable.
func (l *logWriter) syncNames(done func(error)) {
	boot := l.starts
	l.env.FS.SyncDir(path.Dir(pipelineLogFile), func(err error) {
		if boot != l.starts {
			return
		}
		if err != nil {
			done(err)
			return
		}
		l.env.FS.SyncDir("", func(err error) {
			if boot != l.starts {
				return
			}
			l.nameSynced = err == nil
			done(err)
		})
	})
}

// synced ends a sync of lines: acknowledged when err is nil.
func (l *logWriter) synced(lines []string, appended []time.Duration, err error) {
	l.syncing = false
	l.settle(lines, appended, err)
	l.sync()
}

func (l *logWriter) describe() string {
	return fmt.Sprintf("%d lines synced, %d failed, %d boots; last error: %s", len(l.acked), l.failed, l.starts, l.lastErr)
}
