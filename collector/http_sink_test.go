package collector

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// httpTestServer answers each POST with the status answer gives it,
// keeping the bodies of those it answered 2xx.
type httpTestServer struct {
	answer   func(body string) int
	accepted []string
	requests int
}

type httpTestConn struct {
	srv *httpTestServer
	c   sim.Conn
	buf []byte
}

func (h *httpTestConn) OnOpen(sim.Conn)         {}
func (h *httpTestConn) OnClose(sim.Conn, error) {}
func (h *httpTestConn) OnFrame(_ sim.Conn, chunk []byte) {
	h.buf = append(h.buf, chunk...)
	for {
		req, status, _ := parseHTTPHead(h.buf)
		if status != 0 || req == nil || len(h.buf) < req.headBytes+req.contentLength {
			return
		}
		body := string(h.buf[req.headBytes : req.headBytes+req.contentLength])
		h.buf = h.buf[req.headBytes+req.contentLength:]
		h.srv.requests++
		code := h.srv.answer(body)
		if code/100 == 2 {
			h.srv.accepted = append(h.srv.accepted, body)
		}
		h.c.Send([]byte(fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", code)))
	}
}

const httpSinkConf = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = seq
a.sources.r1.totalEvents = 20
a.sources.r1.batchSize = 5
a.sources.r1.channels = c1
a.channels.c1.type = memory
a.sinks.k1.type = http
a.sinks.k1.endpoint = http://client:8080/ingest
a.sinks.k1.batchSize = 5
a.sinks.k1.rollback.404 = false
a.sinks.k1.channel = c1
`

// TestHTTPSinkRollsBackAndDrops posts every event; a 503 rolls the batch
// back (its earlier events are posted again), a 404 with rollback.404 =
// false drops just that event.
func TestHTTPSinkRollsBackAndDrops(t *testing.T) {
	cfg, err := config.Parse(httpSinkConf, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httpTestServer{}
	failed := false
	srv.answer = func(body string) int {
		switch {
		case body == "7" && !failed:
			failed = true
			return 503
		case body == "12":
			return 404
		}
		return 200
	}
	w := world.New(world.Config{Seed: 1})
	w.AddNode("client", func(env sim.Env) {
		if _, err := env.Net.Listen("client:8080", sim.ConnOptions{Framing: sim.FrameStream}, func(c sim.Conn) sim.ConnHandler {
			return &httpTestConn{srv: srv, c: c}
		}); err != nil {
			t.Fatal(err)
		}
	})
	var agent *Agent
	w.AddNode("collector", Start(cfg, Options{OnFatal: func(err error) { t.Fatal(err) }}, func(a *Agent) { agent = a }))
	w.Run(20*time.Second, 0)
	seen := map[string]int{}
	for _, b := range srv.accepted {
		seen[b]++
	}
	for i := 0; i < 20; i++ {
		want := 1
		switch {
		case i == 12:
			want = 0
		case i == 5 || i == 6:
			want = 2 // before the 503 in their batch: sent again
		}
		if seen[strconv.Itoa(i)] != want {
			t.Fatalf("event %d accepted %d times, want %d (accepted %v)", i, seen[strconv.Itoa(i)], want, srv.accepted)
		}
	}
	m := agent.Metrics()["SINK.k1"]
	if m["EventDrainSuccessCount"] != "20" || m["RollbackCount"] != "1" {
		t.Fatalf("counters %v", m)
	}
}

func TestParseHTTPResponseHead(t *testing.T) {
	for _, c := range []struct {
		head      string
		status    int
		length    int
		keepAlive bool
		bad       bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5", 200, 5, true, false},
		{"HTTP/1.0 503 Busy\r\nContent-Length: 0", 503, 0, false, false},
		{"HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0", 204, 0, false, false},
		{"HTTP/1.1 200 OK", 200, 0, false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", 0, 0, false, true},
		{"SPDY 200", 0, 0, false, true},
		{"HTTP/1.1 abc", 0, 0, false, true},
	} {
		status, length, keepAlive, err := parseHTTPResponseHead(c.head)
		if (err != nil) != c.bad || (!c.bad && (status != c.status || length != c.length || keepAlive != c.keepAlive)) {
			t.Errorf("%q: %d %d %v %v", c.head, status, length, keepAlive, err)
		}
	}
}
