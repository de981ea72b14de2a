package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/kafka"
)

// The single-broker scenario: one Kafka broker, two clients that each
// produce unique values to a three-partition topic and read every
// partition back, and faults on the broker's process, disk and network.
// After the faults heal the clients drain, and the history is judged by
// the Jepsen anomaly checks and porcupine.
func init() {
	Register(Definition{
		Name:    "single-broker",
		Summary: "one broker, idempotent producers and consumers, under crashes, power loss, disk and network faults",
		Bugs: []faults.Bug{faults.BugAckBeforeSync, faults.BugDedupeOff, faults.BugSkipCRC,
			faults.BugIndexOffByOne, faults.BugTrustPageCache, faults.BugConsumerSkipsPastHW},
		Params: append([]Param{
			{Name: "flush", Default: "group", Values: []string{"group", "none", "interval"},
				Help: "when the broker fsyncs: before acknowledging (group), never (Kafka's default), every 100 ms"},
			{Name: "acks", Default: "all", Values: []string{"all", "1", "0"}, Help: "producer acks"},
			{Name: "idempotence", Default: "true", Values: []string{"true", "false"},
				Help: "idempotent producers (as in Kafka's clients, only with acks=all)"},
			{Name: "faults", Default: "disk", Values: []string{"disk", "corrupt", "process", "fsyncgate", "none"},
				Help: "disk: crashes, power loss, torn writes, sync failures, slow and full disks, partitions; " +
					"corrupt: adds bit flips; process: crashes and partitions only; " +
					"fsyncgate: a slow disk whose fsyncs then fail, kill -9 while one is in flight, restarts, " +
					"and a power loss at the end; none"},
			{Name: "disk", Default: "auto", Values: []string{"auto", "drop", "linux"},
				Help: "what a failed fsync does: drop the unsynced pages (drop), or, as Linux does, mark them " +
					"clean, keep showing them and lose them at the next power loss (linux); auto: linux with " +
					"faults=fsyncgate, drop otherwise"},
		}, workloadParams...),
		Run:   20 * time.Second,
		Drain: 20 * time.Second,
		Budget: Budget{
			// About 20 and 13 times what seeds use: 10.6k events per
			// simulated second and an estimated 38 MiB at most over 60
			// seeds. A consumer spinning in a reset loop re-reads
			// thousands of records a millisecond, so it is stopped by
			// attempts long before StallMax.
			EventsPerSecMax:  200_000,
			MemoryBytesMax:   512 << 20,
			StallMax:         10 * time.Second,
			StallAttemptsMax: 20,
		},
		Configure: configureSingleBroker,
		Build:     buildSingleBroker,
	})
}

// configureSingleBroker picks the disk's rules for failed fsyncs.
func configureSingleBroker(cfg *world.Config, o Options) {
	cfg.Disk = simdisk.DefaultConfig()
	switch o.Param("disk") {
	case "linux":
		cfg.Disk.SyncFailure = simdisk.SyncFailureLinux
	case "auto":
		if o.Param("faults") == "fsyncgate" {
			cfg.Disk.SyncFailure = simdisk.SyncFailureLinux
		}
	}
}

// fsyncgate episodes: the disk turns slow, so that each group-commit
// round covers many appends; then syncs start failing and the broker is
// killed while a failing one is in flight. The failure lands after the
// kill, so no process hears of it; on Linux the pages it held stay in the
// page cache, marked clean, and the restarted broker reads them back. A
// broker that trusts a later successful fsync to cover them acknowledges
// (as duplicates of the retried sends) and exposes data the disk never
// got, which the power loss that closes the faults takes.
const (
	fsyncgateIntervalMean = time.Second
	fsyncgateEpisodesMax  = 32
	fsyncgateConcurrency  = 200
	// fsyncgateSlowFactor stretches syncs to about half a second, so
	// that a failing one captures many appends and is still in flight
	// when the kill comes.
	fsyncgateSlowFactor = 5000
	// fsyncgateSlowLead is how long the disk is slow before syncs fail.
	fsyncgateSlowLead = time.Second
	// fsyncgateSettle is the least time between a restart and the next
	// episode: the broker starts, recovers and serves again first.
	fsyncgateSettle = 2 * time.Second
	// fsyncgateFinalLoss is how long before the end of the run the
	// closing power loss falls.
	fsyncgateFinalLoss = time.Second
)

