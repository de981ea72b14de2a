package scenario

import "slices"

// probesReached are the probes each scenario's seeds are known to hit:
// every one was hit in at least one seed of the 10,000-seed swarm and the
// swarms after it (DESIGN.md, Reproduction). A swarm of a scenario reports
// those of its probes no seed hit as never hit, a weak spot; a declared
// probe no scenario of a swarm is known to reach (a cluster's ISR shrink in
// a single-broker swarm) is counted apart, not as a weakness. A scenario
// missing here reaches none (clock-jump and controller-crash fault only
// clocks and controllers, which no probe marks).
var probesReached = map[string][]string{
	"cluster-swarm": {"broker/damage-found-restart", "broker/damaged-replica-truncated", "broker/epoch-truncation",
		"broker/isr-expanded", "broker/isr-shrunk", "broker/restart-after-fatal", "controller/leader-lost-quorum",
		"controller/sync-failed-restart", "controller/torn-tail-cut", "storage/damage-fenced", "storage/flushed-data-lost",
		"storage/index-rebuilt", "storage/log-offline", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point", "storage/rot-fenced-above-recovery-point", "storage/torn-tail-cut"},
	"controller-quorum": {"controller/leader-lost-quorum", "controller/snapshot-installed", "controller/sync-failed-restart",
		"controller/torn-tail-cut"},
	"coordinator-failover": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk", "broker/offsets-loaded",
		"storage/producer-state-replayed", "storage/rewritten-above-recovery-point", "storage/torn-tail-cut"},
	"counter": {"counter/sync-failed-reload", "counter/torn-tail-cut"},
	"flume-pipeline": {"collector/file-channel-bad-record", "collector/file-channel-checkpoint-damaged",
		"collector/file-channel-replay-read-failed", "collector/file-channel-replayed", "collector/file-channel-sync-failed",
		"collector/sink-rolled-back", "collector/spooldir-resumed", "collector/taildir-rotation-followed"},
	"follower-cut": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point"},
	"group-rebalance": {"broker/offsets-loaded", "broker/restart-after-fatal", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point", "storage/torn-tail-cut"},
	"isolated-leader": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk"},
	"leader-crash": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point"},
	"pauses": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk"},
	"power-loss-all": {"broker/epoch-truncation", "broker/isr-expanded", "storage/index-rebuilt", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point", "storage/torn-tail-cut"},
	"rolling-restart": {"broker/epoch-truncation", "broker/isr-expanded", "broker/isr-shrunk", "storage/rewritten-above-recovery-point"},
	"single-broker": {"broker/compaction-removed-records", "broker/restart-after-fatal", "storage/compaction-swap-completed",
		"storage/index-rebuilt", "storage/log-offline", "storage/producer-state-replayed",
		"storage/rewritten-above-recovery-point", "storage/torn-tail-cut"},
	"slow-follower": {"broker/isr-expanded", "broker/isr-shrunk"},
}

// faultsActed are the fault ops each scenario's seeds are known to apply
// (the same swarms): those its generated schedules draw. The planted
// scenarios (leader-crash and the others around one fault) act through
// their own episodes, which are not fault ops, and draw none; single-broker
// draws bit flips only with --param faults=corrupt, which a swarm of it
// then counts as it counts any op.
var faultsActed = map[string][]string{
	"cluster-swarm": {"block", "clock-drift", "clock-jump", "corrupt", "disk-heal", "fail-syncs", "heal", "kill", "meta-errors",
		"partition", "pause", "power-loss", "restart", "resume", "slow-disk"},
	"controller-quorum": {"block", "clock-drift", "clock-jump", "disk-full", "disk-heal", "fail-syncs", "heal", "kill",
		"meta-errors", "partition", "pause", "power-loss", "read-errors", "restart", "resume", "slow-disk"},
	"counter": {"block", "clock-drift", "clock-jump", "disk-full", "disk-heal", "fail-syncs", "heal", "kill", "partition",
		"pause", "power-loss", "read-errors", "restart", "resume", "slow-disk"},
	"flume-pipeline": {"block", "clock-drift", "clock-jump", "disk-full", "disk-heal", "fail-syncs", "heal", "kill",
		"meta-errors", "partition", "pause", "power-loss", "read-errors", "restart", "resume", "slow-disk"},
	"group-rebalance": {"block", "clock-drift", "clock-jump", "disk-full", "disk-heal", "fail-syncs", "heal", "kill",
		"partition", "pause", "power-loss", "read-errors", "restart", "resume", "slow-disk"},
	"single-broker": {"block", "clock-drift", "clock-jump", "disk-full", "disk-heal", "fail-syncs", "heal", "kill",
		"meta-errors", "partition", "pause", "power-loss", "read-errors", "restart", "resume", "slow-disk"},
}

// FaultsActed names the fault ops the scenario's seeds are known to apply,
// sorted; none for a scenario that applies none or is unknown.
func FaultsActed(scenario string) []string {
	return slices.Sorted(slices.Values(faultsActed[scenario]))
}

// ProbesReached names the probes the scenario's seeds are known to hit,
// sorted; none for a scenario that reaches none or is unknown.
func ProbesReached(scenario string) []string {
	return slices.Sorted(slices.Values(probesReached[scenario]))
}
