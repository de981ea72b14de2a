package collector

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"
)

const taildirConf = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = TAILDIR
a.sources.r1.filegroups = f1
a.sources.r1.filegroups.f1 = /var/log/app/app\.log.*
a.sources.r1.headers.f1.origin = app
a.sources.r1.positionFile = /var/flume/taildir_position.json
a.sources.r1.writePosInterval = 100
a.sources.r1.batchSize = 20
a.sources.r1.channels = c1
a.channels.c1.type = file
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
a.sinks.k1.type = logger
a.sinks.k1.batchSize = 20
a.sinks.k1.channel = c1
`

func appendFile(t *testing.T, aw *agentWorld, name, text string) {
	t.Helper()
	fs := aw.agent.env.FS
	f, err := fs.Open(name)
	if err != nil {
		f, err = fs.Create(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append([]byte(text)); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func readPositions(t *testing.T, aw *agentWorld) []tailPosition {
	t.Helper()
	f, err := aw.agent.env.FS.Open("var/flume/taildir_position.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Size()
	buf := make([]byte, size)
	f.ReadAt(buf, 0)
	var list []tailPosition
	if err := json.Unmarshal(buf, &list); err != nil {
		t.Fatalf("position file %q: %v", buf, err)
	}
	return list
}

// TestTaildirFollowsRotation appends to a log, rotates it (renamed to
// app.log.1, lines still unread in it, a new app.log started), and finds
// every line logged exactly once, in the order written, with the
// filegroup's header: the rotated file is followed from its position, not
// read again, and read to its end before its successor, as Flume reads the
// oldest-modified file first.
func TestTaildirFollowsRotation(t *testing.T) {
	aw := newAgentWorld(t, 1, taildirConf, "a")
	if err := aw.agent.env.FS.MkdirAll("var/log/app"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, aw, "var/log/app/app.log", numberedLines("old", 100))
	aw.run(3 * time.Second)
	appendFile(t, aw, "var/log/app/app.log", numberedLines("tail", 30))
	if err := aw.agent.env.FS.Rename("var/log/app/app.log", "var/log/app/app.log.1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, aw, "var/log/app/app.log", numberedLines("new", 50))
	aw.run(10 * time.Second)
	seen := map[string]int{}
	for _, b := range aw.bodies() {
		seen[b]++
	}
	for _, want := range []string{numberedLines("old", 100), numberedLines("tail", 30), numberedLines("new", 50)} {
		for _, line := range strings.Fields(want) {
			if seen[line] != 1 {
				t.Fatalf("%s logged %d times; logged %d lines", line, seen[line], len(aw.events))
			}
		}
	}
	if len(aw.events) != 180 || !strings.Contains(aw.events[0], "headers:{origin=app}") {
		t.Fatalf("%d events, first %s", len(aw.events), aw.events[0])
	}
	if got, want := strings.Join(aw.bodies(), "\n")+"\n", numberedLines("old", 100)+numberedLines("tail", 30)+numberedLines("new", 50); got != want {
		t.Fatalf("lines out of the order written:\n%s", got)
	}
	// The position file lists the files in the order they were first seen.
	positions := readPositions(t, aw)
	if len(positions) != 2 || positions[0].File != "/var/log/app/app.log.1" || positions[1].File != "/var/log/app/app.log" ||
		positions[1].Pos != int64(len(numberedLines("new", 50))) {
		t.Fatalf("positions %+v", positions)
	}
}

// TestTaildirPositionOnlyAfterCommit feeds a channel that fills (its sink
// cannot deliver): the position file never claims more than the lines the
// channel committed.
func TestTaildirPositionOnlyAfterCommit(t *testing.T) {
	conf := strings.Replace(taildirConf, `a.channels.c1.type = file`, "a.channels.c1.type = memory\na.channels.c1.capacity = 10\na.channels.c1.transactionCapacity = 5\na.channels.c1.keep-alive = 0", 1)
	conf = strings.Replace(conf, "a.sources.r1.batchSize = 20", "a.sources.r1.batchSize = 5", 1)
	conf = conf[:strings.Index(conf, "a.sinks.k1.type")] + stuckSink
	aw := newAgentWorld(t, 2, conf, "a")
	aw.agent.env.FS.MkdirAll("var/log/app")
	appendFile(t, aw, "var/log/app/app.log", numberedLines("x", 100))
	aw.run(5 * time.Second)
	if got := aw.agent.Channel("c1").Size(); got != 10 {
		t.Fatalf("channel holds %d", got)
	}
	positions := readPositions(t, aw)
	if want := int64(len(numberedLines("x", 10))); len(positions) != 1 || positions[0].Pos != want {
		t.Fatalf("positions %+v, want pos %d (10 committed lines)", positions, want)
	}
}

// TestTaildirCrashResumes kills the agent while it follows a growing log:
// every line arrives at least once, and the restart resumes from the
// position file rather than the file's start.
func TestTaildirCrashResumes(t *testing.T) {
	aw := newAgentWorld(t, 3, taildirConf, "a")
	aw.agent.env.FS.MkdirAll("var/log/app")
	for i := 0; i < 20; i++ {
		appendFile(t, aw, "var/log/app/app.log", numberedLines(fmt.Sprintf("w%d", i), 50))
		aw.run(300 * time.Millisecond)
		if i == 10 {
			if err := aw.w.Kill("collector"); err != nil {
				t.Fatal(err)
			}
			if err := aw.w.Restart("collector"); err != nil {
				t.Fatal(err)
			}
			aw.run(100 * time.Millisecond)
		}
	}
	aw.run(10 * time.Second)
	seen := map[string]int{}
	for _, b := range aw.bodies() {
		seen[b]++
	}
	dups := 0
	for i := 0; i < 20; i++ {
		for _, line := range strings.Fields(numberedLines(fmt.Sprintf("w%d", i), 50)) {
			if seen[line] == 0 {
				t.Fatalf("%s lost", line)
			}
			dups += seen[line] - 1
		}
	}
	if dups > 200 {
		t.Fatalf("%d duplicates: the restart did not resume from the position file", dups)
	}
	t.Logf("%d lines, %d duplicates", len(aw.events), dups)
}

// syncPath makes a file's bytes and its directory entry durable, as a
// writer that fsyncs its log does.
func syncPath(t *testing.T, aw *agentWorld, name string) {
	t.Helper()
	fs := aw.agent.env.FS
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	var fileErr, dirErr error
	synced := 0
	f.Sync(func(err error) { fileErr = err; synced++ })
	fs.SyncDir(path.Dir(name), func(err error) { dirErr = err; synced++ })
	aw.run(50 * time.Millisecond)
	f.Close()
	if synced != 2 || fileErr != nil || dirErr != nil {
		t.Fatalf("sync %s: %d of 2 syncs done, %v, %v", name, synced, fileErr, dirErr)
	}
}

// TestTaildirPowerLossKeepsPositions cuts the power after the source read
// a synced log and wrote its positions: the position file is written
// durably (a temporary file synced, renamed, the directory synced), so the
// restart resumes at the end instead of sending the whole log again. An
// unsynced position file does not survive the power loss on these seeds.
func TestTaildirPowerLossKeepsPositions(t *testing.T) {
	const lines = 1000
	for seed := uint64(1); seed <= 4; seed++ {
		aw := newAgentWorld(t, seed, taildirConf, "a")
		aw.agent.env.FS.MkdirAll("var/log/app")
		appendFile(t, aw, "var/log/app/app.log", numberedLines("p", lines))
		syncPath(t, aw, "var/log/app/app.log")
		aw.run(3 * time.Second)
		if len(aw.events) != lines {
			t.Fatalf("seed %d: %d of %d lines logged before the power loss", seed, len(aw.events), lines)
		}
		if err := aw.w.PowerLoss("collector"); err != nil {
			t.Fatal(err)
		}
		if err := aw.w.Restart("collector"); err != nil {
			t.Fatal(err)
		}
		aw.run(5 * time.Second)
		if aw.agent == nil {
			t.Fatalf("seed %d: the agent did not start again: %v", seed, aw.fatal)
		}
		if positions := readPositions(t, aw); len(positions) != 1 || positions[0].Pos != int64(len(numberedLines("p", lines))) {
			t.Fatalf("seed %d: positions after the power loss %+v", seed, positions)
		}
		if got := len(aw.events); got != lines {
			t.Fatalf("seed %d: %d lines logged for %d: the restart sent the log again", seed, got, lines)
		}
	}
}

// TestTaildirReadErrorsKeepOrder: with reads failing one time in five, a
// rotated file is still read to its end before its successor, and no
// file whose first line could not be read is forgotten (and read again
// from its start as a new one): every line exactly once, in the order
// written.
func TestTaildirReadErrorsKeepOrder(t *testing.T) {
	aw := newAgentWorld(t, 3, taildirConf, "a")
	if err := aw.agent.env.FS.MkdirAll("var/log/app"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, aw, "var/log/app/app.log", numberedLines("old", 100))
	aw.run(2 * time.Second)
	disk := aw.w.Node("collector").Disk()
	disk.SetReadErrorRate(0.2)
	appendFile(t, aw, "var/log/app/app.log", numberedLines("tail", 300))
	if err := aw.agent.env.FS.Rename("var/log/app/app.log", "var/log/app/app.log.1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, aw, "var/log/app/app.log", numberedLines("new", 300))
	aw.run(5 * time.Second)
	disk.SetReadErrorRate(0)
	aw.run(5 * time.Second)
	want := numberedLines("old", 100) + numberedLines("tail", 300) + numberedLines("new", 300)
	if got := strings.Join(aw.bodies(), "\n") + "\n"; got != want {
		t.Fatalf("%d lines logged, want 700 in the order written; log:\n%s", len(aw.bodies()), aw.log.String())
	}
	if !strings.Contains(aw.log.String(), "input/output error") {
		t.Fatal("no read failed: the test shows nothing")
	}
}
