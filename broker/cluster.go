package broker

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/controller"
	"github.com/sluice-sim/sluice/broker/metadata"
)

// A broker in cluster mode is a member of a controller quorum's cluster:
// it registers and heartbeats through a controller.Member (the code the
// quorum's Agent runs too), follows the metadata log into an Image, and
// applies the image: its topics are the image's, and for every partition
// it holds a replica of it becomes leader or follower at the image's leader
// epoch. Topics are created, deleted, reconfigured and given partitions
// through the controller; no topics.json is kept.

// ClusterConfig configures cluster mode.
type ClusterConfig struct {
	// Controllers are the quorum's addresses (controller.quorum.voters);
	// empty means a single broker.
	Controllers []string
	// DefaultReplicationFactor is default.replication.factor: the
	// replication factor of auto-created topics and of CreateTopics asking
	// for -1.
	DefaultReplicationFactor int16
	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower that has
	// not caught up for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// ReplicaFetchWaitMax is replica.fetch.wait.max.ms: how long a
	// leader holds a follower's fetch that finds nothing new.
	ReplicaFetchWaitMax time.Duration
	// ReplicaFetchBackoff is replica.fetch.backoff.ms: the pause after a
	// failed fetch.
	ReplicaFetchBackoff time.Duration
	// UncleanLeaderElection is unclean.leader.election.enable for the
	// topics this broker creates without the topic config.
	UncleanLeaderElection bool
}

// DefaultClusterConfig is Kafka's defaults, without controllers.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{DefaultReplicationFactor: 1, ReplicaLagTimeMax: 30 * time.Second,
		ReplicaFetchWaitMax: 500 * time.Millisecond, ReplicaFetchBackoff: time.Second}
}

// clusterMember is the broker's membership and its replica fetchers.
type clusterMember struct {
	b      *Broker
	member *controller.Member
	// fetchers fetch from each leader this broker follows, by broker id.
	fetchers map[int32]*replicaFetcher
	// applied is set once the image has been applied caught up at least
	// once: stray directories are removed then.
	applied bool
	// topicWaits are answers held until the image shows a topic.
	topicWaits []*topicWait
	// failedTopics are the topic ids whose partitions failed to open,
	// logged once each.
	failedTopics map[string]bool
	stopped      bool
	// restarting is set once a partition lost data and the broker is
	// about to start over.
	restarting bool
}

// topicWait is an answer held until the image shows a topic change: a
// topic present (or absent), or a record applied.
type topicWait struct {
	ready func(*metadata.State) bool
	until time.Duration
	done  func(bool)
}

// topicWaitsMax bounds the answers held for topic changes.
const topicWaitsMax = 4096

// loadRegistry is the topics a start begins with: a single broker's from
// topics.json, a cluster member's none until the image gives them.
func (b *Broker) loadRegistry() (*topicRegistry, error) {
	if len(b.cfg.Cluster.Controllers) == 0 {
		return loadTopics(b)
	}
	b.cluster = &clusterMember{b: b, fetchers: map[int32]*replicaFetcher{}, failedTopics: map[string]bool{}}
	return &topicRegistry{b: b, byName: make(map[string]*topic)}, nil
}

// joinCluster starts the membership once the broker serves.
func (b *Broker) joinCluster() {
	m := b.cluster
	if m == nil {
		return
	}
	m.member = controller.NewMember(b.env, b.cfg.NodeID, fmt.Sprintf("%s:%d", b.host, b.port), b.cfg.Cluster.Controllers, m.applyImage)
	m.member.Start()
	m.scheduleISRCheck()
}

// leaveCluster stops the membership and every fetcher (the broker is
// stopping or starting over).
func (b *Broker) leaveCluster() {
	m := b.cluster
	if m == nil || m.stopped {
		return
	}
	m.stopped = true
	if m.member != nil {
		m.member.Stop()
	}
	for _, id := range sortedFetcherIDs(m.fetchers) {
		m.fetchers[id].stop()
	}
	m.fetchers = map[int32]*replicaFetcher{}
	for _, w := range m.topicWaits {
		w.done(false)
	}
	m.topicWaits = nil
}

