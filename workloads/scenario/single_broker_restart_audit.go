package scenario

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// The restart audit. Kafka's recovery promises that a broker restarted
// on its own disk holds what it held before: the same log start and end,
// high watermark and leader epochs, and the same state of every
// idempotent producer, so that a batch sent again after the restart is
// still recognised as a duplicate. The live audit judges what the broker
// kept while running; this one stops it at the end of the run, once
// cleanly (the final checkpoints and a producer snapshot at the log end)
// and once by a crash with its producer snapshots gone, which Kafka treats
// as a cache (it rebuilds producer state from the log), and compares what
// each restart rebuilt with what the live broker held. The second is
// where compaction must have kept each producer's last batch: nothing
// else in the log says where its sequences stand.

// producerImage is what a broker holds of one producer on a partition.
type producerImage struct {
	epoch        int16
	lastSequence int32
	lastOffset   int64
}

// partitionImage is what a broker holds of one partition beside its
// batches; skipped says why it was not taken.
type partitionImage struct {
	start, end, highWatermark int64
	epochs                    []storage.EpochEntry
	producers                 map[int64]producerImage
	skipped                   string
}

// imageOf takes b's image of tp.
func imageOf(b *broker.Broker, tp history.TopicPartition) partitionImage {
	lg := b.PartitionLog(tp.Topic, tp.Partition)
	switch {
	case lg == nil:
		return partitionImage{skipped: "no log"}
	case lg.Err() != nil:
		return partitionImage{skipped: "the log failed: " + lg.Err().Error()}
	case len(lg.Damage()) > 0:
		return partitionImage{skipped: "the log holds damaged data"}
	}
	img := partitionImage{start: lg.StartOffset(), end: lg.EndOffset(),
		highWatermark: b.PartitionHighWatermark(tp.Topic, tp.Partition),
		epochs:        lg.Epochs(), producers: map[int64]producerImage{}}
	for _, s := range lg.Producers() {
		if len(s.Batches) == 0 {
			continue
		}
		last := s.Batches[len(s.Batches)-1]
		if last.LastOffset < img.start {
			continue // its batches went with retention: the log cannot say
		}
		img.producers[s.ProducerID] = producerImage{epoch: s.Epoch, lastSequence: last.LastSequence, lastOffset: last.LastOffset}
	}
	return img
}

// compareImages lists where a rebuilt image disagrees with the live one.
// The restarted broker leads at a new epoch from the log end on, so only
// the epochs that begin below the live log end are compared.
func compareImages(live, rebuilt partitionImage) []string {
	var faults []string
	if rebuilt.start != live.start || rebuilt.end != live.end {
		faults = append(faults, fmt.Sprintf("log %d..%d, the live broker's %d..%d", rebuilt.start, rebuilt.end, live.start, live.end))
	}
	if rebuilt.highWatermark != live.highWatermark {
		faults = append(faults, fmt.Sprintf("high watermark %d, the live broker's %d", rebuilt.highWatermark, live.highWatermark))
	}
	if got, want := epochsBelow(rebuilt.epochs, live.end), epochsBelow(live.epochs, live.end); !slices.Equal(got, want) {
		faults = append(faults, fmt.Sprintf("leader epochs %v below %d, the live broker's %v", got, live.end, want))
	}
	return append(faults, compareProducers(live.producers, rebuilt.producers)...)
}

// epochsBelow are the entries that begin below end.
func epochsBelow(entries []storage.EpochEntry, end int64) []storage.EpochEntry {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].StartOffset >= end })
	return entries[:i]
}

