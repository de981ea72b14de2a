package osenv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// processRun records, on the node's loop, what a started command gave.
type processRun struct {
	stdout, stderr []string
	exited         bool
	exitErr        error
}

func startProcess(t *testing.T, n *Node, argv ...string) (*processRun, sim.Process) {
	t.Helper()
	r := &processRun{}
	var p sim.Process
	var err error
	n.Call(func() {
		p, err = n.Processes().Start(argv, func(line []byte, stderr bool) {
			if stderr {
				r.stderr = append(r.stderr, string(line))
			} else {
				r.stdout = append(r.stdout, string(line))
			}
		}, func(err error) { r.exited, r.exitErr = true, err })
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// TestProcessLinesInOrderThenExit: every line of both streams reaches the
// loop, stdout in order, before the exit.
func TestProcessLinesInOrderThenExit(t *testing.T) {
	n := newTestNode(t, "p")
	r, _ := startProcess(t, n, "sh", "-c", "seq 1 20000; echo oops >&2; printf 'no newline'")
	waitFor(t, n, "exit", func() bool { return r.exited })
	n.Call(func() {
		want := make([]string, 0, 20001)
		for i := 1; i <= 20000; i++ {
			want = append(want, fmt.Sprint(i))
		}
		want = append(want, "no newline")
		if strings.Join(r.stdout, ",") != strings.Join(want, ",") || r.exitErr != nil {
			t.Errorf("%d lines, exit %v; last %q", len(r.stdout), r.exitErr, r.stdout[len(r.stdout)-1])
		}
		if strings.Join(r.stderr, ",") != "oops" {
			t.Errorf("stderr %q", r.stderr)
		}
	})
}

// TestProcessPauseKillAndFailures: a paused command's output stops
// coming (the command blocks on its pipe) until Resume; a killed one (and
// what its shell started) ends with an error; a failing one reports its
// status; one that is not there fails to start.
func TestProcessPauseKillAndFailures(t *testing.T) {
	n := newTestNode(t, "p")
	const lines = 500000
	r, p := startProcess(t, n, "seq", "1", fmt.Sprint(lines))
	waitFor(t, n, "first lines", func() bool { return len(r.stdout) > 0 })
	n.Call(p.Pause)
	counts := make([]int, 3)
	for i := range counts {
		// A chunk already read may still arrive after Pause; nothing more.
		time.Sleep(100 * time.Millisecond)
		n.Call(func() { counts[i] = len(r.stdout) })
	}
	if counts[1] != counts[2] || counts[2] == lines {
		t.Fatalf("lines kept coming while paused: %v of %d", counts, lines)
	}
	n.Call(p.Resume)
	waitFor(t, n, "exit after resume", func() bool { return r.exited })
	n.Call(func() {
		if len(r.stdout) != lines || r.stdout[lines-1] != fmt.Sprint(lines) || r.exitErr != nil {
			t.Errorf("after resume: %d lines, exit %v", len(r.stdout), r.exitErr)
		}
	})

	sleeper, p := startProcess(t, n, "sh", "-c", "echo up; sleep 60; echo never")
	waitFor(t, n, "sleeper's line", func() bool { return len(sleeper.stdout) == 1 })
	n.Call(p.Kill)
	waitFor(t, n, "exit after kill", func() bool { return sleeper.exited })
	n.Call(func() {
		if sleeper.exitErr == nil || !strings.Contains(sleeper.exitErr.Error(), "killed") {
			t.Errorf("exit after kill: %v", sleeper.exitErr)
		}
	})

	failing, _ := startProcess(t, n, "sh", "-c", "exit 3")
	waitFor(t, n, "exit 3", func() bool { return failing.exited })
	n.Call(func() {
		if failing.exitErr == nil || !strings.Contains(failing.exitErr.Error(), "exit status 3") {
			t.Errorf("exit 3: %v", failing.exitErr)
		}
	})
	var err error
	n.Call(func() {
		_, err = n.Processes().Start([]string{"sluice-no-such-command"}, func([]byte, bool) {}, func(error) {})
	})
	if err == nil || !strings.Contains(err.Error(), "sluice-no-such-command") {
		t.Fatalf("start of a missing command: %v", err)
	}
}
