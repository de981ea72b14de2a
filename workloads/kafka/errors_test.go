package kafka

import (
	"fmt"
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProduceClassesAreKafkaCodes checks every code in the table is a real
// Kafka error code under the name the constant claims, so a typo cannot
// classify the wrong error.
func TestProduceClassesAreKafkaCodes(t *testing.T) {
	names := map[int16]string{
		codeNotLeaderOrFollower:          "NOT_LEADER_FOR_PARTITION",
		codeOutOfOrderSequenceNumber:     "OUT_OF_ORDER_SEQUENCE_NUMBER",
		codeInvalidProducerEpoch:         "INVALID_PRODUCER_EPOCH",
		codeNotEnoughReplicasAfterAppend: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
		codeKafkaStorageError:            "KAFKA_STORAGE_ERROR",
		codeMessageTooLarge:              "MESSAGE_TOO_LARGE",
		codeInvalidRecord:                "INVALID_RECORD",
		codeCorruptMessage:               "CORRUPT_MESSAGE",
		codeTopicAuthorizationFailed:     "TOPIC_AUTHORIZATION_FAILED",
		codeUnknownTopicOrPartition:      "UNKNOWN_TOPIC_OR_PARTITION",
		codeDuplicateSequenceNumber:      "DUPLICATE_SEQUENCE_NUMBER",
		codeUnknownProducerID:            "UNKNOWN_PRODUCER_ID",
		codeProducerFenced:               "PRODUCER_FENCED",
		codeRequestTimedOut:              "REQUEST_TIMED_OUT",
		codeOffsetOutOfRange:             "OFFSET_OUT_OF_RANGE",
		codeNotEnoughReplicas:            "NOT_ENOUGH_REPLICAS",
		codeUnknownServerError:           "UNKNOWN_SERVER_ERROR",
	}
	for code, name := range names {
		if got := errorName(code); got != name {
			t.Errorf("code %d is %s, constant says %s", code, got, name)
		}
	}
	for code := range produceClasses {
		if kerr.TypedErrorForCode(code) == nil {
			t.Errorf("table classifies %d, which is not a Kafka error code", code)
		}
	}
}

// TestProduceClassification pins the Jepsen classification of the codes the
// task names: definite ones fail, indeterminate ones are info.
func TestProduceClassification(t *testing.T) {
	type want struct {
		retriable, mayHaveAppended bool
	}
	cases := map[int16]want{
		codeOutOfOrderSequenceNumber:     {false, false},
		codeInvalidProducerEpoch:         {false, false},
		codeProducerFenced:               {false, false},
		codeMessageTooLarge:              {false, false},
		codeInvalidRecord:                {false, false},
		codeRecordListTooLarge:           {false, false},
		codeTopicAuthorizationFailed:     {false, false},
		codeCorruptMessage:               {true, false},
		codeUnknownTopicOrPartition:      {true, false},
		codeNotEnoughReplicas:            {true, false},
		codeLeaderNotAvailable:           {true, false},
		codeNotLeaderOrFollower:          {true, true},
		codeRequestTimedOut:              {true, true},
		codeNotEnoughReplicasAfterAppend: {true, true},
		codeKafkaStorageError:            {true, true},
		codeUnknownServerError:           {false, true},
		// Not in the table at all: unknown, so indeterminate and final.
		12345: {false, true},
	}
	for code, w := range cases {
		c := classOf(code)
		if c.retriable != w.retriable || c.mayHaveAppended != w.mayHaveAppended {
			t.Errorf("%s: %+v, want retriable=%v mayHaveAppended=%v", errorName(code), c, w.retriable, w.mayHaveAppended)
		}
	}
	for _, code := range []int16{codeOutOfOrderSequenceNumber, codeInvalidProducerEpoch, codeUnknownProducerID, codeProducerFenced} {
		if !classOf(code).resetProducer {
			t.Errorf("%s does not reset the producer", errorName(code))
		}
	}
	for _, code := range []int16{codeNotLeaderOrFollower, codeUnknownTopicOrPartition, codeLeaderNotAvailable, codeFencedLeaderEpoch} {
		if !classOf(code).refreshMetadata {
			t.Errorf("%s does not refresh metadata", errorName(code))
		}
	}
}

// TestOutcomeOfAttempts runs sequences of attempt results through the rule
// the producer applies: the write fails only if no attempt may have been
// appended.
func TestOutcomeOfAttempts(t *testing.T) {
	notSent := fmt.Errorf("dial: %w", errNotSent)
	reset := fmt.Errorf("read: %w", sim.ErrReset)
	timeout := fmt.Errorf("produce: %w", ErrRequestTimeout)
	cases := []struct {
		name     string
		attempts []produceClass
		want     history.Type
	}{
		{"message too large", []produceClass{classOf(codeMessageTooLarge)}, history.Fail},
		{"never connected", []produceClass{classOfRequestError(notSent), classOfRequestError(notSent)}, history.Fail},
		{"corrupt until retries run out", []produceClass{classOf(codeCorruptMessage), classOf(codeCorruptMessage)}, history.Fail},
		{"reset in flight, then refused", []produceClass{classOfRequestError(reset), classOf(codeMessageTooLarge)}, history.Info},
		{"timed out", []produceClass{classOfRequestError(timeout)}, history.Info},
		{"not leader, then out of order", []produceClass{classOf(codeNotLeaderOrFollower), classOf(codeOutOfOrderSequenceNumber)}, history.Info},
		{"not enough replicas after append", []produceClass{classOf(codeNotEnoughReplicasAfterAppend)}, history.Info},
		{"not enough replicas (before append)", []produceClass{classOf(codeNotEnoughReplicas), classOf(codeNotEnoughReplicas)}, history.Fail},
		{"unsupported version", []produceClass{classOfRequestError(&errUnsupported{})}, history.Fail},
	}
	for _, c := range cases {
		maybe := false
		for _, a := range c.attempts {
			maybe = maybe || a.mayHaveAppended
		}
		if got := finalOutcome(maybe); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if classOfRequestError(notSent).mayHaveAppended || !classOfRequestError(reset).mayHaveAppended {
		t.Error("connection errors misclassified")
	}
}

// TestCodeErrorWords: a client error names the code as Kafka's
// documentation does and adds the broker's message only when it sent
// one.
func TestCodeErrorWords(t *testing.T) {
	cases := []struct {
		err  *CodeError
		want string
	}{
		{&CodeError{Code: codeOffsetOutOfRange}, "OFFSET_OUT_OF_RANGE"},
		{&CodeError{Code: codeNotEnoughReplicas, Message: "1 of 2 replicas in sync"}, "NOT_ENOUGH_REPLICAS: 1 of 2 replicas in sync"},
		{&CodeError{Code: -1}, "UNKNOWN_SERVER_ERROR"},
		{&CodeError{Code: 9999}, "error code 9999"}, // a code no Kafka version has named
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("code %d, message %q: %q, want %q", c.err.Code, c.err.Message, got, c.want)
		}
	}
}
