package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sluice-sim/sluice/sim"
)

// NoLeader is a partition's leader when no replica may lead it.
const NoLeader int32 = -1

// Broker is a registered broker.
type Broker struct {
	ID int32 `json:"id"`
	// Epoch is the offset of the broker's registration record: every
	// registration gets a new, larger one, so a request carrying an older
	// epoch comes from a previous life of the broker and is refused.
	Epoch       int64  `json:"epoch"`
	Addr        string `json:"addr"`
	Incarnation string `json:"inc"`
	// Fenced brokers lead nothing and join no ISR: a broker is fenced from
	// registration until its first heartbeat, and again when its session
	// times out.
	Fenced bool `json:"fenced"`
	// ShuttingDown marks a controlled shutdown in progress.
	ShuttingDown bool `json:"shutting_down,omitempty"`
}

// Partition is one partition's replica set and leadership.
type Partition struct {
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Leader   int32   `json:"leader"`
	// LeaderEpoch grows with every change of leader.
	LeaderEpoch int32 `json:"leader_epoch"`
	// PartitionEpoch grows with every change to the partition, so that an
	// AlterPartition built on an older view is refused.
	PartitionEpoch int32 `json:"partition_epoch"`
}

// Clone copies the partition's slices.
func (p Partition) Clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	return p
}

// Topic is a topic and its partitions.
type Topic struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Unclean bool   `json:"unclean,omitempty"`
	// Configs are the topic's configs: those it was created with, then
	// each whole set an alter-topic-configs record gave it.
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// Limits on what the state machine accepts, so that a bad request cannot
// make one record unbounded work.
const (
	partitionsPerTopicMax = 10_000
	brokersMax            = 10_000
	topicsMax             = 100_000
	// topicNameBytesMax is Kafka's limit on a topic name.
	topicNameBytesMax = 249
	// topicConfigsMax bounds a topic's config map.
	topicConfigsMax = 1_000
)

// State is the metadata the log describes. Offset is the offset of the last
// record applied.
type State struct {
	Offset  int64             `json:"offset"`
	Brokers map[int32]*Broker `json:"brokers"`
	Topics  map[string]*Topic `json:"topics"`
	// topicNames maps topic id to name.
	topicNames map[string]string
}

// NewState is the empty state at offset 0.
func NewState() *State {
	return &State{Brokers: map[int32]*Broker{}, Topics: map[string]*Topic{}, topicNames: map[string]string{}}
}

// Result is what applying a record decided.
type Result struct {
	Code        Code
	BrokerEpoch int64
	TopicID     string
	Partition   *Partition
}

// Apply applies the record at offset. Offsets must grow; a record that its
// checks refuse changes nothing but the offset and says why in the code.
func (s *State) Apply(offset int64, r Record) Result {
	sim.Assert(offset > s.Offset, "metadata record at offset %d applied after offset %d", offset, s.Offset)
	s.Offset = offset
	switch r.Kind {
	case KindRegisterBroker:
		return s.registerBroker(offset, r)
	case KindUnfenceBroker:
		return s.unfenceBroker(r)
	case KindFenceBroker, KindControlledShutdown:
		return s.fenceBroker(r)
	case KindCreateTopic:
		return s.createTopic(offset, r)
	case KindDeleteTopic:
		return s.deleteTopic(r)
	case KindAlterPartition:
		return s.alterPartition(r)
	case KindElectPreferred:
		return s.electPreferred(r)
	case KindAlterTopicConfigs:
		return s.alterTopicConfigs(r)
	case KindCreatePartitions:
		return s.createPartitions(offset, r)
	case KindNoop:
		return Result{}
	}
	return Result{Code: CodeInvalidRequest}
}

// liveBroker returns the broker when it is registered with this epoch.
func (s *State) liveBroker(id int32, epoch int64) (*Broker, Code) {
	b := s.Brokers[id]
	if b == nil {
		return nil, CodeBrokerIDNotRegistered
	}
	if b.Epoch != epoch {
		return nil, CodeStaleBrokerEpoch
	}
	return b, CodeNone
}

