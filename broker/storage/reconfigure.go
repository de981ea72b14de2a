package storage

import "fmt"

// Reconfigure applies changed topic configs to an open log (a topic's
// AlterConfigs): limits, retention, compaction and the flush policy take
// effect from the next append or tick. Planted bugs stay as the log was
// opened with.
func (l *Log) Reconfigure(cfg Config) error {
	cfg = cfg.resolved()
	if err := cfg.check(); err != nil {
		return fmt.Errorf("reconfigure %s: %w", l.dir, err)
	}
	cfg.Bugs, cfg.FenceRot = l.cfg.Bugs, l.cfg.FenceRot
	l.cfg = cfg
	return nil
}

// CheckConfig reports whether Open or Reconfigure would accept cfg, so a
// topic's configs can be refused before they are recorded.
func CheckConfig(cfg Config) error { return cfg.resolved().check() }
