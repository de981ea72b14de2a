package scenario

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim/sched"
)

// singleBrokerKnobs is the single-broker workload: fixed for a plain run,
// drawn per seed for a swarm (or with workload=drawn), so that seeds
// reach batches of many records, compressed batches, many small
// segments, seeks inside batches and by time, and fenced leader epochs.
type singleBrokerKnobs struct {
	Clients int
	// RatePerClient is sends per second of each client.
	RatePerClient float64
	Concurrency   int
	Linger        time.Duration
	// Sticky leaves keyless records to the producers' sticky
	// partitioner instead of writing each partition in turn.
	Sticky        bool
	BatchMaxBytes int
	// ValueBytes pads values; zero keeps them short ("process-n").
	ValueBytes   int
	Compression  record.Compression
	SegmentBytes int64
	// SeekEveryPolls moves a consumer about every so many polls; zero
	// never.
	SeekEveryPolls  int
	SendLeaderEpoch bool
	// RetentionBytes and RetentionAge delete the oldest segments during
	// the run (-1 and 0: off); the checkers then excuse unread sends
	// below the final log start.
	RetentionBytes int64
	RetentionAge   time.Duration
	// Compacted turns compaction on for the topic (cleanup.policy
	// compact, or compact,delete with retention), with records keyed
	// over Keys keys so that most have newer records of their key; the
	// checkers then excuse what the cleaner may remove.
	Compacted bool
	Keys      int
	// RetentionIgnored keeps the retention settings on a compacted topic
	// but makes its cleanup.policy compact alone, under which Kafka
	// ignores retention.ms and retention.bytes: nothing may be deleted.
	RetentionIgnored bool
	// CompactionPowerLosses is how many times a compacted run cuts the
	// power as a compaction completes (under disk faults).
	CompactionPowerLosses int
	// Topics are the topics the clients write and read: client i the
	// topic i mod len(Topics).
	Topics []topicKnobs
	// CreateTopics makes the clients create their topics through
	// CreateTopics with the workload's topic configs (cleanup.policy,
	// segment, retention and batch sizes), which the broker parses,
	// rather than leave the broker to create them from its defaults.
	CreateTopics bool
	// RestartAudit restarts the broker at the end of the run and
	// compares what it rebuilt from its disk with what it held.
	RestartAudit bool
	// DeleteRecordsEvery runs each driver's admin deleting records
	// (DeleteRecords) about this often; zero never.
	DeleteRecordsEvery time.Duration
	// DeliveryTimeout is the producers' delivery.timeout.ms; zero keeps
	// the scenario's 10 s. A short one expires batches during faults, so
	// idempotent producers move to new epochs (KIP-360) and the broker's
	// epoch rules are exercised.
	DeliveryTimeout time.Duration
}

// topicKnobs is one topic of the workload.
type topicKnobs struct {
	Name       string
	Partitions int32
}

