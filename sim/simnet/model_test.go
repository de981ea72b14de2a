package simnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// The model test drives a few hosts through dials, sends, closes, one-way
// blocks, partitions, pauses, crashes (killed or powered off) and restarts,
// and checks TCP's promises against what each handler sees:
//
//   - a connection direction delivers exactly a prefix of what was sent on
//     it: in order, without gaps, duplicates or invented frames;
//   - nothing crosses a direction while it is blocked;
//   - a crashed incarnation's handlers are never called again, and no
//     handler is called after its own Close or after OnClose;
//   - every close has a cause the model can name (a graceful close follows
//     the peer's Close and everything it sent; a reset follows the peer's
//     death or error; a timeout follows a fault on the path);
//   - once healed and given time: every dial has resolved, every open
//     connection has delivered everything sent on it, every end whose
//     peer finished (closed, failed, or was killed) has been closed, and an
//     end whose peer lost power learns it as soon as it sends.

const (
	modelPortOpen   = 7000
	modelPortClosed = 7001
	modelHosts      = 4
	modelConnsMax   = 48
	modelStepsMin   = 10
	modelStepsMax   = 300
	// settle is long enough for every timeout and retry to have run.
	settle = 2 * time.Minute
)

type model struct {
	t       *rapid.T
	loop    *sched.Loop
	nw      *Network
	hosts   []*mHost
	conns   []*mConn
	byID    map[uint64]*mConn // looked up, never iterated
	blocked [modelHosts][modelHosts]bool
}

type mHost struct {
	idx    int
	name   string
	node   *sched.Node
	host   *Host
	gen    int // bumps at every crash
	up     bool
	paused bool
}

type mConn struct {
	idx  int
	port int
	// ends[0] dialled, ends[1] accepted (nil until then).
	ends [2]*mEnd
	// disturbed: a fault touched the path or a host since the dial, so a
	// timeout is excusable.
	disturbed bool
}

type mEnd struct {
	m    *model
	conn *mConn
	side int
	host *mHost
	gen  int
	c    sim.Conn
	// sent counts the frames Send accepted; received those delivered.
	sent, received int
	sentAtClose    int
	opened         bool
	userClosed     bool
	closed         bool
	err            error
	crashed        bool
	// killed: crashed by a process kill, which resets its peer.
	killed bool
}

func (e *mEnd) peer() *mEnd { return e.conn.ends[1-e.side] }

func (e *mEnd) String() string {
	return fmt.Sprintf("conn %d side %d on %s gen %d", e.conn.idx, e.side, e.host.name, e.gen)
}

// live reports whether the model expects the end to be usable.
func (e *mEnd) live() bool { return !e.crashed && !e.closed && !e.userClosed }

// callback checks what holds for every callback.
func (e *mEnd) callback(what string) {
	switch {
	case e.crashed || e.host.gen != e.gen:
		e.m.t.Fatalf("%s on %s: a crashed incarnation's handler was called", what, e)
	case e.userClosed:
		e.m.t.Fatalf("%s on %s after its own Close", what, e)
	case e.closed:
		e.m.t.Fatalf("%s on %s after OnClose", what, e)
	}
}

func (e *mEnd) OnOpen(c sim.Conn) {
	e.callback("OnOpen")
	if e.opened {
		e.m.t.Fatalf("OnOpen twice on %s", e)
	}
	if e.side == 0 && e.m.blockedBetween(e.conn.ends[1].host, e.host) {
		e.m.t.Fatalf("SYN-ACK for %s crossed a blocked direction", e)
	}
	e.opened = true
}

func (e *mEnd) OnFrame(c sim.Conn, f []byte) {
	e.callback("OnFrame")
	if len(f) < 9 {
		e.m.t.Fatalf("%s got an invented frame of %d bytes", e, len(f))
	}
	idx, side, seq := int(binary.BigEndian.Uint32(f)), int(f[4]), int(binary.BigEndian.Uint32(f[5:]))
	if idx != e.conn.idx || side != 1-e.side {
		e.m.t.Fatalf("%s got a frame of conn %d side %d", e, idx, side)
	}
	p := e.peer()
	if seq != e.received {
		e.m.t.Fatalf("%s got frame #%d, want #%d (gap, duplicate or reorder)", e, seq, e.received)
	}
	if seq >= p.sent {
		e.m.t.Fatalf("%s got frame #%d, only %d sent", e, seq, p.sent)
	}
	if e.m.blockedBetween(p.host, e.host) {
		e.m.t.Fatalf("%s got frame #%d across a blocked direction", e, seq)
	}
	e.received++
}

