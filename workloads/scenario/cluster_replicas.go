package scenario

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/broker/storage"
)

// replicaBatch is what identifies a batch in a replica's log: followers
// append the leader's batches as they are, so replicas that agree hold
// the same offsets, leader epochs and contents (the CRC covers the
// records and producer fields).
type replicaBatch struct {
	base, last int64
	epoch      int32
	crc        uint32
}

func (b replicaBatch) String() string {
	return fmt.Sprintf("offsets %d–%d of leader epoch %d (crc %08x)", b.base, b.last, b.epoch, b.crc)
}

// replicaReadBytes is how much one read of a replica's log takes.
const replicaReadBytes = 1 << 20

// replicaBatches lists a log's batches from offset from up to (not past)
// until, stepping over the ranges the log refuses as damaged (returned
// as fenced): a replica never serves them, and a follower that has not
// yet read its own damage fetches it again once it does (broker/damage.go).
// Reads go through *scratch, kept for the next call.
func replicaBatches(log *storage.Log, from, until int64, scratch *[]byte) (batches []replicaBatch, fenced []storage.Damage, err error) {
	for offset := from; offset < until; {
		res, err := log.ReadInto(*scratch, offset, replicaReadBytes, until)
		if errors.Is(err, storage.ErrCorruptLog) {
			d, ok := damageHolding(log, offset)
			if !ok || d.LastOffset < offset {
				return batches, fenced, fmt.Errorf("read offset %d: %w", offset, err)
			}
			fenced = append(fenced, d)
			offset = d.LastOffset + 1
			continue
		}
		if err != nil {
			return batches, fenced, fmt.Errorf("read offset %d: %w", offset, err)
		}
		if res.Batches == 0 {
			break
		}
		*scratch = res.Data[:0]
		if batches, err = appendReplicaBatches(batches, res.Data, res.Batches); err != nil {
			return batches, fenced, fmt.Errorf("split batches at offset %d: %w", offset, err)
		}
		offset = res.NextOffset
	}
	return batches, fenced, nil
}

// appendReplicaBatches appends what is compared of each of the count
// batches data holds, failing as record.Split would on anything else.
func appendReplicaBatches(batches []replicaBatch, data []byte, count int) ([]replicaBatch, error) {
	position := 0
	for n := 0; len(data) > 0; n++ {
		if n == count {
			return batches, fmt.Errorf("%w: more than %d batches", record.ErrCorrupt, count)
		}
		b, rest, err := record.Next(data)
		if err != nil {
			return batches, fmt.Errorf("batch %d at byte %d: %w", n, position, err)
		}
		batches = append(batches, replicaBatch{base: b.BaseOffset(), last: b.LastOffset(), epoch: b.PartitionLeaderEpoch(), crc: b.CRC()})
		position += len(b)
		data = rest
	}
	return batches, nil
}

// damageHolding is the damaged range of log that holds offset.
func damageHolding(log *storage.Log, offset int64) (storage.Damage, bool) {
	for _, d := range log.Damage() {
		if d.FirstOffset <= offset && offset <= d.LastOffset {
			return d, true
		}
	}
	return storage.Damage{}, false
}

// withoutFenced drops the batches that share an offset with a fenced
// range.
func withoutFenced(batches []replicaBatch, fenced []storage.Damage) []replicaBatch {
	if len(fenced) == 0 {
		return batches
	}
	return slices.DeleteFunc(slices.Clone(batches), func(b replicaBatch) bool {
		return slices.ContainsFunc(fenced, func(d storage.Damage) bool { return b.base <= d.LastOffset && d.FirstOffset <= b.last })
	})
}

