package kafka

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors a request can end with besides the broker's own error codes.
var (
	// errNotSent says the request never reached the connection: it cannot
	// have taken effect, so it may be retried without doubt.
	errNotSent = errors.New("request not sent")
	// ErrRequestTimeout says no response came within the request timeout;
	// the request may or may not have taken effect.
	ErrRequestTimeout = errors.New("request timed out")
	// errConnQueueFull says too many requests wait for one connection.
	errConnQueueFull = errors.New("connection queue full")
)

// connQueuedMax bounds the requests waiting for one connection to be ready
// or to have room; the actors keep far fewer outstanding.
const connQueuedMax = 256

// connState is where a broker connection is in its life.
type connState uint8

const (
	connDialing connState = iota
	// connHandshaking: open, ApiVersions asked and not yet answered.
	connHandshaking
	connReady
	connDead
)

// connConfig is what every connection of one client shares.
type connConfig struct {
	clientID       string
	requestTimeout time.Duration
	// inFlightMax bounds requests written and unanswered on a connection
	// (max.in.flight.requests.per.connection).
	inFlightMax int
	// spareCalls are calls answered and done with, used again: a client
	// makes one per request, and with it the closure of its timeout.
	spareCalls []*call
}

// spareCallsMax bounds the calls a client keeps for reuse.
const spareCallsMax = 64

// newCall returns an empty call, reused when one is spare.
func (cfg *connConfig) newCall() *call {
	n := len(cfg.spareCalls)
	if n == 0 {
		return &call{}
	}
	c := cfg.spareCalls[n-1]
	cfg.spareCalls[n-1] = nil
	cfg.spareCalls = cfg.spareCalls[:n-1]
	return c
}

// putCall keeps a call whose response was handed to done, which has
// returned: nothing refers to it but its stopped timer, which never runs.
func (cfg *connConfig) putCall(c *call) {
	if len(cfg.spareCalls) >= spareCallsMax {
		return
	}
	*c = call{onTimeout: c.onTimeout}
	cfg.spareCalls = append(cfg.spareCalls, c)
}

// call is one request on a connection.
type call struct {
	req kmsg.Request
	// extraTimeout lengthens the request timeout, for requests the broker
	// may hold on purpose (a fetch's max wait).
	extraTimeout time.Duration
	// noResponse is an acks=0 produce: the broker never answers, so the
	// call completes once written.
	noResponse bool
	done       func(kmsg.Response, error)
	// into, when not nil, is the response of req's kind to decode the
	// answer into (a consumer reuses its fetch answers).
	into          kmsg.Response
	correlationID int32
	timer         sim.Timer
	// bc is the connection the call was written on; onTimeout is
	// timedOut, bound once per call struct (calls are reused, see
	// connConfig.spareCalls).
	bc        *brokerConn
	onTimeout func()
}

// timedOut is the request timeout of a written call.
func (c *call) timedOut() {
	bc := c.bc
	if bc.state != connDead {
		// As the Java client does: a request timeout closes the
		// connection, failing everything in flight on it.
		bc.kill(fmt.Errorf("%s to broker %d after %v: %w", keyName(c.req.Key()), bc.node,
			bc.cfg.requestTimeout+c.extraTimeout, ErrRequestTimeout))
	}
}

// brokerConn is one connection to one broker. It dials, asks ApiVersions,
// then carries requests, which Kafka answers in order. Its callbacks run
// on the owner's loop.
type brokerConn struct {
	env      sim.Env
	cfg      *connConfig
	node     int32
	addr     string
	conn     sim.Conn
	state    connState
	versions brokerVersions
	corrNext int32
	// sent are written and unanswered, oldest first.
	sent []*call
	// queued wait for the handshake or for room under inFlightMax.
	queued        []*call
	handshake     *call
	handshakeTime sim.Timer
	// onDead tells the owner the connection is gone, once.
	onDead func(bc *brokerConn, err error)
	// frameScratch is where a request is encoded before it is copied
	// into a frame of its exact size: encoding into a fresh slice grew
	// it several times over per request.
	frameScratch []byte
}

// frameScratchKeepBytesMax bounds the scratch a connection keeps between
// requests, so that one large produce does not pin its size.
const frameScratchKeepBytesMax = 64 << 10