// compareProducers lists the producers whose rebuilt state differs from
// the live one, or that only one of them knows, in id order.
func compareProducers(live, rebuilt map[int64]producerImage) []string {
	ids := make([]int64, 0, len(live)+len(rebuilt))
	for id := range live {
		ids = append(ids, id)
	}
	for id := range rebuilt {
		if _, ok := live[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var faults []string
	for _, id := range ids {
		l, inLive := live[id]
		r, inRebuilt := rebuilt[id]
		switch {
		case !inRebuilt:
			faults = append(faults, fmt.Sprintf("producer %d (epoch %d, sequence ..%d at %d) forgotten", id, l.epoch, l.lastSequence, l.lastOffset))
		case !inLive:
			faults = append(faults, fmt.Sprintf("producer %d (epoch %d, sequence ..%d at %d) unknown to the live broker", id, r.epoch, r.lastSequence, r.lastOffset))
		case l != r:
			faults = append(faults, fmt.Sprintf("producer %d at epoch %d, sequence ..%d at %d; the live broker's epoch %d, sequence ..%d at %d",
				id, r.epoch, r.lastSequence, r.lastOffset, l.epoch, l.lastSequence, l.lastOffset))
		}
		if len(faults) >= auditFaultsMax {
			break
		}
	}
	return faults
}

const (
	// restartAuditStopMax bounds the wait for a clean shutdown, and
	// restartAuditServeMax that for a restarted broker to serve with its
	// high watermarks caught up.
	restartAuditStopMax  = 10 * time.Second
	restartAuditServeMax = 10 * time.Second
	// restartAuditPoll is the step the world runs between looks.
	restartAuditPoll = 10 * time.Millisecond
)

// restartAuditCheck restarts the broker cleanly, then by a crash without
// its producer snapshots, and compares each time what it rebuilt with
// what the live broker held; after the crash each producer's latest batch
// is sent again to the logs that are not compacted.
func (c *singleBrokerCluster) restartAuditCheck(w *world.World) Check {
	check := Check{Name: "restart-state", OK: true}
	if !c.serving() {
		check.Detail = "not audited: the broker did not serve at the end"
		return check
	}
	tps := c.topicPartitions()
	// The live audit appended to the logs directly, past the broker's
	// group commit: a flush moves the high watermark over that batch as
	// the broker's would have, and the image is taken once it has.
	c.flushLogs(w, tps)
	runWorldUntil(w, func() bool { return c.highWatermarksCaughtUp(tps) }, restartAuditServeMax)
	live := c.images(tps)
	var faults []string
	stopped, stopErr := false, error(nil)
	c.brokers[len(c.brokers)-1].Stop(func(err error) { stopped, stopErr = true, err })
	runWorldUntil(w, func() bool { return stopped }, restartAuditStopMax)
	switch {
	case !stopped:
		faults = append(faults, fmt.Sprintf("a clean shutdown did not finish in %v", restartAuditStopMax))
	case stopErr != nil:
		faults = append(faults, "a clean shutdown failed: "+stopErr.Error())
	}
	worldAction(w.Kill(singleBrokerNode))
	faults = append(faults, c.restartAndCompare(w, "after a clean restart", tps, live)...)
	worldAction(w.Kill(singleBrokerNode))
	removed, err := removeProducerSnapshots(w.Node(singleBrokerNode).Disk().FS(), brokerDataDir)
	if err != nil {
		faults = append(faults, "removing the producer snapshots: "+err.Error())
	}
	faults = append(faults, c.restartAndCompare(w, "after a crash without producer snapshots", tps, live)...)
	if len(faults) == 0 && c.serving() {
		// A recovery that cut a torn tail refuses appends until the cut
		// is durable (a producer retries): the replays wait for a flush.
		c.flushLogs(w, tps)
		faults = c.replayAfterRestart(tps)
	}
	if len(faults) > 0 && c.o.Param("faults") == "corrupt" {
		// Kafka's checkpoint files are plain text without checksums: a
		// bit flip in one (an epoch's start offset, a recovery point)
		// reads back as another valid value, which a restart trusts.
		check.Detail = "not judged on a disk that took bit flips: " + strings.Join(faults, "; ")
		return check
	}
	if len(faults) > 0 {
		check.OK = false
		check.Detail = strings.Join(faults, "; ")
		return check
	}
	if len(c.restartNotes) > 0 {
		check.Detail = "not audited: " + strings.Join(c.restartNotes, "; ")
		return check
	}
	check.Detail = fmt.Sprintf("log bounds, high watermarks, leader epochs and producer state of %d partitions rebuilt alike "+
		"after a clean restart and after a crash without its %d producer snapshots", len(tps), removed)
	return check
}

// brokerDataDir is the single broker's log directory.
var brokerDataDir = broker.DefaultConfig().DataDir

// restartAndCompare restarts the broker and compares its images with the
// live ones once it serves with every high watermark caught up.
func (c *singleBrokerCluster) restartAndCompare(w *world.World, when string, tps []history.TopicPartition, live []partitionImage) []string {
	starts := len(c.brokers)
	worldAction(w.Restart(singleBrokerNode))
	caughtUp := func() bool {
		if len(c.brokers) == starts || !c.serving() {
			return false
		}
		for i, img := range c.images(tps) {
			if img.skipped == "" && img.highWatermark < live[i].highWatermark {
				return false
			}
		}
		return true
	}
	if !runWorldUntil(w, caughtUp, restartAuditServeMax) && !c.serving() {
		if c.o.Param("faults") == "corrupt" {
			// Bit flips may have hit a file the broker reads only as it
			// starts (its topic registry): refusing to start on it is
			// right, and leaves nothing to compare.
			c.restartNotes = append(c.restartNotes, fmt.Sprintf("%s: the broker did not serve within %v on a disk that took bit flips", when, restartAuditServeMax))
			return nil
		}
		return []string{fmt.Sprintf("%s: the broker did not serve within %v", when, restartAuditServeMax)}
	}
	var faults []string
	for i, rebuilt := range c.images(tps) {
		if live[i].skipped != "" || rebuilt.skipped != "" {
			continue
		}
		for _, f := range compareImages(live[i], rebuilt) {
			faults = append(faults, fmt.Sprintf("%s: %s: %s", when, tps[i], f))
		}
	}
	return faults
}

// replayAfterRestart sends each producer's latest batch again to the
// restarted broker's logs that are not compacted (the cleaner may have
// emptied a compacted log's last batches, whose state only the live
// audit replays): each must be recognised as a duplicate.
func (c *singleBrokerCluster) replayAfterRestart(tps []history.TopicPartition) []string {
	b := c.brokers[len(c.brokers)-1]
	var faults []string
	for _, tp := range tps {
		lg := b.PartitionLog(tp.Topic, tp.Partition)
		if lg == nil || c.topicCompacted(tp.Topic) || lg.Err() != nil || len(lg.Damage()) > 0 {
			continue
		}
		batches, err := readAuditBatches(lg)
		if err != nil {
			continue // read errors are the disk's; the live audit judged the reads
		}
		for _, f := range replayLatestBatches(lg, batches) {
			faults = append(faults, fmt.Sprintf("after a crash without producer snapshots: %s: %s", tp, f))
		}
	}
	return faults
}

// flushLogs flushes each partition's log on the latest broker and runs
// the world until every flush is through (for at most
// restartAuditServeMax).
func (c *singleBrokerCluster) flushLogs(w *world.World, tps []history.TopicPartition) {
	b := c.brokers[len(c.brokers)-1]
	pending := 0
	for _, tp := range tps {
		if lg := b.PartitionLog(tp.Topic, tp.Partition); lg != nil && lg.Err() == nil {
			pending++
			lg.Flush(func(error) { pending-- })
		}
	}
	runWorldUntil(w, func() bool { return pending == 0 }, restartAuditServeMax)
}

// highWatermarksCaughtUp reports whether every partition the latest
// broker serves has its high watermark at its log end.
func (c *singleBrokerCluster) highWatermarksCaughtUp(tps []history.TopicPartition) bool {
	for _, img := range c.images(tps) {
		if img.skipped == "" && img.highWatermark < img.end {
			return false
		}
	}
	return true
}

// images takes the latest broker's image of each partition.
func (c *singleBrokerCluster) images(tps []history.TopicPartition) []partitionImage {
	b := c.brokers[len(c.brokers)-1]
	images := make([]partitionImage, len(tps))
	for i, tp := range tps {
		images[i] = imageOf(b, tp)
	}
	return images
}

// runWorldUntil runs the world in small steps until done holds, for at
// most limit of simulated time, and reports whether it held.
func runWorldUntil(w *world.World, done func() bool, limit time.Duration) bool {
	end := w.Now() + limit
	for !done() {
		if w.Now() >= end {
			return false
		}
		w.Run(w.Now()+restartAuditPoll, 0)
	}
	return true
}

// removeProducerSnapshots removes every producer snapshot under dir (one
// directory per partition) and says how many it removed.
func removeProducerSnapshots(fs sim.FS, dir string) (int, error) {
	partitions, err := fs.List(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", dir, err)
	}
	removed := 0
	for _, p := range partitions {
		names, err := fs.List(dir + "/" + p)
		if err != nil {
			continue // a file, not a partition's directory
		}
		for _, name := range names {
			if !strings.HasSuffix(name, ".snapshot") {
				continue
			}
			if err := fs.Remove(dir + "/" + p + "/" + name); err != nil {
				return removed, fmt.Errorf("remove %s: %w", name, err)
			}
			removed++
		}
	}
	return removed, nil
}
