package scenario

import (
	"fmt"
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
// until.
func replicaBatches(log *storage.Log, from, until int64) ([]replicaBatch, error) {
	var out []replicaBatch
	for offset := from; offset < until; {
		res, err := log.Read(offset, replicaReadBytes, until)
		if err != nil {
			return out, fmt.Errorf("read offset %d: %w", offset, err)
		}
		if res.Batches == 0 {
			break
		}
		batches, err := record.Split(res.Data, res.Batches)
		if err != nil {
			return out, fmt.Errorf("split batches at offset %d: %w", offset, err)
		}
		for _, b := range batches {
			out = append(out, replicaBatch{base: b.BaseOffset(), last: b.LastOffset(), epoch: b.PartitionLeaderEpoch(), crc: b.CRC()})
		}
		offset = res.NextOffset
	}
	return out, nil
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
	compared := 0
	for _, name := range topics {
		t := state.Topics[name]
		if t == nil {
			continue
		}
		for i, p := range t.Partitions {
			d, n, ok := c.compareReplicas(name, int32(i), p)
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
	if len(notes) > 0 {
		check.Detail += " (" + strings.Join(notes, "; ") + ")"
	}
	return check
}

// compareReplicas compares a partition's followers with its leader and
// returns what diverged, how many followers it compared, and false when
// no running leader was there to compare with.
func (c *leaderCrashCluster) compareReplicas(topic string, partition int32, p metadata.Partition) ([]string, int, bool) {
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
		want, err := replicaBatches(leaderLog, from, until)
		if err != nil {
			diverged = append(diverged, fmt.Sprintf("%s-%d: leader b%d: %v", topic, partition, p.Leader, err))
			continue
		}
		got, err := replicaBatches(log, from, until)
		if err != nil {
			diverged = append(diverged, fmt.Sprintf("%s-%d: b%d: %v", topic, partition, id, err))
			continue
		}
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