func dialBroker(env sim.Env, cfg *connConfig, node int32, addr string, onDead func(*brokerConn, error)) *brokerConn {
	bc := &brokerConn{env: env, cfg: cfg, node: node, addr: addr, onDead: onDead}
	bc.conn = env.Net.Dial(addr, sim.ConnOptions{Framing: sim.FrameLength32}, bc)
	// A connection must become usable within the request timeout, handshake
	// included; otherwise it is abandoned and its queued calls fail unsent.
	bc.handshakeTime = env.Clock.AfterFunc(cfg.requestTimeout, func() {
		if bc.state == connDialing || bc.state == connHandshaking {
			bc.kill(fmt.Errorf("connect to broker %d at %s: %w", node, addr, ErrRequestTimeout))
		}
	})
	return bc
}

// ready reports whether the handshake finished.
func (bc *brokerConn) ready() bool { return bc.state == connReady }

// outstanding counts calls not yet answered.
func (bc *brokerConn) outstanding() int { return len(bc.sent) + len(bc.queued) }

// hasRoom reports whether another call would be written at once (or as soon
// as the handshake finishes) rather than wait behind inFlightMax.
func (bc *brokerConn) hasRoom() bool { return bc.outstanding() < bc.cfg.inFlightMax }

// enqueue adds a call. done is always called later, from another callback,
// never from inside enqueue, so callers need not be reentrant.
func (bc *brokerConn) enqueue(c *call) {
	if bc.state == connDead { // not a bare Assert: its argument would allocate on every request
		sim.Assert(false, "enqueue on a dead connection to %s", bc.addr)
	}
	if len(bc.queued) >= connQueuedMax {
		bc.later(func() { c.done(nil, fmt.Errorf("broker %d: %w: %w", bc.node, errConnQueueFull, errNotSent)) })
		return
	}
	bc.queued = append(bc.queued, c)
	if bc.state == connReady {
		bc.pump()
	}
}

// popFront drops q's first call, shifting the rest down: q[1:] would lose
// the front of the array for good, so that every few appends reallocated
// it. Both queues are short (inFlightMax, connQueuedMax).
func popFront(q []*call) []*call {
	n := copy(q, q[1:])
	q[n] = nil
	return q[:n]
}

// later runs f once the current callback returns.
func (bc *brokerConn) later(f func()) { bc.env.Clock.AfterFunc(0, f) }

// OnOpen implements sim.ConnHandler: ask the broker what it speaks.
func (bc *brokerConn) OnOpen(sim.Conn) {
	if bc.state != connDialing {
		return
	}
	bc.state = connHandshaking
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(apiVersionsAsk)
	req.ClientSoftwareName = "sluice"
	req.ClientSoftwareVersion = "0.1"
	bc.handshake = &call{req: req}
	bc.write(bc.handshake)
}

// OnFrame implements sim.ConnHandler: the oldest sent call's answer.
func (bc *brokerConn) OnFrame(_ sim.Conn, frame []byte) {
	if bc.state == connDead {
		return
	}
	if bc.state == connHandshaking {
		bc.finishHandshake(frame)
		return
	}
	if len(bc.sent) == 0 {
		bc.kill(fmt.Errorf("broker %d sent a response nobody asked for: %w", bc.node, errMalformedResponse))
		return
	}
	c := bc.sent[0]
	resp, err := parseResponseInto(frame, c.req, c.correlationID, c.into)
	if err != nil {
		bc.kill(fmt.Errorf("broker %d: %w", bc.node, err))
		return
	}
	bc.sent = popFront(bc.sent)
	c.timer.Stop()
	bc.pump()
	c.done(resp, nil)
	bc.cfg.putCall(c)
}

