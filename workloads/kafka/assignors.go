package kafka

import (
	"cmp"
	"fmt"
	"slices"
)

// The partition assignors a group's leader runs, as Kafka's consumer
// names them. Each is a pure function of the members' subscriptions and
// the topics' partition counts, deterministic whatever the order of its
// input: members are taken in member id order.
const (
	AssignorRange             = "range"
	AssignorRoundRobin        = "roundrobin"
	AssignorCooperativeSticky = "cooperative-sticky"
)

// Assignors lists the assignor names, sorted.
var Assignors = []string{AssignorCooperativeSticky, AssignorRange, AssignorRoundRobin}

// assignorCooperative reports whether an assignor follows KIP-429's
// incremental protocol: members keep what they own across a rebalance and
// give up only what the leader takes from them.
func assignorCooperative(name string) bool { return name == AssignorCooperativeSticky }

// memberSubscription is what a member told the group in JoinGroup.
type memberSubscription struct {
	id     string
	topics []string
	// owned is what the member owned when it joined (cooperative only).
	owned []TopicPartition
}

// assignment maps member ids to their partitions, each list sorted.
type assignment map[string][]TopicPartition

// assign runs the named assignor; partitions gives each topic's count.
func assign(name string, members []memberSubscription, partitions map[string]int32) (assignment, error) {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b memberSubscription) int { return cmp.Compare(a.id, b.id) })
	var out assignment
	switch name {
	case AssignorRange:
		out = assignRange(members, partitions)
	case AssignorRoundRobin:
		out = assignRoundRobin(members, partitions)
	case AssignorCooperativeSticky:
		out = assignCooperativeSticky(members, partitions)
	default:
		return nil, fmt.Errorf("unknown assignor %q (known: %v)", name, Assignors)
	}
	for _, m := range members {
		slices.SortFunc(out[m.id], compareTP)
		if out[m.id] == nil {
			out[m.id] = []TopicPartition{}
		}
	}
	return out, nil
}

// subscribedTopics is every topic some member subscribes to and that has
// partitions, sorted.
func subscribedTopics(members []memberSubscription, partitions map[string]int32) []string {
	var topics []string
	for _, m := range members {
		for _, t := range m.topics {
			if partitions[t] > 0 {
				topics = append(topics, t)
			}
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

func subscribes(m memberSubscription, topic string) bool { return slices.Contains(m.topics, topic) }

// assignRange gives each topic's partitions in contiguous ranges to its
// subscribers in member order, the first ones one more when the count does
// not divide evenly.
func assignRange(members []memberSubscription, partitions map[string]int32) assignment {
	out := assignment{}
	for _, topic := range subscribedTopics(members, partitions) {
		var subs []string
		for _, m := range members {
			if subscribes(m, topic) {
				subs = append(subs, m.id)
			}
		}
		n := int(partitions[topic])
		per, extra := n/len(subs), n%len(subs)
		next := 0
		for i, id := range subs {
			take := per
			if i < extra {
				take++
			}
			for p := next; p < next+take; p++ {
				out[id] = append(out[id], TopicPartition{Topic: topic, Partition: int32(p)})
			}
			next += take
		}
	}
	return out
}

// assignRoundRobin deals every partition, in topic and partition order, to
// the members in turn, skipping members not subscribed to its topic.
func assignRoundRobin(members []memberSubscription, partitions map[string]int32) assignment {
	out := assignment{}
	next := 0
	for _, topic := range subscribedTopics(members, partitions) {
		for p := range partitions[topic] {
			for range members {
				m := members[next%len(members)]
				next++
				if subscribes(m, topic) {
					out[m.id] = append(out[m.id], TopicPartition{Topic: topic, Partition: p})
					break
				}
			}
		}
	}
	return out
}

// assignCooperativeSticky balances the partitions while moving as few as
// it can, and then, as KIP-429 requires, withholds every partition that
// moves: it is taken from its owner in this generation and given to its
// new owner in the next, once the owner has revoked it and rejoined. So no
// partition is ever owned by two members at once.
func assignCooperativeSticky(members []memberSubscription, partitions map[string]int32) assignment {
	target := stickyTarget(members, partitions)
	owner := map[TopicPartition]string{}
	for _, m := range members {
		for _, tp := range m.owned {
			if _, taken := owner[tp]; !taken {
				owner[tp] = m.id
			}
		}
	}
	out := assignment{}
	for _, m := range members {
		for _, tp := range target[m.id] {
			if o, owned := owner[tp]; owned && o != m.id {
				continue // moves: its owner revokes it first
			}
			out[m.id] = append(out[m.id], tp)
		}
	}
	return out
}

// stickyTarget is the balanced assignment closest to what members own: a
// member keeps what it owns up to its quota (the counts differ by at most
// one, the larger quotas going to those who own most), and the rest is
// dealt to the members below their quota. A partition two members claim
// stays with the first in member order.
func stickyTarget(members []memberSubscription, partitions map[string]int32) assignment {
	var all []TopicPartition
	for _, topic := range subscribedTopics(members, partitions) {
		for p := range partitions[topic] {
			all = append(all, TopicPartition{Topic: topic, Partition: p})
		}
	}
	exists := map[TopicPartition]bool{}
	for _, tp := range all {
		exists[tp] = true
	}
	kept := map[string][]TopicPartition{}
	claimed := map[TopicPartition]bool{}
	for _, m := range members {
		owned := slices.Clone(m.owned)
		slices.SortFunc(owned, compareTP)
		for _, tp := range owned {
			if exists[tp] && !claimed[tp] && subscribes(m, tp.Topic) {
				claimed[tp] = true
				kept[m.id] = append(kept[m.id], tp)
			}
		}
	}
	byOwned := slices.Clone(members)
	slices.SortStableFunc(byOwned, func(a, b memberSubscription) int {
		return cmp.Compare(len(kept[b.id]), len(kept[a.id]))
	})
	quota := map[string]int{}
	for i, m := range byOwned {
		quota[m.id] = len(all) / len(members)
		if i < len(all)%len(members) {
			quota[m.id]++
		}
	}
	out := assignment{}
	for _, m := range members {
		keep := kept[m.id]
		if len(keep) > quota[m.id] {
			for _, tp := range keep[quota[m.id]:] {
				claimed[tp] = false
			}
			keep = keep[:quota[m.id]]
		}
		out[m.id] = slices.Clone(keep)
	}
	var free []TopicPartition
	for _, tp := range all {
		if !claimed[tp] {
			free = append(free, tp)
		}
	}
	free = dealFree(members, free, quota, out)
	// Partitions left over (members subscribed to different topics) go to
	// the subscribed member holding fewest.
	for _, tp := range free {
		best := ""
		for _, m := range members {
			if subscribes(m, tp.Topic) && (best == "" || len(out[m.id]) < len(out[best])) {
				best = m.id
			}
		}
		if best != "" {
			out[best] = append(out[best], tp)
		}
	}
	return out
}

// dealFree gives free partitions to members below their quota, in member
// order, and returns those no subscribed member had room for.
func dealFree(members []memberSubscription, free []TopicPartition, quota map[string]int, out assignment) []TopicPartition {
	var left []TopicPartition
	for _, tp := range free {
		placed := false
		for _, m := range members {
			if len(out[m.id]) < quota[m.id] && subscribes(m, tp.Topic) {
				out[m.id] = append(out[m.id], tp)
				placed = true
				break
			}
		}
		if !placed {
			left = append(left, tp)
		}
	}
	return left
}