func sortedFetcherIDs(fetchers map[int32]*replicaFetcher) []int32 {
	ids := make([]int32, 0, len(fetchers))
	for id := range fetchers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Member is the broker's cluster membership, nil for a single broker or
// before it serves.
func (b *Broker) Member() *controller.Member {
	if b.cluster == nil {
		return nil
	}
	return b.cluster.member
}

// applyImage brings the topics and every hosted partition's role in line
// with the image, once the image has caught up with the controller: a
// partial image may describe leaderships the cluster has moved past.
func (m *clusterMember) applyImage() {
	b := m.b
	if m.stopped || b.topics == nil || !m.member.CaughtUp() {
		return
	}
	s := m.member.Image().State()
	for _, name := range b.topics.allNames() {
		if t := s.Topics[name]; t == nil || b.topics.byName[name].ID != t.ID {
			b.topics.dropClusterTopic(name)
		}
	}
	names := make([]string, 0, len(s.Topics))
	for name := range s.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := m.applyTopic(s.Topics[name]); err != nil && !m.failedTopics[s.Topics[name].ID] {
			// Logged once: the next image tries again, and would
			// repeat the line every fetch.
			if len(m.failedTopics) < topicsMax {
				m.failedTopics[s.Topics[name].ID] = true
			}
			b.env.Log.Logf("broker %d: topic %s: %v", b.cfg.NodeID, name, err)
		}
	}
	if !m.applied {
		m.applied = true
		if err := b.topics.removeStrays(); err != nil {
			b.env.Log.Logf("broker %d: %v", b.cfg.NodeID, err)
		}
	}
	m.releaseTopicWaits(s)
	// Leaderships of __consumer_offsets partitions may have moved: the
	// coordinator loads the ones this broker leads now and unloads the
	// rest.
	if b.groups != nil {
		b.groups.follow()
	}
}

// applyTopic opens the partitions of t this broker holds a replica of
// and gives each its role, after bringing the topic's configs and
// partition count in line with the image.
func (m *clusterMember) applyTopic(mt *metadata.Topic) error {
	b := m.b
	t := b.topics.byName[mt.Name]
	if t == nil {
		var err error
		if t, err = b.topics.addClusterTopic(mt); err != nil {
			return err
		}
	}
	if err := m.applyTopicChanges(t, mt); err != nil {
		return err
	}
	for i, part := range mt.Partitions {
		if !slices.Contains(part.Replicas, b.cfg.NodeID) {
			continue
		}
		p := t.partitions[i]
		if p == nil {
			var err error
			if p, err = openPartition(b, t, int32(i)); err != nil {
				return err
			}
			p.replica.topicID = mt.ID
			t.partitions[i] = p
		}
		m.applyPartition(p, part)
	}
	return nil
}

// applyTopicChanges applies to a topic the configs and partition count
// the metadata log changed since it was added: the new configs to every
// open log, the new partitions as room for their replicas.
func (m *clusterMember) applyTopicChanges(t *topic, mt *metadata.Topic) error {
	b := m.b
	if !maps.Equal(t.Configs, mt.Configs) {
		cfg, err := topicLogConfig(b.cfg.Log, mt.Configs)
		if err != nil {
			return fmt.Errorf("configs %v: %w", mt.Configs, err)
		}
		b.applyTopicConfigs(t, maps.Clone(mt.Configs), cfg)
		b.env.Log.Logf("broker %d: topic %s configs now %v", b.cfg.NodeID, t.Name, sortedConfigs(mt.Configs))
	}
	for i := int32(len(t.partitions)); i < int32(len(mt.Partitions)); i++ {
		// A recovery point read at start may belong to an earlier topic
		// of the same name.
		delete(b.recoveryPoints, path.Base(partitionDir("", t.Name, i)))
		t.partitions = append(t.partitions, nil)
	}
	t.Partitions = int32(len(t.partitions))
	return nil
}

