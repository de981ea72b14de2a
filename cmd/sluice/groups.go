package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

type groupsOptions struct {
	adminFlags
	list, describe, reset, del    bool
	group                         string
	topics                        []string
	allTopics                     bool
	toEarliest, toLatest, execute bool
	toOffset                      int64
}

func newGroupsCommand() *cobra.Command {
	o := groupsOptions{toOffset: -1}
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List and describe consumer groups and reset their offsets, as kafka-consumer-groups.sh does",
		Long: `Inspect consumer groups over Kafka's protocol, with the flags of Kafka's
kafka-consumer-groups.sh: --list; --describe --group G, which prints per
partition the committed offset, the log end offset, the lag between them and
the member that owns it; --reset-offsets --group G (--topic T or
--all-topics) with --to-earliest, --to-latest or --to-offset N, which shows
the plan and commits it only with --execute; --delete --group G deletes a
group and its offsets. A group's offsets can be reset, and a group deleted,
only while it has no members. --json prints the same for scripts.`,
		Example: `  sluice groups --bootstrap-server localhost:9092 --list
  sluice groups --bootstrap-server localhost:9092 --describe --group readers
  sluice groups --bootstrap-server localhost:9092 --reset-offsets --group readers --topic orders --to-earliest --execute
  sluice groups --bootstrap-server localhost:9092 --reset-offsets --group readers --all-topics --to-offset 100
  sluice groups --bootstrap-server localhost:9092 --delete --group readers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminResult(cmd.ErrOrStderr(), runGroups(cmd.OutOrStdout(), &o))
		},
	}
	o.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.list, "list", false, "list the groups")
	fl.BoolVar(&o.describe, "describe", false, "describe --group: members, assignment, committed offsets and lag")
	fl.BoolVar(&o.reset, "reset-offsets", false, "reset the committed offsets of --group")
	fl.BoolVar(&o.del, "delete", false, "delete --group with its committed offsets (it must have no members)")
	fl.StringVar(&o.group, "group", "", "the group to act on")
	fl.StringArrayVar(&o.topics, "topic", nil, "topic whose offsets --reset-offsets resets (repeatable)")
	fl.BoolVar(&o.allTopics, "all-topics", false, "--reset-offsets every topic the group has committed offsets for")
	fl.BoolVar(&o.toEarliest, "to-earliest", false, "reset to each partition's log start")
	fl.BoolVar(&o.toLatest, "to-latest", false, "reset to each partition's log end")
	fl.Int64Var(&o.toOffset, "to-offset", -1, "reset to this offset (kept within each partition's log start and end)")
	fl.BoolVar(&o.execute, "execute", false, "commit the reset (without it the plan is only shown)")
	return cmd
}

func runGroups(w io.Writer, o *groupsOptions) error {
	actions := 0
	for _, on := range []bool{o.list, o.describe, o.reset, o.del} {
		if on {
			actions++
		}
	}
	if actions != 1 {
		return usageError("give exactly one of --list, --describe, --reset-offsets, --delete (see sluice groups --help)")
	}
	if (o.describe || o.reset || o.del) && o.group == "" {
		return usageError("--group is required with --describe, --reset-offsets and --delete")
	}
	if o.reset {
		targets := 0
		for _, on := range []bool{o.toEarliest, o.toLatest, o.toOffset >= 0} {
			if on {
				targets++
			}
		}
		if targets != 1 {
			return usageError("--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset N (N >= 0)")
		}
		if (len(o.topics) > 0) == o.allTopics {
			return usageError("--reset-offsets needs --topic T (repeatable) or --all-topics")
		}
	}
	s, err := o.open()
	if err != nil {
		return err
	}
	defer s.stop()
	switch {
	case o.list:
		return s.listGroups(w)
	case o.describe:
		return s.describeGroup(w, o.group)
	case o.del:
		return s.deleteGroup(w, o.group)
	}
	return s.resetOffsets(w, o)
}

type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func (s *adminSession) listGroups(w io.Writer) error {
	groups, err := s.adm.ListGroups(s.ctx)
	if err != nil {
		return s.brokerError("list groups", err)
	}
	out := []listedGroup{}
	var rows [][]string
	for _, g := range groups.Sorted() {
		out = append(out, listedGroup{g.Group, g.State, g.ProtocolType})
		rows = append(rows, []string{g.Group, g.State, g.ProtocolType})
	}
	if s.flags.json {
		return printJSON(w, out)
	}
	return writeAdminTable(w, []string{"GROUP", "STATE", "PROTOCOL-TYPE"}, rows)
}

// groupPartition is one partition of a described group, in
// kafka-consumer-groups.sh's columns.
type groupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is -1 when the group has committed nothing there; Lag is
	// then -1 too.
	Committed  int64  `json:"committed_offset"`
	LogEnd     int64  `json:"log_end_offset"`
	Lag        int64  `json:"lag"`
	ConsumerID string `json:"consumer_id"`
	Host       string `json:"host"`
	ClientID   string `json:"client_id"`
}

type groupMember struct {
	ConsumerID string   `json:"consumer_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	Host       string   `json:"host"`
	ClientID   string   `json:"client_id"`
	Assignment []string `json:"assignment"`
}