func (e *mEnd) OnClose(c sim.Conn, err error) {
	e.callback("OnClose")
	e.closed = true
	e.err = err
	p := e.peer()
	switch {
	case err == nil:
		if p == nil || !p.userClosed {
			e.m.t.Fatalf("%s closed gracefully but its peer did not Close", e)
		}
		if e.received != p.sentAtClose {
			e.m.t.Fatalf("%s closed gracefully after %d of the %d frames sent before Close", e, e.received, p.sentAtClose)
		}
	case errors.Is(err, sim.ErrReset):
		// A closed peer resets only when its FIN stalls past the stall
		// timeout, which takes a fault.
		if p == nil || !(p.crashed || p.closed && p.err != nil || p.userClosed && e.conn.disturbed) {
			e.m.t.Fatalf("%s reset while its peer lives: %v", e, err)
		}
	case errors.Is(err, sim.ErrTimeout):
		if !e.conn.disturbed {
			e.m.t.Fatalf("%s timed out without a fault on its path: %v", e, err)
		}
	case errors.Is(err, sim.ErrRefused):
		if e.side != 0 || e.opened || e.conn.port != modelPortClosed {
			e.m.t.Fatalf("%s refused (port %d, opened %v): %v", e, e.conn.port, e.opened, err)
		}
	default:
		e.m.t.Fatalf("%s closed with %v", e, err)
	}
	if e.side == 0 && !e.opened && err == nil {
		e.m.t.Fatalf("%s closed gracefully before it opened", e)
	}
}

func (m *model) blockedBetween(from, to *mHost) bool { return m.blocked[from.idx][to.idx] }

// startProcess is what a host runs at boot: a listener on modelPortOpen.
func (m *model) startProcess(h *mHost) {
	_, err := h.host.Net().Listen(fmt.Sprintf(":%d", modelPortOpen), sim.ConnOptions{}, func(c sim.Conn) sim.ConnHandler {
		mc := m.byID[c.(*end).conn.id]
		if mc == nil || mc.ends[1] != nil {
			m.t.Fatalf("accepted an unknown or already accepted connection %s", c.RemoteAddr())
		}
		client := mc.ends[0]
		// A client closed while dialling still completes the handshake,
		// to deliver what it queued and its FIN.
		if client.crashed || client.closed {
			m.t.Fatalf("accepted %s, whose client end is gone", client)
		}
		if m.blockedBetween(client.host, h) {
			m.t.Fatalf("SYN of conn %d crossed a blocked direction", mc.idx)
		}
		e := &mEnd{m: m, conn: mc, side: 1, host: h, gen: h.gen, c: c}
		mc.ends[1] = e
		return e
	})
	if err != nil {
		m.t.Fatalf("listen on %s: %v", h.name, err)
	}
}

// disturb marks the connections a fault may affect.
func (m *model) disturb(touches func(a, b *mHost) bool) {
	for _, c := range m.conns {
		a := c.ends[0].host
		b := c.ends[0].conn.serverHost(m)
		if touches(a, b) {
			c.disturbed = true
		}
	}
}

func (c *mConn) serverHost(m *model) *mHost {
	if c.ends[1] != nil {
		return c.ends[1].host
	}
	return m.hosts[c.ends[0].serverIdx()]
}

// serverIdx is the host a client end dialled, from its remote address.
func (e *mEnd) serverIdx() int {
	name := e.c.RemoteAddr()
	for i := range name {
		if name[i] == ':' {
			name = name[:i]
			break
		}
	}
	for _, h := range e.m.hosts {
		if h.name == name {
			return h.idx
		}
	}
	e.m.t.Fatalf("dialled unknown host %q", name)
	return -1
}

func (m *model) frame(e *mEnd, size int) []byte {
	f := make([]byte, size)
	binary.BigEndian.PutUint32(f, uint32(e.conn.idx))
	f[4] = byte(e.side)
	binary.BigEndian.PutUint32(f[5:], uint32(e.sent))
	return f
}

// send sends n frames on e and checks Send's answer against the model.
func (m *model) send(e *mEnd, n, size int) {
	for i := 0; i < n; i++ {
		err := e.c.Send(m.frame(e, size))
		if e.closed || e.userClosed {
			if !errors.Is(err, sim.ErrClosed) {
				m.t.Fatalf("send on finished %s: %v, want ErrClosed", e, err)
			}
			continue
		}
		if err != nil {
			m.t.Fatalf("send on %s: %v", e, err)
		}
		e.sent++
	}
}

// running are the hosts whose process can act now.
func (m *model) running() []*mHost {
	var hs []*mHost
	for _, h := range m.hosts {
		if h.up && !h.paused {
			hs = append(hs, h)
		}
	}
	return hs
}

// actingEnds are the ends whose process can call them now.
func (m *model) actingEnds() []*mEnd {
	var es []*mEnd
	for _, c := range m.conns {
		for _, e := range c.ends {
			if e != nil && !e.crashed && e.host.up && !e.host.paused {
				es = append(es, e)
			}
		}
	}
	return es
}

