// Package osenv implements the seams over the real clock, files and sockets,
// so that a core written for the simulator runs unchanged as a real server.
//
// A Node owns one goroutine, its loop, which runs every callback of the
// processes on it one at a time, as the simulated world does. Timers, socket
// readers and sync workers run on goroutines of their own and post their
// results into the loop.
package osenv

import (
	"context"
	"fmt"
	"hash/fnv"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// postQueueMax bounds the events waiting for the loop. Goroutines that post
// into a full queue wait, which turns a slow loop into TCP backpressure on
// the readers rather than into unbounded memory.
const postQueueMax = 1 << 14

// Node is one real node: a loop and the seams its processes use.
type Node struct {
	name    string
	events  chan func()
	stopped chan struct{}
	once    sync.Once
	clock   *clock
	fs      *FS
	net     *Network
	rand    *rand.Rand
	logger  sim.Logger
	syncs   *syncWorkers
}

// Options configure a real node.
type Options struct {
	// Name is the node's host name.
	Name string
	// DataDir is the root of the node's files.
	DataDir string
	// Seed seeds the node's random stream; zero draws one from the clock.
	Seed uint64
	// SyncWorkers is how many fsyncs may run at once; zero means 4.
	SyncWorkers int
	// Log receives diagnostic lines; nil means standard error.
	Log *log.Logger
}

// NewNode creates a node whose files live under opts.DataDir (created if
// missing).
func NewNode(opts Options) (*Node, error) {
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", opts.DataDir, err)
	}
	n := &Node{
		name:    opts.Name,
		events:  make(chan func(), postQueueMax),
		stopped: make(chan struct{}),
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	h := fnv.New64a()
	h.Write([]byte(opts.Name))
	n.rand = rand.New(rand.NewPCG(seed, h.Sum64()))
	lg := opts.Log
	if lg == nil {
		lg = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	n.logger = sim.LoggerFunc(func(format string, args ...any) {
		lg.Printf("%s: %s", opts.Name, fmt.Sprintf(format, args...))
	})
	workers := opts.SyncWorkers
	if workers <= 0 {
		workers = 4
	}
	n.syncs = newSyncWorkers(n, workers)
	n.clock = &clock{node: n, origin: time.Now()}
	n.fs = &FS{root: opts.DataDir, node: n}
	n.net = &Network{node: n}
	return n, nil
}

// Env is the environment a process on this node sees.
func (n *Node) Env() sim.Env {
	return sim.Env{Node: n.name, Clock: n.clock, Rand: n.rand, FS: n.fs, Net: n.net, Log: n.logger}
}

// Post queues f to run on the loop. It may be called from any goroutine;
// after the node stopped it does nothing.
func (n *Node) Post(f func()) {
	select {
	case n.events <- f:
	case <-n.stopped:
	}
}

// Start posts a process start onto the loop.
func (n *Node) Start(start sim.Start) {
	n.Post(func() { start(n.Env()) })
}

// Run runs the loop until ctx is done, then closes every socket and stops
// the workers. Callbacks still queued are dropped: the process is gone, as
// after a crash.
func (n *Node) Run(ctx context.Context) {
	defer n.stop()
	for {
		select {
		case f := <-n.events:
			f()
		case <-ctx.Done():
			return
		}
	}
}

// Call runs f on the loop and waits for it; for tests and command-line
// tools that need to read a process's state.
func (n *Node) Call(f func()) {
	done := make(chan struct{})
	n.Post(func() { f(); close(done) })
	select {
	case <-done:
	case <-n.stopped:
	}
}

func (n *Node) stop() {
	n.once.Do(func() {
		close(n.stopped)
		n.net.closeAll()
		n.syncs.stop()
	})
}