// replicasCheck: after the drain, every running replica of a partition
// holds, below the leader's high watermark and its own log end, exactly
// the leader's batches. A follower that kept a tail its leader never had
// (no truncation by leader epoch) and fetched on past it diverges below
// the high watermark for good; correct replicas truncate on their first
// fetch after a leader change, long before the drain ends.
func (c *leaderCrashCluster) replicasCheck() Check {
	topics := c.healTopics
	if len(topics) == 0 {
		topics = []string{leaderCrashTopic}
	}
	state := c.image()
	var diverged, notes []string
	compared, fencedRanges := 0, 0
	for _, name := range topics {
		t := state.Topics[name]
		if t == nil {
			continue
		}
		for i, p := range t.Partitions {
			d, n, ok := c.compareReplicas(name, int32(i), p, &fencedRanges)
			compared += n
			diverged = append(diverged, d...)
			if !ok {
				notes = append(notes, fmt.Sprintf("%s-%d: no running leader to compare with", name, i))
			}
		}
	}
	check := Check{Name: "replicas-agree", OK: len(diverged) == 0}
	switch {
	case len(diverged) > 0:
		check.Detail = "replicas-diverge: " + strings.Join(diverged, "; ")
	default:
		check.Detail = fmt.Sprintf("%d followers hold their leader's batches below the high watermark", compared)
	}
	if fencedRanges > 0 {
		check.Detail += fmt.Sprintf("; %d damaged ranges, fenced by their replica, not compared", fencedRanges)
	}
	if len(notes) > 0 {
		check.Detail += " (" + strings.Join(notes, "; ") + ")"
	}
	return check
}

// compareReplicas compares a partition's followers with its leader and
// returns what diverged, how many followers it compared, and false when
// no running leader was there to compare with; it adds the damaged ranges
// it stepped over to fencedRanges.
func (c *leaderCrashCluster) compareReplicas(topic string, partition int32, p metadata.Partition, fencedRanges *int) ([]string, int, bool) {
	leaderLog, hw, ok := c.replicaLog(p.Leader, topic, partition, true)
	if !ok {
		return nil, 0, false
	}
	var diverged []string
	compared := 0
	for _, id := range p.Replicas {
		log, _, ok := c.replicaLog(id, topic, partition, false)
		if id == p.Leader || !ok {
			continue
		}
		compared++
		from := max(leaderLog.StartOffset(), log.StartOffset())
		until := min(hw, log.EndOffset())
		want, leaderFenced, err := replicaBatches(leaderLog, from, until, &c.replicaScratch)
		if err != nil {
			diverged = append(diverged, fmt.Sprintf("%s-%d: leader b%d: %v", topic, partition, p.Leader, err))
			continue
		}
		got, fenced, err := replicaBatches(log, from, until, &c.replicaScratch)
		if err != nil {
			diverged = append(diverged, fmt.Sprintf("%s-%d: b%d: %v", topic, partition, id, err))
			continue
		}
		fenced = append(fenced, leaderFenced...)
		*fencedRanges += len(fenced)
		want, got = withoutFenced(want, fenced), withoutFenced(got, fenced)
		if d := firstDifference(want, got); d != "" {
			diverged = append(diverged, fmt.Sprintf("%s-%d below the high watermark %d of leader b%d: b%d %s",
				topic, partition, hw, p.Leader, id, d))
		}
	}
	return diverged, compared, true
}

// replicaLog is a running broker's replica of a partition; with leader
// set, only if it leads it.
func (c *leaderCrashCluster) replicaLog(id int32, topic string, partition int32, leader bool) (*storage.Log, int64, bool) {
	b := c.latest[id]
	if b == nil || !c.w.Node(quorumBrokerNode(id)).Up() {
		return nil, 0, false
	}
	log, hw, leads, ok := b.PartitionReplica(topic, partition)
	if !ok || (leader && !leads) {
		return nil, 0, false
	}
	return log, hw, true
}

// firstDifference says where a follower's batches (got) part from its
// leader's (want); "" when they agree.
func firstDifference(want, got []replicaBatch) string {
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("lacks %s", want[i])
		case i >= len(want):
			return fmt.Sprintf("holds %s where the leader holds none", got[i])
		case got[i] != want[i]:
			return fmt.Sprintf("holds %s where the leader holds %s", got[i], want[i])
		}
	}
	return ""
}
