package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/kafkawire"
	"github.com/sluice-sim/sluice/sim"
)

// requestsInFlightMax bounds the requests one connection may have waiting
// for their responses; a client that pipelines more is cut off.
const requestsInFlightMax = 1024

// clientConn is one client connection. Kafka answers a connection's
// requests in the order they came, whatever order they complete in, so
// completed responses wait in ready until every earlier one has gone.
type clientConn struct {
	id      uint64
	b       *Broker
	c       sim.Conn
	nextSeq uint64
	sendSeq uint64
	// ready holds completed responses by sequence; a nil frame marks a
	// request that gets no response (acks=0 produce).
	ready  map[uint64][]byte
	closed bool
	// host is the remote host, as counted in Broker.connsPerIP.
	host string
	// lastActive is when a request last came or an answer last left;
	// idleTimer closes the connection once it is older than
	// Config.ConnectionsIdleMax.
	lastActive time.Duration
	idleTimer  sim.Timer
	// clientID is the client id the last request named: a client names
	// the same one in every request, and reading it afresh cost two
	// allocations per request.
	clientID string
}

// request is one decoded request.
type request struct {
	conn     *clientConn
	seq      uint64
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request
	answered bool
}

func (b *Broker) accept(c sim.Conn) sim.ConnHandler {
	host, _, _ := splitHostPort(c.RemoteAddr())
	if why := b.connectionCapReached(host); why != "" {
		b.refusedLog.note(b.env, "refused connection from %s: %s", c.RemoteAddr(), why)
		return refusedConn{}
	}
	b.nextConn++
	cc := &clientConn{id: b.nextConn, b: b, c: c, ready: make(map[uint64][]byte), host: host}
	b.conns[cc.id] = cc
	b.connsPerIP[host]++
	cc.touch()
	if b.cfg.ConnectionsIdleMax > 0 {
		cc.idleTimer = b.env.Clock.AfterFunc(b.cfg.ConnectionsIdleMax, cc.checkIdle)
	}
	return cc
}

// connectionCapReached says which of max.connections and
// max.connections.per.ip a new connection from host would pass, if any.
func (b *Broker) connectionCapReached(host string) string {
	if limit := b.cfg.ConnectionsMax; limit > 0 && len(b.conns) >= limit {
		return fmt.Sprintf("%d connections open, at most %d", len(b.conns), limit)
	}
	if limit := b.cfg.ConnectionsPerIPMax; limit > 0 && b.connsPerIP[host] >= limit {
		return fmt.Sprintf("%d connections open from %s, at most %d", b.connsPerIP[host], host, limit)
	}
	return ""
}

// refusedConn is the handler of a connection beyond a cap: it is closed as
// soon as it opens.
type refusedConn struct{}

func (refusedConn) OnOpen(c sim.Conn)            { c.Close() }
func (refusedConn) OnFrame(c sim.Conn, _ []byte) { c.Close() }
func (refusedConn) OnClose(sim.Conn, error)      {}

func (cc *clientConn) touch() { cc.lastActive = cc.b.env.Clock.Mono() }

// checkIdle closes the connection if nothing came or went for
// ConnectionsIdleMax, and otherwise looks again when that could be so.
func (cc *clientConn) checkIdle() {
	if cc.closed {
		return
	}
	idleMax := cc.b.cfg.ConnectionsIdleMax
	idle := cc.b.env.Clock.Mono() - cc.lastActive
	if idle >= idleMax {
		cc.b.env.Log.Logf("closing connection from %s: idle for %v (connections.max.idle %v)", cc.c.RemoteAddr(), idle, idleMax)
		cc.close()
		return
	}
	cc.idleTimer = cc.b.env.Clock.AfterFunc(idleMax-idle, cc.checkIdle)
}

func (cc *clientConn) OnOpen(sim.Conn) {}

func (cc *clientConn) OnClose(_ sim.Conn, err error) {
	if errors.Is(err, sim.ErrFrameTooLarge) || errors.Is(err, sim.ErrTimeout) {
		cc.b.env.Log.Logf("closed connection from %s: %v", cc.c.RemoteAddr(), err)
	}
	cc.forget()
}

