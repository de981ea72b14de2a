package collector

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// ExecSource runs a command and makes each line of its standard output an
// event, as Flume's exec source does: `command` split on whitespace, or
// with `shell` given (such as "/bin/sh -c") the shell's words followed by
// the whole command as one argument; `batchSize` lines or `batchTimeout`
// milliseconds make a batch; with `restart` a command that ends runs again
// after `restartThrottle` milliseconds; with `logStdErr` its standard
// error lines go to the agent's log (otherwise they are read and dropped).
//
// It runs only in the real world, through the node's sim.Processes: a
// command is not the seed's to replay. Unlike Flume's, which drops a batch
// the channel refuses, it stops reading the command while lines wait for
// the channel (the command blocks on its pipe) and retries a refused
// batch after a backoff, so nothing the command wrote is dropped while
// the agent runs; lines read but not committed when the agent dies are
// lost, as in Flume, since a command's output cannot be read again.
type ExecSource struct {
	name     string
	env      sim.Env
	cfg      ExecConfig
	procs    sim.Processes
	proc     *channelProcessor
	counters SourceCounters

	running sim.Process
	// gen tells the callbacks of the current run from an earlier one's.
	gen        int
	pending    []Event
	busy       bool
	paused     bool
	backoff    time.Duration
	flushTimer sim.Timer
	retryTimer sim.Timer
	restartTmr sim.Timer
	stopped    bool
}

// ExecConfig is an exec source's settings.
type ExecConfig struct {
	Command         string
	Shell           string
	Restart         bool
	RestartThrottle time.Duration
	LogStdErr       bool
	BatchSize       int
	BatchTimeout    time.Duration
}

const (
	execBackoffMin = 10 * time.Millisecond
	execBackoffMax = time.Second
	// execPendingBatches is how many batches of lines may wait for the
	// channel before the source stops reading the command.
	execPendingBatches = 4
	// execPendingMax bounds the lines waiting whatever arrives after a
	// pause (a chunk already read): beyond it lines are dropped and
	// counted in EventReadFail.
	execPendingMax = 1 << 16
)

// errNoProcesses is the simulated world's refusal of the exec source.
var errNoProcesses = errors.New("the exec source runs commands only in the real world (sluice agent); the simulated world has no processes")

func execConfig(c *config.Source) ExecConfig {
	return ExecConfig{
		Command:         c.String("command"),
		Shell:           c.String("shell"),
		Restart:         c.Bool("restart"),
		RestartThrottle: time.Duration(c.Int("restartThrottle")) * time.Millisecond,
		LogStdErr:       c.Bool("logStdErr"),
		BatchSize:       int(c.BatchSize()),
		BatchTimeout:    time.Duration(c.Int("batchTimeout")) * time.Millisecond,
	}
}

func newExecSource(name string, env sim.Env, cfg ExecConfig, procs sim.Processes, proc *channelProcessor) (*ExecSource, error) {
	if procs == nil {
		return nil, fmt.Errorf("source %s: %w", name, errNoProcesses)
	}
	if len(execArgv(cfg)) == 0 {
		return nil, fmt.Errorf("source %s: command %q has no words", name, cfg.Command)
	}
	return &ExecSource{name: name, env: env, cfg: cfg, procs: procs, proc: proc}, nil
}

// execArgv is the command line Flume would run.
func execArgv(cfg ExecConfig) []string {
	if cfg.Shell != "" {
		return append(strings.Fields(cfg.Shell), cfg.Command)
	}
	return strings.Fields(cfg.Command)
}

// Name is the source's name.
func (s *ExecSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *ExecSource) Counters() *SourceCounters { return &s.counters }

// Start runs the command. A command that cannot start is an operating
// error of the source, not of the agent: it is logged and, with restart,
// tried again.
func (s *ExecSource) Start() error {
	s.launch()
	return nil
}

func (s *ExecSource) launch() {
	if s.stopped {
		return
	}
	s.gen++
	gen := s.gen
	argv := execArgv(s.cfg)
	p, err := s.procs.Start(argv,
		func(line []byte, stderr bool) {
			if gen == s.gen {
				s.onLine(line, stderr)
			}
		},
		func(err error) {
			if gen == s.gen {
				s.onExit(err)
			}
		})
	if err != nil {
		s.counters.GenericProcessingFail++
		s.env.Log.Logf("exec source %s: %v", s.name, err)
		s.scheduleRestart()
		return
	}
	s.running, s.paused = p, false
	s.env.Log.Logf("exec source %s: running %q", s.name, strings.Join(argv, " "))
}