// partitions lists the topic's partitions.
func (t topicKnobs) partitions() []int32 {
	ps := make([]int32, t.Partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps
}

// retentionOn reports whether retention may delete records in the run.
func (k singleBrokerKnobs) retentionOn() bool {
	return k.retentionSet() && !k.RetentionIgnored
}

// logStartMoves reports whether the log start may move in the run:
// retention or an admin's deletions.
func (k singleBrokerKnobs) logStartMoves() bool {
	return k.retentionOn() || k.DeleteRecordsEvery > 0
}

// retentionSet reports whether the topic has retention settings, which
// its cleanup policy may ignore.
func (k singleBrokerKnobs) retentionSet() bool {
	return k.RetentionBytes >= 0 || k.RetentionAge > 0
}

// singleBrokerClientsMax bounds the clients a seed may draw.
const singleBrokerClientsMax = 4

func fixedSingleBrokerKnobs(o Options) singleBrokerKnobs {
	k := singleBrokerKnobs{Clients: 2, RatePerClient: 500, Concurrency: 20, Linger: 5 * time.Millisecond,
		SegmentBytes: 256 << 10, RetentionBytes: -1, // small segments: rolls, indexes and recovery get exercised
		Topics: []topicKnobs{{Name: singleBrokerTopic, Partitions: singleBrokerPartitionsFixed}}}
	if o.Param("faults") == "fsyncgate" {
		// Sends pile up while the disk is slow, so that a failing sync
		// holds several pages of each partition.
		k.Concurrency = fsyncgateConcurrency
	}
	return k
}

// singleBrokerKnobsFor picks the run's workload: drawn from the seed's
// "workload" stream for a swarm or with workload=drawn, else fixed. An
// explicit compression param overrides either.
func singleBrokerKnobsFor(o Options) singleBrokerKnobs {
	k := fixedSingleBrokerKnobs(o)
	mode := o.Param("workload")
	if mode == "drawn" || (mode == "auto" && o.Swarm) {
		k = drawSingleBrokerKnobs(sched.NewRand(o.Seed, "workload", 0), k)
		k.Topics = drawTopics(sched.NewRand(o.Seed, "topics", 0), k.Clients)
		k.CreateTopics, k.RestartAudit = true, true
		k.DeliveryTimeout = drawDeliveryTimeout(sched.NewRand(o.Seed, "delivery", 0))
		k.DeleteRecordsEvery = drawDeleteRecordsEvery(sched.NewRand(o.Seed, "deletes", 0), k)
		k.Sticky = drawSticky(sched.NewRand(o.Seed, "partitioner", 0), k)
	}
	if v := o.Param("linger.ms"); v != "auto" {
		ms, err := parseLingerMs(v)
		sched.Assert(err == nil, "scenario: linger.ms %q passed validation: %v", v, err)
		if linger := time.Duration(ms) * time.Millisecond; linger != k.Linger {
			k.Linger = linger
			k.Concurrency = concurrencyFor(k.RatePerClient, k.Linger, k.Concurrency)
		}
	}
	switch o.Param("partitioner") {
	case "sticky":
		k.Sticky = true
	case "round-robin":
		k.Sticky = false
	}
	if name := o.Param("compression"); name != "auto" {
		c, err := record.ParseCompression(name)
		sched.Assert(err == nil, "scenario: compression %q passed validation: %v", name, err)
		k.Compression = c
	}
	return k
}

// clusterKnobsFor picks a broker-cluster run's workload as single-broker
// does, drawing the clients, rate, linger, batch and record sizes, codec,
// segment size, consumer seeks and leader epochs; retention and
// compaction stay off, as the cluster's topics are created by the
// controller without such configs. Records stay within
// clusterValueBytesMax: every consumer reads the whole log again in the
// drain, from leaders that serve their followers too, and 4 KiB records
// at the highest rate drawn would need a longer drain than the
// scenarios give.
func clusterKnobsFor(o Options) singleBrokerKnobs {
	k := singleBrokerKnobsFor(o)
	k.RetentionBytes, k.RetentionAge, k.Compacted, k.Keys = -1, 0, false, 0
	k.Topics, k.CreateTopics, k.RestartAudit = fixedSingleBrokerKnobs(o).Topics, false, false
	k.DeliveryTimeout, k.DeleteRecordsEvery = 0, 0
	k.ValueBytes = min(k.ValueBytes, clusterValueBytesMax)
	return k
}

// clusterValueBytesMax bounds a drawn cluster workload's record values.
const clusterValueBytesMax = 512

// concurrencyFor is how many sends a client at ratePerClient keeps in
// flight: enough to fill a linger's worth of every partition's batch and
// the round trip after it, so that a long linger batches records rather
// than holding the rate down; at least least, at most
// fsyncgateConcurrency.
func concurrencyFor(ratePerClient float64, linger time.Duration, least int) int {
	inFlight := int(ratePerClient * (linger + 50*time.Millisecond).Seconds())
	return max(least, min(inFlight, fsyncgateConcurrency))
}

// lingerMsMax bounds the linger.ms parameter: a client keeps at most
// fsyncgateConcurrency sends in flight, which a longer linger at the fixed
// rate would hold back.
const lingerMsMax = 200

// parseLingerMs reads the linger.ms parameter: whole milliseconds, as
// Kafka's producer takes it, from 0 to lingerMsMax.
func parseLingerMs(v string) (int, error) {
	ms, err := strconv.Atoi(v)
	if err != nil || ms < 0 || ms > lingerMsMax {
		return 0, fmt.Errorf("want auto or whole milliseconds from 0 to %d", lingerMsMax)
	}
	return ms, nil
}

// workloadParams are the knobs that choose a run's workload, for the
// scenarios built on single-broker's clients.
var workloadParams = []Param{
	{Name: "workload", Default: "auto", Values: []string{"auto", "fixed", "drawn"},
		Help: "drawn: the seed draws clients, rate, linger, batch and record sizes, compression, segment " +
			"size, consumer seeks and leader epochs (listed as knob_* counters); fixed: two clients, " +
			"short records; auto: drawn in a swarm, fixed otherwise"},
	{Name: "linger.ms", Default: "auto", Values: []string{"auto"},
		Check: func(v string) error { _, err := parseLingerMs(v); return err },
		Help: "how long the producers wait to fill a batch, in milliseconds (Kafka's linger.ms); auto: the " +
			"workload's (5 unless drawn). A longer linger makes fewer, larger batches at the same rate, " +
			"with the sends in flight raised to keep the rate"},
	{Name: "partitioner", Default: "auto", Values: []string{"auto", "round-robin", "sticky"},
		Help: "how producers spread keyless records: round-robin writes each partition in turn (Kafka's " +
			"RoundRobinPartitioner); sticky fills one partition's batch before drawing another (Kafka's " +
			"default since 2.4), fewer and larger batches at the same linger; auto: drawn with the workload " +
			"(sticky one seed in three without keys), round-robin otherwise"},
	{Name: "compression", Default: "auto", Values: []string{"auto", "none", "gzip", "snappy", "lz4", "zstd"},
		Help: "the producers' codec; auto: the workload's (none unless drawn)"},
}

// drawSingleBrokerKnobs draws a workload. The total rate stays near the
// fixed one's so that histories stay within what the checkers judge in
// seconds; a long linger with enough sends in flight makes batches of
// tens of records.
func drawSingleBrokerKnobs(r *rand.Rand, fixed singleBrokerKnobs) singleBrokerKnobs {
	k := fixed
	k.Clients = 2 + r.IntN(singleBrokerClientsMax-1)
	totalRate := []float64{1000, 1500, 2500}[r.IntN(3)]
	k.RatePerClient = totalRate / float64(k.Clients)
	k.Linger = []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond}[r.IntN(5)]
	k.SegmentBytes = []int64{8 << 10, 16 << 10, 64 << 10, 256 << 10}[r.IntN(4)]
	// A batch must fit the broker's limit, which a segment bounds, with
	// room for the batch header; a record must fit a batch.
	k.BatchMaxBytes = min([]int{4 << 10, 16 << 10, 48 << 10}[r.IntN(3)], k.brokerBatchMaxBytes()-batchHeadroomBytes)
	k.ValueBytes = min([]int{0, 0, 64, 512, 4 << 10}[r.IntN(5)], k.BatchMaxBytes/2)
	k.Compression = record.Compression(r.IntN(int(record.CompressionZstd) + 1))
	k.Concurrency = concurrencyFor(k.RatePerClient, k.Linger, fixed.Concurrency)
	k.SeekEveryPolls = []int{0, 50, 200}[r.IntN(3)]
	k.SendLeaderEpoch = r.IntN(2) == 0
	switch r.IntN(4) {
	case 0:
		k.RetentionBytes = k.SegmentBytes * int64(2+r.IntN(7))
	case 1:
		k.RetentionAge = time.Duration(1+r.IntN(5)) * time.Second
	}
	// Drawn last, so that the draws above are those of seeds drawn
	// before compaction was a knob.
	if r.IntN(3) == 0 {
		k.Compacted = true
		k.Keys = []int{4, 16, 64}[r.IntN(3)]
		k.RetentionIgnored = k.retentionSet() && r.IntN(2) == 0
		k.CompactionPowerLosses = r.IntN(compactionCrashEpisodesMax + 1)
	}
	return k
}

