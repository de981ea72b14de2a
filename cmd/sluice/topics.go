package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// exitAdminFailed is the status of an admin command the cluster refused or
// could not be reached for (2 is a usage error).
const exitAdminFailed = 1

// adminResult prints an operating error and returns it with
// exitAdminFailed (main prints no message for status 1); usage errors
// pass through.
func adminResult(errOut io.Writer, err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	fmt.Fprintln(errOut, "sluice:", err)
	return &exitError{code: exitAdminFailed, err: err}
}

// adminFlags are the flags every admin command shares.
type adminFlags struct {
	bootstrap string
	timeout   time.Duration
	json      bool
}

func (f *adminFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.bootstrap, "bootstrap-server", "", "broker address(es) to connect to, host:port[,host:port...] (required)")
	fl.DurationVar(&f.timeout, "timeout", 15*time.Second, "give up on the brokers after this long")
	fl.BoolVar(&f.json, "json", false, "print JSON for scripts instead of tables")
}

// adminSession is a connection to the cluster for one command.
type adminSession struct {
	flags adminFlags
	cl    *kgo.Client
	adm   *kadm.Client
	ctx   context.Context
	stop  func()
}

func (f *adminFlags) open() (*adminSession, error) {
	if f.bootstrap == "" {
		return nil, usageError("--bootstrap-server is required, e.g. --bootstrap-server localhost:9092")
	}
	seeds := strings.Split(f.bootstrap, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DialTimeout(min(f.timeout, 5*time.Second)),
		kgo.RetryTimeout(f.timeout))
	if err != nil {
		return nil, usageError("--bootstrap-server %q: %v", f.bootstrap, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	return &adminSession{flags: *f, cl: cl, adm: kadm.NewClient(cl), ctx: ctx, stop: func() { cancel(); cl.Close() }}, nil
}

// brokerError names the bootstrap server in an error that is not Kafka's
// own (a refused connection, a timeout).
func (s *adminSession) brokerError(what string, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer from %s within %v (is a broker running there?)", what, s.flags.bootstrap, s.flags.timeout)
	}
	return fmt.Errorf("%s: broker %s: %w", what, s.flags.bootstrap, err)
}

// kafkaError describes a per-resource Kafka error with its message.
func kafkaError(err error, message string) error {
	if message != "" && !strings.Contains(err.Error(), message) {
		return fmt.Errorf("%w (%s)", err, message)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type topicsOptions struct {
	adminFlags
	create, list, describe, alter, del bool
	topic                              string
	partitions                         int32
	replicationFactor                  int16
	configs                            []string
}

func newTopicsCommand() *cobra.Command {
	var o topicsOptions
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, list, describe, alter and delete topics, as kafka-topics.sh does",
		Long: `Manage the topics of a broker or cluster over Kafka's protocol, with the flags
of Kafka's kafka-topics.sh: one of --create, --list, --describe, --alter
(raise the partition count) or --delete. --describe shows each partition's
leader, replicas and in-sync replicas, and the configs set on the topic.
--json prints the same for scripts.`,
		Example: `  sluice topics --bootstrap-server localhost:9092 --create --topic orders --partitions 3 --replication-factor 1
  sluice topics --bootstrap-server localhost:9092 --create --topic audit --partitions 1 --config retention.ms=60000
  sluice topics --bootstrap-server localhost:9092 --list
  sluice topics --bootstrap-server localhost:9092 --describe --topic orders
  sluice topics --bootstrap-server localhost:9092 --alter --topic orders --partitions 6
  sluice topics --bootstrap-server localhost:9092 --delete --topic orders`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminResult(cmd.ErrOrStderr(), runTopics(cmd.OutOrStdout(), &o))
		},
	}
	o.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.create, "create", false, "create --topic")
	fl.BoolVar(&o.list, "list", false, "list the topics")
	fl.BoolVar(&o.describe, "describe", false, "describe --topic, or every topic")
	fl.BoolVar(&o.alter, "alter", false, "raise the partition count of --topic to --partitions")
	fl.BoolVar(&o.del, "delete", false, "delete --topic")
	fl.StringVar(&o.topic, "topic", "", "the topic to act on")
	fl.Int32Var(&o.partitions, "partitions", -1, "partition count (--create: default the broker's num.partitions; --alter: the new count)")
	fl.Int16Var(&o.replicationFactor, "replication-factor", -1, "replicas of each partition (--create; default the broker's)")
	fl.StringArrayVar(&o.configs, "config", nil, "topic config name=value for --create (repeatable), e.g. retention.ms=60000")
	return cmd
}