func (bc *brokerConn) finishHandshake(frame []byte) {
	req := bc.handshake.req
	asked := req.GetVersion()
	resp, err := parseResponse(frame, req, bc.handshake.correlationID)
	if err != nil {
		// A broker that does not serve our ApiVersions version answers in
		// v0, whatever we asked.
		req.SetVersion(0)
		resp, err = parseResponse(frame, req, bc.handshake.correlationID)
	}
	if err != nil {
		bc.kill(fmt.Errorf("ApiVersions from broker %d: %w", bc.node, err))
		return
	}
	bc.handshake.timer.Stop()
	av := resp.(*kmsg.ApiVersionsResponse)
	if av.ErrorCode == codeUnsupportedVersion && asked > 0 {
		// KIP-511: the answer lists the ApiVersions versions the broker
		// serves; ask again at the highest of them below ours.
		lower := int16(0)
		for _, k := range av.ApiKeys {
			if k.ApiKey == int16(kmsg.ApiVersions) && k.MaxVersion < asked {
				lower = max(k.MaxVersion, 0)
			}
		}
		retry := kmsg.NewPtrApiVersionsRequest()
		retry.SetVersion(lower)
		bc.handshake = &call{req: retry}
		bc.write(bc.handshake)
		return
	}
	if av.ErrorCode != codeNone {
		bc.kill(fmt.Errorf("ApiVersions v%d from broker %d: %s", asked, bc.node, errorName(av.ErrorCode)))
		return
	}
	bc.handshakeTime.Stop()
	bc.handshake = nil
	bc.versions = newBrokerVersions(av)
	bc.state = connReady
	bc.pump()
}

// OnClose implements sim.ConnHandler.
func (bc *brokerConn) OnClose(_ sim.Conn, err error) {
	if err == nil {
		err = fmt.Errorf("closed by the broker: %w", sim.ErrReset)
	}
	bc.kill(fmt.Errorf("connection to broker %d at %s: %w", bc.node, bc.addr, err))
}

// pump writes queued calls while there is room.
func (bc *brokerConn) pump() {
	for bc.state == connReady && len(bc.queued) > 0 && len(bc.sent) < bc.cfg.inFlightMax {
		c := bc.queued[0]
		bc.queued = popFront(bc.queued)
		v, err := bc.versions.negotiate(kmsg.Key(c.req.Key()))
		if err != nil {
			bc.later(func() { c.done(nil, fmt.Errorf("broker %d: %w: %w", bc.node, err, errNotSent)) })
			continue
		}
		c.req.SetVersion(v)
		if !bc.write(c) {
			return
		}
		if c.noResponse {
			bc.later(func() { c.done(nil, nil) })
			continue
		}
		bc.sent = append(bc.sent, c)
	}
}

// write sends c's frame and arms its timeout. It reports false when the
// connection died doing so.
func (bc *brokerConn) write(c *call) bool {
	bc.corrNext++
	c.correlationID = bc.corrNext
	bc.frameScratch = appendRequestFrame(bc.frameScratch[:0], c.req, c.correlationID, bc.cfg.clientID)
	// The connection keeps the frame until it is delivered.
	frame := slices.Clone(bc.frameScratch)
	if cap(bc.frameScratch) > frameScratchKeepBytesMax {
		bc.frameScratch = nil
	}
	if err := bc.conn.Send(frame); err != nil {
		if c != bc.handshake && !c.noResponse {
			// The frame may be partly on the wire: its fate is unknown,
			// so it counts as sent.
			bc.sent = append(bc.sent, c)
		}
		bc.kill(fmt.Errorf("send to broker %d: %w", bc.node, err))
		return false
	}
	if c.noResponse {
		return true
	}
	c.bc = bc
	if c.onTimeout == nil {
		c.onTimeout = c.timedOut
	}
	c.timer = bc.env.Clock.AfterFunc(bc.cfg.requestTimeout+c.extraTimeout, c.onTimeout)
	return true
}

// kill ends the connection: calls written fail with err (their fate is
// unknown), calls never written fail with err wrapped in errNotSent. The
// owner and the callers hear of it from a later callback, so kill may be
// reached from anywhere, enqueue included.
func (bc *brokerConn) kill(err error) {
	if bc.state == connDead {
		return
	}
	bc.state = connDead
	bc.conn.Close()
	bc.handshakeTime.Stop()
	if bc.handshake != nil && bc.handshake.timer != nil {
		bc.handshake.timer.Stop()
	}
	sent, queued := bc.sent, bc.queued
	bc.sent, bc.queued = nil, nil
	for _, c := range sent {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	bc.later(func() {
		bc.onDead(bc, err)
		for _, c := range sent {
			c.done(nil, err)
		}
		for _, c := range queued {
			c.done(nil, fmt.Errorf("%w: %w", err, errNotSent))
		}
	})
}

// close ends the connection on the owner's behalf.
func (bc *brokerConn) close(err error) { bc.kill(err) }