// scheduleFsyncgate plants the episodes, drawn from their own stream of
// the seed, and a power loss shortly before the faults heal.
func (c *singleBrokerCluster) scheduleFsyncgate(w *world.World) {
	r := sched.NewRand(c.o.Seed, "fsyncgate", 0)
	end := c.o.Run - 2*fsyncgateFinalLoss
	if end <= 0 {
		return // a run too short for an episode
	}
	c.fsyncgateEpisode(w, r, time.Duration(faultsStart), end, fsyncgateEpisodesMax)
	w.At(c.o.Run-fsyncgateFinalLoss, func() {
		skip := c.o.skipsEpisode(c.episodes)
		c.episodes++
		if skip {
			return
		}
		worldAction(w.PowerLoss(singleBrokerNode))
		w.At(c.o.Run-fsyncgateFinalLoss/2, func() { worldAction(w.Restart(singleBrokerNode)) })
	})
}

// fsyncgateEpisode plants one episode at about at, and the next after it.
// An episode begins only once the broker serves: after a kill the syncs
// still queued on the slow device delay its start. One the options skip
// takes its time and does nothing.
func (c *singleBrokerCluster) fsyncgateEpisode(w *world.World, r *rand.Rand, at, end time.Duration, left int) {
	at += time.Duration(r.ExpFloat64() * float64(fsyncgateIntervalMean))
	if left == 0 || at+fsyncgateSlowLead+2*time.Second >= end {
		return
	}
	node := singleBrokerNode
	failAt := at + fsyncgateSlowLead
	kill := failAt + time.Duration(800+r.IntN(800))*time.Millisecond
	restart := kill + time.Duration(100+r.IntN(900))*time.Millisecond
	count := 1 + r.IntN(3)
	w.At(at, func() {
		if !c.serving() {
			c.fsyncgateEpisode(w, r, at, end, left)
			return
		}
		skip := c.o.skipsEpisode(c.episodes)
		c.episodes++
		if skip {
			w.At(restart, func() { c.fsyncgateEpisode(w, r, restart+fsyncgateSettle, end, left-1) })
			return
		}
		worldAction(w.SlowDisk(node, fsyncgateSlowFactor))
		w.At(failAt, func() { worldAction(w.FailSyncs(node, count)) })
		w.At(kill, func() { worldAction(w.Kill(node)) })
		w.At(restart, func() {
			worldAction(w.DiskHeal(node))
			worldAction(w.Restart(node))
			c.fsyncgateEpisode(w, r, restart+fsyncgateSettle, end, left-1)
		})
	})
}

// serving reports whether the latest broker process serves.
func (c *singleBrokerCluster) serving() bool {
	return len(c.brokers) > 0 && c.brokers[len(c.brokers)-1].Serving()
}

// worldAction checks a world action's result: it fails only on a node
// name the scenario did not add, a programmer error.
func worldAction(err error) {
	sched.Assert(err == nil, "scenario: %v", err)
}

const (
	singleBrokerNode  = "b1"
	singleBrokerTopic = "jepsen"
	// drainSettle is how long after the faults heal the clients go on
	// producing before they drain: long enough for the broker to have
	// come back and recovered.
	drainSettle = 3 * time.Second
)

type singleBrokerCluster struct {
	o Options
	w *world.World
	// knobs is the workload; clients name its client nodes.
	knobs   singleBrokerKnobs
	clients []string
	// brokers are the broker processes of each start, counters summed
	// over them.
	brokers []*broker.Broker
	log     *meteredLog
	drivers map[string]*kafka.Driver
	drained map[string]kafka.DrainReport
	report  checkers.Report
	// episodes counts the fault episodes the scenario planted itself
	// (fsyncgate's, power losses as a compaction completes, or a
	// cluster's crashes) begun, acted or skipped: an
	// episode's number in Options.EpisodesSkipped.
	episodes int
	// acts and activities are Progress's slice and labels, kept.
	acts []Activity
	// partProgress is Progress's room for a consumer's partitions.
	partProgress []kafka.PartitionProgress
	activities   map[activityKey]activityLabel
	// cleanableAudited counts the offsets of the compacted logs'
	// cleanable parts the end-of-run audit read.
	cleanableAudited int64
	// restartNotes say why the restart audit compared nothing.
	restartNotes []string
}

