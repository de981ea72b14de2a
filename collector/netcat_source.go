package collector

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// NetcatSource turns each line received on a TCP port into an event, as
// Flume's netcat source does: the body is the line without its '\n' (a
// '\r' stays), "OK" answers each line once its channel transaction
// committed (ack-every-event), and a line longer than max-line-length
// (counting the newline) is answered "FAILED: Event exceeds the maximum
// length (N chars, including newline)" and ends the connection. When the
// channels refuse a batch (full past keep-alive) each line is answered
// "FAILED: <reason>" and the connection backs off before its next batch.
type NetcatSource struct {
	name     string
	env      sim.Env
	cfg      NetcatConfig
	proc     *channelProcessor
	listener sim.Listener
	conns    map[uint64]*netcatConn
	nextConn uint64
	stopped  bool
	counters SourceCounters
}

// NetcatConfig is a netcat source's settings (Flume's names).
type NetcatConfig struct {
	Bind          string
	Port          int
	MaxLineLength int
	AckEveryEvent bool
}

func netcatConfig(c *config.Source) NetcatConfig {
	return NetcatConfig{
		Bind:          c.String("bind"),
		Port:          int(c.Int("port")),
		MaxLineLength: int(c.Int("max-line-length")),
		AckEveryEvent: c.Bool("ack-every-event"),
	}
}

const (
	// netcatPendingLinesMax bounds the lines one connection may have
	// waiting for a channel; a client that outruns the channel that far
	// is cut off.
	netcatPendingLinesMax = 1 << 20
	netcatPendingBytesMax = 64 << 20
	netcatBackoffMin      = 100 * time.Millisecond
	netcatBackoffMax      = 5 * time.Second
)

type netcatConn struct {
	id      uint64
	src     *NetcatSource
	c       sim.Conn
	buf     []byte
	pending []Event
	// pendingBytes is the size of pending's bodies.
	pendingBytes int
	// batches are the batches handed to the channels, oldest first; they
	// hold the first handed lines of pending. Answers go out in order.
	batches []*netcatBatch
	handed  int
	backoff time.Duration
	waiting bool
	closed  bool
	// tooLong is set when a line over max-line-length arrived: the lines
	// before it are still committed and answered, then the connection
	// gets its FAILED answer and ends.
	tooLong bool
}

// Name is the source's name.
func (s *NetcatSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *NetcatSource) Counters() *SourceCounters { return &s.counters }

// Start listens on bind:port.
func (s *NetcatSource) Start() error {
	addr := joinHostPort(s.cfg.Bind, s.cfg.Port)
	l, err := s.env.Net.Listen(addr, sim.ConnOptions{Framing: sim.FrameStream}, s.accept)
	if err != nil {
		return fmt.Errorf("netcat source %s: listen on %s: %w", s.name, addr, err)
	}
	s.listener = l
	s.env.Log.Logf("netcat source %s listening on %s", s.name, l.Addr())
	return nil
}

// Addr is the address the source listens on.
func (s *NetcatSource) Addr() string { return s.listener.Addr() }

// Stop closes the port and every connection; lines already received still
// go to the channels.
func (s *NetcatSource) Stop() {
	s.stopped = true
	if s.listener != nil {
		s.listener.Close()
	}
	for id := uint64(0); id <= s.nextConn; id++ {
		if nc := s.conns[id]; nc != nil && !nc.closed {
			nc.closed = true
			nc.c.Close()
			nc.forgetIfIdle()
		}
	}
}

func (s *NetcatSource) accept(c sim.Conn) sim.ConnHandler {
	s.nextConn++
	nc := &netcatConn{id: s.nextConn, src: s, c: c}
	s.conns[nc.id] = nc
	s.counters.OpenConnectionCount++
	return nc
}

func (nc *netcatConn) OnOpen(sim.Conn) {}

func (nc *netcatConn) OnClose(_ sim.Conn, err error) {
	if !nc.closed {
		nc.closed = true
		nc.forgetIfIdle()
	}
}

func (nc *netcatConn) forgetIfIdle() {
	if nc.closed && len(nc.pending) == 0 && len(nc.batches) == 0 {
		if _, ok := nc.src.conns[nc.id]; ok {
			delete(nc.src.conns, nc.id)
			nc.src.counters.OpenConnectionCount--
		}
	}
}

func (nc *netcatConn) OnFrame(_ sim.Conn, chunk []byte) {
	if nc.closed || nc.tooLong {
		return
	}
	nc.buf = append(nc.buf, chunk...)
	max := nc.src.cfg.MaxLineLength
	for {
		i := bytes.IndexByte(nc.buf, '\n')
		if i < 0 {
			if len(nc.buf) >= max {
				nc.refuseLongLine()
			}
			break
		}
		if i+1 > max {
			nc.refuseLongLine()
			break
		}
		line := append([]byte(nil), nc.buf[:i]...)
		nc.buf = nc.buf[i+1:]
		if len(nc.pending) >= netcatPendingLinesMax || nc.pendingBytes+len(line) > netcatPendingBytesMax {
			nc.src.env.Log.Logf("netcat source %s: %s has %d lines waiting for the channel; closing it", nc.src.name, nc.c.RemoteAddr(), len(nc.pending))
			nc.close()
			return
		}
		nc.pending = append(nc.pending, Event{Body: line})
		nc.pendingBytes += len(line)
		nc.src.counters.EventReceivedCount++
	}
	if len(nc.buf) == 0 {
		nc.buf = nil
	}
	nc.flush()
}

