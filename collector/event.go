// Package collector is a Flume-style agent: sources put events into
// channels inside transactions, sink runners take them out in batches and
// deliver them, and every component keeps Flume's counters. It is an actor
// over the sim.Env seams (no goroutines, locks or direct I/O), so one agent
// runs on real sockets and files (sluice agent) and in the simulated world.
//
// One file per component type: channels memory_channel.go,
// file_channel.go, spillable_channel.go, kafka_channel.go; sources
// kafka_source.go, netcat_source.go,
// netcat_udp_source.go, seq_source.go, avro_source.go, http_source.go,
// spooldir_source.go, taildir_source.go, syslog_tcp_source.go,
// syslog_udp_source.go; sinks logger_sink.go, null_sink.go,
// http_sink.go, file_roll_sink.go, hdfs_sink.go, avro_sink.go,
// kafka_sink.go.
// channel.go holds the transaction logic the channels share and agent.go
// wires a configuration (collector/config) into running components.
package collector

import (
	"errors"
	"sort"
)

// Event is Flume's unit of data: headers and an opaque body.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// size is what an event counts against a channel's byteCapacity: its body,
// as Flume counts it.
func (e Event) size() int64 { return int64(len(e.Body)) }

// sortedHeaderKeys returns an event's header names in order, so that
// anything printed or written from headers is deterministic.
func sortedHeaderKeys(h map[string]string) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Operating errors of channels and transactions.
var (
	// ErrChannelFull is a commit that found no room for its puts within
	// the channel's keep-alive.
	ErrChannelFull = errors.New("channel full")
	// ErrTransactionFull is a put or take beyond transactionCapacity.
	ErrTransactionFull = errors.New("transaction capacity reached")
	// ErrChannelClosed is a transaction on a stopped channel.
	ErrChannelClosed = errors.New("channel closed")
)
