package controller

import (
	"errors"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim"
)

// Client is a broker's side of the protocol: it finds the active
// controller (following NOT_CONTROLLER hints, else trying each controller
// in turn), sends requests and matches answers. A request that meets a
// closed connection, a timeout or NOT_CONTROLLER is sent again, to the
// controller thought active, until its attempts run out.
type Client struct {
	env   sim.Env
	addrs []string
	// current indexes addrs: the controller thought active.
	current int
	conn    sim.Conn
	nextID  uint64
	calls   map[uint64]*call
	stopped bool
}

type call struct {
	req      Request
	done     func(Response, error)
	attempts int
	timer    sim.Timer
	conn     sim.Conn
}

// Limits of the client.
const (
	clientCallsMax       = 1024
	clientAttemptsMax    = 100
	clientRequestTimeout = 500 * time.Millisecond
	clientRetryDelay     = 50 * time.Millisecond
)

// ErrGaveUp is a request's error when every attempt failed.
var ErrGaveUp = errors.New("no controller answered")

// NewClient returns a client of the controllers at addrs.
func NewClient(env sim.Env, addrs []string) *Client {
	sim.Assert(len(addrs) > 0, "controller client with no addresses")
	return &Client{env: env, addrs: slices.Clone(addrs), calls: map[uint64]*call{}}
}

// Do sends a request; done is called once, with the answer or an error.
func (c *Client) Do(req Request, done func(Response, error)) {
	if c.stopped || len(c.calls) >= clientCallsMax {
		c.env.Clock.AfterFunc(0, func() { done(Response{}, ErrGaveUp) })
		return
	}
	c.nextID++
	req.ID = c.nextID
	cl := &call{req: req, done: done}
	c.calls[req.ID] = cl
	c.send(cl)
}

// Stop abandons the connection; calls in flight are never answered.
func (c *Client) Stop() {
	c.stopped = true
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	for _, id := range c.sortedCallIDs() {
		if t := c.calls[id].timer; t != nil {
			t.Stop()
		}
	}
	c.calls = map[uint64]*call{}
}

func (c *Client) send(cl *call) {
	if c.stopped {
		return
	}
	cl.attempts++
	if cl.attempts > clientAttemptsMax {
		delete(c.calls, cl.req.ID)
		cl.done(Response{}, ErrGaveUp)
		return
	}
	if c.conn == nil {
		c.conn = c.env.Net.Dial(c.addrs[c.current], sim.ConnOptions{}, (*clientConn)(c))
	}
	cl.conn = c.conn
	if err := c.conn.Send(EncodeRequest(cl.req)); err != nil {
		c.dropConn(true)
		return
	}
	id := cl.req.ID
	cl.timer = c.env.Clock.AfterFunc(clientRequestTimeout, func() {
		if c.calls[id] == cl && cl.conn == c.conn {
			c.dropConn(true)
		}
	})
}

// dropConn closes the connection, moves on to the next controller when
// told to, and sends every call again after a pause.
func (c *Client) dropConn(next bool) {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	if next {
		c.current = (c.current + 1) % len(c.addrs)
	}
	c.retryAll()
}

func (c *Client) retryAll() {
	for _, id := range c.sortedCallIDs() {
		cl := c.calls[id]
		if cl.timer != nil {
			cl.timer.Stop()
		}
		cl.conn = nil
	}
	c.env.Clock.AfterFunc(clientRetryDelay, func() {
		for _, id := range c.sortedCallIDs() {
			if cl := c.calls[id]; cl.conn == nil {
				c.send(cl)
			}
		}
	})
}

func (c *Client) sortedCallIDs() []uint64 {
	ids := make([]uint64, 0, len(c.calls))
	for id := range c.calls {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// clientConn is the client seen as its connection's handler.
type clientConn Client

func (h *clientConn) OnOpen(sim.Conn) {}

func (h *clientConn) OnClose(conn sim.Conn, err error) {
	c := (*Client)(h)
	if conn == c.conn {
		c.conn = nil
		c.dropConn(true)
	}
}

func (h *clientConn) OnFrame(conn sim.Conn, frame []byte) {
	c := (*Client)(h)
	if conn != c.conn {
		return
	}
	resp, err := DecodeResponse(frame)
	if err != nil {
		c.env.Log.Logf("controller client: %v", err)
		c.dropConn(true)
		return
	}
	cl := c.calls[resp.ID]
	if cl == nil {
		return
	}
	if resp.Code == metadata.CodeNotController {
		c.follow(resp.LeaderHint)
		return
	}
	cl.timer.Stop()
	delete(c.calls, resp.ID)
	cl.done(resp, nil)
}

// follow moves to the hinted controller, or the next one without a hint.
func (c *Client) follow(hint string) {
	if i := slices.Index(c.addrs, hint); hint != "" && i >= 0 && i != c.current {
		c.current = i
		c.dropConn(false)
		return
	}
	c.dropConn(true)
}
