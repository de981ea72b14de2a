package collector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Source is a running source.
type Source interface {
	Name() string
	Start() error
	// Stop stops taking in events; what was received still goes to the
	// channels.
	Stop()
	Counters() *SourceCounters
}

// Options are what an agent needs beyond its configuration.
type Options struct {
	// ResolveDir maps a directory the configuration names (a file
	// channel's checkpointDir, dataDirs) to a path on the node's file
	// system. Nil strips a leading "~/" or "/", so absolute paths land
	// under the node's data root.
	ResolveDir func(string) string
	// EventLog receives the logger sink's lines; nil means env.Log.
	EventLog sim.Logger
	// OnFatal is told when the agent cannot run (a port in use, a
	// channel that cannot open) or a source stopped for good (a spooldir
	// source that cannot retire a file); nil logs it. In the second case
	// the agent runs on without the source until it is restarted.
	OnFatal func(error)
	// DrainTimeout bounds how long Stop lets sinks drain their channels.
	DrainTimeout time.Duration
	// OnCommit, if not nil, is told of every transaction a channel
	// commits, once the channel counts it committed (durable, for the
	// file channel): the events put and the events taken for good; and,
	// when a file channel opens, of the takes its replay found committed,
	// some of which no incarnation heard of before it died. A
	// scenario follows its events through the agent with it.
	OnCommit func(channel string, puts, takes []Event)
	// Processes runs the exec source's commands; nil (the simulated
	// world) refuses an exec source.
	Processes sim.Processes
	// Bugs switches planted bugs on (faults.BugFileChannelAckBeforeFsync,
	// BugSourceAckBeforeCommit, BugTaildirPositionBeforeCommit,
	// BugTakeRollbackReorders).
	Bugs faults.Bugs
}

// Agent is a running agent: its channels, sources and sink runners.
type Agent struct {
	env      sim.Env
	cfg      *config.Agent
	opts     Options
	channels map[string]Channel
	order    []string
	sources  []Source
	runners  []*sinkRunner
	ready    bool
	stopping bool
}

// Start returns the start function of an agent; onStart, if not nil, is
// given the agent once every component runs.
func Start(cfg *config.Agent, opts Options, onStart func(*Agent)) sim.Start {
	return func(env sim.Env) {
		a := &Agent{env: env, cfg: cfg, opts: opts, channels: map[string]Channel{}}
		if a.opts.ResolveDir == nil {
			a.opts.ResolveDir = defaultResolveDir
		}
		if a.opts.EventLog == nil {
			a.opts.EventLog = env.Log
		}
		if a.opts.DrainTimeout == 0 {
			a.opts.DrainTimeout = 10 * time.Second
		}
		if err := a.check(); err != nil {
			a.fatal(err)
			return
		}
		a.openChannels(func(err error) {
			if err != nil {
				a.fatal(err)
				return
			}
			a.observeCommits()
			if err := a.startComponents(); err != nil {
				a.fatal(err)
				return
			}
			a.ready = true
			env.Log.Logf("agent %s started: %d sources, %d channels, %d sinks", cfg.Name, len(a.sources), len(a.channels), len(a.runners))
			if onStart != nil {
				onStart(a)
			}
		})
	}
}

// observeCommits hands every channel's commits to Options.OnCommit.
func (a *Agent) observeCommits() {
	if a.opts.OnCommit == nil {
		for _, ch := range a.channels {
			if r, ok := ch.(replayReporter); ok {
				r.claimReplayedTakes()
			}
		}
		return
	}
	for _, name := range slices.Sorted(maps.Keys(a.channels)) {
		ch := a.channels[name]
		core, ok := ch.(interface{ core() *channelCore })
		sim.Assert(ok, "channel %s has no transaction core", name)
		core.core().onCommit = func(puts, takes []Event) { a.opts.OnCommit(name, puts, takes) }
		// A take whose record was durable when the agent died committed,
		// though its committer never heard so: the replay tells of it.
		if r, ok := ch.(replayReporter); ok {
			if takes := r.claimReplayedTakes(); len(takes) > 0 {
				a.opts.OnCommit(name, nil, takes)
			}
		}
	}
}

func defaultResolveDir(dir string) string {
	return strings.TrimPrefix(strings.TrimPrefix(dir, "~/"), "/")
}

func (a *Agent) fatal(err error) {
	err = fmt.Errorf("agent %s: %w", a.cfg.Name, err)
	if a.opts.OnFatal != nil {
		a.opts.OnFatal(err)
		return
	}
	a.env.Log.Logf("%v", err)
}

// check refuses what the configuration allows but this agent does not run
// yet, before anything starts.
func (a *Agent) check() error {
	return nil
}