// CheckReport is what the checkers found in the history.
func (c *singleBrokerCluster) CheckReport() checkers.Report { return c.report }

func buildSingleBroker(w *world.World, o Options) Cluster {
	knobs := singleBrokerKnobsFor(o)
	c := &singleBrokerCluster{
		o:       o,
		w:       w,
		knobs:   knobs,
		log:     &meteredLog{Log: &history.Log{Now: func() int64 { return int64(w.Now()) }}},
		drivers: map[string]*kafka.Driver{},
		drained: map[string]kafka.DrainReport{},
	}
	c.log.Reserve(historyOpsHint(knobs, o))
	for i := range knobs.Clients {
		c.clients = append(c.clients, "p"+strconv.Itoa(i+1))
	}
	bcfg := broker.DefaultConfig()
	bcfg.NumPartitions = 3
	bcfg.Bugs = o.Bugs
	bcfg.Log.Bugs = o.Bugs
	if !knobs.CreateTopics {
		// The broker creates the topic from its defaults.
		knobs.applyTopicDefaults(&bcfg.Log)
	}
	bcfg.Log.Flush = flushPolicy(o.Param("flush"))
	if knobs.Compacted {
		bcfg.Log.CompactionInterval = compactionInterval
	}
	w.AddNode(singleBrokerNode, broker.Start(bcfg, func(b *broker.Broker) { c.brokers = append(c.brokers, b) }))

	nextProcess := 0
	for i, name := range c.clients {
		topic := knobs.Topics[i%len(knobs.Topics)]
		cfg := kafka.DriverConfig{
			Bootstrap:          []string{singleBrokerNode + ":9092"},
			Topic:              topic.Name,
			Partitions:         topic.partitions(),
			Rate:               knobs.RatePerClient,
			Concurrency:        knobs.Concurrency,
			ValueBytes:         knobs.ValueBytes,
			Keys:               knobs.Keys,
			Sticky:             knobs.Sticky,
			SeekEveryPolls:     knobs.SeekEveryPolls,
			DeleteRecordsEvery: knobs.DeleteRecordsEvery,
			Reread:             true,
			Recorder:           c.log,
			NewProcess:         func() int { nextProcess++; return nextProcess },
			Producer:           producerConfig(o, knobs),
			Consumer: kafka.ConsumerConfig{FetchMaxWait: 100 * time.Millisecond, Bugs: o.Bugs,
				SendLeaderEpoch: knobs.SendLeaderEpoch},
		}
		if knobs.CreateTopics {
			cfg.CreateTopic = &kafka.TopicSpec{Partitions: topic.Partitions, Configs: knobs.topicConfigs(i % len(knobs.Topics))}
		}
		name := name
		w.AddNode(name, kafka.StartDriver(cfg, func(d *kafka.Driver) { c.drivers[name] = d }))
	}
	switch o.Param("faults") {
	case "fsyncgate":
		c.scheduleFsyncgate(w)
	case "disk", "corrupt":
		c.scheduleCompactionCrashes(w)
	}
	w.At(o.Run+drainSettle, func() {
		for _, name := range c.clients {
			name := name
			if d := c.drivers[name]; d != nil {
				d.Drain(func(r kafka.DrainReport) { c.drained[name] = r })
			}
		}
	})
	return c
}

// topicPartitions lists every partition of the run's topics, all written
// and read, in topic order.
func (c *singleBrokerCluster) topicPartitions() []history.TopicPartition {
	var tps []history.TopicPartition
	for _, t := range c.knobs.Topics {
		for _, p := range t.partitions() {
			tps = append(tps, history.TopicPartition{Topic: t.Name, Partition: p})
		}
	}
	return tps
}

// topicCompacted reports whether the topic's cleanup policy compacts: the
// workload gives every topic its policy.
func (c *singleBrokerCluster) topicCompacted(string) bool { return c.knobs.Compacted }

