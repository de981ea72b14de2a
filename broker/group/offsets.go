package group

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/faults"
)

// OffsetCommit serves an OffsetCommit. A member commits in its generation;
// a client outside any group (generation -1, no member id) commits only to
// a group without members. The offsets count once their records are
// appended: OffsetFetch does not see them before, and a failed append
// answers the commit with an error and leaves them as they were.
func (c *Coordinator) OffsetCommit(now Now, to ReplyTo, req *kmsg.OffsetCommitRequest) Output {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	e := c.commitStatus(now, req)
	var out Output
	type accepted struct {
		tp     topicPartition
		offset Offset
		code   *int16
	}
	var commits []accepted
	g := c.groups[req.Group]
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for ti, rt := range req.Topics {
		for pi, rp := range rt.Partitions {
			code := &resp.Topics[ti].Partitions[pi].ErrorCode
			metadata := deref(rp.Metadata)
			switch {
			case e != nil:
				*code = e.Code
			case len(metadata) > c.cfg.MetadataBytesMax:
				*code = kerr.OffsetMetadataTooLarge.Code
			case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(rt.Topic, rp.Partition):
				*code = kerr.UnknownTopicOrPartition.Code
			case len(g.offsets)+len(commits) >= c.cfg.OffsetsMax:
				*code = kerr.OffsetMetadataTooLarge.Code
			default:
				o := Offset{Offset: rp.Offset, LeaderEpoch: -1, Metadata: metadata, CommitTimestampMs: now.WallMs}
				if req.Version >= 6 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				tp := topicPartition{rt.Topic, rp.Partition}
				commits = append(commits, accepted{tp, o, code})
				out.Records = append(out.Records, Record{Partition: g.partition,
					Key: offsetCommitKey(g.id, tp.topic, tp.partition), Value: offsetCommitValue(o)})
			}
		}
	}
	out.Replies = []Reply{{To: to, Response: resp}}
	out.Done = func(appended bool) {
		for _, a := range commits {
			switch {
			case !appended:
				*a.code = kerr.CoordinatorNotAvailable.Code
			case c.groups[g.id] == g: // the group may have been deleted meanwhile
				g.offsets[a.tp] = a.offset
				g.idleSince = max(g.idleSince, now.Mono)
				c.touch(g)
			}
		}
	}
	return out
}

// commitStatus is the error every partition of a commit gets, nil when the
// commit may go ahead (then the group exists).
func (c *Coordinator) commitStatus(now Now, req *kmsg.OffsetCommitRequest) *kerr.Error {
	simple := req.Generation < 0 && req.MemberID == ""
	g, e := c.group(req.Group, simple, now)
	switch {
	case e != nil:
		return e
	case req.Group == "":
		return kerr.InvalidGroupID
	case g == nil:
		return kerr.IllegalGeneration
	case simple && g.state == Empty:
		return nil
	case c.cfg.Bugs.On(faults.BugStaleGenerationCommit) && req.Generation >= 0 && req.Generation < g.generation:
		return nil // the planted bug: an older generation's member, known or not, commits
	case g.fenced(req.InstanceID, req.MemberID):
		return kerr.FencedInstanceID
	case simple || g.member(req.MemberID) == nil:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	case g.state == CompletingRebalance:
		return kerr.RebalanceInProgress
	}
	m := g.member(req.MemberID)
	m.expires = now.Mono + m.sessionTimeout
	return nil
}

// OffsetFetch serves an OffsetFetch: v0-7 one group, v8+ several. Null
// topics (v2+) ask for every committed partition.
func (c *Coordinator) OffsetFetch(now Now, to ReplyTo, req *kmsg.OffsetFetchRequest) Output {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil {
			topics = nil
		}
		rg := c.fetchGroup(req.Group, topics)
		resp.ErrorCode = rg.ErrorCode
		for _, t := range rg.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if rg.ErrorCode != 0 && req.Version < 2 {
					sp.ErrorCode = rg.ErrorCode // v0-1 have no group error
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return replyNow(to, resp)
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(rg.Group, rg.Topics))
	}
	return replyNow(to, resp)
}

func (c *Coordinator) fetchGroup(id string, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
	rg := kmsg.NewOffsetFetchResponseGroup()
	rg.Group = id
	if e := c.Status(id); e != nil {
		rg.ErrorCode = e.Code
		for _, t := range topics { // the partitions carry it too, for v0-1
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.ErrorCode = p, -1, e.Code
				gt.Partitions = append(gt.Partitions, gp)
			}
			rg.Topics = append(rg.Topics, gt)
		}
		return rg
	}
	g := c.groups[id]
	if topics == nil && g != nil {
		topics = g.committedTopics()
	}
	for _, t := range topics {
		gt := kmsg.NewOffsetFetchResponseGroupTopic()
		gt.Topic = t.Topic
		for _, p := range t.Partitions {
			gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			gp.Partition, gp.Offset, gp.LeaderEpoch = p, -1, -1
			if g != nil {
				if o, ok := g.offsets[topicPartition{t.Topic, p}]; ok {
					metadata := o.Metadata
					gp.Offset, gp.LeaderEpoch, gp.Metadata = o.Offset, o.LeaderEpoch, &metadata
				}
			}
			gt.Partitions = append(gt.Partitions, gp)
		}
		rg.Topics = append(rg.Topics, gt)
	}
	return rg
}