// openChannels opens every channel (the file channel replays its log)
// and calls done once all are ready.
func (a *Agent) openChannels(done func(error)) {
	steps := newCompletions(done)
	for _, c := range a.cfg.Channels {
		a.order = append(a.order, c.Name)
		switch c.Type {
		case "memory":
			m := NewMemoryChannel(c.Name, a.env, memoryChannelConfig(c))
			m.bugs = a.opts.Bugs
			a.channels[c.Name] = m
		case "file":
			for _, key := range []string{"useDualCheckpoints", "backupCheckpointDir", "minimumRequiredSpace"} {
				if c.Has(key) {
					a.env.Log.Logf("channel %s: %s is accepted but not used yet", c.Name, key)
				}
			}
			steps.add()
			name := c.Name
			fcfg := fileChannelConfig(c, a.opts.ResolveDir)
			fcfg.Bugs = a.opts.Bugs
			OpenFileChannel(name, a.env, fcfg, func(f *FileChannel, err error) {
				if err == nil {
					a.channels[name] = f
				}
				steps.finish(err)
			})
		case "kafka":
			k, err := OpenKafkaChannel(c.Name, a.env, kafkaChannelConfig(c))
			if err != nil {
				steps.add()
				steps.finish(err)
				continue
			}
			a.channels[c.Name] = k
		case "SPILLABLEMEMORY":
			for _, key := range []string{"byteCapacity", "overflowTimeout", "overflowDeactivationThreshold", "useDualCheckpoints", "backupCheckpointDir", "minimumRequiredSpace"} {
				if c.Has(key) {
					a.env.Log.Logf("channel %s: %s is accepted but not used yet", c.Name, key)
				}
			}
			steps.add()
			name := c.Name
			OpenSpillableChannel(name, a.env, spillableChannelConfig(c, a.opts.ResolveDir), func(s *SpillableChannel, err error) {
				if err == nil {
					s.bugs = a.opts.Bugs
					a.channels[name] = s
				}
				steps.finish(err)
			})
		default:
			sim.Assert(false, "channel type %s passed the configuration check", c.Type)
		}
	}
	steps.finish(nil)
}

func (a *Agent) startComponents() error {
	members := map[string]*sinkMember{}
	for _, s := range a.cfg.Sinks {
		sink, err := a.newSink(s)
		if err != nil {
			return err
		}
		m := &sinkMember{sink: sink, ch: a.channels[s.Channel], batch: int(s.BatchSize())}
		if c, ok := sink.(interface{ setCounters(*SinkCounters) }); ok {
			c.setCounters(&m.counters)
		}
		members[s.Name] = m
	}
	grouped := map[string]bool{}
	for _, g := range a.cfg.SinkGroups {
		r := &sinkRunner{env: a.env, bugs: a.opts.Bugs}
		switch g.Processor {
		case "failover":
			r.policy = policyFailover
			r.maxPenalty = time.Duration(g.Int("maxpenalty", 30000)) * time.Millisecond
		case "load_balance":
			r.policy = policyLoadBalance
			r.random = g.String("selector", "round_robin") == "random"
			r.backoffOnError = g.String("backoff", "false") == "true"
			r.maxPenalty = time.Duration(g.Int("selector.maxTimeOut", 30000)) * time.Millisecond
		}
		for i, name := range g.Sinks {
			m := members[name]
			m.order, m.priority = i, g.Int("priority."+name, 0)
			r.members = append(r.members, m)
			grouped[name] = true
		}
		a.runners = append(a.runners, r)
	}
	for _, s := range a.cfg.Sinks {
		if !grouped[s.Name] {
			a.runners = append(a.runners, &sinkRunner{env: a.env, bugs: a.opts.Bugs, members: []*sinkMember{members[s.Name]}})
		}
	}
	for _, s := range a.cfg.Sources {
		src, err := a.newSource(s)
		if err != nil {
			return err
		}
		a.sources = append(a.sources, src)
	}
	for _, r := range a.runners {
		r.start()
	}
	for i, src := range a.sources {
		if err := src.Start(); err != nil {
			for _, started := range a.sources[:i] {
				started.Stop()
			}
			return err
		}
	}
	return nil
}

func (a *Agent) newSink(s *config.Sink) (Sink, error) {
	switch s.Type {
	case "logger":
		return &LoggerSink{name: s.Name, log: a.opts.EventLog, maxBytesToLog: int(s.Int("maxBytesToLog"))}, nil
	case "null":
		return &NullSink{name: s.Name}, nil
	case "kafka":
		return NewKafkaSink(s.Name, a.env, kafkaSinkConfig(s))
	case "avro":
		return NewAvroSink(s.Name, a.env, avroSinkConfig(s)), nil
	case "http":
		return NewHTTPSink(s.Name, a.env, httpSinkConfig(s))
	case "file_roll":
		return NewFileRollSink(s.Name, a.env, fileRollConfig(s, a.opts.ResolveDir))
	case "hdfs":
		if t := s.String("hdfs.fileType"); t != "DataStream" {
			a.env.Log.Logf("sink %s: hdfs.fileType %s is written as DataStream (text lines)", s.Name, t)
		}
		return NewHDFSSink(s.Name, a.env, hdfsConfig(s, a.opts.ResolveDir)), nil
	}
	sim.Assert(false, "sink type %s passed the configuration check", s.Type)
	return nil, nil
}