func flushPolicy(name string) storage.FlushPolicy {
	switch name {
	case "group":
		return storage.FlushPolicy{Mode: storage.FlushGroupCommit}
	case "interval":
		return storage.FlushPolicy{Mode: storage.FlushEveryInterval, Interval: 100 * time.Millisecond}
	}
	return storage.FlushPolicy{Mode: storage.FlushNever}
}

func producerConfig(o Options, k singleBrokerKnobs) kafka.ProducerConfig {
	p := kafka.ProducerConfig{
		Linger:                 k.Linger,
		BatchMaxBytes:          k.BatchMaxBytes,
		Compression:            k.Compression,
		RequestTimeout:         2 * time.Second,
		DeliveryTimeout:        10 * time.Second,
		AllowAutoTopicCreation: !k.CreateTopics,
		DisableIdempotence:     o.Param("idempotence") == "false",
	}
	if k.DeliveryTimeout > 0 {
		p.DeliveryTimeout = k.DeliveryTimeout
	}
	switch o.Param("acks") {
	case "1":
		p.Acks = kafka.AcksLeader
	case "0":
		p.Acks = kafka.AcksNone
	}
	return p
}

func (c *singleBrokerCluster) Profile() faults.Profile {
	kinds := map[string][]faults.Kind{
		"disk": {faults.KindKill, faults.KindPowerLoss, faults.KindPause, faults.KindPartition,
			faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs, faults.KindDiskFull,
			faults.KindReadErrors, faults.KindClockJump, faults.KindClockDrift},
		"process": {faults.KindKill, faults.KindPause, faults.KindPartition, faults.KindBlock},
		// The planted episodes only: a crash in the middle of one would
		// blur what it shows.
		"fsyncgate": nil,
	}
	kinds["corrupt"] = append(append([]faults.Kind(nil), kinds["disk"]...), faults.KindCorrupt)
	p := faults.Profile{
		Targets:      []string{singleBrokerNode},
		Clients:      c.clients,
		IntervalMean: 2 * time.Second,
		DurationMax:  3 * time.Second,
		Kinds:        kinds[c.o.Param("faults")],
	}
	if c.o.Param("faults") == "disk" || c.o.Param("faults") == "corrupt" {
		// Failed metadata operations and short writes take a log
		// offline; a quarter of the swarm's seeds draw them, so that
		// the rest keep their mixes.
		p.SwarmOccasional = []faults.Kind{faults.KindMetaErrors}
		p.SwarmOccasionalShare = singleBrokerMetaErrorsShare
	}
	return p
}

// singleBrokerMetaErrorsShare is the share of swarm seeds that draw
// meta-errors.
const singleBrokerMetaErrorsShare = 0.25

// Finish judges the history the clients recorded.
func (c *singleBrokerCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	opts := checkers.DefaultOptions()
	var logStartMax int64
	if c.knobs.logStartMoves() {
		opts.LogStartOffsets = c.logStartOffsets()
		for _, start := range opts.LogStartOffsets {
			logStartMax = max(logStartMax, start)
		}
	}
	if c.knobs.Compacted {
		opts.Compacted = map[history.TopicPartition]bool{}
		for _, tp := range c.topicPartitions() {
			opts.Compacted[tp] = true
		}
	}
	report := checkers.Check(c.log.Ops, opts)
	c.report = report
	audit, audited := c.logAuditCheck()
	checks := []Check{c.drainCheck(), c.writesResumeCheck(), c.corruptReadsCheck(), audit}
	for _, v := range report.Verdicts {
		checks = append(checks, verdictCheck(v))
	}
	stats := c.knobs.stats()
	stats["audited_batches"] = audited
	if c.knobs.Compacted {
		stats["compaction_cleanable_offsets"] = c.cleanableAudited
	}
	stats["history_ops"] = int64(len(c.log.Ops))
	if c.knobs.logStartMoves() {
		stats["log_start_max"] = logStartMax
	}
	if c.o.Param("faults") == "fsyncgate" || c.episodes > 0 {
		stats[plantedEpisodesStat] = int64(c.episodes)
	}
	stats["broker_starts"] = int64(len(c.brokers))
	for _, b := range c.brokers {
		s := b.Stats()
		stats["broker_appends"] += s.Appends
		stats["broker_fetched_bytes"] += s.FetchedBytes
		for api, n := range s.Requests {
			stats["broker_requests_"+api] += n
		}
	}
	for _, name := range c.clients {
		d := c.drivers[name]
		if d == nil {
			continue
		}
		s := d.Stats()
		stats["sends"] += int64(s.Sent)
		stats["sends_ok"] += int64(s.OK)
		stats["sends_failed"] += int64(s.Failed)
		stats["sends_unknown"] += int64(s.Unknown)
		stats["polled_records"] += int64(s.Polled)
		stats["seeks_inside"] += int64(s.SeeksInside)
		stats["seeks_by_time"] += int64(s.SeeksByTime)
		stats["seeks_to_start"] += int64(s.SeeksToStart)
		stats["record_deletes"] += int64(s.RecordDeletes)
		stats["record_deletes_failed"] += int64(s.RecordDeletesFailed)
	}
	if c.knobs.RestartAudit {
		// Last: it stops and restarts the broker the checks above read.
		checks = append(checks, c.restartAuditCheck(w))
	}
	return checks, stats
}

