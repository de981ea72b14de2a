package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/collector"
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim/osenv"
)

func newAgentCommand() *cobra.Command {
	var (
		confFile       string
		name           string
		properties     []string
		noReload       bool
		reloadInterval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a Flume-compatible agent from a Flume configuration file",
		Long: `Run one collector agent, configured by a Flume properties file, on real
sockets and files. It takes Flume's own command line (flume-ng agent):
--conf-file/-f, --name/-n, --conf/-c and -Dkey=value properties, and Flume's
configuration files unmodified.

Components: sources netcat, netcatudp, seq, avro (from another sluice
agent's avro sink), http (Flume's JSONHandler), spooldir, TAILDIR, syslogtcp,
syslogudp, kafka and exec (a command's output lines: command, shell,
restart, restartThrottle, logStdErr, batchSize, batchTimeout); channels
memory, file, SPILLABLEMEMORY and kafka; sinks logger, null,
http, file_roll, hdfs (writing to this machine's files), avro (to another sluice
agent) and kafka (Flume's KafkaSink keys: kafka.bootstrap.servers or
brokerList, kafka.topic or topic, requiredAcks, batchSize); the replicating
and multiplexing selectors; the timestamp, host, static, uuid,
remove_header, search_replace, regex_filter and regex_extractor interceptors; sink
groups with the default, failover and load_balance processors. A component
sluice does not run yet is refused with its line.

A file channel's checkpointDir and dataDirs are paths on this machine
(relative ones from the working directory; "~" is the home directory).
-Dflume.monitoring.type=http -Dflume.monitoring.port=PORT serves the
counters as JSON at /metrics, as Flume does, and in Prometheus's text
format to scrapers (or with ?format=prometheus). The logger sink writes to
standard error.

The file is read again every 30 s (--reload-interval; --no-reload-conf
turns it off, as in Flume): when it changed and is valid, the running agent
stops gracefully and the new configuration starts; when it is not valid,
its errors are logged with their lines and keys and the running agent
keeps going.

It stops on SIGINT or SIGTERM: sources stop, sinks drain what they can
(at most 10 s), file channels write a checkpoint.`,
		Example: `  sluice agent --conf conf --conf-file flume.conf --name agent1 -Dflume.root.logger=INFO,console
  sluice agent -f flume.conf -n a1 -Dflume.monitoring.type=http -Dflume.monitoring.port=34545
  curl localhost:34545/metrics
  curl 'localhost:34545/metrics?format=prometheus'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props, err := parseProperties(properties)
			if err != nil {
				return usageError("-D: %v", err)
			}
			text, err := os.ReadFile(confFile)
			if err != nil {
				return usageError("--conf-file: %v", err)
			}
			cfg, err := config.Parse(string(text), name, os.LookupEnv)
			if err != nil {
				return usageError("%s: %v", confFile, indentLines(err.Error()))
			}
			if reloadInterval <= 0 {
				return usageError("--reload-interval %v: must be positive", reloadInterval)
			}
			reload := agentReload{file: confFile, text: text, interval: reloadInterval}
			if noReload {
				reload.interval = 0
			}
			return runAgent(cmd, cfg, props, reload)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&confFile, "conf-file", "f", "", "the Flume configuration file (required)")
	fl.StringVarP(&name, "name", "n", "", "the agent to run, as the file names it (required)")
	// Flume reads flume-env.sh and its log4j settings from --conf; sluice
	// needs neither, but takes the flag so that Flume's command lines run
	// unchanged.
	fl.StringP("conf", "c", "", "Flume's configuration directory (accepted for compatibility; unused)")
	fl.StringArrayVarP(&properties, "property", "D", nil, "a Java-style property key=value (flume.monitoring.type, flume.monitoring.port; others accepted)")
	fl.BoolVar(&noReload, "no-reload-conf", false, "do not reload the file when it changes")
	fl.DurationVar(&reloadInterval, "reload-interval", 30*time.Second, "how often to check the file for changes (Flume: 30s)")
	cmd.MarkFlagRequired("conf-file")
	cmd.MarkFlagRequired("name")
	return cmd
}

func parseProperties(list []string) (map[string]string, error) {
	props := map[string]string{}
	for _, p := range list {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", p)
		}
		props[k] = v
	}
	if t, ok := props["flume.monitoring.type"]; ok && t != "http" {
		return nil, fmt.Errorf("flume.monitoring.type %q is not supported (only http)", t)
	}
	if p, ok := props["flume.monitoring.port"]; ok {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("flume.monitoring.port %q is not a port number", p)
		}
	}
	return props, nil
}

func indentLines(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return "\n  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// resolveAgentDir maps a directory a configuration names to a path below
// the node's root, "/".
func resolveAgentDir(dir string) string {
	if rest, ok := strings.CutPrefix(dir, "~"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			dir = home + rest
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return strings.TrimPrefix(filepath.ToSlash(dir), "/")
}

const agentStopTimeout = 30 * time.Second

// agentReload says which file to watch for changes, and how often; a zero
// interval watches nothing.
type agentReload struct {
	file     string
	text     []byte
	interval time.Duration
}

func runAgent(cmd *cobra.Command, cfg *config.Agent, props map[string]string, reload agentReload) error {
	logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags|log.Lmicroseconds)
	for _, w := range cfg.Warnings {
		logger.Printf("%s: warning: %s", cfg.Name, w)
	}
	node, err := osenv.NewNode(osenv.Options{Name: cfg.Name, DataDir: "/", Log: logger})
	if err != nil {
		return usageError("%v", err)
	}
	fatal := make(chan error, 1)
	sup := &agentSupervisor{node: node, logger: logger, confFile: reload.file, name: cfg.Name,
		opts: collector.Options{ResolveDir: resolveAgentDir, Processes: node.Processes()}, fatal: fatal}
	node.Post(func() { sup.start(cfg, true) })
	runCtx, cancelRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { node.Run(runCtx); close(runDone) }()
	defer func() { cancelRun(); <-runDone }()
	if reload.interval > 0 {
		go sup.watch(runCtx, reload.interval, reload.text)
	}

	if port, ok := props["flume.monitoring.port"]; ok {
		srv, err := serveMetrics(port, cfg.Name, func() map[string]collector.Metrics {
			var m map[string]collector.Metrics
			node.Call(func() { m = sup.metrics() })
			return m
		})
		if err != nil {
			return &exitError{code: exitCheckFailed, err: err}
		}
		defer srv.Close()
		logger.Printf("%s: serving counters at http://%s/metrics", cfg.Name, srv.Addr)
	}

	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-fatal:
		fmt.Fprintln(cmd.ErrOrStderr(), "sluice:", err)
		return &exitError{code: exitCheckFailed, err: err}
	case <-sig.Done():
	}
	logger.Printf("%s: stopping", cfg.Name)
	stopped := make(chan struct{})
	node.Post(func() { sup.stop(func() { close(stopped) }) })
	select {
	case <-stopped:
	case <-time.After(agentStopTimeout):
		logger.Printf("%s: did not stop within %v; exiting", cfg.Name, agentStopTimeout)
	}
	return nil
}

// serveMetrics serves Flume's JSON monitoring: {"SOURCE.r1": {...}, ...}.
func serveMetrics(port, agent string, metrics func() map[string]collector.Metrics) (*http.Server, error) {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return nil, fmt.Errorf("monitoring port %s: %w", port, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		m := metrics()
		if m == nil {
			http.Error(w, "agent not started yet", http.StatusServiceUnavailable)
			return
		}
		if wantsPrometheus(r) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			writeAgentPrometheus(w, agent, m)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m) // encoding/json sorts map keys
	})
	srv := &http.Server{Addr: l.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("metrics server: %v", err)
		}
	}()
	return srv, nil
}
