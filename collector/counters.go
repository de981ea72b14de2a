package collector

import (
	"strconv"
	"strings"
)

// The counters carry Flume's names, so that a dashboard reading Flume's
// /metrics reads sluice's unchanged.

// SourceCounters are a source's counters.
type SourceCounters struct {
	EventReceivedCount       int64
	EventAcceptedCount       int64
	AppendBatchReceivedCount int64
	AppendBatchAcceptedCount int64
	ChannelWriteFail         int64
	OpenConnectionCount      int64
	// EventReadFail counts events refused before reaching a channel (a
	// netcat line over max-line-length).
	EventReadFail int64
	// GenericProcessingFail counts other failures of the source (an exec
	// source's command that would not start).
	GenericProcessingFail int64
}

// ChannelCounters are a channel's counters.
type ChannelCounters struct {
	ChannelSize           int64
	ChannelCapacity       int64
	EventPutAttemptCount  int64
	EventPutSuccessCount  int64
	EventTakeAttemptCount int64
	EventTakeSuccessCount int64
}

// SinkCounters are a sink's counters.
type SinkCounters struct {
	BatchCompleteCount     int64
	BatchEmptyCount        int64
	BatchUnderflowCount    int64
	ConnectionFailedCount  int64
	EventDrainAttemptCount int64
	EventDrainSuccessCount int64
	RollbackCount          int64
}

// Metrics is a component's counters as Flume's JSON monitoring shows them:
// names to decimal strings, with "Type" naming the kind.
type Metrics map[string]string

func (c *SourceCounters) metrics() Metrics {
	return Metrics{
		"Type":                     "SOURCE",
		"EventReceivedCount":       itoa(c.EventReceivedCount),
		"EventAcceptedCount":       itoa(c.EventAcceptedCount),
		"AppendBatchReceivedCount": itoa(c.AppendBatchReceivedCount),
		"AppendBatchAcceptedCount": itoa(c.AppendBatchAcceptedCount),
		"ChannelWriteFail":         itoa(c.ChannelWriteFail),
		"OpenConnectionCount":      itoa(c.OpenConnectionCount),
		"EventReadFail":            itoa(c.EventReadFail),
		"GenericProcessingFail":    itoa(c.GenericProcessingFail),
	}
}

func (c *ChannelCounters) metrics() Metrics {
	fill := 0.0
	if c.ChannelCapacity > 0 {
		fill = float64(c.ChannelSize) * 100 / float64(c.ChannelCapacity)
	}
	return Metrics{
		"Type":                  "CHANNEL",
		"ChannelSize":           itoa(c.ChannelSize),
		"ChannelCapacity":       itoa(c.ChannelCapacity),
		"ChannelFillPercentage": javaDouble(fill),
		"EventPutAttemptCount":  itoa(c.EventPutAttemptCount),
		"EventPutSuccessCount":  itoa(c.EventPutSuccessCount),
		"EventTakeAttemptCount": itoa(c.EventTakeAttemptCount),
		"EventTakeSuccessCount": itoa(c.EventTakeSuccessCount),
	}
}

func (c *SinkCounters) metrics() Metrics {
	return Metrics{
		"Type":                   "SINK",
		"BatchCompleteCount":     itoa(c.BatchCompleteCount),
		"BatchEmptyCount":        itoa(c.BatchEmptyCount),
		"BatchUnderflowCount":    itoa(c.BatchUnderflowCount),
		"ConnectionFailedCount":  itoa(c.ConnectionFailedCount),
		"EventDrainAttemptCount": itoa(c.EventDrainAttemptCount),
		"EventDrainSuccessCount": itoa(c.EventDrainSuccessCount),
		"RollbackCount":          itoa(c.RollbackCount),
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// javaDouble formats a percentage as Java's Double.toString does for the
// values a fill takes ("0.0", "12.5"), as Flume's JSON shows it.
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