// logStartOffsets are the highest log start offsets any consumer was told
// of, per partition: retention deleted what lies below.
func (c *singleBrokerCluster) logStartOffsets() map[history.TopicPartition]int64 {
	starts := map[history.TopicPartition]int64{}
	for _, name := range c.clients {
		d := c.drivers[name]
		if d == nil {
			continue
		}
		for _, co := range d.Consumers() {
			for _, tp := range co.Assignment() {
				if s := co.LogStartOffset(tp); s > starts[tp] {
					starts[tp] = s
				}
			}
		}
	}
	return starts
}

// Footprint estimates what the run holds, for the memory budget.
func (c *singleBrokerCluster) Footprint() Footprint {
	f := Footprint{HistoryOps: len(c.log.Ops), HistoryBytes: c.log.bytes,
		DiskBytes: c.w.Node(singleBrokerNode).Disk().UsedBytes()}
	for _, name := range c.clients {
		if d := c.drivers[name]; d != nil {
			f.ClientBytes += int64(d.Producer().BufferedBytes())
		}
	}
	return f
}

// Progress reports each client's producer and each partition each of its
// consumers reads, for the no-progress watchdog. A producer whose last sends
// failed has work it could not do only until its driver stops: once the
// drain has read every partition to its end, the cluster is serving and the
// producer, sending nothing more, is idle.
func (c *singleBrokerCluster) Progress() []Activity {
	// The watchdog asks every 10 ms of simulated time and keeps nothing
	// of the slice, so it is kept, and so are the activities' names and
	// descriptions, built once per consumer and partition.
	acts := c.acts[:0]
	for _, name := range c.clients {
		d := c.drivers[name]
		if d == nil {
			continue
		}
		producer := d.Producer()
		p := producer.Progress()
		label := c.producerActivity(name, producer)
		acts = append(acts, Activity{Name: label.name, Mark: int64(p.Written),
			Waiting: p.Pending > 0 || (p.FailedSinceWritten > 0 && !d.Stopped()), Attempts: p.Attempts,
			Describe: label.describe})
		for _, co := range d.Consumers() {
			c.partProgress = co.AppendProgress(c.partProgress[:0])
			for _, pp := range c.partProgress {
				label := c.consumerActivity(name, co, pp.TP)
				acts = append(acts, Activity{Name: label.name,
					Mark: pp.ReadMax, Waiting: pp.Behind && !d.Stopped(), Attempts: pp.Attempts,
					Describe: label.describe})
			}
		}
	}
	c.acts = acts
	return acts
}

// activityKey names one producer's activity, or one consumer's on one
// partition.
type activityKey struct {
	client string
	p      *kafka.Producer
	co     *kafka.Consumer
	tp     kafka.TopicPartition
}

// activityLabel is what Progress reports of the activity besides its
// figures.
type activityLabel struct {
	name     string
	describe func() string
}

// activitiesMax bounds the labels kept; past it they are built afresh
// each time (restarted clients bring new producers and consumers).
const activitiesMax = 4096

func (c *singleBrokerCluster) producerActivity(client string, p *kafka.Producer) activityLabel {
	return c.activity(activityKey{client: client, p: p}, func() activityLabel {
		return activityLabel{name: client + "'s producer", describe: p.DescribeStall}
	})
}

