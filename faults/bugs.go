package faults

import (
	"fmt"
	"slices"
	"strings"
)

// Bug names a planted bug: a switch, off by default, that breaks one
// guarantee on purpose so that a test can show a checker catches it.
type Bug string

// BugInfo describes a planted bug.
type BugInfo struct {
	Name Bug
	// Breaks says which guarantee the bug breaks and how.
	Breaks string
}

// The planted bugs. Each is off unless a run switches it on, and each has a
// test showing that a checker catches it.
const (
	BugAckBeforeSync     Bug = "ack-before-sync"
	BugDedupeOff         Bug = "dedupe-off"
	BugMapOrder          Bug = "map-order"
	BugSkipCRC           Bug = "skip-crc"
	BugIndexOffByOne     Bug = "index-off-by-one"
	BugTrustPageCache    Bug = "trust-page-cache"
	BugRaftAckBeforeSync Bug = "raft-ack-before-sync"
	// Replication bugs of a broker cluster.
	BugHWFromLeaderOnly  Bug = "hw-from-leader-only"
	BugAckBeforeISR      Bug = "ack-before-isr"
	BugNoEpochTruncation Bug = "no-epoch-truncation"
	BugISRShrinkLocal    Bug = "isr-shrink-local"
	BugStaleLeaderAcks   Bug = "stale-leader-acks"
	// BugNeverShrinkISR breaks availability, not safety: it is caught by
	// the unavailable check of the cluster scenarios.
	BugNeverShrinkISR Bug = "never-shrink-isr"
	// BugConsumerSkipsPastHW is a client bug, not a broker one: it breaks
	// progress, not safety, and is caught by the no-progress watchdog.
	BugConsumerSkipsPastHW Bug = "consumer-skips-past-hw"
	// BugFileChannelAckBeforeFsync is a collector bug: the agent's file
	// channel, not the broker.
	BugFileChannelAckBeforeFsync Bug = "file-channel-ack-before-fsync"
	// The collector's bugs beyond its file channel.
	BugTaildirPositionBeforeCommit Bug = "taildir-position-before-commit"
	BugSourceAckBeforeCommit       Bug = "source-ack-before-commit"
	BugTakeRollbackReorders        Bug = "take-rollback-reorders"
	// BugCommitBeforeProcess is a client bug: the simulated group
	// consumer's, not the coordinator's.
	BugCommitBeforeProcess Bug = "commit-before-process"
	// BugKafkaSourceCommitBeforePut is the collector's kafka source
	// committing its group's offsets before its channel commit.
	BugKafkaSourceCommitBeforePut Bug = "kafka-source-commit-before-put"
	// BugKafkaSinkCommitBeforeAck is the collector's Kafka sink committing
	// its channel take before the broker acknowledged the batch.
	BugKafkaSinkCommitBeforeAck Bug = "kafka-sink-commit-before-ack"
	// The group coordinator's bugs.
	BugNoOffsetReload        Bug = "no-offset-reload"
	BugStaleGenerationCommit Bug = "stale-generation-commit"
)