func (s *State) registerBroker(offset int64, r Record) Result {
	if r.BrokerID < 0 {
		return Result{Code: CodeInvalidRequest}
	}
	b := s.Brokers[r.BrokerID]
	if b != nil && b.Incarnation == r.Incarnation && b.Addr == r.Addr {
		return Result{BrokerEpoch: b.Epoch} // a retried registration
	}
	if b == nil && len(s.Brokers) >= brokersMax {
		return Result{Code: CodeInvalidRequest}
	}
	if b != nil {
		// A new life of the broker: what the old one led or followed in
		// sync must not be trusted to it any longer.
		b.Fenced = true
		s.removeFromLeadershipAndISR(b.ID)
	}
	s.Brokers[r.BrokerID] = &Broker{ID: r.BrokerID, Epoch: offset, Addr: r.Addr, Incarnation: r.Incarnation, Fenced: true}
	return Result{BrokerEpoch: offset}
}

func (s *State) unfenceBroker(r Record) Result {
	b, code := s.liveBroker(r.BrokerID, r.BrokerEpoch)
	if code != CodeNone {
		return Result{Code: code}
	}
	if b.ShuttingDown {
		return Result{Code: CodeInvalidRequest, BrokerEpoch: b.Epoch}
	}
	b.Fenced = false
	s.electLeaderless()
	return Result{BrokerEpoch: b.Epoch}
}

func (s *State) fenceBroker(r Record) Result {
	b, code := s.liveBroker(r.BrokerID, r.BrokerEpoch)
	if code != CodeNone {
		return Result{Code: code}
	}
	b.Fenced = true
	if r.Kind == KindControlledShutdown {
		b.ShuttingDown = true
	}
	s.removeFromLeadershipAndISR(b.ID)
	return Result{BrokerEpoch: b.Epoch}
}

// eligible reports whether a broker may lead or join an ISR.
func (s *State) eligible(id int32) bool {
	b := s.Brokers[id]
	return b != nil && !b.Fenced && !b.ShuttingDown
}

// removeFromLeadershipAndISR takes a broker out of every ISR (keeping the
// last member, as Kafka does, so that the ISR still names who has every
// committed record) and moves its leaderships to another ISR member.
func (s *State) removeFromLeadershipAndISR(id int32) {
	for _, name := range s.topicNamesSorted() {
		t := s.Topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if !slices.Contains(p.Replicas, id) {
				continue
			}
			changed := false
			if len(p.ISR) > 1 && slices.Contains(p.ISR, id) {
				// A new slice: readers of an image may hold the old one.
				p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
				changed = true
			}
			if p.Leader == id {
				s.electLeader(t, p)
				changed = true
			}
			if changed {
				p.PartitionEpoch++
			}
		}
	}
}

// electLeader picks the partition's leader: the first eligible ISR member
// in replica order, else, when the topic allows unclean election, the
// first eligible replica (which joins the ISR alone), else none. It bumps
// the leader epoch when the leader changes.
func (s *State) electLeader(t *Topic, p *Partition) {
	leader := NoLeader
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && s.eligible(r) {
			leader = r
			break
		}
	}
	if leader == NoLeader && t.Unclean {
		for _, r := range p.Replicas {
			if s.eligible(r) {
				leader = r
				p.ISR = []int32{r}
				break
			}
		}
	}
	if leader != p.Leader {
		p.Leader = leader
		p.LeaderEpoch++
	}
}

// electLeaderless gives a leader to every partition without one that can
// now have one.
func (s *State) electLeaderless() {
	for _, name := range s.topicNamesSorted() {
		t := s.Topics[name]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader != NoLeader {
				continue
			}
			s.electLeader(t, p)
			if p.Leader != NoLeader {
				p.PartitionEpoch++
			}
		}
	}
}