// drawDeliveryTimeout draws the producers' delivery timeout from its own
// stream, so that the workload's other draws stay those of seeds drawn
// before it was a knob: one seed in three gives a batch 3 s, about one
// fault's length, past the request timeout and the longest linger as
// Kafka requires.
func drawDeliveryTimeout(r *rand.Rand) time.Duration {
	if r.IntN(3) == 0 {
		return shortDeliveryTimeout
	}
	return 0
}

// drawSticky draws whether the producers leave keyless records to their
// sticky partitioner, from its own stream, so that the workload's other
// draws stay those of seeds drawn before it was a knob: one seed in three
// whose records have no keys (keys pick the partition themselves).
func drawSticky(r *rand.Rand, k singleBrokerKnobs) bool {
	return k.Keys == 0 && r.IntN(3) == 0
}

// drawDeleteRecordsEvery draws how often an admin deletes records, from
// its own stream: one seed in three whose topics are not compacted (Kafka
// refuses DeleteRecords on a topic that is compacted alone) deletes every
// one to three seconds.
func drawDeleteRecordsEvery(r *rand.Rand, k singleBrokerKnobs) time.Duration {
	if k.Compacted || r.IntN(3) != 0 {
		return 0
	}
	return time.Duration(1+r.IntN(3)) * time.Second
}

