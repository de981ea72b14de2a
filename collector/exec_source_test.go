package collector

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// scriptedProcesses stands in for the real world's processes inside a
// simulated world: each started command writes its script's lines, one
// every lineEvery on the node's clock, while not paused, then exits.
type scriptedProcesses struct {
	env       sim.Env
	script    []string
	stderr    []string
	lineEvery time.Duration
	failStart error
	started   [][]string
	running   *scriptedProcess
	// pausedMax is the longest run of pending lines seen while paused.
	pauses int
}

type scriptedProcess struct {
	ps     *scriptedProcesses
	next   int
	paused bool
	killed bool
	onLine func([]byte, bool)
	onExit func(error)
	timer  sim.Timer
}

func (ps *scriptedProcesses) Start(argv []string, onLine func([]byte, bool), onExit func(error)) (sim.Process, error) {
	ps.started = append(ps.started, argv)
	if ps.failStart != nil {
		return nil, ps.failStart
	}
	p := &scriptedProcess{ps: ps, onLine: onLine, onExit: onExit}
	ps.running = p
	for _, l := range ps.stderr {
		onLine([]byte(l), true)
	}
	p.arm()
	return p, nil
}

func (p *scriptedProcess) arm() {
	p.timer = p.ps.env.Clock.AfterFunc(p.ps.lineEvery, p.write)
}

func (p *scriptedProcess) write() {
	if p.paused || p.killed {
		return
	}
	if p.next == len(p.ps.script) {
		p.onExit(nil)
		return
	}
	p.onLine([]byte(p.ps.script[p.next]), false)
	p.next++
	p.arm()
}

func (p *scriptedProcess) Pause() { p.paused = true; p.ps.pauses++; p.timer.Stop() }
func (p *scriptedProcess) Resume() {
	if p.paused {
		p.paused = false
		p.arm()
	}
}
func (p *scriptedProcess) Kill() {
	if !p.killed {
		p.killed = true
		p.timer.Stop()
		p.onExit(errors.New("signal: killed"))
	}
}

