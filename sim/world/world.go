// Package world is the simulated world: every node of a cluster, its
// clients and agents in one process, over a simulated clock, disk and
// network, all driven by one seed. A seed replays a run exactly; the trace
// hash says whether it did.
package world

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
	"github.com/sluice-sim/sluice/sim/simnet"
)

// Config shapes a world.
type Config struct {
	Seed uint64
	// Epoch is the wall-clock time at which the run starts.
	Epoch time.Time
	Net   simnet.Config
	Disk  simdisk.Config
	// RecordTrace keeps every trace entry so that two runs can be compared
	// entry by entry.
	RecordTrace bool
	// Log, when set, receives every process's log lines, stamped with
	// simulated time and node.
	Log io.Writer
}

// DefaultEpoch is the wall-clock start of a run unless configured.
var DefaultEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultLink is a link between two machines of one data centre: about
// 0.1 ms one way with a thin tail, 10 Gbit/s.
var DefaultLink = simnet.LinkConfig{
	Latency:              sched.Latency{Base: 80 * time.Microsecond, Jitter: 20 * time.Microsecond},
	BandwidthBytesPerSec: 1_250_000_000,
}

// World is a simulated world.
type World struct {
	cfg   Config
	loop  *sched.Loop
	net   *simnet.Network
	nodes map[string]*Node
	order []*Node
	// events is the log of world actions (faults, crashes), for the report.
	events []string
	// networkCut is whether a partition or block is in force, so that a
	// heal with nothing to heal is reported as having no effect.
	networkCut bool
	// probes counts the probes the world's processes hit.
	probes sim.ProbeCounts
}

// New creates an empty world.
func New(cfg Config) *World {
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	if cfg.Net.Link == (simnet.LinkConfig{}) {
		cfg.Net.Link = DefaultLink
	}
	if cfg.Disk.SyncLatency == (sched.Latency{}) && cfg.Disk.WritebackAge == 0 {
		cfg.Disk = simdisk.DefaultConfig()
	}
	loop := sched.New()
	if cfg.RecordTrace {
		loop.Trace().Record()
	}
	w := &World{cfg: cfg, loop: loop, nodes: make(map[string]*Node)}
	w.net = simnet.New(loop, sched.NewRand(cfg.Seed, "network", 0), cfg.Net)
	return w
}

// Node is one simulated machine.
type Node struct {
	w     *World
	name  string
	sn    *sched.Node
	disk  *simdisk.Disk
	host  *simnet.Host
	clock *nodeClock
	start sim.Start
	// diskFaulted is whether a disk fault that disk-heal ends (slow,
	// failing syncs, full, read errors) was set since the last heal.
	diskFaulted bool
}

// AddNode adds a machine that runs start when it boots. It boots at time
// zero unless the caller crashes it first.
func (w *World) AddNode(name string, start sim.Start) *Node {
	sched.Assert(w.nodes[name] == nil, "node %q added twice", name)
	sn := w.loop.AddNode(name)
	n := &Node{
		w:     w,
		name:  name,
		sn:    sn,
		start: start,
		disk:  simdisk.New(w.loop, sn, sched.NewRand(w.cfg.Seed, "disk/"+name, 0), w.cfg.Disk),
		host:  w.net.AddHost(sn),
		clock: &nodeClock{loop: w.loop, node: sn, epoch: w.cfg.Epoch},
	}
	w.nodes[name] = n
	w.order = append(w.order, n)
	w.loop.At(w.loop.Now(), nil, sched.KindWorld, uint64(sn.ID), n.boot)
	return n
}

func (n *Node) boot() {
	if n.sn.Up() {
		return
	}
	n.sn.Boot()
	env := sim.Env{
		Node:   n.name,
		Clock:  n.clock,
		Rand:   sched.NewRand(n.w.cfg.Seed, "node/"+n.name, n.sn.Incarnation()),
		FS:     n.disk.FS(),
		Net:    n.host.Net(),
		Log:    n.logger(),
		Prober: nodeProber{n},
	}
	n.start(env)
}

func (n *Node) logger() sim.Logger {
	out := n.w.cfg.Log
	if out == nil {
		return sim.DiscardLogger
	}
	return sim.LoggerFunc(func(format string, args ...any) {
		fmt.Fprintf(out, "%12.6fs %-6s %s\n", n.w.loop.Now().Seconds(), n.name, fmt.Sprintf(format, args...))
	})
}

// Name is the node's host name.
func (n *Node) Name() string { return n.name }

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.sn.Up() }

// Disk is the node's disk, for fault injection and inspection.
func (n *Node) Disk() *simdisk.Disk { return n.disk }

// Node returns a node by name, or nil.
func (w *World) Node(name string) *Node { return w.nodes[name] }

// Nodes returns every node in the order added.
func (w *World) Nodes() []*Node { return w.order }

// NodeNames returns every node's name, sorted.
func (w *World) NodeNames() []string {
	names := make([]string, 0, len(w.nodes))
	for name := range w.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Loop is the world's event loop.
func (w *World) Loop() *sched.Loop { return w.loop }

// Network is the world's network, for fault injection.
func (w *World) Network() *simnet.Network { return w.net }

// Now is simulated time since the start of the run.
func (w *World) Now() time.Duration { return w.loop.Now() }

// At runs fn as a world event at simulated time t.
func (w *World) At(t time.Duration, fn func()) {
	w.loop.At(t, nil, sched.KindWorld, 0, fn)
}

// Run runs the world until simulated time until (or eventsMax events,
// if non-zero).
func (w *World) Run(until time.Duration, eventsMax uint64) {
	w.loop.Run(sched.Limits{Until: until, EventsMax: eventsMax})
}

// TraceHash is the rolling hash of every event so far.
func (w *World) TraceHash() uint64 { return w.loop.Trace().Hash() }

// Events is the log of world actions so far.
func (w *World) Events() []string { return w.events }

func (w *World) note(format string, args ...any) {
	line := fmt.Sprintf("%.6fs ", w.loop.Now().Seconds()) + fmt.Sprintf(format, args...)
	w.events = append(w.events, line)
	if w.cfg.Log != nil {
		fmt.Fprintf(w.cfg.Log, "%12.6fs %-6s %s\n", w.loop.Now().Seconds(), "world", fmt.Sprintf(format, args...))
	}
}

// nodeProber counts a node's probe hits in its world and notes each in the
// trace, so that a run that takes a rare path differs from one that does
// not.
type nodeProber struct{ n *Node }

func (p nodeProber) Hit(probe sim.ProbeName) {
	w := p.n.w
	if w.probes == nil {
		w.probes = sim.ProbeCounts{}
	}
	w.probes[string(probe)]++
	label := ""
	if w.loop.Trace().Recording() {
		label = "probe " + string(probe)
	}
	w.loop.Trace().Note(w.loop.Now(), p.n.sn, sched.KindUser, probe.ProbeID(), label)
}

// Probes are the probe hits of the run so far, by name.
func (w *World) Probes() sim.ProbeCounts { return w.probes }