// shortDeliveryTimeout is the short delivery timeout a seed may draw.
const shortDeliveryTimeout = 3 * time.Second

// singleBrokerPartitionsFixed is the partition count of a plain run's
// one topic; singleBrokerTopicsMax bounds the topics a seed draws.
const (
	singleBrokerPartitionsFixed = 3
	singleBrokerTopicsMax       = 3
)

// drawTopics draws one to three topics, no more than there are clients
// to write them, of distinct partition counts from one to three: a
// single-partition topic sorts beside another topic's partition 0 in the
// broker's checkpoint files, and a topic's partitions are numbered from
// zero in each.
func drawTopics(r *rand.Rand, clients int) []topicKnobs {
	n := min(1+r.IntN(singleBrokerTopicsMax), clients)
	counts := r.Perm(singleBrokerPartitionsFixed)
	topics := make([]topicKnobs, n)
	for i := range topics {
		topics[i] = topicKnobs{Name: singleBrokerTopic, Partitions: int32(counts[i] + 1)}
		if i > 0 {
			topics[i].Name += strconv.Itoa(i)
		}
	}
	return topics
}

// topicConfigs are the topic configs a client that creates a topic
// sends: the workload's cleanup policy (its compact-and-delete spelled
// both ways Kafka takes it, by the topic's place), segment and batch
// sizes and retention.
func (k singleBrokerKnobs) topicConfigs(topicIndex int) map[string]string {
	policy := k.cleanupPolicy().String()
	if k.cleanupPolicy() == storage.CleanupCompactDelete && topicIndex%2 == 1 {
		policy = "delete,compact"
	}
	configs := map[string]string{
		"cleanup.policy":    policy,
		"segment.bytes":     strconv.FormatInt(k.SegmentBytes, 10),
		"max.message.bytes": strconv.Itoa(k.brokerBatchMaxBytes()),
	}
	if k.RetentionBytes >= 0 {
		configs["retention.bytes"] = strconv.FormatInt(k.RetentionBytes, 10)
	}
	if k.RetentionAge > 0 {
		configs["retention.ms"] = strconv.FormatInt(k.RetentionAge.Milliseconds(), 10)
	}
	return configs
}