func (c *singleBrokerCluster) consumerActivity(client string, co *kafka.Consumer, tp kafka.TopicPartition) activityLabel {
	return c.activity(activityKey{client: client, co: co, tp: tp}, func() activityLabel {
		return activityLabel{
			name:     client + "'s consumer " + co.ClientID() + " on " + tp.String(),
			describe: func() string { return co.DescribeStall(tp) },
		}
	})
}

// activity is key's label, kept from an earlier call or built.
func (c *singleBrokerCluster) activity(key activityKey, build func() activityLabel) activityLabel {
	if label, ok := c.activities[key]; ok {
		return label
	}
	label := build()
	if c.activities == nil {
		c.activities = map[activityKey]activityLabel{}
	}
	if len(c.activities) < activitiesMax {
		c.activities[key] = label
	}
	return label
}

// History is the run's history, for --history.
func (c *singleBrokerCluster) History() history.History { return c.log.Ops }

func (c *singleBrokerCluster) drainCheck() Check {
	var notes []string
	ok := true
	for _, name := range c.clients {
		r, done := c.drained[name]
		switch {
		case !done:
			ok = false
			notes = append(notes, name+": drain did not finish")
		case !r.CaughtUp:
			ok = false
			notes = append(notes, fmt.Sprintf("%s: did not catch up (%d sends unsettled, %v)", name, r.Unsettled, r.Err))
		}
	}
	if refused := c.corruptRefusals(); !ok && refused > 0 {
		notes = append(notes, fmt.Sprintf("the broker refused %d fetches of damaged data, which one replica cannot recover", refused))
	}
	if ok {
		notes = append(notes, "every consumer read to the end of every partition after the faults healed")
	}
	return Check{Name: "drained", OK: ok, Detail: strings.Join(notes, "; ")}
}

// corruptReadsCheck fails when a consumer received a batch that failed its
// checksum: whatever a disk does, a broker must detect corrupt data and
// refuse it (CORRUPT_MESSAGE), never serve it.
func (c *singleBrokerCluster) corruptReadsCheck() Check {
	served := c.consumerStat(func(s kafka.ConsumerStats) int { return s.CorruptBatches })
	return Check{Name: "no-corrupt-reads", OK: served == 0,
		Detail: fmt.Sprintf("%d corrupt batches served to consumers; %d fetches refused as corrupt by the broker", served, c.corruptRefusals())}
}

func (c *singleBrokerCluster) corruptRefusals() int {
	return c.consumerStat(func(s kafka.ConsumerStats) int { return s.CorruptRefusals })
}

// consumerStat sums one counter over every consumer.
func (c *singleBrokerCluster) consumerStat(f func(kafka.ConsumerStats) int) int {
	n := 0
	for _, name := range c.clients {
		if d := c.drivers[name]; d != nil {
			for _, co := range d.Consumers() {
				n += f(co.Stats())
			}
		}
	}
	return n
}

// verdictCheck turns a checker's verdict into a check line: anomalies by
// kind and count; an undecided check passes with a note, since it found
// nothing wrong in the time it had.
func verdictCheck(v checkers.Verdict) Check {
	c := Check{Name: v.Checker, OK: v.Valid || v.Unknown}
	var parts []string
	for _, a := range v.Anomalies {
		parts = append(parts, a.Kind+"×"+strconv.Itoa(a.Count))
	}
	switch {
	case len(parts) > 0:
		c.Detail = strings.Join(parts, ", ")
		if ex := firstExample(v); ex != "" {
			c.Detail += "; e.g. " + ex
		}
	case v.Unknown:
		c.Detail = "undecided: " + strings.Join(v.Notes, "; ")
	default:
		c.Detail = "no anomalies"
	}
	return c
}

func firstExample(v checkers.Verdict) string {
	for _, a := range v.Anomalies {
		for _, e := range a.Examples {
			if e.Offset < 0 && e.Detail != "" {
				return fmt.Sprintf("%s %s: %s", a.Kind, e.Partition, e.Detail)
			}
			return fmt.Sprintf("%s %s@%d %v", a.Kind, e.Partition, e.Offset, e.Values)
		}
	}
	return ""
}
