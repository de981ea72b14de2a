package collector

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSyslog(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		line    string
		headers map[string]string
		body    string
	}{
		{"<34>Oct 11 22:14:15 mymachine su: 'su root' failed", map[string]string{"Facility": "4", "Severity": "2",
			"timestamp": "1760220855000", "host": "mymachine"}, "su: 'su root' failed"},
		{"<13>Jan  2 03:00:00 h1 msg", map[string]string{"Facility": "1", "Severity": "5",
			"timestamp": "1767322800000", "host": "h1"}, "msg"},
		{`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"]"] An application event`,
			map[string]string{"Facility": "20", "Severity": "5", "timestamp": "1065910455003", "host": "mymachine.example.com"}, "An application event"},
		{"<14>1 - - - - - - bare", map[string]string{"Facility": "1", "Severity": "6"}, "bare"},
		{"no priority", map[string]string{"flume.syslog.status": "Invalid"}, "no priority"},
		{"<999>Oct 11 22:14:15 h m", map[string]string{"flume.syslog.status": "Invalid"}, "<999>Oct 11 22:14:15 h m"},
		{"<34>1 notatime h a p m - x", map[string]string{"Facility": "4", "Severity": "2", "flume.syslog.status": "Invalid"}, "<34>1 notatime h a p m - x"},
	}
	for _, c := range cases {
		e := parseSyslog([]byte(c.line), now, false)
		if !reflect.DeepEqual(e.Headers, c.headers) || string(e.Body) != c.body {
			t.Errorf("%q:\n got %v %q\nwant %v %q", c.line, e.Headers, e.Body, c.headers, c.body)
		}
	}
	if e := parseSyslog([]byte("<34>Oct 11 22:14:15 h m"), now, true); string(e.Body) != "<34>Oct 11 22:14:15 h m" {
		t.Errorf("keepFields body %q", e.Body)
	}
}

const syslogConf = `a.sources = tcp udp nc
a.channels = c1
a.sinks = k1
a.sources.tcp.type = syslogtcp
a.sources.tcp.host = 0.0.0.0
a.sources.tcp.port = 5140
a.sources.tcp.eventSize = 45
a.sources.tcp.channels = c1
a.sources.udp.type = syslogudp
a.sources.udp.host = 0.0.0.0
a.sources.udp.port = 5141
a.sources.udp.channels = c1
a.sources.nc.type = netcatudp
a.sources.nc.bind = 0.0.0.0
a.sources.nc.port = 5142
a.sources.nc.remoteAddressHeader = from
a.sources.nc.channels = c1
a.channels.c1.type = memory
a.channels.c1.capacity = 1000
a.sinks.k1.type = logger
a.sinks.k1.channel = c1
`

// TestSyslogAndUDPSources sends syslog over TCP (one line cut at
// eventSize) and UDP, and netcat lines over UDP, and finds each in the
// logger sink with its headers.
func TestSyslogAndUDPSources(t *testing.T) {
	aw := newAgentWorld(t, 3, syslogConf, "a")
	cl := aw.dial(5140)
	cl.send("<34>Oct 11 22:14:15 mymachine su: one\n<13>1 2026-01-02T03:04:05Z h2 app - - - two\r\n")
	cl.send("<34>Oct 11 22:14:15 mymachine " + strings.Repeat("x", 60) + "\n<34>Oct 11 22:14:15 m three\n")
	pc, err := aw.client.Net.ListenPacket("client:0", func(string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	pc.SendTo("collector:5141", []byte("<165>1 2003-10-11T22:14:15.003Z m2 app - - - four\n"))
	pc.SendTo("collector:5142", []byte("five\n"))
	aw.run(time.Second)
	got := strings.Join(aw.events, "\n")
	for _, want := range []string{
		"headers:{Facility=4, Severity=2, host=mymachine, timestamp=",
		"headers:{Facility=1, Severity=5, host=h2, timestamp=1767323045000} body: 74 77 6F",
		"flume.syslog.status=Incomplete",
		"body: 74 68 72 65 65", // three
		"headers:{Facility=20, Severity=5, host=m2, timestamp=1065910455003} body: 66 6F 75 72",
		"headers:{from=client:", "body: 66 69 76 65 ", // five, without its newline
	} {
		if !strings.Contains(got, want) {
			t.Errorf("logged events lack %q:\n%s", want, got)
		}
	}
	if len(aw.events) != 6 {
		t.Errorf("%d events logged, want 6:\n%s", len(aw.events), got)
	}
	m := aw.agent.Metrics()
	if m["SOURCE.tcp"]["EventAcceptedCount"] != "4" || m["SOURCE.udp"]["EventAcceptedCount"] != "1" || m["SOURCE.nc"]["EventAcceptedCount"] != "1" {
		t.Errorf("counters %v", m)
	}
}