// compactionInterval is how often a compacted run's broker cleans its
// logs: often enough that a run of seconds compacts several times.
const compactionInterval = 2 * time.Second

// applyTopicDefaults sets the workload's topic settings as the broker's
// log defaults, for topics the broker creates itself.
func (k singleBrokerKnobs) applyTopicDefaults(cfg *storage.Config) {
	cfg.SegmentBytes = k.SegmentBytes
	cfg.MaxBatchBytes = k.brokerBatchMaxBytes()
	if k.RetentionBytes >= 0 {
		cfg.RetentionBytes = k.RetentionBytes
	}
	if k.RetentionAge > 0 {
		cfg.RetentionAge = k.RetentionAge
	}
	cfg.Cleanup = k.cleanupPolicy()
}

// cleanupPolicy is the topic's cleanup.policy under the knobs.
func (k singleBrokerKnobs) cleanupPolicy() storage.CleanupPolicy {
	switch {
	case k.Compacted && k.retentionOn():
		return storage.CleanupCompactDelete
	case k.Compacted:
		return storage.CleanupCompact
	}
	return storage.CleanupDelete
}

// singleBrokerBatchMaxBytes is the broker's batch limit with segments
// large enough for it.
const singleBrokerBatchMaxBytes = 64 << 10

// batchHeadroomBytes is what a producer's batch limit leaves below the
// broker's for the batch header and the records' overheads.
const batchHeadroomBytes = 1 << 10

// brokerBatchMaxBytes is the broker's batch limit: a segment must hold
// the largest batch.
func (k singleBrokerKnobs) brokerBatchMaxBytes() int {
	return int(min(singleBrokerBatchMaxBytes, k.SegmentBytes))
}

// stats lists the knobs for the run's counters, so that a result names
// the workload it ran.
func (k singleBrokerKnobs) stats() map[string]int64 {
	return map[string]int64{
		"knob_clients":                 int64(k.Clients),
		"knob_rate_per_client":         int64(k.RatePerClient),
		"knob_concurrency":             int64(k.Concurrency),
		"knob_linger_ms":               k.Linger.Milliseconds(),
		"knob_sticky":                  b2i(k.Sticky),
		"knob_batch_max_bytes":         int64(k.BatchMaxBytes),
		"knob_value_bytes":             int64(k.ValueBytes),
		"knob_compression_codec":       int64(k.Compression),
		"knob_segment_bytes":           k.SegmentBytes,
		"knob_seek_every_polls":        int64(k.SeekEveryPolls),
		"knob_send_leader_epoch":       b2i(k.SendLeaderEpoch),
		"knob_retention_bytes":         k.RetentionBytes,
		"knob_retention_ms":            k.RetentionAge.Milliseconds(),
		"knob_keys":                    int64(k.Keys),
		"knob_retention_ignored":       b2i(k.RetentionIgnored),
		"knob_compaction_power_losses": int64(k.CompactionPowerLosses),
		"knob_topics":                  int64(len(k.Topics)),
		"knob_partitions":              int64(k.partitionCount()),
		"knob_create_topics":           b2i(k.CreateTopics),
		"knob_restart_audit":           b2i(k.RestartAudit),
		"knob_delivery_timeout_ms":     k.DeliveryTimeout.Milliseconds(),
		"knob_delete_records_every_ms": k.DeleteRecordsEvery.Milliseconds(),
	}
}

// partitionCount sums the topics' partitions.
func (k singleBrokerKnobs) partitionCount() int {
	n := 0
	for _, t := range k.Topics {
		n += int(t.Partitions)
	}
	return n
}

// b2i is 1 for true, for counters that hold a yes or no.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
