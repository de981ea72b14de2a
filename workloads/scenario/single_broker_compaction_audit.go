package scenario

import (
	"fmt"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
)

// The end-of-run compaction audit. The history checkers excuse what a
// cleaner may remove from a compacted topic, so a cleaner that removes
// nothing, or stops part way, passes them: the audit asks the log whether
// compaction did its job. Kafka's guarantee (KIP-354, max.compaction.lag.ms)
// is that a record superseded by a newer one of its key is cleaned within
// a bounded time once it lies in the log's cleanable part; here that part
// is the closed, flushed segments below the active one, and the bound is
// easy to meet: the clients stop writing drainSettle after the faults
// heal, and the broker compacts every compactionInterval for the rest of
// the drain (about eight times), so by the end every superseded record of
// the cleanable part must be gone. And under cleanup.policy=compact
// alone nothing deletes: Kafka ignores retention.ms and retention.bytes
// then, and compaction keeps each cleaned segment's base offset, so the
// log still starts at zero.

// compactionAuditRecordsMax bounds the records the audit reads of one
// partition's cleanable part.
const compactionAuditRecordsMax = 1 << 22

// cleanableEnd is where the log's cleanable part ends: the leading closed,
// non-empty segments that lie wholly below the active segment and the
// recovery point (the single broker's high watermark is never below
// it), as the cleaner chooses them.
func cleanableEnd(lg *storage.Log) int64 {
	segments := lg.Segments()
	end := lg.StartOffset()
	if len(segments) == 0 {
		return end
	}
	bound := min(segments[len(segments)-1].BaseOffset, lg.RecoveryPoint())
	for _, s := range segments[:len(segments)-1] {
		if !s.Closed || s.NextOffset > bound || s.NextOffset <= s.BaseOffset {
			break
		}
		end = s.NextOffset
	}
	return end
}

// keyedRecord is what the audit keeps of one record.
type keyedRecord struct {
	offset int64
	key    string
}

// readCleanable reads the keyed records of lg below end.
func readCleanable(lg *storage.Log, end int64) ([]keyedRecord, error) {
	var out []keyedRecord
	for offset := lg.StartOffset(); offset < end; {
		res, err := lg.Read(offset, auditReadBytes, end)
		if err != nil {
			return nil, err
		}
		if res.Batches == 0 || res.NextOffset <= offset {
			break
		}
		for data := res.Data; len(data) > 0; {
			size := record.Batch(data).Size()
			if size <= 0 || size > int64(len(data)) {
				return nil, fmt.Errorf("read at %d: a batch of %d bytes in %d", offset, size, len(data))
			}
			b := record.Batch(data[:size])
			data = data[size:]
			if b.Control() {
				continue
			}
			records, err := b.Records()
			if err != nil {
				return nil, fmt.Errorf("batch at %d: %w", b.BaseOffset(), err)
			}
			for _, r := range records {
				if r.Offset < end && r.Key != nil {
					out = append(out, keyedRecord{offset: r.Offset, key: string(r.Key)})
				}
			}
		}
		if len(out) > compactionAuditRecordsMax {
			return nil, fmt.Errorf("more than %d records below %d", compactionAuditRecordsMax, end)
		}
		offset = res.NextOffset
	}
	return out, nil
}

// supersededLeft lists the records of the cleanable part that a newer
// record of their key in the same part supersedes: what the cleaner must
// have removed.
func supersededLeft(records []keyedRecord) (count int, examples []string) {
	newest := map[string]int64{}
	for _, r := range records {
		newest[r.key] = max(newest[r.key], r.offset)
	}
	for _, r := range records {
		if newest[r.key] == r.offset {
			continue
		}
		count++
		if len(examples) < 3 {
			examples = append(examples, fmt.Sprintf("key %q at %d (newest at %d)", r.key, r.offset, newest[r.key]))
		}
	}
	return count, examples
}

// auditCompaction checks one compacted partition's log at the end of the
// run; it returns the faults found and the offset its cleanable part ends
// at.
func auditCompaction(lg *storage.Log, k singleBrokerKnobs) ([]string, int64, error) {
	var faults []string
	if k.cleanupPolicy() == storage.CleanupCompact && lg.StartOffset() != 0 {
		faults = append(faults, fmt.Sprintf("the log starts at %d, but under cleanup.policy=compact alone nothing deletes records", lg.StartOffset()))
	}
	end := cleanableEnd(lg)
	records, err := readCleanable(lg, end)
	if err != nil {
		return faults, end, err
	}
	if n, examples := supersededLeft(records); n > 0 {
		faults = append(faults, fmt.Sprintf("%d superseded records remain in the cleanable part below %d, long after the writes stopped: %v", n, end, examples))
	}
	return faults, end, nil
}
