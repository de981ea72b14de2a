package storage

import (
	"fmt"
	"math"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// FlushMode says when the log makes its appends durable by itself.
type FlushMode uint8

// Flush modes.
const (
	// FlushNever syncs only when a segment rolls (asynchronously, as
	// Kafka flushes a rolled segment) and when asked: durability comes
	// from replication. This is Kafka's default.
	FlushNever FlushMode = iota
	// FlushEveryMessages syncs once Messages records have been appended
	// since the last sync began (Kafka's flush.messages).
	FlushEveryMessages
	// FlushEveryInterval syncs from Tick once Interval has passed since
	// the last sync began (Kafka's flush.ms).
	FlushEveryInterval
	// FlushGroupCommit is FlushNever for the log itself: the broker calls
	// Flush after appends and acknowledges only when it completes, and
	// concurrent calls share one sync.
	FlushGroupCommit
	flushModeCount
)

var flushModeNames = [flushModeCount]string{"never", "every-messages", "every-interval", "group-commit"}

// String is the mode's name, as ParseFlushMode reads it.
func (m FlushMode) String() string {
	if m < flushModeCount {
		return flushModeNames[m]
	}
	return fmt.Sprintf("flush-mode(%d)", uint8(m))
}

// ParseFlushMode reads a mode written by String.
func ParseFlushMode(s string) (FlushMode, error) {
	for i, n := range flushModeNames {
		if n == s {
			return FlushMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown flush mode %q (want one of %v)", s, flushModeNames)
}

// FlushPolicy is a flush mode and its threshold.
type FlushPolicy struct {
	Mode     FlushMode
	Messages int64
	Interval time.Duration
}

// CleanupPolicy is Kafka's cleanup.policy.
type CleanupPolicy uint8

// Cleanup policies.
const (
	CleanupDelete CleanupPolicy = iota
	CleanupCompact
	CleanupCompactDelete
	cleanupPolicyCount
)

var cleanupPolicyNames = [cleanupPolicyCount]string{"delete", "compact", "compact,delete"}

// String is Kafka's spelling of the policy.
func (p CleanupPolicy) String() string {
	if p < cleanupPolicyCount {
		return cleanupPolicyNames[p]
	}
	return fmt.Sprintf("cleanup-policy(%d)", uint8(p))
}

// ParseCleanupPolicy reads Kafka's spellings ("delete", "compact",
// "compact,delete" or "delete,compact").
func ParseCleanupPolicy(s string) (CleanupPolicy, error) {
	if s == "delete,compact" {
		return CleanupCompactDelete, nil
	}
	for i, n := range cleanupPolicyNames {
		if n == s {
			return CleanupPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown cleanup policy %q (want one of %v)", s, cleanupPolicyNames)
}

func (p CleanupPolicy) deletes() bool  { return p == CleanupDelete || p == CleanupCompactDelete }
func (p CleanupPolicy) compacts() bool { return p == CleanupCompact || p == CleanupCompactDelete }

// Config shapes a partition log. Zero fields take the defaults below
// (Kafka's); the doc of each field says how to switch a feature off.
type Config struct {
	// SegmentBytes rolls the active segment before it would exceed this
	// size (segment.bytes). At most math.MaxInt32.
	SegmentBytes int64
	// SegmentAge rolls a non-empty active segment this long after its
	// first append (segment.ms), measured on the monotonic clock so that
	// wall-clock jumps neither force nor prevent rolls. Negative: never.
	SegmentAge time.Duration
	// IndexIntervalBytes is how many log bytes lie between two sparse
	// index entries (index.interval.bytes).
	IndexIntervalBytes int
	// RetentionAge deletes closed segments whose newest timestamp is
	// older than this (retention.ms). Negative: keep forever.
	RetentionAge time.Duration
	// RetentionBytes deletes the oldest closed segments while the log
	// would still hold this much without them (retention.bytes).
	// Negative: unbounded; zero takes the default, which is unbounded.
	RetentionBytes int64
	// Cleanup is the cleanup policy.
	Cleanup CleanupPolicy
	// TombstoneRetention is how long compaction keeps a tombstone (a
	// record with a null value) after its timestamp
	// (delete.retention.ms). Negative: drop tombstones at once.
	TombstoneRetention time.Duration
	// CompactionInterval is how often Tick compacts a compacted log.
	CompactionInterval time.Duration
	// MaxBatchBytes refuses larger produced batches (message.max.bytes).
	MaxBatchBytes int
	// Flush says when the log syncs by itself.
	Flush FlushPolicy
	// ProducerExpiration forgets idempotent producers idle this long
	// (producer.id.expiration.ms).
	ProducerExpiration time.Duration
	// ProducersMax bounds the producers remembered; past it the least
	// recently active is forgotten.
	ProducersMax int
	// TrustFlushed skips verifying, at Open, the segments that lie wholly
	// below the recovery point, as Kafka does. By default they are read
	// and checked so that corruption in flushed data is reported at
	// once; reads check every batch they return either way.
	TrustFlushed bool
	// FenceRot keeps a batch that recovery finds one bit off above the
	// recovery point as damage, never served, instead of cutting the log
	// there (rottedBatch): for a replica whose peers can repair it, since
	// a cut on a partition's last in-sync replica loses what it held past
	// the flip. A lone log cuts, as Kafka does: a torn write over stale
	// bytes can leave a batch one bit off too, which nothing but its peers
	// could tell from rot, and a lone copy fenced would stay unreadable.
	FenceRot bool
	// Bugs switches planted bugs on: faults.BugSkipCRC,
	// faults.BugIndexOffByOne and faults.BugDedupeOff act here.
	Bugs faults.Bugs
}

// Defaults.
const (
	DefaultSegmentBytes       int64 = 1 << 30
	DefaultSegmentAge               = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes       = 4096
	DefaultRetentionAge             = 7 * 24 * time.Hour
	DefaultTombstoneRetention       = 24 * time.Hour
	DefaultCompactionInterval       = 15 * time.Second
	DefaultMaxBatchBytes            = 1048588
	DefaultProducerExpiration       = 24 * time.Hour
	DefaultProducersMax             = 1 << 16
)

// DefaultConfig is Kafka's defaults: 1 GiB segments, 7-day retention, the
// delete policy, no log-driven flush.
func DefaultConfig() Config { return Config{}.resolved() }

// resolved fills zero fields with defaults.
func (c Config) resolved() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentAge == 0 {
		c.SegmentAge = DefaultSegmentAge
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.RetentionAge == 0 {
		c.RetentionAge = DefaultRetentionAge
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.TombstoneRetention == 0 {
		c.TombstoneRetention = DefaultTombstoneRetention
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = DefaultCompactionInterval
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = int(min(DefaultMaxBatchBytes, c.SegmentBytes))
	}
	if c.ProducerExpiration == 0 {
		c.ProducerExpiration = DefaultProducerExpiration
	}
	if c.ProducersMax == 0 {
		c.ProducersMax = DefaultProducersMax
	}
	return c
}

// check refuses configurations the log cannot honour.
func (c Config) check() error {
	switch {
	case c.SegmentBytes < 2*segmentHeaderRoomBytes || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("segment bytes %d out of range [%d, %d]", c.SegmentBytes, 2*segmentHeaderRoomBytes, math.MaxInt32)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("index interval bytes %d", c.IndexIntervalBytes)
	case c.MaxBatchBytes < segmentHeaderRoomBytes || int64(c.MaxBatchBytes) > c.SegmentBytes:
		return fmt.Errorf("max batch bytes %d out of range [%d, segment bytes %d]", c.MaxBatchBytes, segmentHeaderRoomBytes, c.SegmentBytes)
	case c.Cleanup >= cleanupPolicyCount:
		return fmt.Errorf("cleanup policy %d", c.Cleanup)
	case c.Flush.Mode >= flushModeCount:
		return fmt.Errorf("flush mode %d", c.Flush.Mode)
	case c.Flush.Mode == FlushEveryMessages && c.Flush.Messages <= 0:
		return fmt.Errorf("flush every %d messages", c.Flush.Messages)
	case c.Flush.Mode == FlushEveryInterval && c.Flush.Interval <= 0:
		return fmt.Errorf("flush every %v", c.Flush.Interval)
	case c.CompactionInterval < 0 || c.ProducerExpiration < 0 || c.ProducersMax < 0:
		return fmt.Errorf("compaction interval %v, producer expiration %v, producers max %d", c.CompactionInterval, c.ProducerExpiration, c.ProducersMax)
	}
	return nil
}

// segmentHeaderRoomBytes is the smallest batch: a header with one minimal
// record.
const segmentHeaderRoomBytes = 61 + 7