type describedGroupOut struct {
	Group      string           `json:"group"`
	State      string           `json:"state"`
	Protocol   string           `json:"protocol"`
	Members    []groupMember    `json:"members"`
	Partitions []groupPartition `json:"partitions"`
}

func (s *adminSession) describeGroup(w io.Writer, groupID string) error {
	described, err := s.adm.DescribeGroups(s.ctx, groupID)
	if err != nil {
		return s.brokerError("describe group "+groupID, err)
	}
	g, ok := described[groupID]
	if !ok {
		return fmt.Errorf("describe group %s on %s: no answer for the group", groupID, s.flags.bootstrap)
	}
	if g.Err != nil {
		return fmt.Errorf("describe group %s on %s: %w", groupID, s.flags.bootstrap, g.Err)
	}
	commits, err := s.adm.FetchOffsets(s.ctx, groupID)
	if err != nil {
		return s.brokerError("fetch offsets of group "+groupID, err)
	}
	if g.State == "Dead" && len(commits) == 0 {
		return fmt.Errorf("describe group %s on %s: the group does not exist", groupID, s.flags.bootstrap)
	}
	topics := map[string]bool{}
	for t := range commits {
		topics[t] = true
	}
	out := describedGroupOut{Group: groupID, State: g.State, Protocol: g.Protocol, Members: []groupMember{}, Partitions: []groupPartition{}}
	for _, m := range g.Members {
		gm := groupMember{ConsumerID: m.MemberID, Host: m.ClientHost, ClientID: m.ClientID, Assignment: []string{}}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				topics[t.Topic] = true
				for _, p := range t.Partitions {
					gm.Assignment = append(gm.Assignment, t.Topic+"-"+strconv.Itoa(int(p)))
				}
			}
		}
		out.Members = append(out.Members, gm)
	}
	ends, err := s.adm.ListEndOffsets(s.ctx, sortedSet(topics)...)
	if err != nil {
		return s.brokerError("list end offsets", err)
	}
	for _, l := range kadm.CalculateGroupLag(g, commits, ends).Sorted() {
		if l.Commit.At < 0 && l.Member == nil {
			continue // neither committed nor assigned, as kafka-consumer-groups.sh leaves it out
		}
		p := groupPartition{Topic: l.Topic, Partition: l.Partition, Committed: -1, LogEnd: l.End.Offset, Lag: -1}
		if l.Commit.At >= 0 {
			p.Committed, p.Lag = l.Commit.At, l.Lag
		}
		if l.Member != nil {
			p.ConsumerID, p.Host, p.ClientID = l.Member.MemberID, l.Member.ClientHost, l.Member.ClientID
		}
		out.Partitions = append(out.Partitions, p)
	}
	if s.flags.json {
		return printJSON(w, out)
	}
	return writeGroupTables(w, out)
}

