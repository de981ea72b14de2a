package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The clients' metadata refresh bounds unless configured: Kafka's
// metadata.max.age.ms, and a floor between refreshes.
const (
	metadataMinIntervalDefault = 250 * time.Millisecond
	metadataMaxAgeDefault      = 5 * time.Minute
)

// adminClusterConfig is the cluster view of an admin client (the topic
// creator, the record deleter): one request in flight, the clients'
// metadata bounds.
func adminClusterConfig(bootstrap []string, clientID string) clusterConfig {
	return clusterConfig{bootstrap: bootstrap,
		metadataMinInterval: metadataMinIntervalDefault, metadataMaxAge: metadataMaxAgeDefault,
		conn: connConfig{clientID: clientID, requestTimeout: 2 * time.Second, inFlightMax: 1}}
}

// clusterConfig configures what a client knows of the cluster.
type clusterConfig struct {
	bootstrap []string
	conn      connConfig
	// metadataMinInterval bounds the metadata refresh rate.
	metadataMinInterval time.Duration
	// metadataMaxAge refreshes metadata even when nothing asks for it.
	metadataMaxAge         time.Duration
	allowAutoTopicCreation bool
}

// partitionMeta is what metadata says of one partition.
type partitionMeta struct {
	leader      int32
	leaderEpoch int32
	err         int16
}

// topicMeta is what metadata says of one topic.
type topicMeta struct {
	err        int16
	id         [16]byte
	partitions []partitionMeta
}

// cluster is a client's view of the brokers: the latest metadata for the
// topics it uses and one connection per broker. It is shared by the
// producer's or consumer's callbacks and runs on their loop.
type cluster struct {
	env sim.Env
	cfg clusterConfig
	// brokers maps node ids from metadata to addresses.
	brokers map[int32]string
	conns   map[int32]*brokerConn
	topics  map[string]*topicMeta
	// lastTopic and lastTopicName are the last topic looked up: a
	// client asks about one topic many times per request.
	lastTopic     *topicMeta
	lastTopicName string
	// wanted is every topic the owner uses, sorted; metadata asks for them.
	wanted []string

	metaInFlight bool
	metaWanted   bool
	metaEver     bool
	metaLast     time.Duration
	metaTimer    sim.Timer
	metaAgeTimer sim.Timer
	// metaNext rotates the broker asked for metadata when none is
	// connected, or when metaElsewhere.
	metaNext int
	// metaElsewhere: the last answer was staler than what the owner knows
	// (a broker cut off from the controller still answers), so the next
	// request goes to another broker than the lowest connected one.
	metaElsewhere bool
	// metaRequests counts metadata requests sent.
	metaRequests int
	// onUpdate is the owner's hook after every metadata response applied.
	onUpdate func()
	closed   bool
}

func newCluster(env sim.Env, cfg clusterConfig, onUpdate func()) *cluster {
	sim.Assert(len(cfg.bootstrap) > 0, "no bootstrap brokers")
	// A zero age would refresh again the moment each answer arrives.
	sim.Assert(cfg.metadataMaxAge > 0 && cfg.metadataMinInterval > 0, "metadata refresh unbounded: max age %v, min interval %v",
		cfg.metadataMaxAge, cfg.metadataMinInterval)
	return &cluster{
		env:      env,
		cfg:      cfg,
		brokers:  map[int32]string{},
		conns:    map[int32]*brokerConn{},
		topics:   map[string]*topicMeta{},
		onUpdate: onUpdate,
	}
}

// want adds topic to the topics metadata is kept for and asks for it if it
// is new.
func (c *cluster) want(topic string) {
	i, found := slices.BinarySearch(c.wanted, topic)
	if found {
		return
	}
	c.wanted = slices.Insert(c.wanted, i, topic)
	c.refresh()
}

// partitions is the partition count of topic, 0 while unknown.
func (c *cluster) partitions(topic string) int {
	if t := c.topic(topic); t != nil && t.err == codeNone {
		return len(t.partitions)
	}
	return 0
}

// topic is topic's metadata, nil while unknown.
func (c *cluster) topic(topic string) *topicMeta {
	if c.lastTopic != nil && c.lastTopicName == topic {
		return c.lastTopic
	}
	t := c.topics[topic]
	c.lastTopic, c.lastTopicName = t, topic
	return t
}

// leader is the node leading a partition, -1 while unknown.
func (c *cluster) leader(topic string, partition int32) int32 {
	t := c.topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.partitions) {
		return -1
	}
	p := t.partitions[partition]
	if _, known := c.brokers[p.leader]; !known {
		return -1
	}
	return p.leader
}