// committedTopics lists the group's committed partitions by topic, sorted.
func (g *group) committedTopics() []kmsg.OffsetFetchRequestGroupTopic {
	byTopic := map[string][]int32{}
	for tp := range g.offsets {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	topics := []kmsg.OffsetFetchRequestGroupTopic{}
	for _, t := range sortedKeys(byTopic) {
		ps := byTopic[t]
		slices.Sort(ps)
		topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t, Partitions: ps})
	}
	return topics
}

// Committed returns a group's committed offset of a partition.
func (c *Coordinator) Committed(groupID, topic string, partition int32) (Offset, bool) {
	g := c.groups[groupID]
	if g == nil {
		return Offset{}, false
	}
	o, ok := g.offsets[topicPartition{topic, partition}]
	return o, ok
}

// OffsetDelete serves an OffsetDelete (KIP-496): a group's committed
// offsets for partitions of topics no member is subscribed to.
func (c *Coordinator) OffsetDelete(now Now, to ReplyTo, req *kmsg.OffsetDeleteRequest) Output {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g, e := c.group(req.Group, false, now)
	switch {
	case e != nil:
		resp.ErrorCode = e.Code
		return replyNow(to, resp)
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return replyNow(to, resp)
	case g.state != Empty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return replyNow(to, resp)
	}
	subscribed := g.subscribedTopics()
	var out Output
	var deleted []topicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			if subscribed[rt.Topic] {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[tp]; ok {
				deleted = append(deleted, tp)
				out.Records = append(out.Records, Record{Partition: g.partition, Key: offsetCommitKey(g.id, tp.topic, tp.partition)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	out.Replies = []Reply{{To: to, Response: resp}}
	out.Done = func(appended bool) {
		if !appended {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return
		}
		for _, tp := range deleted {
			delete(g.offsets, tp)
		}
	}
	return out
}

// subscribedTopics are the topics a consumer group's members subscribe
// to, read from their consumer protocol metadata.
func (g *group) subscribedTopics() map[string]bool {
	topics := map[string]bool{}
	if g.protocolType != "consumer" {
		return topics
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.protocolMetadata(g.protocol)); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics
}

// DeleteGroups serves a DeleteGroups: an empty group's metadata and
// offsets are removed (tombstones in the log); a group with members is
// NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(now Now, to ReplyTo, req *kmsg.DeleteGroupsRequest) Output {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	var out Output
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		g, e := c.group(id, false, now)
		switch {
		case e != nil:
			rg.ErrorCode = e.Code
		case g == nil:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != Empty:
			rg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			for _, tp := range sortedOffsets(g.offsets) {
				out.Records = append(out.Records, Record{Partition: g.partition, Key: offsetCommitKey(id, tp.topic, tp.partition)})
			}
			out.Records = append(out.Records, Record{Partition: g.partition, Key: groupKey(id)})
			delete(c.groups, id)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	out.Replies = []Reply{{To: to, Response: resp}}
	out.Done = func(appended bool) {
		if appended {
			return
		}
		for i := range resp.Groups {
			if resp.Groups[i].ErrorCode == 0 {
				resp.Groups[i].ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
		}
	}
	return out
}

func sortedOffsets(offsets map[topicPartition]Offset) []topicPartition {
	tps := make([]topicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.partition - b.partition)
	})
	return tps
}

// DescribeGroups serves a DescribeGroups. A group this coordinator does
// not know is "Dead", as Kafka answers; members carry their metadata and
// assignment only while the group is Stable.
func (c *Coordinator) DescribeGroups(now Now, to ReplyTo, req *kmsg.DescribeGroupsRequest) Output {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		g, e := c.group(id, false, now)
		switch {
		case e != nil:
			rg.ErrorCode = e.Code
		case g == nil:
			rg.State = "Dead"
		default:
			rg.State, rg.ProtocolType = g.state.String(), g.protocolType
			if g.state == Stable {
				rg.Protocol = g.protocol
			}
			for _, m := range g.members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
				if g.state == Stable {
					rm.ProtocolMetadata, rm.MemberAssignment = m.protocolMetadata(g.protocol), m.assignment
				}
				rg.Members = append(rg.Members, rm)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return replyNow(to, resp)
}

// ListGroups serves a ListGroups over every loaded partition; v4 filters
// by state, v5 by type (every group here is "classic").
func (c *Coordinator) ListGroups(now Now, to ReplyTo, req *kmsg.ListGroupsRequest) Output {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, p := range c.partitions {
		if p == partitionLoading {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
	}
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return t == "classic" || t == "Classic" }) {
		return replyNow(to, resp)
	}
	for _, id := range c.Groups() {
		g := c.groups[id]
		if len(req.StatesFilter) > 0 && !slices.Contains(req.StatesFilter, g.state.String()) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = id, g.protocolType, g.state.String(), "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return replyNow(to, resp)
}
