package scenario

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
)

// The end-of-run log audit. A broker keeps two things beside its batches
// that no client reads back directly: the leader epoch cache (what
// OffsetForLeaderEpoch answers from, KIP-101/320) and the idempotent
// producers' state (what deduplicates a retried batch). Both are
// functions of the batches, as Kafka rebuilds them from the log, so once
// the faults have healed the live broker's must agree with the batches
// its log holds: a mistake in keeping them (an epoch not recorded, a
// producer's sequence not advanced, a recovery that rebuilds them wrong)
// shows here in every seed that reaches it, even when no client happens
// to ask the question it would answer wrongly. Last, each producer's
// latest batch is sent again, as a retry after a lost answer is: a
// client cannot tell a duplicate refused as out of order from a send
// that may or may not have been written, so only the log can be asked.

// auditBatch is what the audit needs of one batch of the log.
type auditBatch struct {
	base, last    int64
	leaderEpoch   int32
	producerID    int64
	producerEpoch int16
	lastSequence  int32
	hasProducer   bool
}

// auditBatchesMax bounds the batches one partition's audit reads.
const auditBatchesMax = 1 << 20

// auditReadBytes is how much one read of the audit asks for.
const auditReadBytes = 1 << 20

// readAuditBatches reads every batch of lg from its start to its end.
func readAuditBatches(lg *storage.Log) ([]auditBatch, error) {
	var batches []auditBatch
	offset, end := lg.StartOffset(), lg.EndOffset()
	for offset < end {
		res, err := lg.Read(offset, auditReadBytes, end)
		if err != nil {
			return nil, err
		}
		if res.Batches == 0 || res.NextOffset <= offset {
			break // nothing past a compacted gap at the end
		}
		for data := res.Data; len(data) > 0; {
			b := record.Batch(data)
			size := b.Size()
			if size <= 0 || size > int64(len(data)) {
				return nil, fmt.Errorf("read at %d: a batch of %d bytes in %d", offset, size, len(data))
			}
			b = record.Batch(data[:size])
			batches = append(batches, auditBatch{base: b.BaseOffset(), last: b.LastOffset(),
				leaderEpoch: b.PartitionLeaderEpoch(), producerID: b.ProducerID(),
				producerEpoch: b.ProducerEpoch(), lastSequence: b.LastSequence(), hasProducer: b.HasProducer()})
			data = data[size:]
		}
		if len(batches) > auditBatchesMax {
			return nil, fmt.Errorf("more than %d batches", auditBatchesMax)
		}
		offset = res.NextOffset
	}
	return batches, nil
}

// auditEpochs checks the epoch cache against the batches: each batch's
// leader epoch is the epoch the cache says began at or before it (its
// base, or the log start when that lies inside the first batch), and the
// cache's epochs and start offsets increase.
func auditEpochs(entries []storage.EpochEntry, batches []auditBatch, logStart int64) []string {
	var faults []string
	for i := 1; i < len(entries); i++ {
		if entries[i].Epoch <= entries[i-1].Epoch || entries[i].StartOffset < entries[i-1].StartOffset {
			faults = append(faults, fmt.Sprintf("epoch cache out of order: %v then %v", entries[i-1], entries[i]))
		}
	}
	for _, b := range batches {
		at := max(b.base, logStart)
		i := sort.Search(len(entries), func(i int) bool { return entries[i].StartOffset > at }) - 1
		switch {
		case i < 0:
			faults = append(faults, fmt.Sprintf("batch %d..%d of epoch %d lies before the epoch cache's first entry", b.base, b.last, b.leaderEpoch))
		case entries[i].Epoch != b.leaderEpoch:
			faults = append(faults, fmt.Sprintf("batch %d..%d was written in epoch %d, the epoch cache says epoch %d began at %d",
				b.base, b.last, b.leaderEpoch, entries[i].Epoch, entries[i].StartOffset))
		default:
			continue
		}
		return faults // the batches after the first disagreement mostly repeat it
	}
	return faults
}