func (s *ExecSource) onLine(line []byte, stderr bool) {
	if s.stopped {
		return // what a killed command wrote last
	}
	if stderr {
		if s.cfg.LogStdErr {
			s.env.Log.Logf("exec source %s: stderr: %s", s.name, line)
		}
		return
	}
	s.counters.EventReceivedCount++
	if len(s.pending) >= execPendingMax {
		s.counters.EventReadFail++
		return
	}
	s.pending = append(s.pending, Event{Body: line})
	if len(s.pending) >= execPendingBatches*s.cfg.BatchSize && s.running != nil && !s.paused {
		s.paused = true
		s.running.Pause()
	}
	if len(s.pending) >= s.cfg.BatchSize {
		s.flush()
		return
	}
	if s.flushTimer == nil {
		s.flushTimer = s.env.Clock.AfterFunc(s.cfg.BatchTimeout, func() {
			s.flushTimer = nil
			s.flush()
		})
	}
}

func (s *ExecSource) onExit(err error) {
	s.running = nil
	if err != nil {
		s.env.Log.Logf("exec source %s: command exited: %v", s.name, err)
	} else {
		s.env.Log.Logf("exec source %s: command exited", s.name)
	}
	s.flush() // what it wrote last need not wait for batchTimeout
	s.scheduleRestart()
}

func (s *ExecSource) scheduleRestart() {
	if s.cfg.Restart && !s.stopped {
		s.restartTmr = s.env.Clock.AfterFunc(s.cfg.RestartThrottle, s.launch)
	}
}

// flush commits one batch of the waiting lines; the next follows once it
// is committed. A refused batch stays first in line and is tried again
// after a backoff.
func (s *ExecSource) flush() {
	if s.busy || s.retryTimer != nil || len(s.pending) == 0 {
		return
	}
	if s.flushTimer != nil {
		s.flushTimer.Stop()
		s.flushTimer = nil
	}
	n := min(len(s.pending), s.cfg.BatchSize, s.proc.batchMax)
	batch := s.pending[:n:n]
	s.busy = true
	s.counters.AppendBatchReceivedCount++
	s.proc.process(batch, func(err error) {
		s.busy = false
		if err != nil {
			s.counters.ChannelWriteFail += int64(n)
			if errors.Is(err, ErrChannelClosed) {
				s.env.Log.Logf("exec source %s: %d lines dropped: %v", s.name, len(s.pending), err)
				s.pending = nil
				return
			}
			s.backoff = min(max(2*s.backoff, execBackoffMin), execBackoffMax)
			s.env.Log.Logf("exec source %s: %d lines not accepted, retrying in %v: %v", s.name, n, s.backoff, err)
			s.retryTimer = s.env.Clock.AfterFunc(s.backoff, func() {
				s.retryTimer = nil
				s.flush()
			})
			return
		}
		s.backoff = 0
		s.pending = s.pending[n:]
		if len(s.pending) == 0 {
			s.pending = nil
		}
		s.counters.EventAcceptedCount += int64(n)
		s.counters.AppendBatchAcceptedCount++
		if s.paused && len(s.pending) < execPendingBatches*s.cfg.BatchSize/2 && s.running != nil {
			s.paused = false
			s.running.Resume()
		}
		// From the loop: the commit may complete inside another.
		s.env.Clock.AfterFunc(0, s.afterCommit)
	})
	if s.busy && s.proc.full() {
		s.proc.relieve()
	}
}

// afterCommit sends the next batch when one is whole, or when the command
// has ended or the source stopped (nothing more will fill it); otherwise
// a partial batch waits for batchTimeout.
func (s *ExecSource) afterCommit() {
	if len(s.pending) >= s.cfg.BatchSize || s.running == nil || s.stopped {
		s.flush()
		return
	}
	if len(s.pending) > 0 && s.flushTimer == nil {
		s.flushTimer = s.env.Clock.AfterFunc(s.cfg.BatchTimeout, func() {
			s.flushTimer = nil
			s.flush()
		})
	}
}

// Stop kills the command; the lines read so far still go to the
// channels.
func (s *ExecSource) Stop() {
	s.stopped = true
	if s.restartTmr != nil {
		s.restartTmr.Stop()
	}
	if s.running != nil {
		s.running.Kill()
	}
	s.flush()
}
