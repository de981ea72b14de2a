// Package osenv implements the seams over the real clock, files and sockets,
// so that a core written for the simulator runs unchanged as a real server.
//
// A Node owns one goroutine, its loop, which runs every callback of the
// processes on it one at a time, as the simulated world does. Socket readers
// and accepters run on goroutines of their own and post their results into
// the loop; timers live in a heap the loop owns; fsync workers hand their
// completions back through a list the loop drains. The loop itself never
// waits on a queue that only it empties.
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
// the readers rather than into unbounded memory. The loop never posts here
// itself (see later), so it cannot wait on its own queue.
const postQueueMax = 1 << 14

// laterRunMax bounds the loop-side callbacks run in one round, so that a
// chain of zero-delay work cannot starve the sockets.
const laterRunMax = 1 << 10

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

	// later holds callbacks the loop queued for itself; only the loop
	// touches it.
	later []func()
	// completions are callbacks posted by goroutines that the loop waits
	// on (fsync workers): they never block, and wake the loop through
	// completionWake.
	completionMu   sync.Mutex
	completions    []func()
	completionWake chan struct{}
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
	// SendQueueBytesMax bounds the bytes queued for sending on all of the
	// node's connections together; a Send beyond it fails with
	// sim.ErrSendBufferFull. Zero means DefaultSendQueueBytesMax.
	SendQueueBytesMax int
	// Log receives diagnostic lines; nil means standard error.
	Log *log.Logger
}

// DefaultSendQueueBytesMax bounds a node's queued outgoing bytes when
// Options.SendQueueBytesMax is zero. It is a backstop: servers size their
// answers below it by sim.Network.SendQueuedBytes.
const DefaultSendQueueBytesMax = 512 << 20

// NewNode creates a node whose files live under opts.DataDir (created if
// missing).
func NewNode(opts Options) (*Node, error) {
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", opts.DataDir, err)
	}
	n := &Node{
		name:           opts.Name,
		events:         make(chan func(), postQueueMax),
		stopped:        make(chan struct{}),
		completionWake: make(chan struct{}, 1),
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
	sendMax := opts.SendQueueBytesMax
	if sendMax <= 0 {
		sendMax = DefaultSendQueueBytesMax
	}
	n.syncs = newSyncWorkers(n, workers)
	n.clock = newClock(n)
	n.fs = &FS{root: opts.DataDir, node: n}
	n.net = &Network{node: n, sendQueuedMax: int64(sendMax)}
	return n, nil
}

// Env is the environment a process on this node sees.
func (n *Node) Env() sim.Env {
	return sim.Env{Node: n.name, Clock: n.clock, Rand: n.rand, FS: n.fs, Net: n.net, Log: n.logger}
}

// Post queues f to run on the loop. It may be called from any goroutine
// but the loop's own; after the node stopped it does nothing. It reports
// whether f was queued.
func (n *Node) Post(f func()) bool {
	select {
	case n.events <- f:
		return true
	case <-n.stopped:
		return false
	}
}

// runLater queues f to run on the loop after the current callback; only
// the loop may call it, and it never waits.
func (n *Node) runLater(f func()) { n.later = append(n.later, f) }

// complete queues f to run on the loop without ever waiting; it is for
// goroutines the loop itself waits on. The list is bounded by what the
// loop handed those goroutines.
func (n *Node) complete(f func()) {
	n.completionMu.Lock()
	n.completions = append(n.completions, f)
	n.completionMu.Unlock()
	select {
	case n.completionWake <- struct{}{}:
	default:
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
	defer n.clock.stop()
	for {
		busy := n.runReady()
		var timerC <-chan time.Time
		if !busy {
			timerC = n.clock.arm()
		}
		if busy {
			// Work of our own is waiting: look at the world without
			// waiting for it.
			select {
			case f := <-n.events:
				f()
			case <-n.completionWake:
				n.runCompletions()
			case <-ctx.Done():
				return
			default:
			}
			continue
		}
		select {
		case f := <-n.events:
			f()
		case <-n.completionWake:
			n.runCompletions()
		case <-timerC:
			n.clock.fired()
		case <-ctx.Done():
			return
		}
	}
}

// runReady runs the loop's own queued callbacks and the timers that are
// due, a bounded number of each, and reports whether more are ready.
func (n *Node) runReady() bool {
	count := min(len(n.later), laterRunMax)
	for i := 0; i < count; i++ {
		f := n.later[i]
		n.later[i] = nil
		f()
	}
	n.later = n.later[count:]
	if len(n.later) == 0 {
		n.later = nil
	}
	timersLeft := n.clock.runDue()
	return len(n.later) > 0 || timersLeft
}

func (n *Node) runCompletions() {
	n.completionMu.Lock()
	batch := n.completions
	n.completions = nil
	n.completionMu.Unlock()
	for _, f := range batch {
		f()
	}
}

// Call runs f on the loop and waits for it; for tests and command-line
// tools that need to read a process's state. It must not be called from
// the loop.
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
