package collector

import (
	"strconv"
	"strings"
	"time"
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
	// Kafka are the kafka source's own counters, nil for other sources.
	Kafka *KafkaSourceCounters
}

// KafkaSourceCounters are what Flume's KafkaSourceCounter adds: the time
// spent fetching (from a poll's start until its records arrive) and
// committing offsets, in total, and the polls that found nothing.
type KafkaSourceCounters struct {
	KafkaEventGetTimer time.Duration
	KafkaCommitTimer   time.Duration
	KafkaEmptyCount    int64
}

// KafkaChannelCounters are what Flume's KafkaChannelCounter adds: the
// time spent fetching, producing puts and committing takes' offsets, in
// total, and the transactions rolled back.
type KafkaChannelCounters struct {
	KafkaEventGetTimer  time.Duration
	KafkaEventSendTimer time.Duration
	KafkaCommitTimer    time.Duration
	RollbackCount       int64
}

// KafkaSinkCounters are what Flume's KafkaSinkCounter adds: the time
// spent producing batches until every record was answered, in total.
type KafkaSinkCounters struct {
	KafkaEventSendTimer time.Duration
}

// timerMs is a Flume timer's value: total milliseconds.
func timerMs(d time.Duration) string { return itoa(d.Milliseconds()) }

// ChannelCounters are a channel's counters.
type ChannelCounters struct {
	ChannelSize           int64
	ChannelCapacity       int64
	EventPutAttemptCount  int64
	EventPutSuccessCount  int64
	EventTakeAttemptCount int64
	EventTakeSuccessCount int64
	// Kafka are the kafka channel's own counters, nil for other channels.
	Kafka *KafkaChannelCounters
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
	// Kafka are the kafka sink's own counters, nil for other sinks.
	Kafka *KafkaSinkCounters
}

// Metrics is a component's counters as Flume's JSON monitoring shows them:
// names to decimal strings, with "Type" naming the kind.
type Metrics map[string]string

func (c *SourceCounters) metrics() Metrics {
	m := Metrics{
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
	if k := c.Kafka; k != nil {
		m["KafkaEventGetTimer"] = timerMs(k.KafkaEventGetTimer)
		m["KafkaCommitTimer"] = timerMs(k.KafkaCommitTimer)
		m["KafkaEmptyCount"] = itoa(k.KafkaEmptyCount)
	}
	return m
}

func (c *ChannelCounters) metrics() Metrics {
	fill := 0.0
	if c.ChannelCapacity > 0 {
		fill = float64(c.ChannelSize) * 100 / float64(c.ChannelCapacity)
	}
	m := Metrics{
		"Type":                  "CHANNEL",
		"ChannelSize":           itoa(c.ChannelSize),
		"ChannelCapacity":       itoa(c.ChannelCapacity),
		"ChannelFillPercentage": javaDouble(fill),
		"EventPutAttemptCount":  itoa(c.EventPutAttemptCount),
		"EventPutSuccessCount":  itoa(c.EventPutSuccessCount),
		"EventTakeAttemptCount": itoa(c.EventTakeAttemptCount),
		"EventTakeSuccessCount": itoa(c.EventTakeSuccessCount),
	}
	if k := c.Kafka; k != nil {
		m["KafkaEventGetTimer"] = timerMs(k.KafkaEventGetTimer)
		m["KafkaEventSendTimer"] = timerMs(k.KafkaEventSendTimer)
		m["KafkaCommitTimer"] = timerMs(k.KafkaCommitTimer)
		m["RollbackCount"] = itoa(k.RollbackCount)
	}
	return m
}

func (c *SinkCounters) metrics() Metrics {
	m := Metrics{
		"Type":                   "SINK",
		"BatchCompleteCount":     itoa(c.BatchCompleteCount),
		"BatchEmptyCount":        itoa(c.BatchEmptyCount),
		"BatchUnderflowCount":    itoa(c.BatchUnderflowCount),
		"ConnectionFailedCount":  itoa(c.ConnectionFailedCount),
		"EventDrainAttemptCount": itoa(c.EventDrainAttemptCount),
		"EventDrainSuccessCount": itoa(c.EventDrainSuccessCount),
		"RollbackCount":          itoa(c.RollbackCount),
	}
	if k := c.Kafka; k != nil {
		m["KafkaEventSendTimer"] = timerMs(k.KafkaEventSendTimer)
	}
	return m
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