func sortedConfigs(configs map[string]string) []string {
	out := make([]string, 0, len(configs))
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		out = append(out, k+"="+configs[k])
	}
	return out
}

// topicView is a topic as the image holds it, for the admin requests that
// read or change it through the controller; nil if the image holds none.
// It is not registered: the broker's own copy follows the image.
func (m *clusterMember) topicView(name string) *topic {
	if m.member == nil {
		return nil
	}
	mt := m.member.Image().State().Topics[name]
	if mt == nil {
		return nil
	}
	t, err := m.b.topics.build(topicRecord{Name: mt.Name, ID: mt.ID, Partitions: int32(len(mt.Partitions)), Configs: maps.Clone(mt.Configs)})
	if err != nil {
		m.b.env.Log.Logf("broker %d: topic %s in the image: %v", m.b.cfg.NodeID, name, err)
		return nil
	}
	return t
}

// uncleanFor is a topic's unclean.leader.election.enable given its
// configs: the topic's own, else this broker's default.
func (m *clusterMember) uncleanFor(configs map[string]string) bool {
	if v, set := configs["unclean.leader.election.enable"]; set {
		return v == "true"
	}
	return m.b.cfg.Cluster.UncleanLeaderElection
}

// alterTopicConfigs asks the controller to replace a topic's configs and
// calls done once this broker's image holds (and the broker has applied)
// the change, or with the controller's refusal.
func (m *clusterMember) alterTopicConfigs(name string, configs map[string]string, done func(metadata.Code)) {
	if m.member == nil || m.stopped {
		done(metadata.CodeRequestTimedOut)
		return
	}
	req := controller.Request{Op: controller.OpAlterTopicConfigs, Topic: name, Configs: configs, Unclean: m.uncleanFor(configs)}
	m.askController(req, done, appliedThrough)
}

// createPartitions asks the controller to raise a topic's partition count
// and calls done once this broker's image holds the new partitions.
func (m *clusterMember) createPartitions(name string, count int32, done func(metadata.Code)) {
	if m.member == nil || m.stopped {
		done(metadata.CodeRequestTimedOut)
		return
	}
	m.askController(controller.Request{Op: controller.OpCreatePartitions, Topic: name, Partitions: count}, done, appliedThrough)
}

// applyPartition moves a partition to the role the image gives it.
func (m *clusterMember) applyPartition(p *partition, part metadata.Partition) {
	r := &p.replica
	me := m.b.cfg.NodeID
	switch {
	case part.Leader == me && (r.role != roleLeader || p.leaderEpoch != part.LeaderEpoch):
		p.becomeLeader(part)
	case part.Leader != me && (r.role == roleLeader || p.leaderEpoch != part.LeaderEpoch || r.leaderID != part.Leader):
		p.becomeFollower(part)
	case r.role == roleFollower && r.fetcher == nil:
		m.follow(p, part.Leader) // its leader's address was unknown before
		p.updateISR(part)
	default:
		p.updateISR(part)
	}
}

// follow hands a follower partition to the fetcher of its leader.
func (m *clusterMember) follow(p *partition, leader int32) {
	br := m.member.Image().State().Brokers[leader]
	if br == nil || m.stopped {
		return
	}
	f := m.fetchers[leader]
	if f != nil && f.addr != br.Addr {
		f.stop()
		f = nil
	}
	if f == nil {
		f = newReplicaFetcher(m.b, leader, br.Addr)
		m.fetchers[leader] = f
	}
	f.add(p)
}

// stopFetching takes a partition off its fetcher.
func (p *partition) stopFetching() {
	if f := p.replica.fetcher; f != nil {
		f.remove(p)
	}
	p.replica.fetcher = nil
}

// isrCheckDivisor sets how often leaders look for followers to drop from
// the ISR: every replica.lag.time.max.ms divided by it.
const isrCheckDivisor = 4