func runTopics(w io.Writer, o *topicsOptions) error {
	actions := 0
	for _, on := range []bool{o.create, o.list, o.describe, o.alter, o.del} {
		if on {
			actions++
		}
	}
	if actions != 1 {
		return usageError("give exactly one of --create, --list, --describe, --alter, --delete (see sluice topics --help)")
	}
	if (o.create || o.alter || o.del) && o.topic == "" {
		return usageError("--topic is required with --create, --alter and --delete")
	}
	if o.alter && o.partitions < 1 {
		return usageError("--alter needs --partitions N, the new partition count")
	}
	if o.partitions == 0 || o.partitions < -1 {
		return usageError("--partitions %d: want at least 1", o.partitions)
	}
	configs := map[string]*string{}
	for _, c := range o.configs {
		name, value, ok := strings.Cut(c, "=")
		if !ok || name == "" {
			return usageError("--config %q: want name=value, e.g. retention.ms=60000", c)
		}
		configs[name] = &value
	}
	if len(configs) > 0 && !o.create {
		return usageError("--config goes with --create")
	}
	s, err := o.open()
	if err != nil {
		return err
	}
	defer s.stop()
	switch {
	case o.create:
		return s.createTopic(w, o.topic, o.partitions, o.replicationFactor, configs)
	case o.list:
		return s.listTopics(w)
	case o.describe:
		return s.describeTopics(w, o.topic)
	case o.alter:
		return s.alterPartitions(w, o.topic, o.partitions)
	}
	return s.deleteTopic(w, o.topic)
}

func (s *adminSession) createTopic(w io.Writer, topic string, partitions int32, rf int16, configs map[string]*string) error {
	resp, err := s.adm.CreateTopic(s.ctx, partitions, rf, configs, topic)
	if err != nil && resp.Err == nil {
		return s.brokerError("create topic "+topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, s.flags.bootstrap, kafkaError(resp.Err, resp.ErrMessage))
	}
	if s.flags.json {
		return printJSON(w, map[string]any{"created": topic, "partitions": resp.NumPartitions, "replication_factor": resp.ReplicationFactor})
	}
	_, err = fmt.Fprintf(w, "Created topic %s.\n", topic)
	return err
}

func (s *adminSession) listTopics(w io.Writer) error {
	topics, err := s.adm.ListTopicsWithInternal(s.ctx)
	if err != nil {
		return s.brokerError("list topics", err)
	}
	names := topics.Names()
	sort.Strings(names)
	if s.flags.json {
		return printJSON(w, names)
	}
	for _, n := range names {
		fmt.Fprintln(w, n)
	}
	return nil
}

// describedTopic is one topic as --describe prints it.
type describedTopic struct {
	Topic             string               `json:"topic"`
	ID                string               `json:"id"`
	PartitionCount    int                  `json:"partition_count"`
	ReplicationFactor int                  `json:"replication_factor"`
	Configs           map[string]string    `json:"configs"`
	Partitions        []describedPartition `json:"partitions"`
}

type describedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
}

