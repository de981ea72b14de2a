package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

const spoolConf = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = spooldir
a.sources.r1.spoolDir = /var/spool
a.sources.r1.batchSize = 50
a.sources.r1.basenameHeader = true
a.sources.r1.channels = c1
a.channels.c1.type = file
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
a.sinks.k1.type = logger
a.sinks.k1.batchSize = 50
a.sinks.k1.channel = c1
`

func writeFile(t *testing.T, fs sim.FS, name, text string) {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append([]byte(text)); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func numberedLines(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s-%d\n", prefix, i)
	}
	return b.String()
}

// TestSpoolDirCompletesAndRefusesReuse spools two files (one without a
// final newline): every line arrives in order, each file is renamed with
// .COMPLETED after its last commit; a new file under a completed name
// stops the source loudly.
func TestSpoolDirCompletesAndRefusesReuse(t *testing.T) {
	aw := newAgentWorld(t, 1, spoolConf, "a")
	fs := aw.agent.env.FS
	writeFile(t, fs, "var/spool/a.log", numberedLines("a", 120))
	writeFile(t, fs, "var/spool/b.log", "b-0\nb-1")
	aw.run(5 * time.Second)
	want := strings.Split(strings.TrimSpace(numberedLines("a", 120)), "\n")
	want = append(want, "b-0", "b-1")
	if got := aw.bodies(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("logged %d lines %v", len(got), got)
	}
	names, _ := fs.List("var/spool")
	if strings.Join(names, " ") != ".flumespool a.log.COMPLETED b.log.COMPLETED" {
		t.Fatalf("spool directory holds %v", names)
	}
	if !strings.Contains(aw.events[0], "basename=a.log") {
		t.Fatalf("no basename header: %s", aw.events[0])
	}
	writeFile(t, fs, "var/spool/a.log", "again\n")
	aw.run(5 * time.Second)
	src := aw.agent.Source("r1").(*SpoolDirSource)
	if src.Failed == nil || !strings.Contains(src.Failed.Error(), "re-used") || !strings.Contains(aw.log.String(), "FATAL") {
		t.Fatalf("reused name not refused: %v", src.Failed)
	}
}

// TestSpoolDirRefusesChangedFiles changes a file while it is being read,
// by appending and by rewriting bytes already read: both stop the source
// with the file named, and the file is not completed.
func TestSpoolDirRefusesChangedFiles(t *testing.T) {
	for _, change := range []string{"append", "rewrite"} {
		aw := newAgentWorld(t, 2, spoolConf, "a")
		fs := aw.agent.env.FS
		writeFile(t, fs, "var/spool/c.log", numberedLines("c", 2000))
		runUntilLogged(aw, 100)
		f, err := fs.Open("var/spool/c.log")
		if err != nil {
			t.Fatal(err)
		}
		if change == "append" {
			f.Append([]byte("late\n"))
		} else {
			f.WriteAt([]byte("X"), 0)
		}
		f.Close()
		aw.run(20 * time.Second)
		src := aw.agent.Source("r1").(*SpoolDirSource)
		if src.Failed == nil || !strings.Contains(src.Failed.Error(), "var/spool/c.log") {
			t.Fatalf("%s: changed file not refused: %v (%d lines logged)", change, src.Failed, len(aw.events))
		}
		if _, err := fs.Stat("var/spool/c.log.COMPLETED"); err == nil {
			t.Fatalf("%s: a changed file was completed", change)
		}
	}
}

// TestSpoolDirResumesAfterCrash kills the agent while it reads a file:
// after the restart it resumes from the tracker's position, so every line
// arrives, and what arrives twice is at most the batches in flight.
func TestSpoolDirResumesAfterCrash(t *testing.T) {
	aw := newAgentWorld(t, 3, spoolConf, "a")
	writeFile(t, aw.agent.env.FS, "var/spool/d.log", numberedLines("d", 3000))
	runUntilLogged(aw, 500)
	before := len(aw.events)
	if before == 0 || before >= 3000 {
		t.Fatalf("%d lines logged before the crash; the test needs a crash mid-file", before)
	}
	if err := aw.w.Kill("collector"); err != nil {
		t.Fatal(err)
	}
	if err := aw.w.Restart("collector"); err != nil {
		t.Fatal(err)
	}
	aw.run(30 * time.Second)
	lost, dups := deliveries(aw, "d", 3000)
	if lost != "" {
		t.Fatalf("line %s lost (%d logged before the crash)", lost, before)
	}
	if dups > 200 {
		t.Fatalf("%d lines delivered twice: the restart re-read the file rather than resume", dups)
	}
	if _, err := aw.agent.env.FS.Stat("var/spool/d.log.COMPLETED"); err != nil {
		t.Fatalf("not completed after the restart: %v", err)
	}
	t.Logf("%d logged before the crash, %d duplicates", before, dups)
}

// deliveries checks that the logger logged every line prefix-0 ..
// prefix-(n-1): lost names the first missing ("" when none), dups counts
// the lines logged more than once.
func deliveries(aw *agentWorld, prefix string, n int) (lost string, dups int) {
	seen := map[string]int{}
	for _, b := range aw.bodies() {
		seen[b]++
	}
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("%s-%d", prefix, i)
		if seen[line] == 0 {
			return line, dups
		}
		dups += seen[line] - 1
	}
	return "", dups
}

// runUntilLogged runs the world a millisecond at a time until the logger
// sink logged at least n events (or ten simulated seconds passed).
func runUntilLogged(aw *agentWorld, n int) {
	for i := 0; i < 10000 && len(aw.events) < n; i++ {
		aw.run(time.Millisecond)
	}
}

// TestSpoolDirResumesAfterPowerLoss cuts the power while the source reads
// a synced file: its tracker is written durably, so the restart resumes
// from it rather than from the file's start, and every line arrives.
func TestSpoolDirResumesAfterPowerLoss(t *testing.T) {
	const lines = 3000
	for seed := uint64(1); seed <= 4; seed++ {
		aw := newAgentWorld(t, seed, spoolConf, "a")
		writeFile(t, aw.agent.env.FS, "var/spool/d.log", numberedLines("d", lines))
		syncPath(t, aw, "var/spool/d.log")
		runUntilLogged(aw, 1500)
		before := len(aw.events)
		if before < 1000 || before >= lines {
			t.Fatalf("seed %d: %d lines logged before the power loss; the test needs one mid-file", seed, before)
		}
		if err := aw.w.PowerLoss("collector"); err != nil {
			t.Fatal(err)
		}
		if err := aw.w.Restart("collector"); err != nil {
			t.Fatal(err)
		}
		aw.run(30 * time.Second)
		lost, dups := deliveries(aw, "d", lines)
		if lost != "" {
			t.Fatalf("seed %d: line %s lost (%d logged before the power loss)", seed, lost, before)
		}
		if dups > 200 {
			t.Fatalf("seed %d: %d lines delivered twice of %d logged before the power loss: the restart re-read the file", seed, dups, before)
		}
	}
}

// TestSpoolDirReadErrorsDoNotStopIt: with reads failing one time in five,
// the source retries: a failed read of a file, or of its bytes when it is
// checked before completion, is the disk's error, not a changed file, so
// the source does not stop; every line arrives once, in order, and both
// files are completed.
func TestSpoolDirReadErrorsDoNotStopIt(t *testing.T) {
	aw := newAgentWorld(t, 4, spoolConf, "a")
	fs := aw.agent.env.FS
	disk := aw.w.Node("collector").Disk()
	disk.SetReadErrorRate(0.2)
	for _, name := range []string{"e", "f", "g", "h"} {
		writeFile(t, fs, "var/spool/"+name+".log", numberedLines(name, 100))
	}
	aw.run(10 * time.Second)
	disk.SetReadErrorRate(0)
	aw.run(5 * time.Second)
	src := aw.agent.Source("r1").(*SpoolDirSource)
	if src.Failed != nil {
		t.Fatalf("the source stopped: %v", src.Failed)
	}
	want := numberedLines("e", 100) + numberedLines("f", 100) + numberedLines("g", 100) + numberedLines("h", 100)
	if got := strings.Join(aw.bodies(), "\n") + "\n"; got != want {
		t.Fatalf("%d lines logged, want 400 in order", len(aw.bodies()))
	}
	if !strings.Contains(aw.log.String(), "input/output error") {
		t.Fatal("no read failed: the test shows nothing")
	}
}

// TestSpoolDirStopTellsTheAgentsSupervisor: a completed file that cannot
// be renamed stops the source, as in Flume, and the agent tells OnFatal,
// so that whoever runs it can restart it (the restarted source resumes
// from its tracker and retires the file then).
func TestSpoolDirStopTellsTheAgentsSupervisor(t *testing.T) {
	// A memory channel: only the source's own files meet the fault.
	conf := strings.Replace(spoolConf, "a.channels.c1.type = file\n", "a.channels.c1.type = memory\n", 1)
	conf = strings.Replace(conf, "a.channels.c1.checkpointDir = /flume/cp\na.channels.c1.dataDirs = /flume/data\n", "", 1)
	aw := newAgentWorld(t, 1, conf, "a")
	writeFile(t, aw.agent.env.FS, "var/spool/a.log", numberedLines("a", 10))
	aw.w.Node("collector").Disk().SetMetaErrorRate(1)
	aw.run(5 * time.Second)
	src := aw.agent.Source("r1").(*SpoolDirSource)
	if src.Failed == nil || !strings.Contains(src.Failed.Error(), "rename") {
		t.Fatalf("the source did not stop on the failed rename: %v", src.Failed)
	}
	if aw.fatal == nil || !strings.Contains(aw.fatal.Error(), "rename") {
		t.Fatalf("OnFatal was told %v, want the source's stop", aw.fatal)
	}
}