func (s *State) createTopic(offset int64, r Record) Result {
	switch {
	case r.Topic == "" || len(r.Topic) > topicNameBytesMax || r.TopicID == "":
		return Result{Code: CodeInvalidRequest}
	case s.Topics[r.Topic] != nil || s.topicNames[r.TopicID] != "":
		return Result{Code: CodeTopicAlreadyExists}
	case r.Partitions <= 0 || r.Partitions > partitionsPerTopicMax:
		return Result{Code: CodeInvalidPartitions}
	case len(s.Topics) >= topicsMax:
		return Result{Code: CodeInvalidRequest}
	}
	eligible := s.eligibleBrokers()
	if r.ReplicationFactor <= 0 || int(r.ReplicationFactor) > len(eligible) {
		return Result{Code: CodeInvalidReplicationFactor}
	}
	t := &Topic{Name: r.Topic, ID: r.TopicID, Unclean: r.Unclean, Configs: maps.Clone(r.Configs)}
	for _, replicas := range Assign(eligible, int(r.Partitions), int(r.ReplicationFactor), offset) {
		t.Partitions = append(t.Partitions, Partition{
			Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0],
		})
	}
	s.Topics[t.Name] = t
	s.topicNames[t.ID] = t.Name
	return Result{TopicID: t.ID}
}

