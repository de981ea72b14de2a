package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// HTTPSource takes events over HTTP/1.1 POSTs, as Flume's HTTP source with
// its default JSONHandler does: the body is a JSON array of
// {"headers": {...}, "body": "..."}; the answer is 200 once every event
// is committed to the channels, 503 when a channel refused them (full
// past keep-alive), 400 when the JSON is not such an array. The HTTP
// parser is minimal and bounded: requests on a connection are served one
// at a time, in order; a request needs Content-Length (chunked bodies get
// 411); header and body sizes have limits.
type HTTPSource struct {
	tcpSource
	proc *channelProcessor
}

const (
	httpHeaderBytesMax = 16 << 10
	httpBodyBytesMax   = 16 << 20
	httpEventsMax      = 1 << 20
)

type httpConn struct {
	sourceConn
	src  *HTTPSource
	buf  []byte
	busy bool
}

func newHTTPSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *HTTPSource {
	s := &HTTPSource{proc: proc}
	s.init("http source", name, env, joinHostPort(c.String("bind"), int(c.Int("port"))))
	return s
}

// Start listens on bind:port.
func (s *HTTPSource) Start() error {
	return s.listen(sim.ConnOptions{Framing: sim.FrameStream}, s.accept)
}

func (s *HTTPSource) accept(c sim.Conn) sim.ConnHandler {
	hc := &httpConn{src: s}
	s.track(&hc.sourceConn, c)
	return hc
}

func (hc *httpConn) OnOpen(sim.Conn)         {}
func (hc *httpConn) OnClose(sim.Conn, error) { hc.forget() }

func (hc *httpConn) OnFrame(_ sim.Conn, chunk []byte) {
	if hc.closed {
		return
	}
	if len(hc.buf)+len(chunk) > httpHeaderBytesMax+httpBodyBytesMax {
		hc.respond(413, "request too large", true)
		return
	}
	hc.buf = append(hc.buf, chunk...)
	hc.serve()
}

// httpRequest is a parsed request head.
type httpRequest struct {
	method, target string
	contentLength  int
	headBytes      int
	close          bool
}

// serve answers the buffered requests, one at a time.
func (hc *httpConn) serve() {
	for !hc.busy && !hc.closed && len(hc.buf) > 0 {
		req, status, msg := parseHTTPHead(hc.buf)
		if status != 0 {
			hc.respond(status, msg, true)
			return
		}
		if req == nil || len(hc.buf) < req.headBytes+req.contentLength {
			return // wait for more bytes
		}
		body := hc.buf[req.headBytes : req.headBytes+req.contentLength]
		hc.buf = hc.buf[req.headBytes+req.contentLength:]
		hc.handle(req, body)
	}
}

// parseHTTPHead parses a request head once it is complete; nil with no
// status means more bytes are needed, a status is an answer to give.
func parseHTTPHead(buf []byte) (*httpRequest, int, string) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > httpHeaderBytesMax {
			return nil, 431, "request header too large"
		}
		return nil, 0, ""
	}
	if end > httpHeaderBytesMax {
		return nil, 431, "request header too large"
	}
	lines := strings.Split(string(buf[:end]), "\r\n")
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return nil, 400, "malformed request line"
	}
	req := &httpRequest{method: parts[0], target: parts[1], contentLength: -1, headBytes: end + 4, close: parts[2] == "HTTP/1.0"}
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, 400, "malformed header line"
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return nil, 400, "bad Content-Length"
			}
			if n > httpBodyBytesMax {
				return nil, 413, fmt.Sprintf("body over %d bytes", httpBodyBytesMax)
			}
			req.contentLength = n
		case "transfer-encoding":
			return nil, 411, "chunked bodies are not supported; send Content-Length"
		case "connection":
			req.close = strings.EqualFold(value, "close")
		}
	}
	if req.contentLength < 0 {
		if req.method == "POST" {
			return nil, 411, "Content-Length required"
		}
		req.contentLength = 0
	}
	return req, 0, ""
}

// jsonEvent is one event of Flume's JSONHandler format.
type jsonEvent struct {
	Headers map[string]string `json:"headers"`
	Body    *string           `json:"body"`
}

func (hc *httpConn) handle(req *httpRequest, body []byte) {
	s := hc.src
	if req.method != "POST" {
		hc.respond(405, "only POST is served", req.close)
		return
	}
	var list []jsonEvent
	if err := json.Unmarshal(body, &list); err != nil {
		s.counters.EventReadFail++
		hc.respond(400, fmt.Sprintf("bad request: not a JSON array of events: %v", err), req.close)
		return
	}
	if len(list) > httpEventsMax {
		hc.respond(413, fmt.Sprintf("more than %d events", httpEventsMax), req.close)
		return
	}
	events := make([]Event, len(list))
	for i, je := range list {
		events[i].Headers = je.Headers
		if je.Body != nil {
			events[i].Body = []byte(*je.Body)
		}
	}
	if s.stopped {
		hc.respond(503, "source stopped", true)
		return
	}
	s.counters.AppendBatchReceivedCount++
	s.counters.EventReceivedCount += int64(len(events))
	hc.busy = true
	commitInChunks(s.env, s.proc, events, func(err error) {
		hc.busy = false
		if err != nil {
			s.counters.ChannelWriteFail++
			s.env.Log.Logf("http source %s: %d events not accepted: %v", s.name, len(events), err)
			hc.respond(503, "Error appending event to channel. Channel might be full: "+err.Error(), req.close)
		} else {
			s.counters.AppendBatchAcceptedCount++
			s.counters.EventAcceptedCount += int64(len(events))
			hc.respond(200, "", req.close)
		}
		// Go on from the loop: the commit may complete inside another.
		s.env.Clock.AfterFunc(0, hc.serve)
	})
}

var httpReasons = map[int]string{200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 411: "Length Required",
	413: "Payload Too Large", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}

func (hc *httpConn) respond(status int, msg string, closeAfter bool) {
	if hc.closed {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n", status, httpReasons[status], len(msg))
	if closeAfter {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(msg)
	if err := hc.c.Send([]byte(b.String())); err != nil || closeAfter {
		hc.close()
	}
}
