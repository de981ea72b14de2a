package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flume.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAgentHTTPSourceAndHopReal runs two real agents chained by the hop:
// Go's own HTTP client posts Flume JSONHandler arrays to the first (http
// -> memory -> avro sink), whose batches reach the second (avro source ->
// memory -> logger) over TCP; bad JSON gets 400.
func TestAgentHTTPSourceAndHopReal(t *testing.T) {
	httpPort, hopPort := freePort(t), freePort(t)
	down := startRealAgent(t, "-f", writeConf(t, fmt.Sprintf(`d.sources = r1
d.channels = c1
d.sinks = k1
d.sources.r1.type = avro
d.sources.r1.bind = 127.0.0.1
d.sources.r1.port = %s
d.sources.r1.channels = c1
d.channels.c1.type = memory
d.sinks.k1.type = logger
d.sinks.k1.channel = c1
`, hopPort)), "-n", "d")
	waitListening(t, "127.0.0.1:"+hopPort, down)
	up := startRealAgent(t, "-f", writeConf(t, fmt.Sprintf(`u.sources = r1
u.channels = c1
u.sinks = k1
u.sources.r1.type = http
u.sources.r1.bind = 127.0.0.1
u.sources.r1.port = %s
u.sources.r1.channels = c1
u.channels.c1.type = memory
u.sinks.k1.type = avro
u.sinks.k1.hostname = 127.0.0.1
u.sinks.k1.port = %s
u.sinks.k1.batch-size = 10
u.sinks.k1.channel = c1
`, httpPort, hopPort)), "-n", "u")
	waitListening(t, "127.0.0.1:"+httpPort, up)
	post := func(body string) (int, string) {
		resp, err := http.Post("http://127.0.0.1:"+httpPort+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(text)
	}
	if code, text := post(`[{"headers":{"k":"v"},"body":"first"},{"body":"second"}]`); code != 200 {
		t.Fatalf("post: %d %s\n%s", code, text, up.log)
	}
	if code, text := post(`[{"body":`); code != 400 || !strings.Contains(text, "JSON") {
		t.Fatalf("bad JSON: %d %s", code, text)
	}
	if code, _ := post(`[{"body":"third"}]`); code != 200 {
		t.Fatalf("third post: %d", code)
	}
	got := waitLogged(t, down, 3)
	if strings.Join(got, ",") != "first,second,third" {
		t.Fatalf("downstream logged %v\n%s\n%s", got, up.log, down.log)
	}
	if !strings.Contains(down.log.String(), "headers:{k=v}") {
		t.Fatalf("the header did not cross the hop:\n%s", down.log)
	}
}
