package collector

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// HTTPSink POSTs each event's body to an endpoint, as Flume's http sink
// does, one request at a time on a kept-alive HTTP/1.1 connection. A 2xx
// answer delivers the event; any other status rolls the whole batch back
// (it is sent again, so events before it are duplicated) unless
// rollback.<status> or rollback.<class> (such as "4XX") or defaultRollback
// says false, in which case the event is dropped and the batch goes on.
// A request not answered within requestTimeout (connecting within
// connectTimeout) fails the batch and drops the connection.
type HTTPSink struct {
	name     string
	env      sim.Env
	cfg      HTTPSinkConfig
	conn     *httpSinkConn
	counters *SinkCounters
	stopped  bool
}

// HTTPSinkConfig is an http sink's settings (Flume's names).
type HTTPSinkConfig struct {
	Endpoint                       string
	ConnectTimeout, RequestTimeout time.Duration
	ContentType, Accept            string
	DefaultRollback                bool
	// Rollback overrides DefaultRollback per status ("503") or class
	// ("5XX").
	Rollback map[string]bool
}

func httpSinkConfig(c *config.Sink) HTTPSinkConfig {
	cfg := HTTPSinkConfig{
		Endpoint:       c.String("endpoint"),
		ConnectTimeout: time.Duration(c.Int("connectTimeout")) * time.Millisecond,
		RequestTimeout: time.Duration(c.Int("requestTimeout")) * time.Millisecond,
		ContentType:    c.String("contentTypeHeader"), Accept: c.String("acceptHeader"),
		DefaultRollback: c.Bool("defaultRollback"), Rollback: map[string]bool{},
	}
	for k, p := range c.Params {
		if code, ok := strings.CutPrefix(k, "rollback."); ok {
			cfg.Rollback[strings.ToUpper(code)] = strings.EqualFold(p.Value, "true")
		}
	}
	return cfg
}

// httpSinkResponseBytesMax bounds an answer's head and body.
const httpSinkResponseBytesMax = 1 << 20

type httpSinkConn struct {
	sink   *HTTPSink
	c      sim.Conn
	opened bool
	closed bool
	buf    []byte
	// waiting is the request in flight: called with the status, or an
	// error.
	waiting func(status int, err error)
	timer   sim.Timer
}

// NewHTTPSink checks the endpoint and creates the sink.
func NewHTTPSink(name string, env sim.Env, cfg HTTPSinkConfig) (*HTTPSink, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("http sink %s: endpoint %q: want http://host:port/path (https is not supported)", name, cfg.Endpoint)
	}
	return &HTTPSink{name: name, env: env, cfg: cfg, counters: &SinkCounters{}}, nil
}

// Name is the sink's name.
func (s *HTTPSink) Name() string { return s.name }

func (s *HTTPSink) setCounters(c *SinkCounters) { s.counters = c }

// Deliver posts the events one after another.
func (s *HTTPSink) Deliver(events []Event, done func(error)) {
	if len(events) == 0 || s.stopped {
		if s.stopped {
			done(fmt.Errorf("http sink %s: stopped", s.name))
			return
		}
		done(nil)
		return
	}
	s.post(events[0], func(status int, err error) {
		if err == nil && (status < 200 || status > 299) {
			if s.rollback(status) {
				err = fmt.Errorf("http sink %s: %s answered %d", s.name, s.cfg.Endpoint, status)
			} else {
				s.env.Log.Logf("http sink %s: %s answered %d; the event is dropped (no rollback for it)", s.name, s.cfg.Endpoint, status)
			}
		}
		if err != nil {
			done(err)
			return
		}
		// On from the loop: the answer arrived in a frame callback.
		s.env.Clock.AfterFunc(0, func() { s.Deliver(events[1:], done) })
	})
}

func (s *HTTPSink) rollback(status int) bool {
	code := strconv.Itoa(status)
	if v, ok := s.cfg.Rollback[code]; ok {
		return v
	}
	if v, ok := s.cfg.Rollback[code[:1]+"XX"]; ok {
		return v
	}
	return s.cfg.DefaultRollback
}

