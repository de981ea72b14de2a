package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/broker"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// adminStatsTimeout bounds how long a scrape waits for the broker's loop
// to read its counters.
const adminStatsTimeout = 2 * time.Second

// brokerSnapshot reads a broker's counters on its loop; ok is false while
// the broker has not started.
type brokerSnapshot func() (stats broker.Stats, serving bool, ok bool)

// snapshotOnLoop returns a brokerSnapshot that asks node's loop for the
// counters of the broker current() returns (current runs on the loop).
func snapshotOnLoop(node *osenv.Node, current func() *broker.Broker) brokerSnapshot {
	return func() (broker.Stats, bool, bool) {
		type reading struct {
			stats   broker.Stats
			serving bool
			ok      bool
		}
		got := make(chan reading, 1)
		posted := node.Post(func() {
			b := current()
			if b == nil {
				got <- reading{}
				return
			}
			got <- reading{stats: b.Stats(), serving: b.Serving(), ok: true}
		})
		if !posted {
			return broker.Stats{}, false, false
		}
		select {
		case r := <-got:
			return r.stats, r.serving, r.ok
		case <-time.After(adminStatsTimeout):
			return broker.Stats{}, false, false
		}
	}
}

// serveAdmin serves /metrics (Prometheus text format) and /debug/pprof on
// addr; the server stops when the returned server is closed.
func serveAdmin(addr string, snapshot brokerSnapshot, logger *log.Logger) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		stats, serving, ok := snapshot()
		if !ok {
			http.Error(w, "broker not started yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writePrometheus(w, stats, serving)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: l.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("admin server: %v", err)
		}
	}()
	return srv, nil
}

// writePrometheus writes the broker's counters and the process's memory
// in Prometheus's text exposition format, requests sorted by API name.
func writePrometheus(w io.Writer, stats broker.Stats, serving bool) {
	var b strings.Builder
	metric := func(name, kind, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	metric("sluice_broker_requests_total", "counter", "Requests served, by Kafka API.")
	apis := make([]string, 0, len(stats.Requests))
	for api := range stats.Requests {
		apis = append(apis, api)
	}
	slices.Sort(apis)
	for _, api := range apis {
		fmt.Fprintf(&b, "sluice_broker_requests_total{api=%q} %d\n", api, stats.Requests[api])
	}
	metric("sluice_broker_appends_total", "counter", "Record batches appended to partition logs.")
	fmt.Fprintf(&b, "sluice_broker_appends_total %d\n", stats.Appends)
	metric("sluice_broker_fetched_bytes_total", "counter", "Record bytes served to fetches.")
	fmt.Fprintf(&b, "sluice_broker_fetched_bytes_total %d\n", stats.FetchedBytes)
	metric("sluice_broker_serving", "gauge", "1 once the broker has opened its logs and listens.")
	fmt.Fprintf(&b, "sluice_broker_serving %d\n", map[bool]int{false: 0, true: 1}[serving])
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	metric("go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.")
	fmt.Fprintf(&b, "go_memstats_heap_alloc_bytes %d\n", mem.HeapAlloc)
	metric("go_gc_cycles_total", "counter", "Completed garbage collection cycles.")
	fmt.Fprintf(&b, "go_gc_cycles_total %d\n", mem.NumGC)
	metric("go_goroutines", "gauge", "Goroutines that currently exist.")
	fmt.Fprintf(&b, "go_goroutines %d\n", runtime.NumGoroutine())
	io.WriteString(w, b.String())
}