var registry = map[Bug]BugInfo{
	BugAckBeforeSync: {BugAckBeforeSync, "writes are acknowledged before fsync completes: a power loss loses acknowledged writes"},
	BugDedupeOff:     {BugDedupeOff, "a retried request is applied again: timeouts turn into duplicates"},
	BugMapOrder:      {BugMapOrder, "the counter client sends its window in map iteration order: two runs of one seed diverge"},
	BugSkipCRC:       {BugSkipCRC, "the log does not verify checksums on recovery and reads: corrupt or torn data is served"},
	BugIndexOffByOne: {BugIndexOffByOne, "the offset index lookup lands one entry too far: fetches skip records"},
	BugTrustPageCache: {BugTrustPageCache, "log recovery trusts what it reads back above the recovery point to be written by the next fsync: " +
		"after a failed fsync (Linux marks the pages clean) a power loss loses data the broker acknowledged"},
	BugRaftAckBeforeSync: {BugRaftAckBeforeSync, "a controller sends raft messages and applies entries before they are durable: a correlated power loss loses committed metadata"},
	BugHWFromLeaderOnly: {BugHWFromLeaderOnly, "a partition leader moves its high watermark to its own log end without waiting for the ISR: " +
		"consumers read, and acks=all acknowledges, writes a leader crash then loses"},
	BugAckBeforeISR: {BugAckBeforeISR, "acks=all is answered once the leader appended, without waiting for the ISR: " +
		"a leader crash loses acknowledged writes"},
	BugNoEpochTruncation: {BugNoEpochTruncation, "a follower keeps its unreplicated tail instead of truncating by leader epoch: " +
		"replicas diverge after a leader change"},
	BugISRShrinkLocal: {BugISRShrinkLocal, "a partition leader drops lagging followers from its ISR without the controller: " +
		"it acknowledges writes they lack, and the controller, still counting them in sync, elects one of them"},
	BugStaleLeaderAcks: {BugStaleLeaderAcks, "a leader deposed by a newer leader epoch answers the acks=all writes it still holds as written " +
		"instead of NOT_LEADER_OR_FOLLOWER: writes its ISR never had, which it then truncates as a follower, are lost"},
	BugNeverShrinkISR: {BugNeverShrinkISR, "a partition leader never drops a follower that stopped fetching from its ISR: " +
		"while a follower is cut off from its leader (but not fenced by the controllers), acks=all writes wait for it until it returns"},
	BugConsumerSkipsPastHW: {BugConsumerSkipsPastHW, "a fetch that stops short of the high watermark moves the consumer one past it: " +
		"OFFSET_OUT_OF_RANGE, a reset to the earliest offset, and the same records re-read forever"},
	BugFileChannelAckBeforeFsync: {BugFileChannelAckBeforeFsync, "the collector's file channel answers a commit before its fsync: " +
		"a power loss of the agent loses events its clients were told were taken"},
	BugTaildirPositionBeforeCommit: {BugTaildirPositionBeforeCommit, "the collector's TAILDIR source writes a batch's end to its position file before the channel commit: " +
		"a crash while the commit is in flight skips those lines for good"},
	BugSourceAckBeforeCommit: {BugSourceAckBeforeCommit, "the collector's netcat and avro sources acknowledge a batch when they hand it to the channel, before its commit: " +
		"a crash while the commit is in flight loses events their senders were told were taken"},
	BugTakeRollbackReorders: {BugTakeRollbackReorders, "a rolled-back take returns its events to the back of the collector's channel instead of the front: " +
		"a sink that fails delivers events out of the order they were committed"},
	BugCommitBeforeProcess: {BugCommitBeforeProcess, "a group member commits the offsets of what it polled before it has processed it: " +
		"killed in between, the records are lost to the group, whose next owner starts past them"},
	BugKafkaSourceCommitBeforePut: {BugKafkaSourceCommitBeforePut, "the collector's kafka source commits a poll's offsets to its group before the channel commit of its records: " +
		"an agent killed in between restarts past records no channel holds"},
	BugKafkaSinkCommitBeforeAck: {BugKafkaSinkCommitBeforeAck, "the collector's Kafka sink commits its channel take once a batch is handed to the producer, before the broker acknowledged it, and drops a batch whose send failed instead of rolling it back: " +
		"an agent killed while the produce is in flight, or a send that times out, loses events no channel holds any more"},
	BugNoOffsetReload: {BugNoOffsetReload, "a broker that becomes a group's coordinator serves it without reading __consumer_offsets back: " +
		"the group's members and committed offsets are gone, and its members start again from the reset policy"},
	BugStaleGenerationCommit: {BugStaleGenerationCommit, "the group coordinator accepts an OffsetCommit from an older generation: " +
		"a member that lost a partition commits over its new owner's offsets, moving them backwards"},
}

// KnownBugs lists the planted bugs, sorted by name.
func KnownBugs() []BugInfo {
	infos := make([]BugInfo, 0, len(registry))
	for _, info := range registry {
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b BugInfo) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return infos
}

// Bugs is a set of planted bugs switched on.
type Bugs map[Bug]bool

// ParseBugs turns names into a set; an unknown name is an error listing the
// known ones.
func ParseBugs(names []string) (Bugs, error) {
	set := Bugs{}
	for _, n := range names {
		if _, ok := registry[Bug(n)]; !ok {
			known := make([]string, 0, len(registry))
			for _, info := range KnownBugs() {
				known = append(known, string(info.Name))
			}
			return nil, fmt.Errorf("unknown bug %q (known: %s)", n, strings.Join(known, ", "))
		}
		set[Bug(n)] = true
	}
	return set, nil
}

// On reports whether bug b is switched on.
func (s Bugs) On(b Bug) bool { return s[b] }

// Names lists the bugs switched on, sorted.
func (s Bugs) Names() []string {
	names := make([]string, 0, len(s))
	for b, on := range s {
		if on {
			names = append(names, string(b))
		}
	}
	slices.Sort(names)
	return names
}