// leaderEpoch is a partition's leader epoch as metadata last said, -1
// while unknown.
func (c *cluster) leaderEpoch(topic string, partition int32) int32 {
	t := c.topic(topic)
	if t == nil || partition < 0 || int(partition) >= len(t.partitions) {
		return -1
	}
	return t.partitions[partition].leaderEpoch
}

// refresh asks for fresh metadata, no more often than metadataMinInterval.
func (c *cluster) refresh() {
	c.metaWanted = true
	c.scheduleRefresh()
}

func (c *cluster) scheduleRefresh() {
	if c.closed || c.metaInFlight || !c.metaWanted {
		return
	}
	if c.metaEver {
		if wait := c.metaLast + c.cfg.metadataMinInterval - c.env.Clock.Mono(); wait > 0 {
			if c.metaTimer == nil {
				c.metaTimer = c.env.Clock.AfterFunc(wait, func() {
					c.metaTimer = nil
					c.scheduleRefresh()
				})
			}
			return
		}
	}
	c.sendMetadata()
}

// refreshElsewhere asks for fresh metadata from another broker than the
// lowest connected one: the owner knows the answers so far are stale.
func (c *cluster) refreshElsewhere() {
	c.metaElsewhere = true
	c.refresh()
}

// metadataNode picks who to ask: a connected broker if there is one (lowest
// id first), otherwise the next known broker or bootstrap address in turn;
// with metaElsewhere, the next known broker in turn.
func (c *cluster) metadataNode() int32 {
	if c.metaElsewhere && len(c.brokers) > 1 {
		c.metaElsewhere = false
		ids := c.brokerIDs()
		c.metaNext++
		return ids[c.metaNext%len(ids)]
	}
	ids := c.connIDs()
	for _, id := range ids {
		if c.conns[id].ready() {
			return id
		}
	}
	candidates := c.brokerIDs()
	for i := range c.cfg.bootstrap {
		candidates = append(candidates, bootstrapNode(i))
	}
	c.metaNext++
	return candidates[c.metaNext%len(candidates)]
}

// bootstrapNode is the pseudo node id of the i-th bootstrap address:
// negative, so it never collides with a real broker id.
func bootstrapNode(i int) int32 { return int32(-1 - i) }

func (c *cluster) sendMetadata() {
	c.metaInFlight = true
	c.metaWanted = false
	c.metaRequests++
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = c.cfg.allowAutoTopicCreation
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(c.wanted))
	for _, t := range c.wanted {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	c.call(c.metadataNode(), req, 0, false, func(resp kmsg.Response, err error) {
		c.metaInFlight = false
		c.metaEver = true
		c.metaLast = c.env.Clock.Mono()
		if c.closed {
			return
		}
		if err != nil {
			c.env.Log.Logf("kafka client %s: metadata: %v", c.cfg.conn.clientID, err)
			c.metaWanted = true
			c.scheduleRefresh()
			return
		}
		c.apply(resp.(*kmsg.MetadataResponse))
		c.armMaxAge()
		c.scheduleRefresh()
		c.onUpdate()
	})
}

// armMaxAge refreshes metadata metadataMaxAge after the last response.
func (c *cluster) armMaxAge() {
	if c.metaAgeTimer != nil {
		c.metaAgeTimer.Stop()
	}
	c.metaAgeTimer = c.env.Clock.AfterFunc(c.cfg.metadataMaxAge, func() {
		c.metaAgeTimer = nil
		c.refresh()
	})
}

// brokerAddr joins a host and port, bracketing IPv6 hosts.
func brokerAddr(host string, port int32) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// partitionsMax bounds the partitions of one topic we accept.
const partitionsMax = 1 << 16

func (c *cluster) apply(resp *kmsg.MetadataResponse) {
	brokers := make(map[int32]string, len(resp.Brokers))
	for _, b := range resp.Brokers {
		brokers[b.NodeID] = brokerAddr(b.Host, b.Port)
	}
	c.brokers = brokers
	for _, id := range c.connIDs() {
		bc := c.conns[id]
		if id >= 0 && brokers[id] != bc.addr {
			// The broker left or moved: its connection is stale.
			bc.close(fmt.Errorf("broker %d left the metadata or moved: %w", id, sim.ErrReset))
		}
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || !c.isWanted(*t.Topic) {
			continue
		}
		tm := &topicMeta{err: t.ErrorCode, id: t.TopicID}
		size := 0
		for _, p := range t.Partitions {
			if p.Partition >= 0 && p.Partition < partitionsMax {
				size = max(size, int(p.Partition)+1)
			}
		}
		tm.partitions = make([]partitionMeta, size)
		for i := range tm.partitions {
			tm.partitions[i] = partitionMeta{leader: -1, leaderEpoch: -1, err: codeLeaderNotAvailable}
		}
		for _, p := range t.Partitions {
			if p.Partition >= 0 && p.Partition < partitionsMax {
				tm.partitions[p.Partition] = partitionMeta{leader: p.Leader, leaderEpoch: p.LeaderEpoch, err: p.ErrorCode}
			}
		}
		if tm.err == codeNone && len(tm.partitions) == 0 {
			tm.err = codeLeaderNotAvailable
		}
		c.keepNewerEpochs(c.topics[*t.Topic], tm)
		c.topics[*t.Topic] = tm
		c.lastTopic = nil // the map changed
	}
}