func (m *clusterMember) scheduleISRCheck() {
	lagMax := m.b.cfg.Cluster.ReplicaLagTimeMax
	m.b.env.Clock.AfterFunc(max(lagMax/isrCheckDivisor, 10*time.Millisecond), func() {
		if m.stopped || m.b.topics == nil {
			return
		}
		for _, name := range m.b.topics.sortedNames() {
			for _, p := range m.b.topics.get(name).hosted() {
				p.shrinkISR(lagMax)
			}
		}
		m.scheduleISRCheck()
	})
}

// createTopic asks the controller for a topic and calls done once the
// image holds it (nil), or with the controller's refusal.
func (m *clusterMember) createTopic(name string, partitions int32, rf int16, configs map[string]string, done func(metadata.Code)) {
	if m.member == nil || m.stopped {
		done(metadata.CodeRequestTimedOut)
		return
	}
	req := controller.Request{Op: controller.OpCreateTopic, Topic: name, Partitions: partitions,
		ReplicationFactor: rf, Configs: configs, Unclean: m.uncleanFor(configs)}
	m.changeTopic(req, true, done)
}

// deleteTopic asks the controller to delete a topic and calls done once
// the image no longer holds it.
func (m *clusterMember) deleteTopic(name string, done func(metadata.Code)) {
	if m.member == nil || m.stopped {
		done(metadata.CodeRequestTimedOut)
		return
	}
	m.changeTopic(controller.Request{Op: controller.OpDeleteTopic, Topic: name}, false, done)
}

// changeTopic sends a topic change to the controller and calls done once
// the image shows the topic present (or absent, for a deletion).
func (m *clusterMember) changeTopic(req controller.Request, present bool, done func(metadata.Code)) {
	m.askController(req, done, func(controller.Response) func(*metadata.State) bool {
		return func(s *metadata.State) bool { return (s.Topics[req.Topic] != nil) == present }
	})
}

// askController sends a request to the controller and, once it is
// accepted, calls done when the image satisfies what readyFor builds
// from the answer (or with the controller's refusal).
func (m *clusterMember) askController(req controller.Request, done func(metadata.Code),
	readyFor func(controller.Response) func(*metadata.State) bool) {
	m.member.Client().Do(req, func(resp controller.Response, err error) {
		switch {
		case err != nil:
			done(metadata.CodeRequestTimedOut)
		case resp.Code != metadata.CodeNone:
			done(resp.Code)
		default:
			m.awaitImage(readyFor(resp), func(ok bool) {
				if ok {
					done(metadata.CodeNone)
				} else {
					done(metadata.CodeRequestTimedOut)
				}
			})
		}
	})
}

// appliedThrough is the readiness of a change the controller answered
// for: the image holds the record that made it (and the broker has
// applied the image, since waits are released after that).
func appliedThrough(resp controller.Response) func(*metadata.State) bool {
	return func(s *metadata.State) bool { return s.Offset >= resp.Offset }
}

// topicWaitMax bounds how long an answer waits for the image to show a
// topic change the controller acknowledged.
const topicWaitMax = 5 * time.Second

func (m *clusterMember) awaitImage(ready func(*metadata.State) bool, done func(bool)) {
	if m.stopped || len(m.topicWaits) >= topicWaitsMax {
		done(false)
		return
	}
	m.topicWaits = append(m.topicWaits, &topicWait{ready: ready, until: m.b.env.Clock.Mono() + topicWaitMax, done: done})
	m.releaseTopicWaits(m.member.Image().State())
}