func (a *Agent) newSource(s *config.Source) (Source, error) {
	var channels []Channel
	var txCaps []int
	for _, name := range s.Channels {
		channels = append(channels, a.channels[name])
		txCaps = append(txCaps, a.txCapacity(name))
	}
	proc := newChannelProcessor(a.env, s.Selector, channels, txCaps)
	proc.bugs = a.opts.Bugs
	for _, ic := range s.Interceptors {
		f, err := newInterceptor(a.env, ic)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		proc.interceptors = append(proc.interceptors, f)
	}
	switch s.Type {
	case "netcat":
		return &NetcatSource{name: s.Name, env: a.env, cfg: netcatConfig(s), proc: proc, conns: map[uint64]*netcatConn{}}, nil
	case "seq":
		return newSeqSource(s.Name, a.env, s, proc), nil
	case "avro":
		return newAvroSource(s.Name, a.env, s, proc), nil
	case "http":
		return newHTTPSource(s.Name, a.env, s, proc), nil
	case "syslogtcp":
		return newSyslogTCPSource(s.Name, a.env, s, proc), nil
	case "syslogudp":
		return newSyslogUDPSource(s.Name, a.env, s, proc), nil
	case "netcatudp":
		return newNetcatUDPSource(s.Name, a.env, s, proc), nil
	case "spooldir":
		src, err := newSpoolDirSource(s.Name, a.env, s, proc, a.opts.ResolveDir)
		if src != nil {
			src.onStopped = a.fatal
		}
		return src, err
	case "TAILDIR":
		return newTaildirSource(s.Name, a.env, s, proc, a.opts.ResolveDir)
	case "kafka":
		return newKafkaSource(s.Name, a.env, s, proc, a.opts.Bugs)
	case "exec":
		return newExecSource(s.Name, a.env, execConfig(s), a.opts.Processes, proc)
	}
	sim.Assert(false, "source type %s passed the configuration check", s.Type)
	return nil, nil
}

func (a *Agent) txCapacity(channel string) int {
	for _, c := range a.cfg.Channels {
		if c.Name == channel {
			return int(c.Int("transactionCapacity"))
		}
	}
	sim.Assert(false, "no channel %s", channel)
	return 0
}

// Ready reports whether every component runs.
func (a *Agent) Ready() bool { return a.ready }

// Source returns a source by name, or nil.
func (a *Agent) Source(name string) Source {
	for _, s := range a.sources {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Channel returns a channel by name, or nil.
func (a *Agent) Channel(name string) Channel { return a.channels[name] }

// Metrics is every component's counters keyed as Flume's JSON monitoring
// keys them: "SOURCE.r1", "CHANNEL.c1", "SINK.k1".
func (a *Agent) Metrics() map[string]Metrics {
	out := map[string]Metrics{}
	for _, s := range a.sources {
		out["SOURCE."+s.Name()] = s.Counters().metrics()
	}
	for _, name := range a.order {
		if c := a.channels[name]; c != nil {
			out["CHANNEL."+name] = c.Counters().metrics()
		}
	}
	for _, r := range a.runners {
		for _, m := range r.members {
			out["SINK."+m.sink.Name()] = m.counters.metrics()
		}
	}
	return out
}

// Stop shuts the agent down gracefully: sources stop taking in events,
// sinks drain their channels until they are empty or DrainTimeout passes,
// then the channels stop (the file channel writes a checkpoint) and done
// is called.
func (a *Agent) Stop(done func()) {
	if a.stopping {
		return
	}
	a.stopping = true
	for _, s := range a.sources {
		s.Stop()
	}
	deadline := a.env.Clock.Mono() + a.opts.DrainTimeout
	var drain func()
	drain = func() {
		busy := false
		for _, r := range a.runners {
			if r.pending() {
				busy = true
				r.wake()
			}
		}
		if busy && a.env.Clock.Mono() < deadline {
			a.env.Clock.AfterFunc(10*time.Millisecond, drain)
			return
		}
		for _, r := range a.runners {
			r.stop()
		}
		a.stopChannels(done)
	}
	drain()
}

func (a *Agent) stopChannels(done func()) {
	pending := 1
	finish := func() {
		pending--
		if pending == 0 {
			a.env.Log.Logf("agent %s stopped", a.cfg.Name)
			done()
		}
	}
	for _, name := range a.order {
		if c := a.channels[name]; c != nil {
			pending++
			c.Stop(finish)
		}
	}
	// A source's position (TAILDIR) or tracker (spooldir) file written at
	// its stop is durable before the agent says it stopped.
	for _, s := range a.sources {
		if d, ok := s.(interface{ whenDurable(func()) }); ok {
			pending++
			d.whenDurable(finish)
		}
	}
	finish()
}
