package kafka

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Position validation (KIP-320). A position that came with a leader epoch
// (a committed offset's) is checked before it is fetched from, and again
// instead of a reset when a leader answers OFFSET_OUT_OF_RANGE:
// OffsetForLeaderEpoch asks the leader where the position's epoch ends in
// its log. Past the position, the position is valid; before it, the log
// was truncated under the position and the consumer goes back to where
// the logs diverge; no epoch or offset known, the reset policy decides, as
// in Kafka's consumer. A position found valid that a fetch still finds
// out of range is then reset per the policy.

// sendValidations asks each leader to validate the positions it leads.
func (co *Consumer) sendValidations(now time.Duration) {
	groups := co.groupByLeader(func(cp *consumedPart) bool {
		return cp.validate && cp.reset == resetNothing && cp.position >= 0 && cp.ready(now) && co.epochKnown(cp)
	})
	for _, g := range groups {
		if !co.cl.hasRoom(g.leader) {
			continue
		}
		co.sendValidation(g.leader, slices.Clone(g.parts)) // the callback keeps them
	}
}

func (co *Consumer) sendValidation(leader int32, parts []*consumedPart) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1 // a consumer
	gens := make([]int, len(parts))
	positions := make([]int64, len(parts))
	epochs := make([]int32, len(parts))
	for i, cp := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != cp.tp.Topic {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = cp.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		t := &req.Topics[len(req.Topics)-1]
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = cp.tp.Partition, co.leaderEpoch(cp.tp), cp.epoch
		t.Partitions = append(t.Partitions, p)
		cp.validating = true
		gens[i], positions[i], epochs[i] = cp.gen, cp.position, cp.epoch
	}
	co.stats.Validations++
	co.cl.call(leader, req, 0, false, func(resp kmsg.Response, err error) {
		for _, cp := range parts {
			cp.validating = false
		}
		if co.closed {
			return
		}
		var got map[TopicPartition]kmsg.OffsetForLeaderEpochResponseTopicPartition
		if err == nil {
			got = map[TopicPartition]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
			for _, t := range resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
				for _, p := range t.Partitions {
					got[TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p
				}
			}
		}
		for i, cp := range parts {
			// A seek, a reset or a read since moved the position: this
			// answer is about one the consumer no longer holds.
			if cp.gen != gens[i] || co.byTP[cp.tp] != cp || cp.position != positions[i] || cp.epoch != epochs[i] {
				continue
			}
			co.onValidated(cp, got, err)
		}
		co.step()
	})
}

func (co *Consumer) onValidated(cp *consumedPart, got map[TopicPartition]kmsg.OffsetForLeaderEpochResponseTopicPartition, err error) {
	now := co.env.Clock.Mono()
	if unsupported := (*errUnsupported)(nil); errors.As(err, &unsupported) {
		// Kafka's consumer skips validation against such a broker.
		cp.validate = false
		return
	}
	if err != nil {
		co.cl.refresh()
		co.backoff(cp, now, fmt.Errorf("offset for leader epoch: %w", err))
		return
	}
	p, ok := got[cp.tp]
	switch {
	case !ok:
		co.backoff(cp, now, fmt.Errorf("offset for leader epoch: %s missing from the response", cp.tp))
	case p.ErrorCode != codeNone:
		co.cl.refresh()
		co.backoff(cp, now, fmt.Errorf("offset for leader epoch at %d: %w", cp.position, &CodeError{Code: p.ErrorCode}))
	case p.LeaderEpoch < 0 || p.EndOffset < 0:
		// The leader knows nothing of the epoch: the reset policy decides.
		co.resetPosition(cp, fmt.Errorf("%s: epoch %d unknown to the leader: %w", cp.tp, cp.epoch, ErrOffsetOutOfRange))
	case p.EndOffset < cp.position || p.LeaderEpoch < cp.epoch:
		co.env.Log.Logf("kafka consumer %s: %s truncated under position %d (epoch %d): the logs diverge at %d (epoch %d)",
			co.cfg.ClientID, cp.tp, cp.position, cp.epoch, p.EndOffset, p.LeaderEpoch)
		co.stats.Truncations++
		cp.gen++
		cp.position, cp.epoch, cp.validate = p.EndOffset, p.LeaderEpoch, false
		co.holdMovedPosition(cp)
	default:
		cp.validate = false
		cp.failures, cp.retryAt = 0, 0
	}
}

// resetPosition moves cp per the reset policy after its position left the
// log; with ResetNone cp stops with cause.
func (co *Consumer) resetPosition(cp *consumedPart, cause error) {
	co.stats.Resets++
	cp.stall.resets++
	cp.gen++
	cp.position, cp.epoch, cp.validate = -1, -1, false
	cp.reset = co.policyReset()
	co.holdMovedPosition(cp)
	if cp.reset == resetNothing {
		cp.err = cause
	}
}

// holdMovedPosition keeps cp from being read from in the poll in progress
// after an answer moved its position: the next poll first records an
// assign, so that the history says reading may start anywhere.
func (co *Consumer) holdMovedPosition(cp *consumedPart) {
	cp.resetAwaitsPoll = true
	cp.fetchedInPoll = true
	co.assignDirty = true
}
