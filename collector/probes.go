package collector

import "github.com/sluice-sim/sluice/sim"

// The collector's rare recovery paths, named so that a swarm reports
// which of them its seeds reached (and lists those none did).
var (
	probeFileChannelReplayed = sim.DeclareProbe("collector/file-channel-replayed",
		"a file channel started on a log that held records and replayed them")
	probeFileChannelTornTail = sim.DeclareProbe("collector/file-channel-bad-record",
		"a file channel's replay stopped at a record that failed its checksum or was cut short")
	probeFileChannelCheckpointDamaged = sim.DeclareProbe("collector/file-channel-checkpoint-damaged",
		"a file channel's checkpoint was unreadable or damaged, so every log file was replayed")
	probeFileChannelReadFailed = sim.DeclareProbe("collector/file-channel-replay-read-failed",
		"a file channel's replay met a read the disk failed and replayed again")
	probeFileChannelSyncFailed = sim.DeclareProbe("collector/file-channel-sync-failed",
		"a file channel's sync failed and writing moved to a new log file")
	probeTaildirRotated = sim.DeclareProbe("collector/taildir-rotation-followed",
		"a TAILDIR source followed a file renamed by rotation without reading it again")
	probeSpoolResumed = sim.DeclareProbe("collector/spooldir-resumed",
		"a spooldir source resumed a file from its tracker after a restart")
	probeSinkRolledBack = sim.DeclareProbe("collector/sink-rolled-back",
		"a sink's delivery failed and its take was rolled back into the channel")
)
