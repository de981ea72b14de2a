// Package sim defines the seams: the only ways core code (broker, collector,
// workloads, checkers, faults) reaches time, randomness, disk and network.
//
// Two worlds implement them. sim/world runs every node of a cluster in one
// process over a simulated clock, disk and network driven by one seed;
// sim/osenv runs one node over the real clock, files and sockets. A core
// written against these interfaces runs unchanged in both.
//
// Every callback a seam makes (a timer firing, a frame arriving, a sync
// completing) runs on the node's loop, one at a time. Core code therefore
// needs no locks, goroutines or select, and its interleavings are decided by
// the world, which in simulation means by the seed.
package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Env is what a process sees of the world it runs in.
type Env struct {
	// Node is the host name of the node the process runs on; other nodes
	// reach it by dialling "Node:port".
	Node  string
	Clock Clock
	// Rand is seeded per node: from the run seed and node name in
	// simulation, from the operating system once in the real world.
	Rand *rand.Rand
	FS   FS
	Net  Network
	Log  Logger
	// Prober counts the probes the process hits (see Env.Hit); nil
	// counts nothing.
	Prober Prober
}

// Start starts a process on a node. It is called when the node boots and
// again after every restart, with only what the node's disk kept. It must not
// block: it sets up listeners, timers and state, and returns.
type Start func(env Env)

// Logger receives a process's diagnostic lines. In simulation they carry the
// node's virtual time; in the real world they go to standard error.
type Logger interface {
	Logf(format string, args ...any)
}

// LoggerFunc adapts a function to Logger.
type LoggerFunc func(format string, args ...any)

// Logf calls f.
func (f LoggerFunc) Logf(format string, args ...any) { f(format, args...) }

// DiscardLogger drops every line.
var DiscardLogger Logger = LoggerFunc(func(string, ...any) {})

// Assert panics with a formatted message when cond is false. It is for
// programmer errors (a broken invariant), never for operating errors such as
// a failed write or a malformed frame, which are returned as errors.
func Assert(cond bool, format string, args ...any) {
	if !cond {
		panic("assertion failed: " + fmt.Sprintf(format, args...))
	}
}

// ErrNoEffect is what a world's fault action returns when it found nothing
// to act on (a kill of a node already down, a heal with nothing cut), so
// that a schedule's no-ops are reported rather than silently dropped.
var ErrNoEffect = errors.New("no effect")
