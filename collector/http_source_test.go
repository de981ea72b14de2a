package collector

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stuckSink is a sink that cannot deliver (an avro sink to a host that
// does not exist), so its channel fills.
const stuckSink = `a.sinks.k1.type = avro
a.sinks.k1.hostname = nowhere
a.sinks.k1.port = 1
a.sinks.k1.batch-size = 5
a.sinks.k1.channel = c1
`

const httpConf = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = http
a.sources.r1.port = 5140
a.sources.r1.channels = c1
a.channels.c1.type = memory
a.channels.c1.capacity = 10
a.channels.c1.transactionCapacity = 5
a.channels.c1.keep-alive = 0
` + stuckSink

func httpPost(body string, extra string) string {
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", extra, len(body), body)
}

func statuses(replies string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`HTTP/1\.1 (\d+) `).FindAllStringSubmatch(replies, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestHTTPSourceJSONHandler posts Flume JSONHandler arrays: 200 once the
// events are committed (with their headers), 400 for bad JSON without
// touching the channel, 503 when the channel is full; requests pipelined
// on one connection are answered in order.
func TestHTTPSourceJSONHandler(t *testing.T) {
	aw := newAgentWorld(t, 1, httpConf, "a")
	cl := aw.dial(5140)
	cl.send(httpPost(`[{"headers":{"h":"1"},"body":"one"},{"body":"two"},{"headers":{},"body":"three"}]`, ""))
	cl.send(httpPost(`[{"body": "unterminated`, ""))
	cl.send(httpPost(`{"body":"not an array"}`, ""))
	cl.send(httpPost(`[{"body":"four"},{"body":"five"}]`, ""))
	aw.run(100 * time.Millisecond)
	if got := strings.Join(statuses(cl.replies.String()), " "); got != "200 400 400 200" {
		t.Fatalf("statuses %q\n%s", got, cl.replies.String())
	}
	ch := aw.agent.Channel("c1")
	if ch.Size() != 5 {
		t.Fatalf("channel holds %d events, want 5", ch.Size())
	}
	tx := ch.Begin()
	e, _, _ := tx.Take()
	tx.Rollback()
	if string(e.Body) != "one" || e.Headers["h"] != "1" {
		t.Fatalf("first event %q %v", e.Body, e.Headers)
	}
	// The channel holds 5 of 10: six more do not fit.
	cl.send(httpPost(`[{"body":"a"},{"body":"b"},{"body":"c"},{"body":"d"},{"body":"e"},{"body":"f"}]`, "Connection: close\r\n"))
	aw.run(100 * time.Millisecond)
	if got := strings.Join(statuses(cl.replies.String()), " "); got != "200 400 400 200 503" {
		t.Fatalf("statuses %q", got)
	}
	if !cl.isDown {
		t.Fatalf("Connection: close was not honoured")
	}
	m := aw.agent.Metrics()["SOURCE.r1"]
	if m["EventAcceptedCount"] != "5" || m["ChannelWriteFail"] != "1" || m["EventReadFail"] != "2" {
		t.Fatalf("counters %v", m)
	}
}

// TestHTTPSourceLimits refuses what the minimal parser does not serve,
// each with its status.
func TestHTTPSourceLimits(t *testing.T) {
	cases := []struct{ request, status string }{
		{"GET / HTTP/1.1\r\n\r\n", "405"},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "411"},
		{"POST / HTTP/1.1\r\n\r\n", "411"},
		{"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", "413"},
		{"BROKEN\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nX: " + strings.Repeat("x", httpHeaderBytesMax) + "\r\n\r\n", "431"},
	}
	aw := newAgentWorld(t, 2, httpConf, "a")
	for _, c := range cases {
		cl := aw.dial(5140)
		cl.send(c.request)
		aw.run(50 * time.Millisecond)
		if got := strings.Join(statuses(cl.replies.String()), " "); got != c.status {
			t.Errorf("%.40q: statuses %q, want %s", c.request, got, c.status)
		}
	}
}