// auditEndOffsets checks what OffsetForLeaderEpoch answers for each epoch
// of the cache (KIP-101): an older epoch ends where the next begins, the
// latest at the log end. A consumer validating its position (KIP-320)
// asks only after a restart, and a wrong answer shows only where a
// truncation lies under the position it asks for, so the audit asks for
// every epoch.
func auditEndOffsets(entries []storage.EpochEntry, logEnd int64, endOffsetFor func(int32) (int32, int64)) []string {
	for i, e := range entries {
		wantEnd := logEnd
		if i+1 < len(entries) {
			wantEnd = entries[i+1].StartOffset
		}
		if epoch, end := endOffsetFor(e.Epoch); epoch != e.Epoch || end != wantEnd {
			return []string{fmt.Sprintf("OffsetForLeaderEpoch(%d) answers epoch %d ending at %d; the epoch cache %v and log end %d say epoch %d ending at %d",
				e.Epoch, epoch, end, entries, logEnd, e.Epoch, wantEnd)}
		}
	}
	return nil
}

// auditProducers checks producer state against the batches: every
// producer with a batch in the log is known, at the epoch and last
// sequence of its latest batch, which is where the state says its last
// batch lies.
func auditProducers(states []storage.ProducerState, batches []auditBatch) []string {
	latest := map[int64]auditBatch{}
	for _, b := range batches {
		if b.hasProducer {
			latest[b.producerID] = b // batches come in offset order
		}
	}
	byID := map[int64]storage.ProducerState{}
	for _, s := range states {
		byID[s.ProducerID] = s
	}
	ids := make([]int64, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var faults []string
	for _, id := range ids {
		b := latest[id]
		s, ok := byID[id]
		switch {
		case !ok:
			faults = append(faults, fmt.Sprintf("producer %d wrote batch %d..%d but the log keeps no state of it", id, b.base, b.last))
		case s.Epoch != b.producerEpoch || s.LastSequence() != b.lastSequence ||
			s.Batches[len(s.Batches)-1].LastOffset != b.last:
			last := s.Batches[len(s.Batches)-1]
			faults = append(faults, fmt.Sprintf("producer %d's latest batch %d..%d is epoch %d sequence ..%d; its state says epoch %d, last batch ..%d at %d",
				id, b.base, b.last, b.producerEpoch, b.lastSequence, s.Epoch, last.LastSequence, last.LastOffset))
		}
		if len(faults) >= auditFaultsMax {
			break
		}
	}
	return faults
}

// auditSegments checks that no segment outgrew the configured segment
// size: the log rolls before a batch would pass it, and the cleaner
// groups segments only while their cleaned sizes fit. slack allows one
// batch more, so that a rule that rolls a batch late is not called a
// fault; a log that never rolls is. It also checks that the offset index
// stays sparse: an index with an entry per batch answers the same
// lookups, so only its spacing shows the interval was lost.
func auditSegments(segments []storage.SegmentInfo, segmentBytes, slack int64) []string {
	for _, s := range segments {
		if s.SizeBytes > segmentBytes+slack {
			return []string{fmt.Sprintf("segment %d..%d holds %d bytes; segments are %d bytes", s.BaseOffset, s.NextOffset, s.SizeBytes, segmentBytes)}
		}
		// The scenario leaves index.interval.bytes at its default.
		if s.IndexEntries > 0 && s.IndexGapBytesMin <= storage.DefaultIndexIntervalBytes {
			return []string{fmt.Sprintf("segment %d..%d has offset index entries %d bytes apart; the index interval is %d bytes",
				s.BaseOffset, s.NextOffset, s.IndexGapBytesMin, storage.DefaultIndexIntervalBytes)}
		}
	}
	return nil
}

// auditStrayFiles checks that the log's directory holds only files the
// log accounts for: a segment deleted, a snapshot dropped or a temporary
// file given up on whose file stayed is disk the log leaks until the next
// restart, and a stale snapshot read back then.
func auditStrayFiles(lg *storage.Log) []string {
	stray, err := lg.StrayFiles()
	if err != nil || len(stray) == 0 {
		return nil // a directory the disk cannot list is the disk's fault
	}
	return []string{fmt.Sprintf("the directory holds files the log does not account for: %s", strings.Join(stray, ", "))}
}

// auditFaultsMax bounds the disagreements one partition's audit lists.
const auditFaultsMax = 5

// logAudit is what the audit of one partition's log found.
type logAudit struct {
	faults []string
	// batches counts the batches read; cleanable the offsets of a
	// compacted log's cleanable part.
	batches   int
	cleanable int64
	// skipped says why the log was not audited, or not wholly.
	skipped string
}

// auditLog audits one partition's log; it says why when it cannot.
func auditLog(lg *storage.Log, k singleBrokerKnobs) logAudit {
	if err := lg.Err(); err != nil {
		return logAudit{skipped: "the log failed: " + err.Error()}
	}
	if len(lg.Damage()) > 0 {
		return logAudit{skipped: "the log holds damaged data"}
	}
	read, err := readAuditBatches(lg)
	if err != nil {
		if errors.Is(err, storage.ErrCorruptLog) || errors.Is(err, storage.ErrStorage) {
			return logAudit{skipped: "reading it failed: " + err.Error()}
		}
		return logAudit{faults: []string{"reading the log: " + err.Error()}}
	}
	a := logAudit{batches: len(read)}
	a.faults = auditEpochs(lg.Epochs(), read, lg.StartOffset())
	a.faults = append(a.faults, auditEndOffsets(lg.Epochs(), lg.EndOffset(), lg.EndOffsetForEpoch)...)
	a.faults = append(a.faults, auditSegments(lg.Segments(), k.SegmentBytes, int64(k.brokerBatchMaxBytes()))...)
	a.faults = append(a.faults, auditStrayFiles(lg)...)
	if !k.Compacted {
		a.faults = append(a.faults, auditProducers(lg.Producers(), read)...)
		if len(a.faults) == 0 {
			a.faults = replayLatestBatches(lg, read)
		}
		if len(a.faults) == 0 {
			a.faults = appendAtLimit(lg, k.brokerBatchMaxBytes())
		}
		return a
	}
	faults, end, err := auditCompaction(lg, k)
	a.faults = append(a.faults, faults...)
	a.cleanable = end - lg.StartOffset()
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrCorruptLog) || errors.Is(err, storage.ErrStorage):
		a.skipped = "reading its cleanable part failed: " + err.Error()
	default:
		a.faults = append(a.faults, "reading the cleanable part: "+err.Error())
	}
	return a
}