// eligibleBrokers lists the brokers that may take replicas, by id.
func (s *State) eligibleBrokers() []int32 {
	var ids []int32
	for id := range s.Brokers {
		if s.eligible(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (s *State) deleteTopic(r Record) Result {
	name := r.Topic
	if r.TopicID != "" {
		name = s.topicNames[r.TopicID]
	}
	t := s.Topics[name]
	if t == nil {
		return Result{Code: CodeUnknownTopicOrPartition}
	}
	delete(s.Topics, name)
	delete(s.topicNames, t.ID)
	return Result{TopicID: t.ID}
}

// topicNamed finds a record's topic by id when it names one, else by name.
func (s *State) topicNamed(r Record) *Topic {
	if r.TopicID != "" {
		return s.TopicByID(r.TopicID)
	}
	return s.Topics[r.Topic]
}

// alterTopicConfigs replaces a topic's configs with the record's whole
// map. A topic that now allows unclean election gets leaders for its
// leaderless partitions at once, as Kafka does when the config is set.
func (s *State) alterTopicConfigs(r Record) Result {
	t := s.topicNamed(r)
	if t == nil {
		return Result{Code: CodeUnknownTopicOrPartition}
	}
	if len(r.Configs) > topicConfigsMax {
		return Result{Code: CodeInvalidRequest}
	}
	// A new map: readers of an image may hold the old one.
	t.Configs = maps.Clone(r.Configs)
	t.Unclean = r.Unclean
	if t.Unclean {
		s.electLeaderless()
	}
	return Result{TopicID: t.ID}
}

// createPartitions adds partitions to a topic up to the record's count.
// The new partitions' replicas are placed as a new topic's would be (the
// replication factor of its first partition, over the eligible brokers,
// from the record's offset), led by their first replica with the whole
// replica set in sync, at epoch 0: they hold no data yet.
func (s *State) createPartitions(offset int64, r Record) Result {
	t := s.topicNamed(r)
	if t == nil {
		return Result{Code: CodeUnknownTopicOrPartition}
	}
	old := len(t.Partitions)
	if int(r.Partitions) <= old || r.Partitions > partitionsPerTopicMax {
		return Result{Code: CodeInvalidPartitions, TopicID: t.ID}
	}
	eligible := s.eligibleBrokers()
	rf := len(t.Partitions[0].Replicas)
	if rf > len(eligible) {
		return Result{Code: CodeInvalidReplicationFactor, TopicID: t.ID}
	}
	assigned := Assign(eligible, int(r.Partitions), rf, offset)
	// A new slice: readers of an image may hold the old one.
	partitions := make([]Partition, old, r.Partitions)
	copy(partitions, t.Partitions)
	for _, replicas := range assigned[old:] {
		partitions = append(partitions, Partition{Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0]})
	}
	t.Partitions = partitions
	return Result{TopicID: t.ID}
}

// TopicByID returns a topic by id, or nil.
func (s *State) TopicByID(id string) *Topic {
	return s.Topics[s.topicNames[id]]
}

// alterPartition is AlterPartition: the leader asks to change the ISR. It
// must be the current leader, of the current broker epoch, leader epoch and
// partition epoch; the new ISR must hold the leader, be within the replica
// set, and add only eligible brokers.
func (s *State) alterPartition(r Record) Result {
	if _, code := s.liveBroker(r.BrokerID, r.BrokerEpoch); code != CodeNone {
		return Result{Code: code}
	}
	t := s.TopicByID(r.TopicID)
	if t == nil {
		return Result{Code: CodeUnknownTopicID}
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return Result{Code: CodeUnknownTopicOrPartition}
	}
	p := &t.Partitions[r.Partition]
	current := p.Clone()
	switch {
	case p.Leader != r.BrokerID:
		return Result{Code: CodeNotLeaderOrFollower, Partition: &current}
	case r.LeaderEpoch != p.LeaderEpoch:
		return Result{Code: CodeFencedLeaderEpoch, Partition: &current}
	case r.PartitionEpoch != p.PartitionEpoch:
		return Result{Code: CodeInvalidUpdateVersion, Partition: &current}
	}
	if code := s.checkNewISR(p, r.ISR); code != CodeNone {
		return Result{Code: code, Partition: &current}
	}
	p.ISR = sortedUnique(r.ISR)
	p.PartitionEpoch++
	updated := p.Clone()
	return Result{Partition: &updated}
}

func (s *State) checkNewISR(p *Partition, isr []int32) Code {
	if len(isr) == 0 || len(isr) > len(p.Replicas) || !slices.Contains(isr, p.Leader) {
		return CodeInvalidRequest
	}
	for _, r := range isr {
		if !slices.Contains(p.Replicas, r) {
			return CodeInvalidRequest
		}
		if !slices.Contains(p.ISR, r) && !s.eligible(r) {
			return CodeIneligibleReplica
		}
	}
	return CodeNone
}

// electPreferred moves each named partition's leadership back to its
// preferred replica (the first of its replica set) when that replica is
// eligible and in the ISR.
func (s *State) electPreferred(r Record) Result {
	for _, tp := range r.Elect {
		t := s.TopicByID(tp.TopicID)
		if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			continue
		}
		p := &t.Partitions[tp.Partition]
		preferred := p.Replicas[0]
		if p.Leader == preferred || !slices.Contains(p.ISR, preferred) || !s.eligible(preferred) {
			continue
		}
		p.Leader = preferred
		p.LeaderEpoch++
		p.PartitionEpoch++
	}
	return Result{}
}

// Imbalanced lists the partitions whose preferred replica could lead them
// and does not, in topic-name order.
func (s *State) Imbalanced() []TopicPartition {
	var out []TopicPartition
	for _, name := range s.topicNamesSorted() {
		t := s.Topics[name]
		for i, p := range t.Partitions {
			preferred := p.Replicas[0]
			if p.Leader != preferred && slices.Contains(p.ISR, preferred) && s.eligible(preferred) {
				out = append(out, TopicPartition{TopicID: t.ID, Partition: int32(i)})
			}
		}
	}
	return out
}

func (s *State) topicNamesSorted() []string {
	names := make([]string, 0, len(s.Topics))
	for name := range s.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// BrokerIDs lists the registered brokers, by id.
func (s *State) BrokerIDs() []int32 {
	ids := make([]int32, 0, len(s.Brokers))
	for id := range s.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sortedUnique(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Encode serialises the whole state, for snapshots. encoding/json writes
// map keys sorted, so equal states give equal bytes.
func (s *State) Encode() []byte {
	b, err := json.Marshal(s)
	sim.Assert(err == nil, "encode metadata state: %v", err)
	return b
}

// DecodeState parses what Encode wrote.
func DecodeState(b []byte) (*State, error) {
	s := NewState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode metadata state: %w", err)
	}
	if s.Brokers == nil {
		s.Brokers = map[int32]*Broker{}
	}
	if s.Topics == nil {
		s.Topics = map[string]*Topic{}
	}
	for name, t := range s.Topics {
		if t == nil || t.Name != name {
			return nil, fmt.Errorf("decode metadata state: topic %q misfiled", name)
		}
		s.topicNames[t.ID] = name
	}
	return s, nil
}
