package broker

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/broker/storage"
)

// topicLogConfig applies a topic's configs (Kafka's names and units) to
// the broker's log defaults. An unknown key or a bad value is an error
// that names it.
func topicLogConfig(defaults storage.Config, configs map[string]string) (storage.Config, error) {
	cfg := defaults
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := applyTopicConfig(&cfg, k, configs[k]); err != nil {
			return cfg, fmt.Errorf("topic config %s=%q: %w", k, configs[k], err)
		}
	}
	return cfg, nil
}

func applyTopicConfig(cfg *storage.Config, key, value string) error {
	if key == "unclean.leader.election.enable" {
		if value != "true" && value != "false" {
			return fmt.Errorf("not true or false")
		}
		return nil // the controller's, when it elects a leader
	}
	if key == "cleanup.policy" {
		p, err := storage.ParseCleanupPolicy(value)
		cfg.Cleanup = p
		return err
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	ms := func(d *time.Duration) {
		if n < 0 {
			*d = -1
		} else {
			*d = time.Duration(n) * time.Millisecond
		}
	}
	switch key {
	case "delete.retention.ms":
		ms(&cfg.TombstoneRetention)
	case "retention.ms":
		ms(&cfg.RetentionAge)
	case "segment.ms":
		ms(&cfg.SegmentAge)
	case "retention.bytes":
		cfg.RetentionBytes = n
	case "segment.bytes":
		cfg.SegmentBytes = n
	case "index.interval.bytes":
		cfg.IndexIntervalBytes = int(n)
	case "max.message.bytes":
		cfg.MaxBatchBytes = int(n)
	case "flush.messages":
		cfg.Flush = storage.FlushPolicy{Mode: storage.FlushEveryMessages, Messages: n}
	case "flush.ms":
		cfg.Flush = storage.FlushPolicy{Mode: storage.FlushEveryInterval, Interval: time.Duration(n) * time.Millisecond}
	case "min.insync.replicas":
		if n < 1 {
			return fmt.Errorf("must be at least 1")
		}
	default:
		return fmt.Errorf("unknown topic config")
	}
	if n < -1 {
		return fmt.Errorf("negative")
	}
	return nil
}