// replayLatestBatches sends each producer's latest batch to the log
// again, as a producer retrying a send whose answer it lost does: the
// log must recognise it as a duplicate and answer with its offsets,
// whatever crashes, recoveries and snapshots came between. (The log is
// the live broker's, after the history was judged; a sound log writes
// nothing for a duplicate.)
func replayLatestBatches(lg *storage.Log, batches []auditBatch) []string {
	latest := map[int64]auditBatch{}
	for _, b := range batches {
		if b.hasProducer {
			latest[b.producerID] = b
		}
	}
	ids := make([]int64, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var faults []string
	for _, id := range ids {
		b := latest[id]
		res, err := lg.Read(b.base, 1, lg.EndOffset())
		if err != nil || res.Batches == 0 {
			continue // read errors are the disk's; the audit reads what it can
		}
		batch := record.Batch(append([]byte(nil), res.Data[:record.Batch(res.Data).Size()]...))
		if batch.BaseOffset() != b.base {
			continue
		}
		appended, err := lg.Append(batch, lg.LatestEpoch())
		if fault := judgeReplay(b, appended, err); fault != "" {
			faults = append(faults, fault)
		}
	}
	return faults
}

// appendAtLimit sends the log a batch one byte larger than the broker's
// batch limit, which it must refuse, then one of exactly the limit, which
// it must take (message.max.bytes is inclusive). The workloads' producers
// close their batches well below the limit, so only the audit asks. (It
// runs last: the batch it writes is no client's.)
func appendAtLimit(lg *storage.Log, limitBytes int) []string {
	epoch := max(lg.LatestEpoch(), 0) // an empty log has none yet
	over, err := batchOfBytes(limitBytes + 1)
	if err != nil {
		return []string{err.Error()}
	}
	if res, err := lg.Append(over, epoch); err == nil {
		return []string{fmt.Sprintf("a batch of %d bytes, over the limit of %d, was written at %d", len(over), limitBytes, res.BaseOffset)}
	}
	exact, err := batchOfBytes(limitBytes)
	if err != nil {
		return []string{err.Error()}
	}
	if _, err := lg.Append(exact, epoch); errors.Is(err, storage.ErrBatchTooLarge) {
		return []string{fmt.Sprintf("a batch of exactly the limit of %d bytes was refused: %v", limitBytes, err)}
	}
	return nil // another error is the disk's; the audit judges the limit only
}

// batchSizingRounds bounds the rounds batchOfBytes takes to hit a size:
// each round corrects the value by what the last one missed, which only
// the varint lengths can make differ again.
const batchSizingRounds = 8

// batchOfBytes builds a batch without producer state of one record whose
// value makes the whole batch sizeBytes long.
func batchOfBytes(sizeBytes int) (record.Batch, error) {
	valueBytes := sizeBytes
	for range batchSizingRounds {
		b, err := record.NewBuilder().Build([]record.Record{{Value: make([]byte, max(valueBytes, 0))}})
		if err != nil {
			return nil, fmt.Errorf("build a batch of %d bytes: %w", sizeBytes, err)
		}
		if len(b) == sizeBytes {
			return b, nil
		}
		valueBytes -= len(b) - sizeBytes
	}
	return nil, fmt.Errorf("build a batch of %d bytes: no value length gives it", sizeBytes)
}

// judgeReplay says what is wrong with the log's answer to a replay of
// batch b, or "" when it recognised the duplicate.
func judgeReplay(b auditBatch, res storage.AppendResult, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("producer %d's batch %d..%d sent again was refused (%v), not recognised as a duplicate", b.producerID, b.base, b.last, err)
	case !res.Duplicate:
		return fmt.Sprintf("producer %d's batch %d..%d sent again was written again at %d..%d", b.producerID, b.base, b.last, res.BaseOffset, res.LastOffset)
	case res.BaseOffset != b.base || res.LastOffset != b.last:
		return fmt.Sprintf("producer %d's batch %d..%d sent again was answered as a duplicate at %d..%d", b.producerID, b.base, b.last, res.BaseOffset, res.LastOffset)
	}
	return ""
}