func (s *HTTPSink) post(e Event, done func(int, error)) {
	u, _ := url.Parse(s.cfg.Endpoint) // checked by NewHTTPSink
	if s.conn == nil {
		hc := &httpSinkConn{sink: s}
		host := u.Host
		if u.Port() == "" {
			host += ":80"
		}
		hc.c = s.env.Net.Dial(host, sim.ConnOptions{Framing: sim.FrameStream}, hc)
		s.conn = hc
	}
	hc := s.conn
	path := u.RequestURI()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nAccept: %s\r\nContent-Length: %d\r\n\r\n",
		path, u.Host, s.cfg.ContentType, s.cfg.Accept, len(e.Body))
	frame := append([]byte(req), e.Body...)
	timeout := s.cfg.RequestTimeout
	if !hc.opened {
		timeout += s.cfg.ConnectTimeout
	}
	hc.waiting = done
	hc.timer = s.env.Clock.AfterFunc(timeout, func() {
		hc.fail(fmt.Errorf("http sink %s: no answer from %s within %v", s.name, s.cfg.Endpoint, timeout))
	})
	if err := hc.c.Send(frame); err != nil {
		hc.fail(fmt.Errorf("http sink %s: send: %w", s.name, err))
	}
}

// fail ends the request in flight with err and drops the connection.
func (hc *httpSinkConn) fail(err error) {
	if !hc.closed {
		hc.closed = true
		hc.c.Close()
	}
	if hc.sink.conn == hc {
		hc.sink.conn = nil
	}
	hc.finish(0, err)
}

func (hc *httpSinkConn) finish(status int, err error) {
	if hc.timer != nil {
		hc.timer.Stop()
		hc.timer = nil
	}
	if w := hc.waiting; w != nil {
		hc.waiting = nil
		w(status, err)
	}
}

func (hc *httpSinkConn) OnOpen(sim.Conn) { hc.opened = true }

func (hc *httpSinkConn) OnClose(_ sim.Conn, err error) {
	if hc.closed {
		return
	}
	if !hc.opened {
		hc.sink.counters.ConnectionFailedCount++
	}
	if err == nil {
		err = errors.New("closed by the server")
	}
	hc.fail(fmt.Errorf("http sink %s: connection to %s: %w", hc.sink.name, hc.sink.cfg.Endpoint, err))
}

func (hc *httpSinkConn) OnFrame(_ sim.Conn, chunk []byte) {
	if hc.closed {
		return
	}
	hc.buf = append(hc.buf, chunk...)
	if len(hc.buf) > httpSinkResponseBytesMax {
		hc.fail(fmt.Errorf("http sink %s: answer over %d bytes", hc.sink.name, httpSinkResponseBytesMax))
		return
	}
	end := bytes.Index(hc.buf, []byte("\r\n\r\n"))
	if end < 0 {
		return
	}
	status, length, keepAlive, err := parseHTTPResponseHead(string(hc.buf[:end]))
	if err != nil {
		hc.fail(fmt.Errorf("http sink %s: %w", hc.sink.name, err))
		return
	}
	if len(hc.buf) < end+4+length {
		return
	}
	hc.buf = hc.buf[end+4+length:]
	if !keepAlive {
		hc.closed = true
		hc.c.Close()
		hc.sink.conn = nil
	}
	hc.finish(status, nil)
}

// parseHTTPResponseHead reads a status line and the headers that matter.
func parseHTTPResponseHead(head string) (status, length int, keepAlive bool, err error) {
	lines := strings.Split(head, "\r\n")
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "HTTP/1.") {
		return 0, 0, false, fmt.Errorf("malformed status line %q", lines[0])
	}
	if status, err = strconv.Atoi(parts[1]); err != nil || status < 100 || status > 999 {
		return 0, 0, false, fmt.Errorf("malformed status %q", parts[1])
	}
	keepAlive = parts[0] == "HTTP/1.1"
	length = -1
	for _, line := range lines[1:] {
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			if length, err = strconv.Atoi(value); err != nil || length < 0 || length > httpSinkResponseBytesMax {
				return 0, 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case "transfer-encoding":
			return 0, 0, false, fmt.Errorf("chunked answers are not supported")
		case "connection":
			keepAlive = !strings.EqualFold(value, "close")
		}
	}
	if length < 0 {
		// Without a length the body runs to the close; it is not needed.
		length, keepAlive = 0, false
	}
	return status, length, keepAlive, nil
}

// Stop closes the connection; a request in flight fails.
func (s *HTTPSink) Stop() {
	s.stopped = true
	if hc := s.conn; hc != nil {
		hc.fail(fmt.Errorf("http sink %s: stopped", s.name))
	}
}
