package simnet

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// testWorld is a loop, a network and booted hosts.
type testWorld struct {
	t     testing.TB
	loop  *sched.Loop
	nw    *Network
	hosts map[string]*Host
}

func newTestWorld(t testing.TB, seed uint64, cfg Config, names ...string) *testWorld {
	loop := sched.New()
	w := &testWorld{t: t, loop: loop, nw: New(loop, sched.NewRand(seed, "net", 0), cfg), hosts: map[string]*Host{}}
	for _, name := range names {
		node := loop.AddNode(name)
		node.Boot()
		w.hosts[name] = w.nw.AddHost(node)
	}
	return w
}

func (w *testWorld) net(name string) sim.Network { return w.hosts[name].Net() }

func (w *testWorld) node(name string) *sched.Node { return w.hosts[name].node }

// run advances simulated time by d.
func (w *testWorld) run(d time.Duration) {
	w.loop.Run(sched.Limits{Until: w.loop.Now() + d})
}

// crash kills a host's process and its node, as the world does.
func (w *testWorld) crash(name string, resetPeers bool) {
	w.nw.Crash(name, resetPeers)
	w.node(name).Crash()
}

// at runs fn as a world event at time at.
func (w *testWorld) at(at time.Duration, fn func()) {
	w.loop.At(at, nil, sched.KindWorld, 0, fn)
}

// recorder is a ConnHandler that records what happens to one end.
type recorder struct {
	loop     *sched.Loop
	conn     sim.Conn
	opens    int
	openAt   time.Duration
	frames   [][]byte
	frameAt  []time.Duration
	closes   int
	closeAt  time.Duration
	err      error
	onOpen   func(c sim.Conn)
	onFrame  func(c sim.Conn, f []byte)
	onClosed func(c sim.Conn, err error)
}

func newRecorder(loop *sched.Loop) *recorder { return &recorder{loop: loop} }

func (r *recorder) OnOpen(c sim.Conn) {
	r.conn = c
	r.opens++
	r.openAt = r.loop.Now()
	if r.onOpen != nil {
		r.onOpen(c)
	}
}

func (r *recorder) OnFrame(c sim.Conn, f []byte) {
	r.frames = append(r.frames, f)
	r.frameAt = append(r.frameAt, r.loop.Now())
	if r.onFrame != nil {
		r.onFrame(c, f)
	}
}

func (r *recorder) OnClose(c sim.Conn, err error) {
	r.closes++
	r.closeAt = r.loop.Now()
	r.err = err
	if r.onClosed != nil {
		r.onClosed(c, err)
	}
}

// server listens on addr and records every accepted connection.
type server struct {
	accepted []*recorder
	acceptAt []time.Duration
	listener sim.Listener
}

func (w *testWorld) listen(host, addr string, opts sim.ConnOptions) *server {
	w.t.Helper()
	s := &server{}
	l, err := w.net(host).Listen(addr, opts, func(c sim.Conn) sim.ConnHandler {
		r := newRecorder(w.loop)
		s.accepted = append(s.accepted, r)
		s.acceptAt = append(s.acceptAt, w.loop.Now())
		return r
	})
	if err != nil {
		w.t.Fatalf("listen %s on %s: %v", addr, host, err)
	}
	s.listener = l
	return s
}

// connect dials and runs until both ends are open.
func (w *testWorld) connect(from, addr string, srv *server, opts sim.ConnOptions) (sim.Conn, *recorder, *recorder) {
	w.t.Helper()
	cr := newRecorder(w.loop)
	n := len(srv.accepted)
	c := w.net(from).Dial(addr, opts, cr)
	w.run(time.Second)
	if cr.opens != 1 || len(srv.accepted) != n+1 {
		w.t.Fatalf("dial %s from %s: client opens %d, accepted %d (err %v)", addr, from, cr.opens, len(srv.accepted)-n, cr.err)
	}
	return c, cr, srv.accepted[n]
}

func frameN(i int, size int) []byte {
	f := make([]byte, size)
	for j := range f {
		f[j] = byte(i + j)
	}
	if size >= 4 {
		f[0], f[1], f[2], f[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	}
	return f
}

func frameIndex(f []byte) int {
	return int(f[0])<<24 | int(f[1])<<16 | int(f[2])<<8 | int(f[3])
}