// logAuditCheck audits every partition of the last broker process, when
// it serves: epochs, segment sizes, and, except on compacted topics,
// where the cleaner rewrites a producer's last batch, producer state; on
// compacted topics, that compaction did its job.
func (c *singleBrokerCluster) logAuditCheck() (Check, int64) {
	check := Check{Name: "log-state", OK: true}
	if !c.serving() {
		check.Detail = "not audited: the broker did not serve at the end"
		return check, 0
	}
	b := c.brokers[len(c.brokers)-1]
	var notes []string
	audited := int64(0)
	for _, tp := range c.topicPartitions() {
		lg := b.PartitionLog(tp.Topic, tp.Partition)
		if lg == nil {
			continue
		}
		a := auditLog(lg, c.knobs)
		audited += int64(a.batches)
		c.cleanableAudited += a.cleanable
		if a.skipped != "" {
			notes = append(notes, fmt.Sprintf("%s not audited: %s", tp, a.skipped))
		}
		for _, f := range a.faults {
			check.OK = false
			notes = append(notes, fmt.Sprintf("%s: %s", tp, f))
		}
	}
	if check.OK {
		what := "producer state"
		if c.knobs.Compacted {
			what = "compaction"
		}
		notes = append(notes, fmt.Sprintf("epoch cache, segment sizes and %s agree with the %d batches of the log", what, audited))
	}
	check.Detail = strings.Join(notes, "; ")
	return check, audited
}