func (m *clusterMember) releaseTopicWaits(s *metadata.State) {
	now := m.b.env.Clock.Mono()
	var keep []*topicWait
	var ready []*topicWait
	for _, w := range m.topicWaits {
		if w.ready(s) || now >= w.until {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	m.topicWaits = keep
	for _, w := range ready {
		w.done(w.ready(s))
	}
}

// addClusterTopic adds a topic the image names; its partitions open as
// the image gives this broker replicas of them.
func (reg *topicRegistry) addClusterTopic(mt *metadata.Topic) (*topic, error) {
	if len(reg.byName) >= topicsMax {
		return nil, fmt.Errorf("the broker holds %d topics already", topicsMax)
	}
	t, err := reg.build(topicRecord{Name: mt.Name, ID: mt.ID, Partitions: int32(len(mt.Partitions)), Configs: mt.Configs})
	if err != nil {
		return nil, err
	}
	t.partitions = make([]*partition, len(mt.Partitions))
	t.durable = true
	reg.put(mt.Name, t)
	return t, nil
}

// dropClusterTopic forgets a topic the image no longer holds and deletes
// its partition directories. Each is moved aside first, as Kafka renames
// a deleted log's directory: a removal the disk fails part way then
// leaves a stray for the next start, not files under the topic's name
// that a topic created again under it would open as its own. A move that
// fails leaves the directory under the name; as Kafka takes a log
// directory it cannot rename offline, the broker starts over, and its
// start removes the directories of topics the image no longer holds
// (removeStrays).
func (reg *topicRegistry) dropClusterTopic(name string) {
	t := reg.byName[name]
	reg.unset(name)
	t.close()
	reg.forgetRecoveryPoints(name, t.Partitions)
	fs := reg.b.env.FS
	for i, p := range t.partitions {
		if p == nil {
			continue
		}
		dir := partitionDir(reg.b.cfg.DataDir, name, int32(i))
		aside := asideDir(dir, t.ID)
		if err := fs.Rename(dir, aside); err != nil {
			reg.b.fatalSoon(fmt.Errorf("move %s aside for deletion: %w", dir, err))
			continue
		}
		if err := fs.RemoveAll(aside); err != nil {
			reg.b.env.Log.Logf("delete %s: %v", dir, err)
		}
	}
	reg.b.env.Log.Logf("broker %d: topic %s deleted", reg.b.cfg.NodeID, name)
}

// hosted lists the partitions of t this broker holds: all of them for a
// single broker, its replicas in a cluster.
func (t *topic) hosted() []*partition {
	out := make([]*partition, 0, len(t.partitions))
	for _, p := range t.partitions {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// splitAddr parses a registered broker address into host and port.
func splitAddr(addr string) (string, int32, bool) {
	host, port, ok := splitHostPort(addr)
	if !ok {
		return "", 0, false
	}
	var n int32
	for _, c := range port {
		if c < '0' || c > '9' || n > 1<<20 {
			return "", 0, false
		}
		n = n*10 + c - '0'
	}
	return host, n, true
}

// controlledShutdownMax bounds how long a stopping broker waits for the
// controller to move its leaderships away.
const controlledShutdownMax = 5 * time.Second

// controlledShutdown asks the controller to move this broker's
// leaderships to other ISR members and fence it, then waits until the
// image shows it leads nothing (or controlledShutdownMax passes) before
// calling next. A single broker, or one not yet registered, goes on at
// once.
func (b *Broker) controlledShutdown(next func()) {
	m := b.cluster
	if m == nil || m.stopped || m.member == nil || m.member.Epoch() == 0 {
		b.env.Clock.AfterFunc(0, next)
		return
	}
	finished := false
	finish := func() {
		if !finished {
			finished = true
			next()
		}
	}
	b.env.Clock.AfterFunc(controlledShutdownMax, finish)
	m.member.ControlledShutdown(func(err error) {
		if err != nil {
			b.env.Log.Logf("broker %d: controlled shutdown: %v", b.cfg.NodeID, err)
			finish()
			return
		}
		m.awaitNoLeaderships(finish)
	})
}

// awaitNoLeaderships calls done once the image shows this broker leading
// no partition, looking again as images arrive.
func (m *clusterMember) awaitNoLeaderships(done func()) {
	if m.stopped {
		return
	}
	s := m.member.Image().State()
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if p.Leader == m.b.cfg.NodeID {
				m.b.env.Clock.AfterFunc(memberLookInterval, func() { m.awaitNoLeaderships(done) })
				return
			}
		}
	}
	done()
}

// memberLookInterval paces looks at the image while waiting for it.
const memberLookInterval = 50 * time.Millisecond