func (nc *netcatConn) refuseLongLine() {
	nc.tooLong = true
	nc.buf = nil
	nc.src.counters.EventReadFail++
	nc.src.env.Log.Logf("netcat source %s: client %s sent an event exceeding the maximum length", nc.src.name, nc.c.RemoteAddr())
}

func (nc *netcatConn) close() {
	if !nc.closed {
		nc.closed = true
		nc.c.Close()
	}
	nc.forgetIfIdle()
}

func (nc *netcatConn) send(s string) {
	if nc.closed {
		return
	}
	if err := nc.c.Send([]byte(s)); err != nil {
		nc.close()
	}
}

// netcatBatchesPerTurn bounds the batches one connection commits in one
// turn of the loop, so a flooding client cannot starve the others; the
// rest waits for the next turn.
const netcatBatchesPerTurn = 64

// netcatBatchesInFlightMax bounds the batches of one connection waiting
// for their commits: several in flight let a file channel's group commit
// cover them with one sync.
const netcatBatchesInFlightMax = 16

// netcatBatch is one batch of a connection's lines in a channel commit.
type netcatBatch struct {
	n    int
	done bool
	err  error
	// answered says the lines were answered when handed over, the
	// planted bug faults.BugSourceAckBeforeCommit.
	answered bool
}

// flush hands the waiting lines to the channels in batches. Batches whose
// commits complete at once (a memory channel) run in a loop, so the lines
// go out as fast as the socket brings them in.
func (nc *netcatConn) flush() {
	for i := 0; i < netcatBatchesPerTurn; i++ {
		if nc.waiting || len(nc.batches) >= netcatBatchesInFlightMax {
			return
		}
		if nc.handed == len(nc.pending) {
			if len(nc.batches) == 0 && nc.tooLong && !nc.closed {
				nc.send(fmt.Sprintf("FAILED: Event exceeds the maximum length (%d chars, including newline)\n", nc.src.cfg.MaxLineLength))
				nc.close()
			}
			nc.forgetIfIdle()
			return
		}
		n := min(len(nc.pending)-nc.handed, nc.src.proc.batchMax)
		b := &netcatBatch{n: n}
		nc.batches = append(nc.batches, b)
		nc.handed += n
		if nc.src.proc.bugs.On(faults.BugSourceAckBeforeCommit) && nc.src.cfg.AckEveryEvent {
			// The planted bug: OK before the commit, which may yet fail
			// or die with the process.
			b.answered = true
			nc.send(strings.Repeat("OK\n", n))
		}
		inCall := true
		nc.src.proc.process(nc.pending[nc.handed-n:nc.handed], func(err error) {
			b.done, b.err = true, err
			nc.retire()
			if !inCall {
				// A commit that completed later (after a file channel's
				// sync, or one that waited for room) may be reported from
				// inside another transaction's commit: go on from the
				// loop.
				nc.src.env.Clock.AfterFunc(0, nc.flush)
			}
		})
		inCall = false
		if !b.done && nc.src.proc.full() {
			// The batch waits for room: let the sinks run before the
			// loop reads more input.
			nc.src.proc.relieve()
		}
	}
	nc.src.env.Clock.AfterFunc(0, nc.flush)
}

// retire answers the completed batches at the head, in order, and drops
// their lines; after a failure the connection backs off before its next
// batch.
func (nc *netcatConn) retire() {
	for len(nc.batches) > 0 && nc.batches[0].done {
		b := nc.batches[0]
		nc.batches = nc.batches[1:]
		for _, e := range nc.pending[:b.n] {
			nc.pendingBytes -= len(e.Body)
		}
		nc.pending = nc.pending[b.n:]
		nc.handed -= b.n
		if len(nc.pending) == 0 {
			nc.pending = nil
		}
		nc.answer(b)
		if b.err != nil && !nc.waiting {
			nc.waiting = true
			nc.backoff = min(max(2*nc.backoff, netcatBackoffMin), netcatBackoffMax)
			nc.src.env.Clock.AfterFunc(nc.backoff, func() { nc.waiting = false; nc.flush() })
		} else if b.err == nil {
			nc.backoff = 0
		}
	}
}

func (nc *netcatConn) answer(b *netcatBatch) {
	n, err := b.n, b.err
	if err != nil {
		nc.src.counters.ChannelWriteFail += int64(n)
		nc.src.env.Log.Logf("netcat source %s: %d events not accepted: %v", nc.src.name, n, err)
	} else {
		nc.src.counters.EventAcceptedCount += int64(n)
	}
	if !nc.src.cfg.AckEveryEvent || b.answered {
		return
	}
	reply := "OK\n"
	if err != nil {
		reply = "FAILED: " + err.Error() + "\n"
	}
	out := make([]byte, 0, n*len(reply))
	for i := 0; i < n; i++ {
		out = append(out, reply...)
	}
	nc.send(string(out))
}