// forget drops the connection's state and what it counted.
func (cc *clientConn) forget() {
	if cc.closed {
		return
	}
	cc.closed = true
	delete(cc.b.conns, cc.id)
	if cc.b.connsPerIP[cc.host]--; cc.b.connsPerIP[cc.host] <= 0 {
		delete(cc.b.connsPerIP, cc.host)
	}
	for _, f := range cc.ready {
		cc.b.heldAnswerBytes -= len(f)
	}
	clear(cc.ready)
	if cc.idleTimer != nil {
		cc.idleTimer.Stop()
	}
}

func (cc *clientConn) OnFrame(_ sim.Conn, frame []byte) {
	cc.touch()
	req, err := cc.decode(frame)
	if err != nil {
		cc.b.env.Log.Logf("closing connection from %s: %v", cc.c.RemoteAddr(), err)
		cc.close()
		return
	}
	if req.seq-cc.sendSeq >= requestsInFlightMax {
		cc.b.env.Log.Logf("closing connection from %s: more than %d requests in flight", cc.c.RemoteAddr(), requestsInFlightMax)
		cc.close()
		return
	}
	if req.key >= 0 && int(req.key) < requestKeysMax {
		cc.b.stats.requests[req.key]++
	}
	if req.key == 18 {
		handleAPIVersions(cc.b, req)
		return
	}
	handlers[req.key](cc.b, req)
}

func (cc *clientConn) close() {
	if !cc.closed {
		cc.forget()
		cc.c.Close()
	}
}

// decode parses a request frame. A frame that is not a request we serve,
// in a version we serve, is an error: the connection is closed.
func (cc *clientConn) decode(frame []byte) (*request, error) {
	if len(frame) < 8 {
		return nil, fmt.Errorf("request of %d bytes is shorter than a request header", len(frame))
	}
	r := kbin.Reader{Src: frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	clientID, hasClientID := cc.readClientID(&r)
	if !r.Ok() {
		return nil, fmt.Errorf("truncated request header")
	}
	req := cc.b.requestSlab.Take()
	*req = request{conn: cc, key: key, version: version, corr: corr}
	if hasClientID {
		req.clientID = clientID
	}
	served, ok := servedRange(key)
	if !ok {
		return nil, fmt.Errorf("request key %d (%s) is not served", key, kmsg.NameForKey(key))
	}
	if key == 18 && version > served.max {
		// Answered at v0 with the ranges; the body may be a format we
		// cannot read, so it is not parsed.
		req.kreq = kmsg.NewPtrApiVersionsRequest()
		req.seq = cc.nextSeq
		cc.nextSeq++
		return req, nil
	}
	if version < served.min || version > served.max {
		return nil, fmt.Errorf("%s v%d is outside the served v%d-v%d", kmsg.NameForKey(key), version, served.min, served.max)
	}
	switch key {
	case 0:
		req.kreq = cc.b.produceSpares.takeRequest()
	case 1:
		req.kreq = cc.b.fetchBuffers.takeRequest()
	default:
		req.kreq = kmsg.RequestForKey(key)
	}
	req.kreq.SetVersion(version)
	if req.kreq.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return nil, fmt.Errorf("%s v%d: truncated tagged fields", kmsg.NameForKey(key), version)
		}
	}
	if err := readBody(req.kreq, r.Src); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	req.seq = cc.nextSeq
	cc.nextSeq++
	return req, nil
}

// skipTags skips a request header's tagged fields as kmsg.SkipTags does,
// but on the reader itself: through kmsg's interface the reader escaped,
// one allocation per request.
func skipTags(r *kbin.Reader) {
	for num := r.Uvarint(); num > 0 && r.Ok(); num-- {
		_, size := r.Uvarint(), r.Uvarint()
		r.Span(int(size))
	}
}

// readClientID reads the request header's client id (a nullable string),
// reusing the connection's last one when the bytes are the same.
func (cc *clientConn) readClientID(r *kbin.Reader) (string, bool) {
	n := r.Int16()
	if n < 0 {
		return "", false
	}
	raw := r.Span(int(n))
	if !r.Ok() {
		return "", false
	}
	if string(raw) != cc.clientID { // compared without a copy
		cc.clientID = string(raw)
	}
	return cc.clientID, true
}

// readBody decodes a request's body. Fetches and produces go through
// kafkawire's decoders, which reuse the slices of the request decoded
// into. A fetch's or a produce's strings
// (topic names, a transactional id) point into the frame rather than
// being copied: both are decoded by the thousand, and a frame is the
// handler's (sim.ConnHandler) and never written again, so the strings stay
// valid; what keeps one keeps the frame alive, no more (a produce's
// records already pointed into it).
func readBody(kreq kmsg.Request, body []byte) error {
	switch r := kreq.(type) {
	case *kmsg.FetchRequest:
		return kafkawire.ReadFetchRequest(r, body)
	case *kmsg.ProduceRequest:
		return kafkawire.ReadProduceRequest(r, body)
	}
	return kreq.ReadFrom(body)
}

