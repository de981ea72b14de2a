package controller

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
)

// Member is a broker's membership of the cluster: it registers with the
// controllers, heartbeats, and follows the metadata log into an Image.
// Brokers and Agents both run one; what they do with the image is theirs
// (onImage is called after every delta applied).
type Member struct {
	env    sim.Env
	id     int32
	addr   string
	client *Client
	epoch  int64
	image  *metadata.Image
	// fenced is what the last heartbeat said.
	fenced bool
	// stopped ends every loop; shutdown ends the heartbeats (a controlled
	// shutdown in progress).
	stopped, shutdown bool
	heartbeat         time.Duration
	// epochs are the epochs registrations were acknowledged with: each is
	// the log offset of the registration record.
	epochs []int64
	// heartbeating and fetching are set while a heartbeat or a fetch is
	// in flight: one of each at a time, as a broker sends them, so that
	// a quorum that does not answer does not pile up requests.
	heartbeating, fetching bool
	// committed is the controller's committed offset as the last fetch
	// answer gave it.
	committed int64
	onImage   func()
}

// memberFetchInterval paces the metadata fetches.
const memberFetchInterval = 100 * time.Millisecond

// memberRetryDelay is the pause before a refused registration is retried.
const memberRetryDelay = 100 * time.Millisecond

// NewMember returns the membership of broker id, reachable by clients at
// addr, with the controllers at their addresses. onImage, if not nil, is
// called after every metadata delta applied.
func NewMember(env sim.Env, id int32, addr string, controllers []string, onImage func()) *Member {
	if onImage == nil {
		onImage = func() {}
	}
	return &Member{env: env, id: id, addr: addr, client: NewClient(env, controllers), image: metadata.NewImage(),
		fenced: true, heartbeat: 200 * time.Millisecond, onImage: onImage}
}

// Start registers and begins following the metadata log.
func (m *Member) Start() {
	m.register()
	m.fetchLoop()
}

// Stop ends the membership's loops and abandons its requests.
func (m *Member) Stop() {
	m.stopped = true
	m.client.Stop()
}

func (m *Member) register() {
	if m.stopped {
		return
	}
	req := Request{Op: OpRegister, BrokerID: m.id, Addr: m.addr, Incarnation: fmt.Sprintf("%x", m.env.Rand.Uint64())}
	m.client.Do(req, func(r Response, err error) {
		if err != nil || r.Code != metadata.CodeNone {
			m.env.Clock.AfterFunc(memberRetryDelay, m.register)
			return
		}
		m.epoch = r.BrokerEpoch
		m.epochs = append(m.epochs, r.BrokerEpoch)
		m.heartbeatLoop()
	})
}

func (m *Member) heartbeatLoop() {
	if m.stopped || m.shutdown {
		return
	}
	m.env.Clock.AfterFunc(m.heartbeat, m.heartbeatLoop)
	if m.heartbeating {
		return
	}
	m.heartbeating = true
	req := Request{Op: OpHeartbeat, BrokerID: m.id, BrokerEpoch: m.epoch, MetadataOffset: m.image.Next() - 1}
	m.client.Do(req, func(r Response, err error) {
		m.heartbeating = false
		if err == nil && r.Code == metadata.CodeNone {
			m.fenced = r.Fenced
		}
	})
}

func (m *Member) fetchLoop() {
	if m.stopped {
		return
	}
	m.env.Clock.AfterFunc(memberFetchInterval, m.fetchLoop)
	if m.fetching {
		return
	}
	m.fetching = true
	m.client.Do(Request{Op: OpFetchMetadata, FromOffset: m.image.Next()}, func(r Response, err error) {
		m.fetching = false
		if m.stopped || err != nil || r.Delta == nil {
			return
		}
		m.committed = max(m.committed, r.Committed)
		if err := m.image.Apply(*r.Delta); err != nil {
			m.env.Log.Logf("broker %d: %v", m.id, err)
		}
		m.onImage()
	})
}

// ID is the member's broker id.
func (m *Member) ID() int32 { return m.id }

// Epoch is the broker epoch of the latest acknowledged registration, 0
// before one is acknowledged.
func (m *Member) Epoch() int64 { return m.epoch }

// Epochs lists the epochs of every acknowledged registration, in order.
func (m *Member) Epochs() []int64 { return slices.Clone(m.epochs) }

// Fenced is what the member's last heartbeat answer said.
func (m *Member) Fenced() bool { return m.fenced }

// Image is the metadata the member has fetched.
func (m *Member) Image() *metadata.Image { return m.image }

// Client is the member's controller client, for the requests a broker
// makes besides its membership (AlterPartition, topic changes).
func (m *Member) Client() *Client { return m.client }

// CaughtUp reports whether the image holds every record the controller
// had committed at the last fetch, this member's registration included:
// until then the image may describe a past the cluster has left.
func (m *Member) CaughtUp() bool {
	through := m.image.Next() - 1
	return m.epoch > 0 && through >= m.epoch && through >= m.committed
}

// ControlledShutdown asks the controller to move this broker's
// leaderships to other ISR members and fence it (Kafka's controlled
// shutdown); heartbeats stop. done hears the answer.
func (m *Member) ControlledShutdown(done func(error)) {
	m.shutdown = true
	m.client.Do(Request{Op: OpControlledShutdown, BrokerID: m.id, BrokerEpoch: m.epoch}, func(r Response, err error) {
		if err == nil && r.Code != metadata.CodeNone {
			err = fmt.Errorf("controller refused: %s", r.Code)
		}
		done(err)
	})
}