func writeGroupTables(w io.Writer, g describedGroupOut) error {
	fmt.Fprintf(w, "Group %s: %s, protocol %q, %d members\n", g.Group, g.State, g.Protocol, len(g.Members))
	var rows [][]string
	for _, p := range g.Partitions {
		committed, lag := "-", "-"
		if p.Committed >= 0 {
			committed, lag = strconv.FormatInt(p.Committed, 10), strconv.FormatInt(p.Lag, 10)
		}
		consumer, host, client := "-", "-", "-"
		if p.ConsumerID != "" {
			consumer, host, client = p.ConsumerID, p.Host, p.ClientID
		}
		rows = append(rows, []string{g.Group, p.Topic, strconv.Itoa(int(p.Partition)), committed,
			strconv.FormatInt(p.LogEnd, 10), lag, consumer, host, client})
	}
	if err := writeAdminTable(w, []string{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"}, rows); err != nil {
		return err
	}
	if len(g.Members) == 0 {
		return nil
	}
	// The members view (kafka-consumer-groups.sh --members --verbose): a
	// member assigned nothing shows here only.
	var members [][]string
	for _, m := range g.Members {
		instance := m.InstanceID
		if instance == "" {
			instance = "-"
		}
		members = append(members, []string{g.Group, m.ConsumerID, instance, m.Host, m.ClientID,
			strconv.Itoa(len(m.Assignment)), strings.Join(m.Assignment, ",")})
	}
	return writeAdminTable(w, []string{"GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"}, members)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type plannedOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	NewOffset int64  `json:"new_offset"`
}

func (s *adminSession) resetOffsets(w io.Writer, o *groupsOptions) error {
	described, err := s.adm.DescribeGroups(s.ctx, o.group)
	if err != nil {
		return s.brokerError("describe group "+o.group, err)
	}
	if g := described[o.group]; g.Err != nil {
		return fmt.Errorf("describe group %s on %s: %w", o.group, s.flags.bootstrap, g.Err)
	} else if g.State != "Empty" && g.State != "Dead" {
		return fmt.Errorf("reset offsets of group %s: offsets can be reset only while the group has no members, but it is %s with %d member(s)", o.group, g.State, len(g.Members))
	}
	topics := o.topics
	if o.allTopics {
		commits, err := s.adm.FetchOffsets(s.ctx, o.group)
		if err != nil {
			return s.brokerError("fetch offsets of group "+o.group, err)
		}
		committedTopics := map[string]bool{}
		for t := range commits {
			committedTopics[t] = true
		}
		topics = sortedSet(committedTopics)
		if len(topics) == 0 {
			return fmt.Errorf("reset offsets of group %s: it has no committed offsets (name topics with --topic)", o.group)
		}
	}
	starts, err := s.adm.ListStartOffsets(s.ctx, topics...)
	if err != nil {
		return s.brokerError("list start offsets", err)
	}
	ends, err := s.adm.ListEndOffsets(s.ctx, topics...)
	if err != nil {
		return s.brokerError("list end offsets", err)
	}
	plan := []plannedOffset{}
	offsets := kadm.Offsets{}
	for _, t := range topics {
		if _, ok := ends[t]; !ok {
			return fmt.Errorf("reset offsets of group %s: topic %s on %s: UNKNOWN_TOPIC_OR_PARTITION", o.group, t, s.flags.bootstrap)
		}
		for _, end := range ends[t] {
			if end.Err != nil && end.Partition < 0 { // the topic's own error
				return fmt.Errorf("reset offsets of group %s: topic %s on %s: %w", o.group, t, s.flags.bootstrap, end.Err)
			}
			if end.Err != nil {
				return fmt.Errorf("reset offsets of group %s: topic %s partition %d on %s: %w", o.group, t, end.Partition, s.flags.bootstrap, end.Err)
			}
			start, _ := starts.Lookup(t, end.Partition)
			target := o.toOffset
			switch {
			case o.toEarliest:
				target = start.Offset
			case o.toLatest:
				target = end.Offset
			}
			target = min(max(target, start.Offset), end.Offset)
			plan = append(plan, plannedOffset{Topic: t, Partition: end.Partition, NewOffset: target})
			offsets.Add(kadm.Offset{Topic: t, Partition: end.Partition, At: target, LeaderEpoch: -1})
		}
	}
	sort.Slice(plan, func(i, j int) bool {
		if plan[i].Topic != plan[j].Topic {
			return plan[i].Topic < plan[j].Topic
		}
		return plan[i].Partition < plan[j].Partition
	})
	if o.execute {
		resps, err := s.adm.CommitOffsets(s.ctx, o.group, offsets)
		if err != nil {
			return s.brokerError("commit offsets of group "+o.group, err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("commit offsets of group %s on %s: %w", o.group, s.flags.bootstrap, err)
		}
	}
	if s.flags.json {
		return printJSON(w, map[string]any{"group": o.group, "executed": o.execute, "offsets": plan})
	}
	var rows [][]string
	for _, p := range plan {
		rows = append(rows, []string{o.group, p.Topic, strconv.Itoa(int(p.Partition)), strconv.FormatInt(p.NewOffset, 10)})
	}
	if err := writeAdminTable(w, []string{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"}, rows); err != nil {
		return err
	}
	if !o.execute {
		fmt.Fprintln(w, "Not committed: this is the plan. Add --execute to reset the offsets.")
	}
	return nil
}

func (s *adminSession) deleteGroup(w io.Writer, groupID string) error {
	resps, err := s.adm.DeleteGroups(s.ctx, groupID)
	if err != nil {
		return s.brokerError("delete group "+groupID, err)
	}
	r, ok := resps[groupID]
	if !ok {
		return fmt.Errorf("delete group %s on %s: no answer for the group", groupID, s.flags.bootstrap)
	}
	if r.Err != nil {
		return fmt.Errorf("delete group %s on %s: %w", groupID, s.flags.bootstrap, r.Err)
	}
	if s.flags.json {
		return printJSON(w, map[string]any{"deleted": groupID})
	}
	_, err = fmt.Fprintf(w, "Deleted group %s.\n", groupID)
	return err
}
