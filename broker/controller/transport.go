package controller

import (
	"slices"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-sim/sluice/sim"
)

// Frames on a controller's port open with a byte saying what they carry:
// raft messages between controllers, or requests and responses of the
// broker protocol (protocol.go).
const (
	frameRaftMessage byte = 1
	frameRequest     byte = 2
	frameResponse    byte = 3
)

// redialDelay is how long a peer whose connection failed is left alone;
// messages for it meanwhile are dropped and raft told it is unreachable
// (raft retries on its own schedule).
const redialDelay = 100 * time.Millisecond

// transport carries raft messages to the other controllers. Each controller
// sends on connections it dialled and receives on connections it accepted,
// so a connection carries one direction only.
type transport struct {
	env   sim.Env
	peers map[uint64]*peer
	// unreachable is told about a peer whose connection failed.
	unreachable func(id uint64)
	// snapshotSent is told whether a snapshot message left.
	snapshotSent func(id uint64, ok bool)
}

type peer struct {
	id       uint64
	addr     string
	conn     sim.Conn
	failedAt time.Duration
	failed   bool
}

func newTransport(env sim.Env, self uint64, voters []Voter) *transport {
	t := &transport{env: env, peers: map[uint64]*peer{}}
	for _, v := range voters {
		if v.ID != self {
			t.peers[v.ID] = &peer{id: v.ID, addr: v.Addr}
		}
	}
	return t
}

// send sends one raft message, dialling its peer if need be.
func (t *transport) send(m pb.Message) {
	p := t.peers[m.To]
	sim.Assert(p != nil, "raft message to unknown controller %d", m.To)
	ok := t.sendTo(p, m)
	if m.Type == pb.MsgSnap {
		t.snapshotSent(m.To, ok)
	}
}

func (t *transport) sendTo(p *peer, m pb.Message) bool {
	if p.conn == nil {
		if p.failed && t.env.Clock.Mono()-p.failedAt < redialDelay {
			t.unreachable(p.id)
			return false
		}
		p.conn = t.env.Net.Dial(p.addr, sim.ConnOptions{}, (*peerHandler)(t))
	}
	data, err := m.Marshal()
	sim.Assert(err == nil, "marshal raft message: %v", err)
	frame := make([]byte, 1+len(data))
	frame[0] = frameRaftMessage
	copy(frame[1:], data)
	if err := p.conn.Send(frame); err != nil {
		t.fail(p)
		return false
	}
	return true
}

func (t *transport) fail(p *peer) {
	if p.conn != nil {
		p.conn.Close()
	}
	p.conn, p.failed, p.failedAt = nil, true, t.env.Clock.Mono()
	t.unreachable(p.id)
}

// close drops every connection.
func (t *transport) close() {
	for _, id := range sortedPeerIDs(t.peers) {
		if p := t.peers[id]; p.conn != nil {
			p.conn.Close()
			p.conn = nil
		}
	}
}

func sortedPeerIDs(peers map[uint64]*peer) []uint64 {
	ids := make([]uint64, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// peerHandler is the transport seen as the handler of its dialled
// connections.
type peerHandler transport

func (h *peerHandler) OnOpen(sim.Conn) {}

// OnFrame ignores frames: peers answer on their own connections.
func (h *peerHandler) OnFrame(sim.Conn, []byte) {}

func (h *peerHandler) OnClose(c sim.Conn, err error) {
	t := (*transport)(h)
	for _, id := range sortedPeerIDs(t.peers) {
		if p := t.peers[id]; p.conn == c {
			p.conn = nil
			t.fail(p)
		}
	}
}