func (s *adminSession) describeTopics(w io.Writer, topic string) error {
	var names []string
	if topic != "" {
		names = []string{topic}
	}
	details, err := s.adm.ListTopicsWithInternal(s.ctx, names...)
	if err != nil {
		return s.brokerError("describe topics", err)
	}
	var out []describedTopic
	for _, name := range details.Names() {
		d := details[name]
		if d.Err != nil {
			return fmt.Errorf("describe topic %s on %s: %w", name, s.flags.bootstrap, d.Err)
		}
		dt := describedTopic{Topic: name, ID: base64.RawURLEncoding.EncodeToString(d.ID[:]), PartitionCount: len(d.Partitions), ReplicationFactor: d.Partitions.NumReplicas(), Configs: map[string]string{}}
		for _, p := range d.Partitions.Sorted() {
			dt.Partitions = append(dt.Partitions, describedPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR})
		}
		out = append(out, dt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	if err := s.topicConfigs(out); err != nil {
		return err
	}
	if s.flags.json {
		return printJSON(w, out)
	}
	return writeTopicTables(w, out)
}

// topicConfigs fills in the configs set on each topic (not defaults), as
// kafka-topics.sh --describe shows them.
func (s *adminSession) topicConfigs(topics []describedTopic) error {
	if len(topics) == 0 {
		return nil
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Topic
	}
	configs, err := s.adm.DescribeTopicConfigs(s.ctx, names...)
	if err != nil {
		return s.brokerError("describe topic configs", err)
	}
	for _, rc := range configs {
		i := slices.IndexFunc(topics, func(t describedTopic) bool { return t.Topic == rc.Name })
		if i < 0 || rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Source == 1 && c.Value != nil { // DYNAMIC_TOPIC_CONFIG: set on the topic
				topics[i].Configs[c.Key] = *c.Value
			}
		}
	}
	return nil
}

func writeTopicTables(w io.Writer, topics []describedTopic) error {
	var summary, parts [][]string
	for _, t := range topics {
		var configs []string
		for _, k := range sortedStringKeys(t.Configs) {
			configs = append(configs, k+"="+t.Configs[k])
		}
		summary = append(summary, []string{t.Topic, t.ID, strconv.Itoa(t.PartitionCount), strconv.Itoa(t.ReplicationFactor), strings.Join(configs, ",")})
		for _, p := range t.Partitions {
			parts = append(parts, []string{t.Topic, strconv.Itoa(int(p.Partition)), strconv.Itoa(int(p.Leader)),
				strconv.Itoa(int(p.LeaderEpoch)), joinInt32(p.Replicas), joinInt32(p.ISR)})
		}
	}
	if err := writeAdminTable(w, []string{"TOPIC", "TOPIC-ID", "PARTITIONS", "REPLICATION-FACTOR", "CONFIGS"}, summary); err != nil {
		return err
	}
	return writeAdminTable(w, []string{"TOPIC", "PARTITION", "LEADER", "LEADER-EPOCH", "REPLICAS", "ISR"}, parts)
}

// writeAdminTable prints a table with Kafka's tools' column names as
// given (upper case, dashes kept).
func writeAdminTable(w io.Writer, header []string, rows [][]string) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(toAnySlice(header)...)
	for _, row := range rows {
		if err := t.Append(toAnySlice(row)...); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	return t.Render()
}

func toAnySlice(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

func joinInt32(xs []int32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(int(x))
	}
	return strings.Join(parts, ",")
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *adminSession) alterPartitions(w io.Writer, topic string, partitions int32) error {
	resps, err := s.adm.UpdatePartitions(s.ctx, int(partitions), topic)
	if err != nil {
		return s.brokerError("alter topic "+topic, err)
	}
	r, ok := resps[topic]
	if !ok {
		return fmt.Errorf("alter topic %s on %s: no answer for the topic", topic, s.flags.bootstrap)
	}
	if r.Err != nil {
		return fmt.Errorf("alter topic %s on %s: %w", topic, s.flags.bootstrap, kafkaError(r.Err, r.ErrMessage))
	}
	if s.flags.json {
		return printJSON(w, map[string]any{"altered": topic, "partitions": partitions})
	}
	_, err = fmt.Fprintf(w, "Topic %s now has %d partitions.\n", topic, partitions)
	return err
}

func (s *adminSession) deleteTopic(w io.Writer, topic string) error {
	resps, err := s.adm.DeleteTopics(s.ctx, topic)
	if err != nil {
		return s.brokerError("delete topic "+topic, err)
	}
	r, ok := resps[topic]
	if !ok {
		return fmt.Errorf("delete topic %s on %s: no answer for the topic", topic, s.flags.bootstrap)
	}
	if r.Err != nil {
		return fmt.Errorf("delete topic %s on %s: %w", topic, s.flags.bootstrap, kafkaError(r.Err, r.ErrMessage))
	}
	if s.flags.json {
		return printJSON(w, map[string]any{"deleted": topic})
	}
	_, err = fmt.Fprintf(w, "Deleted topic %s.\n", topic)
	return err
}
