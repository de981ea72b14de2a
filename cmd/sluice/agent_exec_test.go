package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const execAgent = `a1.sources = r1 r2
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.command = seq 1 5000
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.sources.r2.type = org.apache.flume.source.ExecSource
a1.sources.r2.shell = /bin/sh -c
a1.sources.r2.command = for w in alpha beta gamma; do echo "word $w"; done; echo complaint >&2
a1.sources.r2.logStdErr = true
a1.sources.r2.batchTimeout = 100
a1.sources.r2.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = ${env:AGENT_DIR}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.channel = c1
`

// TestAgentExecSourceRunsCommands: a real agent runs seq and a shell
// command through exec sources into a memory channel and a file_roll
// sink: every line of seq arrives in order, the shell's lines too, and
// the shell's standard error is logged.
func TestAgentExecSourceRunsCommands(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "flume.conf")
	if err := os.WriteFile(conf, []byte(execAgent), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENT_DIR", dir)
	a := startRealAgent(t, "-f", conf, "-n", "a1", "--no-reload-conf")
	var lines []string
	deadline := time.Now().Add(20 * time.Second)
	for len(lines) < 5003 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		lines = rolledLines(t, filepath.Join(dir, "out"))
	}
	var seq, words []string
	for _, l := range lines {
		if strings.HasPrefix(l, "word ") {
			words = append(words, l)
		} else {
			seq = append(seq, l)
		}
	}
	if len(seq) != 5000 {
		t.Fatalf("%d lines of seq arrived, want 5000:\n%s", len(seq), a.log)
	}
	for i, l := range seq {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("line %d of seq is %q", i+1, l)
		}
	}
	if strings.Join(words, ",") != "word alpha,word beta,word gamma" {
		t.Fatalf("shell lines %q", words)
	}
	if !strings.Contains(a.log.String(), "exec source r2: stderr: complaint") || !strings.Contains(a.log.String(), `running "seq 1 5000"`) {
		t.Fatalf("log lacks the stderr line or the command:\n%s", a.log)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, a.log)
	}
}

func rolledLines(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}
