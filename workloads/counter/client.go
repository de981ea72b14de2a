package counter

import (
	"slices"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// ClientConfig configures a counter client.
type ClientConfig struct {
	// Server is the address of the counter server.
	Server string
	// Index makes this client's ids unique: id = Index<<32 | sequence.
	Index uint32
	// Window is how many increments may be in flight; zero means 4.
	Window int
	// Timeout is how long the client waits for progress before it resets
	// the connection and resends what is in flight; zero means 500 ms.
	Timeout time.Duration
	// Increments is how many increments to make; zero means no bound.
	Increments int
	// Pace is how often the client tops its window up with new
	// increments; zero means 5 ms.
	Pace time.Duration
	Bugs faults.Bugs
}

// retryDelay is the wait before reconnecting or retrying.
const retryDelay = 100 * time.Millisecond

// Results is what clients learn: the harness reads it after the run.
type Results struct {
	// Acked are the ids the server acknowledged, in acknowledgement order.
	Acked []uint64
	// Sent counts increments sent, retries included.
	Sent int
	// Retries counts resends after a timeout, reset or "retry" answer.
	Retries int
	// Issued counts ids drawn, so that a restarted client draws new ones.
	Issued uint32
}

// Client is the counter client actor.
type Client struct {
	env      sim.Env
	cfg      ClientConfig
	results  *Results
	conn     sim.Conn
	open     bool
	inflight map[uint64]bool
	acked    map[uint64]bool
	progress sim.Timer
}

// StartClient returns a start function that runs a counter client recording
// into results. results outlives restarts of the client's node.
func StartClient(cfg ClientConfig, results *Results) sim.Start {
	if cfg.Window <= 0 {
		cfg.Window = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.Pace <= 0 {
		cfg.Pace = 5 * time.Millisecond
	}
	return func(env sim.Env) {
		c := &Client{env: env, cfg: cfg, results: results,
			inflight: make(map[uint64]bool), acked: make(map[uint64]bool)}
		c.dial()
		c.tick()
	}
}

// tick tops the window up and comes again after Pace.
func (c *Client) tick() {
	if c.open {
		c.fill()
	}
	if !c.done() {
		c.env.Clock.AfterFunc(c.cfg.Pace, c.tick)
	}
}

func (c *Client) dial() {
	c.open = false
	c.conn = c.env.Net.Dial(c.cfg.Server, sim.ConnOptions{}, c)
	c.armProgress()
}

// OnOpen sends everything in flight again (the server deduplicates), then
// fills the window.
func (c *Client) OnOpen(sim.Conn) {
	c.open = true
	ids := make([]uint64, 0, len(c.inflight))
	for id := range c.inflight {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		c.results.Retries += len(ids)
	}
	c.send(ids)
}

func (c *Client) OnFrame(conn sim.Conn, frame []byte) {
	status, id, _, err := decodeResponse(frame)
	if err != nil {
		c.env.Log.Logf("counter client: %v", err)
		c.reset()
		return
	}
	if !c.inflight[id] {
		return // an answer to a resend that was already answered
	}
	if status != statusOK {
		c.results.Retries++
		c.env.Clock.AfterFunc(retryDelay, func() {
			if c.inflight[id] && c.open && conn == c.conn {
				c.send([]uint64{id})
			}
		})
		return
	}
	delete(c.inflight, id)
	if !c.acked[id] {
		c.acked[id] = true
		c.results.Acked = append(c.results.Acked, id)
	}
	c.armProgress()
}

func (c *Client) OnClose(conn sim.Conn, err error) {
	if conn != c.conn {
		return
	}
	c.open = false
	c.env.Clock.AfterFunc(retryDelay, c.dial)
}

// fill sends new increments until the window is full.
func (c *Client) fill() {
	fresh := map[uint64]bool{}
	for len(c.inflight)+len(fresh) < c.cfg.Window && !c.done() {
		fresh[uint64(c.cfg.Index)<<32|uint64(c.results.Issued)] = true
		c.results.Issued++
	}
	var ids []uint64
	for id := range fresh {
		ids = append(ids, id)
	}
	if !c.cfg.Bugs.On(BugMapOrder) {
		slices.Sort(ids)
	}
	for _, id := range ids {
		c.inflight[id] = true
	}
	c.send(ids)
}

func (c *Client) done() bool {
	return c.cfg.Increments > 0 && int(c.results.Issued) >= c.cfg.Increments
}

func (c *Client) send(ids []uint64) {
	if !c.open {
		return
	}
	for _, id := range ids {
		c.results.Sent++
		if err := c.conn.Send(encodeRequest(opInc, id)); err != nil {
			c.reset()
			return
		}
	}
}

// armProgress restarts the progress timer: with increments in flight and no
// answer for Timeout, the connection is presumed dead.
func (c *Client) armProgress() {
	if c.progress != nil {
		c.progress.Stop()
	}
	conn := c.conn
	c.progress = c.env.Clock.AfterFunc(c.cfg.Timeout, func() {
		if conn == c.conn && (len(c.inflight) > 0 || !c.open) {
			c.reset()
		}
	})
}

// reset abandons the connection and dials again after a pause.
func (c *Client) reset() {
	c.conn.Close()
	c.conn = nil
	c.open = false
	c.env.Clock.AfterFunc(retryDelay, c.dial)
}