const execConf = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.command = tail -F /var/log/app.log
a1.sources.r1.batchSize = 10
a1.sources.r1.batchTimeout = 200
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 10
a1.sinks.k1.type = logger
a1.sinks.k1.batchSize = 10
a1.sinks.k1.channel = c1
`

// execWorld runs an agent with an exec source over scripted processes.
func execWorld(t *testing.T, text string, ps *scriptedProcesses) (*world.World, *Agent, *[]string, *strings.Builder) {
	t.Helper()
	cfg, err := config.Parse(text, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	var log strings.Builder
	w := world.New(world.Config{Seed: 1, Log: &log})
	var agent *Agent
	w.AddNode("n", func(env sim.Env) {
		ps.env = env
		eventLog := sim.LoggerFunc(func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) })
		Start(cfg, Options{EventLog: eventLog, Processes: ps, OnFatal: func(err error) { t.Fatal(err) }},
			func(a *Agent) { agent = a })(env)
	})
	w.Run(10*time.Millisecond, 0)
	if agent == nil {
		t.Fatalf("agent did not start:\n%s", log.String())
	}
	return w, agent, &logged, &log
}

func bodiesOf(logged []string) []string {
	var out []string
	for _, e := range logged {
		i := strings.LastIndex(e, "   ")
		out = append(out, strings.TrimSuffix(strings.TrimLeft(e[i:], " "), " }"))
	}
	return out
}

// TestExecSourceBatchesLinesInOrder: the command's lines become events in
// order, in batches of batchSize, the last partial batch sent when the
// command exits; stderr is not an event.
func TestExecSourceBatchesLinesInOrder(t *testing.T) {
	ps := &scriptedProcesses{lineEvery: time.Millisecond, stderr: []string{"warning: noise"}}
	for i := 0; i < 25; i++ {
		ps.script = append(ps.script, fmt.Sprintf("line-%02d", i))
	}
	w, agent, logged, log := execWorld(t, execConf, ps)
	w.Run(w.Now()+time.Second, 0)
	if got := strings.Join(bodiesOf(*logged), ","); got != strings.Join(ps.script, ",") {
		t.Fatalf("logged %s\n%s", got, log.String())
	}
	if len(ps.started) != 1 || strings.Join(ps.started[0], "|") != "tail|-F|/var/log/app.log" {
		t.Fatalf("started %q", ps.started)
	}
	m := agent.Metrics()["SOURCE.r1"]
	if m["EventReceivedCount"] != "25" || m["EventAcceptedCount"] != "25" || m["AppendBatchAcceptedCount"] != "3" {
		t.Fatalf("counters %v", m)
	}
	if strings.Contains(log.String(), "warning: noise") {
		t.Fatalf("stderr logged without logStdErr:\n%s", log.String())
	}
}

// TestExecSourceBatchTimeout: a partial batch waits batchTimeout, not
// longer, while the command runs on.
func TestExecSourceBatchTimeout(t *testing.T) {
	// The command writes two lines and then nothing for an hour.
	ps := &scriptedProcesses{lineEvery: time.Hour, script: []string{"later"}}
	w, agent, logged, _ := execWorld(t, execConf, ps)
	ps.running.onLine([]byte("a"), false)
	ps.running.onLine([]byte("b"), false)
	w.Run(w.Now()+150*time.Millisecond, 0)
	if len(*logged) != 0 {
		t.Fatalf("a partial batch went before batchTimeout: %v", *logged)
	}
	w.Run(w.Now()+100*time.Millisecond, 0)
	if got := bodiesOf(*logged); strings.Join(got, ",") != "a,b" {
		t.Fatalf("after batchTimeout logged %v", got)
	}
	if agent.Metrics()["SOURCE.r1"]["AppendBatchAcceptedCount"] != "1" {
		t.Fatalf("counters %v", agent.Metrics()["SOURCE.r1"])
	}
}

// TestExecSourcePausesWhileTheChannelIsFull: with a sink that syncs each
// batch to the simulated disk, far slower than the command writes, the
// source stops reading the command instead of dropping lines, and every
// line arrives, in order.
func TestExecSourcePausesWhileTheChannelIsFull(t *testing.T) {
	text := strings.Replace(execConf, "a1.channels.c1.capacity = 1000", "a1.channels.c1.capacity = 20\na1.channels.c1.keep-alive = 0", 1)
	text = strings.Replace(text, "a1.sinks.k1.type = logger", "a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = out\na1.sinks.k1.sink.rollInterval = 0", 1)
	ps := &scriptedProcesses{lineEvery: 10 * time.Microsecond}
	for i := 0; i < 3000; i++ {
		ps.script = append(ps.script, fmt.Sprintf("l%04d", i))
	}
	w, agent, _, log := execWorld(t, text, ps)
	w.Run(w.Now()+20*time.Second, 0)
	names, err := ps.env.FS.List("out")
	if err != nil || len(names) != 1 {
		t.Fatalf("out: %v %v", names, err)
	}
	f, err := ps.env.FS.Open("out/" + names[0])
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	data := make([]byte, size)
	f.ReadAt(data, 0)
	if got := strings.TrimSuffix(string(data), "\n"); got != strings.Join(ps.script, "\n") {
		t.Fatalf("wrote %d of %d lines, in order: %v\n%s", strings.Count(got, "\n")+1, len(ps.script), false, log.String())
	}
	if ps.pauses == 0 {
		t.Fatalf("the command was never paused: the test shows nothing")
	}
	if m := agent.Metrics()["SOURCE.r1"]; m["EventReadFail"] != "0" || m["EventAcceptedCount"] != "3000" {
		t.Fatalf("counters %v", m)
	}
}

// TestExecSourceRestartsAfterThrottle: with restart the command runs
// again restartThrottle after it ends; with logStdErr its standard error
// is logged; through a shell the command is one argument.
func TestExecSourceRestartsAfterThrottle(t *testing.T) {
	text := strings.Replace(execConf, "a1.sources.r1.batchSize = 10",
		"a1.sources.r1.batchSize = 10\na1.sources.r1.restart = true\na1.sources.r1.restartThrottle = 500\na1.sources.r1.logStdErr = true\na1.sources.r1.shell = /bin/sh -c", 1)
	ps := &scriptedProcesses{lineEvery: time.Millisecond, script: []string{"x", "y"}, stderr: []string{"starting"}}
	w, _, logged, log := execWorld(t, text, ps)
	w.Run(w.Now()+400*time.Millisecond, 0)
	if len(ps.started) != 1 {
		t.Fatalf("restarted within the throttle: %d starts", len(ps.started))
	}
	// Each run takes about 3 ms: starts at 0, 0.5, 1.0 and 1.5 s.
	w.Run(w.Now()+1200*time.Millisecond, 0)
	if len(ps.started) != 4 {
		t.Fatalf("%d starts in 1.6 s with a 0.5 s throttle", len(ps.started))
	}
	if strings.Join(ps.started[0], "|") != "/bin/sh|-c|tail -F /var/log/app.log" {
		t.Fatalf("argv %q", ps.started[0])
	}
	if got := strings.Join(bodiesOf(*logged), ","); got != "x,y,x,y,x,y,x,y" {
		t.Fatalf("logged %s", got)
	}
	if !strings.Contains(log.String(), "exec source r1: stderr: starting") {
		t.Fatalf("stderr not logged:\n%s", log.String())
	}
}

// TestExecSourceCommandThatWillNotStart: a failed start is counted and
// logged, and the agent runs on.
func TestExecSourceCommandThatWillNotStart(t *testing.T) {
	ps := &scriptedProcesses{failStart: errors.New(`exec: "tail": executable file not found in $PATH`)}
	w, agent, _, log := execWorld(t, execConf, ps)
	w.Run(w.Now()+time.Second, 0)
	if agent.Metrics()["SOURCE.r1"]["GenericProcessingFail"] != "1" || !strings.Contains(log.String(), "executable file not found") {
		t.Fatalf("counters %v\n%s", agent.Metrics()["SOURCE.r1"], log.String())
	}
}

// TestExecSourceRefusedInTheSimulatedWorld: without processes the agent
// does not start and says why.
func TestExecSourceRefusedInTheSimulatedWorld(t *testing.T) {
	cfg, err := config.Parse(execConf, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fatal error
	w := world.New(world.Config{Seed: 1})
	w.AddNode("n", Start(cfg, Options{OnFatal: func(err error) { fatal = err }}, nil))
	w.Run(time.Second, 0)
	if fatal == nil || !strings.Contains(fatal.Error(), "source r1: the exec source runs commands only in the real world") {
		t.Fatalf("got %v", fatal)
	}
}