func (m *model) run(d time.Duration) { m.loop.Run(sched.Limits{Until: m.loop.Now() + d}) }

func newModel(t *rapid.T) *model {
	cfg := Config{
		Link: LinkConfig{
			Latency:              sched.Latency{Base: 200 * time.Microsecond, Jitter: 100 * time.Microsecond},
			BandwidthBytesPerSec: rapid.SampledFrom([]int64{0, 10 << 20}).Draw(t, "bandwidth"),
		},
		StallTimeout: rapid.SampledFrom([]time.Duration{time.Second, StallTimeoutDefault}).Draw(t, "stallTimeout"),
	}
	loop := sched.New()
	m := &model{t: t, loop: loop, byID: map[uint64]*mConn{}}
	m.nw = New(loop, sched.NewRand(rapid.Uint64().Draw(t, "seed"), "net", 0), cfg)
	for i := 0; i < modelHosts; i++ {
		node := loop.AddNode(fmt.Sprintf("h%d", i))
		node.Boot()
		h := &mHost{idx: i, name: node.Name, node: node, host: m.nw.AddHost(node), up: true}
		m.hosts = append(m.hosts, h)
		m.startProcess(h)
	}
	return m
}

func (m *model) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"dial": func(t *rapid.T) {
			hs := m.running()
			if len(hs) == 0 || len(m.conns) >= modelConnsMax {
				return
			}
			from := rapid.SampledFrom(hs).Draw(t, "from")
			to := rapid.SampledFrom(m.hosts).Draw(t, "to")
			port := modelPortOpen
			if rapid.IntRange(0, 9).Draw(t, "closedPort") == 0 {
				port = modelPortClosed
			}
			mc := &mConn{idx: len(m.conns), port: port}
			e := &mEnd{m: m, conn: mc, host: from, gen: from.gen}
			mc.ends[0] = e
			m.conns = append(m.conns, mc)
			e.c = from.host.Net().Dial(fmt.Sprintf("%s:%d", to.name, port), sim.ConnOptions{}, e)
			m.byID[e.c.(*end).conn.id] = mc
			if m.blocked[from.idx][to.idx] || m.blocked[to.idx][from.idx] || !to.up || to.paused {
				mc.disturbed = true
			}
		},
		"send": func(t *rapid.T) {
			es := m.actingEnds()
			if len(es) == 0 {
				return
			}
			e := rapid.SampledFrom(es).Draw(t, "end")
			m.send(e, rapid.IntRange(1, 4).Draw(t, "frames"), rapid.IntRange(9, 2000).Draw(t, "size"))
		},
		"close": func(t *rapid.T) {
			es := m.actingEnds()
			if len(es) == 0 {
				return
			}
			e := rapid.SampledFrom(es).Draw(t, "end")
			e.c.Close()
			if !e.closed && !e.userClosed {
				e.sentAtClose = e.sent
			}
			e.userClosed = true
		},
		"block": func(t *rapid.T) {
			a := rapid.SampledFrom(m.hosts).Draw(t, "from")
			b := rapid.SampledFrom(m.hosts).Draw(t, "to")
			if a == b {
				return
			}
			m.nw.Block(a.name, b.name)
			m.blocked[a.idx][b.idx] = true
			m.disturb(func(x, y *mHost) bool { return x == a && y == b || x == b && y == a })
		},
		"unblock": func(t *rapid.T) {
			a := rapid.SampledFrom(m.hosts).Draw(t, "from")
			b := rapid.SampledFrom(m.hosts).Draw(t, "to")
			m.nw.Unblock(a.name, b.name)
			m.blocked[a.idx][b.idx] = false
		},
		"partition": func(t *rapid.T) {
			side := make([]bool, modelHosts)
			var groups [2][]string
			for i, h := range m.hosts {
				side[i] = rapid.Bool().Draw(t, "side")
				if side[i] {
					groups[1] = append(groups[1], h.name)
				} else {
					groups[0] = append(groups[0], h.name)
				}
			}
			m.nw.Partition(groups[0], groups[1])
			for i := range m.hosts {
				for j := range m.hosts {
					if side[i] != side[j] {
						m.blocked[i][j] = true
					}
				}
			}
			m.disturb(func(x, y *mHost) bool { return side[x.idx] != side[y.idx] })
		},
		"heal": func(t *rapid.T) { m.heal() },
		"crash": func(t *rapid.T) {
			var up []*mHost
			for _, h := range m.hosts {
				if h.up {
					up = append(up, h)
				}
			}
			if len(up) == 0 {
				return
			}
			h := rapid.SampledFrom(up).Draw(t, "host")
			m.crash(h, rapid.Bool().Draw(t, "kill"))
		},
		"restart": func(t *rapid.T) {
			var down []*mHost
			for _, h := range m.hosts {
				if !h.up {
					down = append(down, h)
				}
			}
			if len(down) == 0 {
				return
			}
			h := rapid.SampledFrom(down).Draw(t, "host")
			h.node.Boot()
			h.up = true
			m.startProcess(h)
		},
		"pause": func(t *rapid.T) {
			hs := m.running()
			if len(hs) == 0 {
				return
			}
			h := rapid.SampledFrom(hs).Draw(t, "host")
			h.node.Pause()
			h.paused = true
			m.disturb(func(x, y *mHost) bool { return x == h || y == h })
		},
		"resume": func(t *rapid.T) { m.resumeAll() },
		"advance": func(t *rapid.T) {
			m.run(rapid.SampledFrom([]time.Duration{
				time.Millisecond, 100 * time.Microsecond, 10 * time.Millisecond,
				100 * time.Millisecond, time.Second, 5 * time.Second, 20 * time.Second, 0,
			}).Draw(t, "d"))
		},
	}
}

