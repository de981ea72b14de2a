package counter

import (
	"fmt"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// ServerConfig configures a counter server.
type ServerConfig struct {
	// Listen is the address to serve on, e.g. ":7000".
	Listen string
	Bugs   faults.Bugs
}

// pendingMax bounds the increments waiting for a sync; past it the server
// answers "retry" rather than queueing more.
const pendingMax = 1 << 16

// Server is the counter service actor.
type Server struct {
	env sim.Env
	cfg ServerConfig
	wal sim.File
	// durable holds the ids known to be on disk.
	durable map[uint64]bool
	count   uint64
	// waiting maps an id appended but not yet durable to the connections
	// waiting for its acknowledgement.
	waiting map[uint64][]sim.Conn
	// unsynced are ids appended since the last sync began, in order.
	unsynced []uint64
	syncing  bool
	ready    bool
	// recoveries counts log reloads after a failed sync.
	recoveries int
}

// StartServer returns a start function that runs a counter server; the
// server it starts is passed to onStart (nil allowed), for tests.
func StartServer(cfg ServerConfig, onStart func(*Server)) sim.Start {
	return func(env sim.Env) {
		s := &Server{env: env, cfg: cfg}
		if onStart != nil {
			onStart(s)
		}
		s.recover(func() {
			if _, err := env.Net.Listen(cfg.Listen, sim.ConnOptions{}, s.accept); err != nil {
				env.Log.Logf("counter server: %v", err)
			}
		})
	}
}

// Count is the number of increments durably applied.
func (s *Server) Count() uint64 { return s.count }

// Probes of the server's rare paths.
var (
	probeTornTail = sim.DeclareProbe("counter/torn-tail-cut",
		"the counter server cut a torn or corrupt tail off its log at recovery")
	probeSyncFailedReload = sim.DeclareProbe("counter/sync-failed-reload",
		"a failed fsync made the counter server reload its log from disk")
)

// recover (re)opens the log, cuts a torn tail, makes what it kept durable,
// and calls then. Recovered records are counted only after that sync: a
// process kill leaves unsynced records in the page cache, and acknowledging
// them as durable would be a lie if the power went next.
func (s *Server) recover(then func()) {
	s.ready = false
	if s.wal != nil {
		s.wal.Close()
	}
	f, err := s.env.FS.Open(walName)
	if err != nil {
		f, err = s.env.FS.Create(walName)
	}
	if err != nil {
		s.fatal(fmt.Errorf("open %s: %w", walName, err), then)
		return
	}
	ids, valid, err := scanWAL(f)
	if size, sizeErr := f.Size(); err == nil && sizeErr == nil && valid < size {
		s.env.Hit(probeTornTail)
	}
	if err == nil {
		err = f.Truncate(valid)
	}
	if err != nil {
		s.fatal(err, then)
		return
	}
	s.wal = f
	f.Sync(func(err error) {
		if err != nil {
			s.env.Log.Logf("counter server: sync after recovery: %v; retrying", err)
			s.env.Clock.AfterFunc(retryDelay, func() { s.recover(then) })
			return
		}
		s.durable = make(map[uint64]bool, len(ids))
		for _, id := range ids {
			s.durable[id] = true
		}
		s.count = uint64(len(ids))
		s.waiting = make(map[uint64][]sim.Conn)
		s.unsynced = nil
		s.ready = true
		s.env.FS.SyncDir(".", func(error) {})
		then()
	})
}

// fatal logs an error the server cannot serve through; it stops serving
// and tries again later, as a supervisor would restart it. The retry keeps
// then: a recovery that fails at start must still start listening when it
// succeeds.
func (s *Server) fatal(err error, then func()) {
	s.env.Log.Logf("counter server: %v; recovering again in %v", err, retryDelay)
	s.env.Clock.AfterFunc(retryDelay, func() { s.recover(then) })
}

func (s *Server) accept(c sim.Conn) sim.ConnHandler { return (*serverConn)(s) }

// serverConn is the server seen as a connection handler.
type serverConn Server

func (h *serverConn) OnOpen(sim.Conn) {}

func (h *serverConn) OnClose(sim.Conn, error) {}

func (h *serverConn) OnFrame(c sim.Conn, frame []byte) {
	s := (*Server)(h)
	op, id, err := decodeRequest(frame)
	if err != nil {
		s.env.Log.Logf("counter server: closing %s: %v", c.RemoteAddr(), err)
		c.Close()
		return
	}
	switch {
	case !s.ready:
		c.Send(encodeResponse(statusRetry, id, 0))
	case op == opGet:
		c.Send(encodeResponse(statusOK, id, s.count))
	case op == opInc:
		s.increment(c, id)
	default:
		s.env.Log.Logf("counter server: closing %s: unknown op %d", c.RemoteAddr(), op)
		c.Close()
	}
}

func (s *Server) increment(c sim.Conn, id uint64) {
	dedupe := !s.cfg.Bugs.On(BugDedupeOff)
	if dedupe && s.durable[id] {
		c.Send(encodeResponse(statusOK, id, s.count))
		return
	}
	if dedupe && len(s.waiting[id]) > 0 {
		s.waiting[id] = append(s.waiting[id], c)
		return
	}
	if len(s.unsynced) >= pendingMax {
		c.Send(encodeResponse(statusRetry, id, s.count))
		return
	}
	if _, err := s.wal.Append(encodeWALRecord(id)); err != nil {
		s.env.Log.Logf("counter server: append: %v", err)
		c.Send(encodeResponse(statusRetry, id, s.count))
		return
	}
	s.unsynced = append(s.unsynced, id)
	if s.cfg.Bugs.On(BugAckBeforeSync) {
		c.Send(encodeResponse(statusOK, id, s.count+uint64(len(s.unsynced))))
	} else {
		s.waiting[id] = append(s.waiting[id], c)
	}
	s.groupCommit()
}

// groupCommit starts a sync of everything appended so far unless one is
// running; appends made meanwhile wait for the next.
func (s *Server) groupCommit() {
	if s.syncing || len(s.unsynced) == 0 {
		return
	}
	batch := s.unsynced
	s.unsynced = nil
	s.syncing = true
	s.wal.Sync(func(err error) {
		s.syncing = false
		if err != nil {
			s.syncFailed(err, batch)
			return
		}
		for _, id := range batch {
			s.durable[id] = true
			s.count++
			for _, c := range s.waiting[id] {
				c.Send(encodeResponse(statusOK, id, s.count))
			}
			delete(s.waiting, id)
		}
		s.groupCommit()
	})
}

// syncFailed answers everyone waiting with "retry" and reloads the log from
// disk: after a failed fsync the unsynced pages may be gone, so memory no
// longer says what the disk holds.
func (s *Server) syncFailed(err error, batch []uint64) {
	s.env.Log.Logf("counter server: sync: %v; reloading the log", err)
	s.env.Hit(probeSyncFailedReload)
	s.recoveries++
	for _, id := range append(batch, s.unsynced...) {
		for _, c := range s.waiting[id] {
			c.Send(encodeResponse(statusRetry, id, s.count))
		}
		delete(s.waiting, id)
	}
	s.recover(func() {})
}