// respond answers the request; the frame goes out once every earlier
// request on the connection has been answered.
func (req *request) respond(resp kmsg.Response) { req.respondSized(resp, 0) }

// respondSized answers with a frame allocated for about sizeBytes, so that
// a large answer (a fetch's records) is built without the garbage of a
// buffer doubling its way up.
func (req *request) respondSized(resp kmsg.Response, sizeBytes int) {
	if req.answered { // not a bare Assert: its arguments would allocate on every answer
		sim.Assert(false, "%s answered twice", kmsg.NameForKey(req.key))
	}
	req.answered = true
	if req.key != 18 {
		resp.SetVersion(req.version)
	}
	var frame []byte
	if pool, ok := req.conn.c.(frameAllocator); ok {
		frame = pool.NewFrame(max(64, sizeBytes))[:4]
	} else {
		frame = make([]byte, 4, max(64, sizeBytes))
	}
	binary.BigEndian.PutUint32(frame, uint32(req.corr))
	if resp.IsFlexible() && resp.Key() != 18 {
		frame = append(frame, 0) // empty tagged fields of the response header
	}
	frame = kafkawire.AppendResponse(frame, resp)
	req.conn.complete(req.seq, frame)
}

// frameAllocator is a connection that lends buffers for the frames sent on
// it and takes them back once they are written (the real world's sockets
// do; the simulated network hands frames to the peer, which keeps them).
type frameAllocator interface {
	NewFrame(capBytes int) []byte
}

// noResponse completes a request that gets no answer (acks=0 produce).
func (req *request) noResponse() {
	sim.Assert(!req.answered, "%s answered twice", kmsg.NameForKey(req.key))
	req.answered = true
	req.conn.complete(req.seq, nil)
}

func (cc *clientConn) complete(seq uint64, frame []byte) {
	if cc.closed {
		return
	}
	if seq != cc.sendSeq {
		cc.ready[seq] = frame
		cc.b.heldAnswerBytes += len(frame)
		return // it waits for an earlier answer
	}
	// The answer next in line goes out at once, without passing through
	// ready (most do: a client's requests mostly complete in order), and
	// any it held back follow.
	for {
		cc.sendSeq++
		if frame != nil && !cc.send(frame) {
			return
		}
		if len(cc.ready) == 0 {
			return
		}
		f, ok := cc.ready[cc.sendSeq]
		if !ok {
			return
		}
		delete(cc.ready, cc.sendSeq)
		cc.b.heldAnswerBytes -= len(f)
		frame = f
	}
}

// send writes an answer's frame, closing the connection if that fails.
func (cc *clientConn) send(frame []byte) bool {
	cc.touch()
	if err := cc.c.Send(frame); err != nil {
		cc.b.env.Log.Logf("send to %s: %v", cc.c.RemoteAddr(), err)
		cc.close()
		return false
	}
	return true
}

// answerBudgetBytes is what is left of Config.SendQueueBytesMax for more
// answers: the node-wide budget less the bytes the network has not yet
// taken and the answers held behind earlier ones.
func (b *Broker) answerBudgetBytes() int {
	if b.cfg.SendQueueBytesMax <= 0 {
		return math.MaxInt
	}
	return b.cfg.SendQueueBytesMax - b.env.Net.SendQueuedBytes() - b.heldAnswerBytes
}

// rateLimitedLog writes at most one line per second and counts the lines
// it held back, so that a flood (connections refused by the thousand)
// neither fills the log nor goes unreported.
type rateLimitedLog struct {
	last       time.Duration
	written    bool
	suppressed int
}

func (l *rateLimitedLog) note(env sim.Env, format string, args ...any) {
	now := env.Clock.Mono()
	if l.written && now-l.last < time.Second {
		l.suppressed++
		return
	}
	line := fmt.Sprintf(format, args...)
	if l.suppressed > 0 {
		line += fmt.Sprintf(" (and %d more like it since the last report)", l.suppressed)
	}
	env.Log.Logf("%s", line)
	l.last, l.written, l.suppressed = now, true, 0
}
