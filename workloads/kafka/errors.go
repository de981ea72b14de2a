package kafka

import (
	"errors"
	"fmt"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Kafka error codes the actors act on, as the protocol numbers them.
const (
	codeNone                         int16 = 0
	codeUnknownServerError           int16 = -1
	codeOffsetOutOfRange             int16 = 1
	codeCorruptMessage               int16 = 2
	codeUnknownTopicOrPartition      int16 = 3
	codeLeaderNotAvailable           int16 = 5
	codeNotLeaderOrFollower          int16 = 6
	codeRequestTimedOut              int16 = 7
	codeBrokerNotAvailable           int16 = 8
	codeReplicaNotAvailable          int16 = 9
	codeMessageTooLarge              int16 = 10
	codeNetworkException             int16 = 13
	codeCoordinatorLoadInProgress    int16 = 14
	codeCoordinatorNotAvailable      int16 = 15
	codeNotCoordinator               int16 = 16
	codeInvalidTopic                 int16 = 17
	codeRecordListTooLarge           int16 = 18
	codeNotEnoughReplicas            int16 = 19
	codeNotEnoughReplicasAfterAppend int16 = 20
	codeInvalidRequiredAcks          int16 = 21
	codeTopicAuthorizationFailed     int16 = 29
	codeClusterAuthorizationFailed   int16 = 31
	codeInvalidTimestamp             int16 = 32
	codeUnsupportedVersion           int16 = 35
	codeInvalidRequest               int16 = 42
	codeUnsupportedForMessageFormat  int16 = 43
	codePolicyViolation              int16 = 44
	codeOutOfOrderSequenceNumber     int16 = 45
	codeDuplicateSequenceNumber      int16 = 46
	codeInvalidProducerEpoch         int16 = 47
	codeInvalidTxnState              int16 = 48
	codeInvalidProducerIDMapping     int16 = 49
	codeConcurrentTransactions       int16 = 51
	codeTransactionCoordinatorFenced int16 = 52
	codeTransactionalIDAuthorization int16 = 53
	codeKafkaStorageError            int16 = 56
	codeUnknownProducerID            int16 = 59
	codeFencedLeaderEpoch            int16 = 74
	codeUnknownLeaderEpoch           int16 = 75
	codeUnsupportedCompressionType   int16 = 76
	codeOffsetNotAvailable           int16 = 78
	codeInvalidRecord                int16 = 87
	codeThrottlingQuotaExceeded      int16 = 89
	codeProducerFenced               int16 = 90
	codeUnknownTopicID               int16 = 100
	codeInconsistentTopicID          int16 = 103
	codeOffsetMovedToTieredStorage   int16 = 109
	codeTransactionAbortable         int16 = 120
	codeRebootstrapRequired          int16 = 129
	codeEligibleLeadersNotAvailable  int16 = 83
	codePreferredLeaderNotAvailable  int16 = 80
)

// errorName is a code's protocol name, as Kafka's documentation spells it,
// or its number for a code this client does not know (kerr names every
// such code UNKNOWN_SERVER_ERROR, which would hide what the broker sent).
func errorName(code int16) string {
	e := kerr.TypedErrorForCode(code)
	if e == nil || (e == kerr.UnknownServerError && code != kerr.UnknownServerError.Code) {
		return fmt.Sprintf("error code %d", code)
	}
	return e.Message
}

// produceClass is what a produce error code means for the batch it came
// back for.
type produceClass struct {
	// retriable: another attempt may succeed.
	retriable bool
	// mayHaveAppended: the broker may have appended the batch although it
	// answered with this error, so the write's outcome is unknown (a
	// Jepsen :info) unless a later attempt settles it.
	mayHaveAppended bool
	// refreshMetadata: the client's idea of the leader is likely stale.
	refreshMetadata bool
	// resetProducer: the idempotent producer's sequence state no longer
	// matches the broker's; the producer bumps its epoch before going on.
	resetProducer bool
}

// produceClasses classifies every error code a produce response carries per
// partition, as Jepsen classifies client errors: a code is definite when the
// broker refused the batch before appending it, indeterminate when the
// batch may be in the log. Codes not listed are unknown and treated as
// indeterminate and final (classOf).
var produceClasses = map[int16]produceClass{
	// The batch or a record failed validation before the append; Kafka's
	// client retries it, since a bit flip on the wire is transient.
	codeCorruptMessage: {retriable: true},
	// The broker does not (yet) host the partition: nothing was appended.
	codeUnknownTopicOrPartition: {retriable: true, refreshMetadata: true},
	// An election is in progress: refused before any append.
	codeLeaderNotAvailable: {retriable: true, refreshMetadata: true},
	// Indeterminate: with acks=all a leader may have appended the batch
	// and lost leadership while waiting for the ISR; the delayed produce
	// then completes with this code. The batch may survive on the new
	// leader.
	codeNotLeaderOrFollower: {retriable: true, mayHaveAppended: true, refreshMetadata: true},
	// Indeterminate: the leader appended and the ISR did not confirm
	// within the request's timeout.
	codeRequestTimedOut: {retriable: true, mayHaveAppended: true},
	// A broker lost its network mid-request: anything may have happened.
	codeNetworkException: {retriable: true, mayHaveAppended: true, refreshMetadata: true},
	// The record or the batch exceeds the broker's limit: refused.
	codeMessageTooLarge: {},
	// The topic name is illegal: refused.
	codeInvalidTopic: {},
	// The request is larger than the broker accepts: refused.
	codeRecordListTooLarge: {},
	// The ISR is below min.insync.replicas: checked before the append.
	codeNotEnoughReplicas: {retriable: true},
	// Indeterminate by definition: the batch is in the leader's log but
	// the ISR shrank below min.insync.replicas afterwards.
	codeNotEnoughReplicasAfterAppend: {retriable: true, mayHaveAppended: true},
	// acks other than -1, 0, 1: refused.
	codeInvalidRequiredAcks: {},
	// Authorization is checked first: refused.
	codeTopicAuthorizationFailed:     {},
	codeClusterAuthorizationFailed:   {},
	codeTransactionalIDAuthorization: {},
	// A timestamp outside message.timestamp.difference.max.ms: refused.
	codeInvalidTimestamp: {},
	// The broker cannot read the request version or record format: refused.
	codeUnsupportedVersion:          {},
	codeUnsupportedForMessageFormat: {},
	codeUnsupportedCompressionType:  {},
	codeInvalidRequest:              {},
	codePolicyViolation:             {},
	// Definite: the broker expected another sequence number and refused
	// the batch. When an earlier batch of the same partition is itself
	// being retried, the gap is ours and the batch is simply resent
	// (Producer.classifyProduceError); otherwise the producer's sequence
	// state is broken and it bumps its epoch.
	codeOutOfOrderSequenceNumber: {resetProducer: true},
	// The batch was appended by an earlier attempt that the broker no
	// longer keeps the offset of: it is in the log at an unknown offset.
	// Handled before the table (Producer.onPartitionResponse).
	codeDuplicateSequenceNumber: {mayHaveAppended: true},
	// Definite: the producer was fenced by a newer epoch; refused.
	codeInvalidProducerEpoch: {resetProducer: true},
	codeProducerFenced:       {resetProducer: true},
	// Definite: transactional state does not allow the write.
	codeInvalidTxnState:              {},
	codeInvalidProducerIDMapping:     {resetProducer: true},
	codeTransactionCoordinatorFenced: {},
	codeTransactionAbortable:         {},
	// A transaction is being completed: refused, try again.
	codeConcurrentTransactions: {retriable: true},
	// Indeterminate: a log directory failed, possibly during the append.
	codeKafkaStorageError: {retriable: true, mayHaveAppended: true, refreshMetadata: true},
	// The broker forgot the producer (its state expired or was lost):
	// refused; the batch is resent under a new epoch.
	codeUnknownProducerID: {retriable: true, resetProducer: true},
	// The leader epoch in the request disagrees with the broker's: refused.
	codeFencedLeaderEpoch:  {retriable: true, refreshMetadata: true},
	codeUnknownLeaderEpoch: {retriable: true, refreshMetadata: true},
	// Topic ids disagree after a topic was recreated: refused.
	codeUnknownTopicID:      {retriable: true, refreshMetadata: true},
	codeInconsistentTopicID: {retriable: true, refreshMetadata: true},
	// A record failed the broker's validation (e.g. compaction needs
	// keys): refused.
	codeInvalidRecord: {},
	// A quota refused the request before the append.
	codeThrottlingQuotaExceeded: {retriable: true},
	// The broker went down with the request (its own failure): unknown.
	codeBrokerNotAvailable: {retriable: true, mayHaveAppended: true, refreshMetadata: true},
	// The client should bootstrap again: refused before the append.
	codeRebootstrapRequired: {retriable: true, refreshMetadata: true},
	// Indeterminate and final: the broker failed in a way it could not
	// name, possibly after the append.
	codeUnknownServerError: {mayHaveAppended: true},
}

// classOf looks up a produce error code. Unknown codes are taken as
// indeterminate and final: claiming a definite failure we cannot justify
// would let a checker call a surviving write an aborted read.
func classOf(code int16) produceClass {
	if c, ok := produceClasses[code]; ok {
		return c
	}
	return produceClass{mayHaveAppended: true}
}

// Connection-level failures of a produce request, classified like codes.
var (
	// classNotSent: the request never reached the connection.
	classNotSent = produceClass{retriable: true, refreshMetadata: true}
	// classLostInFlight: the request was written and no answer came (a
	// reset, a timeout, a malformed answer): it may have been appended.
	classLostInFlight = produceClass{retriable: true, mayHaveAppended: true, refreshMetadata: true}
	// classUnsupported: the broker does not serve a Produce version we
	// speak; the request was not sent.
	classUnsupported = produceClass{}
)

// classOfRequestError classifies an error a connection returned.
func classOfRequestError(err error) produceClass {
	var unsupported *errUnsupported
	switch {
	case errors.As(err, &unsupported):
		return classUnsupported
	case errors.Is(err, errNotSent):
		return classNotSent
	}
	return classLostInFlight
}

// finalOutcome is the history outcome of a write whose attempts are over
// without an acknowledgement: fail only when no attempt may have appended
// it, info otherwise.
func finalOutcome(mayHaveAppended bool) history.Type {
	if mayHaveAppended {
		return history.Info
	}
	return history.Fail
}

// CodeError is a Kafka error code a broker answered with.
type CodeError struct {
	Code int16
	// Message is the broker's error message, if it sent one.
	Message string
}

// Error names the code and adds the broker's message.
func (e *CodeError) Error() string {
	if e.Message != "" {
		return errorName(e.Code) + ": " + e.Message
	}
	return errorName(e.Code)
}

// Errors the producer ends writes with.
var (
	// ErrBufferFull: Send refused a record because the producer holds
	// BufferMaxBytes already. The record was not taken.
	ErrBufferFull = errors.New("producer buffer full")
	// ErrRecordTooLarge: Send refused a record larger than RecordMaxBytes.
	ErrRecordTooLarge = errors.New("record too large")
	// ErrClosed: the actor was closed.
	ErrClosed = errors.New("closed")
	// ErrDeliveryTimeout: the write was not acknowledged within the
	// delivery timeout.
	ErrDeliveryTimeout = errors.New("delivery timeout")
	// ErrRetriesExhausted: the write failed RetriesMax times.
	ErrRetriesExhausted = errors.New("retries exhausted")
	// ErrNoAcknowledgement: with acks=0 the broker never says whether it
	// appended a write.
	ErrNoAcknowledgement = errors.New("acks=0: no acknowledgement")
	// ErrProducerReset: the idempotent producer moved to a new epoch while the
	// write's outcome under the old one was unknown.
	ErrProducerReset = errors.New("producer epoch bumped with the write's outcome unknown")
	// ErrDuplicateUnknownOffset: the broker says an earlier attempt of the
	// write was appended but no longer knows where.
	ErrDuplicateUnknownOffset = errors.New("write appended by an earlier attempt at an unknown offset")
	// ErrUnknownPartition: the partition does not exist in the topic.
	ErrUnknownPartition = errors.New("unknown partition")
)