// actionDeck lists action names as often as they should be drawn: mostly
// traffic and time passing, with faults among them. rapid draws low
// indexes more often, so the commonest actions come first.
func actionDeck() []string {
	weights := []struct {
		name   string
		weight int
	}{
		{"send", 8}, {"dial", 4}, {"advance", 6}, {"close", 1}, {"restart", 2}, {"block", 1},
		{"unblock", 1}, {"partition", 1}, {"heal", 1}, {"crash", 1}, {"pause", 1}, {"resume", 1},
	}
	var deck []string
	for _, w := range weights {
		for i := 0; i < w.weight; i++ {
			deck = append(deck, w.name)
		}
	}
	return deck
}

// checkAlways checks what holds between any two actions.
func (m *model) checkAlways() {
	s := m.nw.Stats()
	if s.FramesDelivered+s.FramesDiscarded > s.FramesSent {
		m.t.Fatalf("more frames delivered or discarded than sent: %+v", s)
	}
}

func (m *model) heal() {
	m.nw.HealAll()
	m.blocked = [modelHosts][modelHosts]bool{}
}

func (m *model) resumeAll() {
	for _, h := range m.hosts {
		if h.paused {
			h.node.Resume()
			h.paused = false
		}
	}
}

func (m *model) crash(h *mHost, kill bool) {
	m.nw.Crash(h.name, kill)
	h.node.Crash()
	for _, c := range m.conns {
		for _, e := range c.ends {
			if e != nil && e.host == h && e.gen == h.gen {
				e.crashed = true
				e.killed = kill
			}
		}
	}
	h.gen++
	h.up = false
	h.paused = false
	m.disturb(func(x, y *mHost) bool { return x == h || y == h })
}

// checkSettled checks a healed network after settle.
func (m *model) checkSettled(phase string) {
	for _, c := range m.conns {
		client := c.ends[0]
		if !client.crashed && client.live() && !client.opened {
			m.t.Fatalf("%s: dial of %s never resolved", phase, client)
		}
		server := c.ends[1]
		if server == nil {
			continue
		}
		for _, x := range c.ends {
			y := x.peer()
			if x.live() && y.live() && y.received != x.sent {
				m.t.Fatalf("%s: %s received %d of the %d frames sent on an open connection", phase, y, y.received, x.sent)
			}
			// A power loss takes a FIN not yet sent with it; an RST once
			// queued survives.
			xFinished := x.killed || x.closed && x.err != nil || !x.crashed && (x.userClosed || x.closed)
			if xFinished && !y.crashed && !y.userClosed && !y.closed {
				m.t.Fatalf("%s: %s is still open though its peer finished (closed %v err %v)", phase, y, x.userClosed, x.err)
			}
		}
	}
}

func TestModelConnections(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newModel(t)
		actions := m.actions()
		deck := actionDeck()
		steps := rapid.IntRange(modelStepsMin, modelStepsMax).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			actions[rapid.SampledFrom(deck).Draw(t, "action")](t)
			m.checkAlways()
		}

		m.resumeAll()
		m.heal()
		m.run(settle)
		m.checkSettled("after heal")

		// Killed processes reset their peers; a peer of a powered-off
		// host learns of it when it sends.
		var probed []*mEnd
		for _, c := range m.conns {
			if c.ends[1] == nil {
				continue
			}
			for _, x := range c.ends {
				y := x.peer()
				if !x.crashed || !y.live() {
					continue
				}
				m.send(y, 1, 16)
				probed = append(probed, y)
			}
		}
		m.run(settle)
		for _, y := range probed {
			if !y.closed {
				t.Fatalf("%s is still open after sending to a crashed peer", y)
			}
		}
		m.checkSettled("after probing")
	})
}