// keepNewerEpochs keeps in next the partitions that old, the same topic,
// knew at a newer leader epoch, as Kafka's clients do: an answer from a
// broker the controller no longer reaches must not take the client back
// to a deposed leader. Such an answer sends the next request elsewhere.
func (c *cluster) keepNewerEpochs(old, next *topicMeta) {
	if old == nil || old.id != next.id || next.err != codeNone {
		return
	}
	for i := range min(len(old.partitions), len(next.partitions)) {
		if o := old.partitions[i]; o.err == codeNone && o.leaderEpoch > next.partitions[i].leaderEpoch {
			next.partitions[i] = o
			c.metaElsewhere = true
		}
	}
}

func (c *cluster) isWanted(topic string) bool {
	_, found := slices.BinarySearch(c.wanted, topic)
	return found
}

// brokerIDs are the known brokers' ids, sorted.
func (c *cluster) brokerIDs() []int32 {
	ids := make([]int32, 0, len(c.brokers))
	for id := range c.brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// connIDs are the ids with a connection, sorted.
func (c *cluster) connIDs() []int32 {
	ids := make([]int32, 0, len(c.conns))
	for id := range c.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// addrOf is where node listens, "" if unknown.
func (c *cluster) addrOf(node int32) string {
	if node < 0 {
		i := int(-1 - node)
		if i < len(c.cfg.bootstrap) {
			return c.cfg.bootstrap[i]
		}
		return ""
	}
	return c.brokers[node]
}

// connTo returns the live connection to node, dialling one if needed; nil
// when the node's address is unknown.
func (c *cluster) connTo(node int32) *brokerConn {
	if bc := c.conns[node]; bc != nil && bc.state != connDead {
		return bc
	}
	addr := c.addrOf(node)
	if addr == "" {
		return nil
	}
	bc := dialBroker(c.env, &c.cfg.conn, node, addr, c.onConnDead)
	c.conns[node] = bc
	return bc
}

// hasRoom reports whether a request to node would be written without
// waiting behind the in-flight bound.
func (c *cluster) hasRoom(node int32) bool {
	if bc := c.conns[node]; bc != nil && bc.state != connDead {
		return bc.hasRoom()
	}
	return true
}

// call sends req to node; done is called later with the response or the
// error. An unknown node fails the call unsent.
func (c *cluster) call(node int32, req kmsg.Request, extraTimeout time.Duration, noResponse bool, done func(kmsg.Response, error)) {
	cl := c.cfg.conn.newCall()
	cl.req, cl.extraTimeout, cl.noResponse, cl.done = req, extraTimeout, noResponse, done
	c.send(cl, node)
}

// callInto is call for a request with an answer, decoded into into, a
// response of req's kind that the caller reuses once done has returned.
func (c *cluster) callInto(node int32, req kmsg.Request, into kmsg.Response, extraTimeout time.Duration, done func(kmsg.Response, error)) {
	cl := c.cfg.conn.newCall()
	cl.req, cl.into, cl.extraTimeout, cl.done = req, into, extraTimeout, done
	c.send(cl, node)
}

func (c *cluster) send(cl *call, node int32) {
	done := cl.done
	bc := c.connTo(node)
	if bc == nil || c.closed {
		err := fmt.Errorf("no address for broker %d: %w", node, errNotSent)
		if c.closed {
			err = fmt.Errorf("client: %w: %w", ErrClosed, errNotSent)
		}
		c.env.Clock.AfterFunc(0, func() { done(nil, err) })
		return
	}
	bc.enqueue(cl)
}

func (c *cluster) onConnDead(bc *brokerConn, err error) {
	if c.conns[bc.node] == bc {
		delete(c.conns, bc.node)
	}
	if !c.closed && bc.node >= 0 {
		// As the Java client does: a lost broker may mean moved leaders.
		c.refresh()
	}
}

// close ends every connection and timer.
func (c *cluster) close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.metaTimer != nil {
		c.metaTimer.Stop()
	}
	if c.metaAgeTimer != nil {
		c.metaAgeTimer.Stop()
	}
	for _, id := range c.connIDs() {
		c.conns[id].close(fmt.Errorf("client closed: %w", ErrClosed))
	}
}
