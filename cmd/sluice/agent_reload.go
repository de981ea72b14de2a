package main

import (
	"bytes"
	"context"
	"log"
	"os"
	"time"

	"github.com/sluice-sim/sluice/collector"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// agentSupervisor runs one agent on a node and replaces it when its
// configuration file changes, as Flume's polling configuration provider
// does: the file is read every interval; a changed file that parses
// replaces the running agent (stopped gracefully first, so ports and file
// channels are free for the new one); one that does not is logged with
// its line and key errors and the running agent keeps going. A new
// configuration that fails to start gives way to the previous one again.
type agentSupervisor struct {
	node     *osenv.Node
	logger   *log.Logger
	confFile string
	name     string
	opts     collector.Options
	// fatal receives the error that ends the command: the first
	// configuration failing to start.
	fatal chan<- error

	// Touched only on the node's loop:
	agent   *collector.Agent
	running *config.Agent
	good    *config.Agent
	// generation counts starts, so a failure of a replaced agent is not
	// taken for the current one's.
	generation int
}

// start runs cfg on the loop; initial says it is the command's first.
func (s *agentSupervisor) start(cfg *config.Agent, initial bool) {
	s.generation++
	gen := s.generation
	opts := s.opts
	opts.OnFatal = func(err error) {
		if gen != s.generation {
			return
		}
		if initial {
			select {
			case s.fatal <- err:
			default:
			}
			return
		}
		s.logger.Printf("%s: the changed configuration cannot run: %v; going back to the previous one", s.name, err)
		s.agent = nil
		if prev := s.good; prev != nil && prev != cfg {
			s.start(prev, false)
		}
	}
	s.running = cfg
	collector.Start(cfg, opts, func(a *collector.Agent) {
		if gen == s.generation {
			s.agent, s.good = a, cfg
		}
	})(s.node.Env())
}

// replace stops the running agent and starts cfg; on the loop.
func (s *agentSupervisor) replace(cfg *config.Agent) {
	old := s.agent
	s.agent = nil
	s.generation++ // the old agent's failures no longer count
	if old == nil {
		s.start(cfg, false)
		return
	}
	old.Stop(func() { s.start(cfg, false) })
}

// stop stops the running agent and calls done; on the loop.
func (s *agentSupervisor) stop(done func()) {
	s.generation++
	if s.agent == nil {
		done()
		return
	}
	s.agent.Stop(done)
}

// watch polls the file every interval until ctx ends. It runs on its own
// goroutine and reaches the agent only through the node's loop.
func (s *agentSupervisor) watch(ctx context.Context, interval time.Duration, last []byte) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		text, err := os.ReadFile(s.confFile)
		if err != nil {
			s.logger.Printf("%s: reload: %v; keeping the running configuration", s.name, err)
			continue
		}
		if bytes.Equal(text, last) {
			continue
		}
		last = text
		cfg, err := config.Parse(string(text), s.name, os.LookupEnv)
		if err != nil {
			s.logger.Printf("%s: %s changed but is not valid; keeping the running configuration:%s", s.name, s.confFile, indentLines("\n"+err.Error()))
			continue
		}
		for _, w := range cfg.Warnings {
			s.logger.Printf("%s: warning: %s", cfg.Name, w)
		}
		s.logger.Printf("%s: %s changed; reloading", s.name, s.confFile)
		s.node.Post(func() { s.replace(cfg) })
	}
}

// metrics returns the running agent's counters; on the loop.
func (s *agentSupervisor) metrics() map[string]collector.Metrics {
	if s.agent == nil {
		return nil
	}
	return s.agent.Metrics()
}
