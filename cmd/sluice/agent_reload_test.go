package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func netcatLoggerConfig(port string) string {
	return fmt.Sprintf(`a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = %s
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`, port)
}

func waitLog(t *testing.T, a *realAgent, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(a.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's log never said %q:\n%s", text, a.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentReloadsChangedConfig changes the running agent's file: an
// invalid version is logged with its line and key and the running agent
// keeps serving; a valid one (its netcat port moved) replaces it.
func TestAgentReloadsChangedConfig(t *testing.T) {
	first, second := freePort(t), freePort(t)
	conf := filepath.Join(t.TempDir(), "flume.conf")
	if err := os.WriteFile(conf, []byte(netcatLoggerConfig(first)), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startRealAgent(t, "-f", conf, "-n", "a1", "--reload-interval", "100ms")
	waitListening(t, "127.0.0.1:"+first, a)

	bad := strings.Replace(netcatLoggerConfig(first), "a1.channels.c1.type = memory", "a1.channels.c1.type = jdbc-nope", 1)
	if err := os.WriteFile(conf, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "changed but is not valid; keeping the running configuration")
	waitLog(t, a, `line 8: a1.channels.c1.type: unknown channel type "jdbc-nope"`)
	if answers := sendLines(t, "127.0.0.1:"+first, []string{"still-running"}); strings.Join(answers, ",") != "OK" {
		t.Fatalf("after an invalid change the agent answers %v", answers)
	}

	if err := os.WriteFile(conf, []byte(netcatLoggerConfig(second)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "changed; reloading")
	waitListening(t, "127.0.0.1:"+second, a)
	if answers := sendLines(t, "127.0.0.1:"+second, []string{"reloaded"}); strings.Join(answers, ",") != "OK" {
		t.Fatalf("the reloaded agent answers %v", answers)
	}
	if got := waitLogged(t, a, 2); strings.Join(got, ",") != "still-running,reloaded" {
		t.Fatalf("logged %v", got)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+first, time.Second); err == nil {
		c.Close()
		t.Fatalf("the old port still listens after the reload")
	}
}

// TestAgentReloadFallsBackWhenNewConfigCannotRun reloads a valid file whose
// port is taken: the agent logs it and runs the previous configuration
// again.
func TestAgentReloadFallsBackWhenNewConfigCannotRun(t *testing.T) {
	first := freePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, takenPort, _ := net.SplitHostPort(taken.Addr().String())
	conf := filepath.Join(t.TempDir(), "flume.conf")
	if err := os.WriteFile(conf, []byte(netcatLoggerConfig(first)), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startRealAgent(t, "-f", conf, "-n", "a1", "--reload-interval", "100ms")
	waitListening(t, "127.0.0.1:"+first, a)
	if err := os.WriteFile(conf, []byte(netcatLoggerConfig(takenPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "the changed configuration cannot run")
	waitListening(t, "127.0.0.1:"+first, a)
	if answers := sendLines(t, "127.0.0.1:"+first, []string{"back"}); strings.Join(answers, ",") != "OK" {
		t.Fatalf("after falling back the agent answers %v", answers)
	}
}
