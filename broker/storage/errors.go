package storage

import (
	"errors"
	"fmt"

	"github.com/sluice-sim/sluice/broker/record"
)

// Operating errors. Each names the Kafka error code a broker answers with.
// Errors come wrapped with context; test with errors.Is.
var (
	// ErrOffsetOutOfRange: a read below the log start or above the log
	// end (OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrCorrupt: a produced batch that fails its checks
	// (CORRUPT_MESSAGE). It is record.ErrCorrupt, so the record
	// package's errors match it too.
	ErrCorrupt = record.ErrCorrupt
	// ErrCorruptLog: the requested range of the log is damaged on disk;
	// its bytes are never served (KAFKA_STORAGE_ERROR to followers,
	// CORRUPT_MESSAGE to consumers).
	ErrCorruptLog = errors.New("corrupt data in the log")
	// ErrOutOfOrderSequence: an idempotent producer's sequence leaves a
	// gap or repeats an old batch that is no longer remembered
	// (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch: a batch from an older epoch of a producer
	// (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrBatchTooLarge: a batch larger than MaxBatchBytes or a segment
	// (MESSAGE_TOO_LARGE).
	ErrBatchTooLarge = errors.New("record batch too large")
	// ErrInvalidAppend: a replica batch that does not follow the log's
	// end, or a leader epoch older than the log's (the broker's mistake;
	// UNKNOWN_SERVER_ERROR).
	ErrInvalidAppend = errors.New("invalid append")
	// ErrTruncating: a truncation (TruncateTo, TruncateFullyAndStartAt,
	// a recovery cut, a reopen) or the state Open found (after a process
	// crash it may hold a truncation the disk never got) is not durable
	// yet, and the log takes no appends until it is: data appended over a
	// cut that a crash undoes would splice two histories. A flush is already under way; append
	// again once Flush calls back (KAFKA_STORAGE_ERROR to a producer,
	// which retries; a follower fetches again).
	ErrTruncating = errors.New("a truncation is not durable yet")
	// ErrStorage: the disk failed (EIO, ENOSPC) or the log is offline
	// (KAFKA_STORAGE_ERROR). The cause is wrapped too, so
	// errors.Is(err, sim.ErrNoSpace) works.
	ErrStorage = errors.New("storage error")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("log closed")
)

// storageError wraps an I/O failure in ErrStorage, keeping the cause.
func storageError(what string, err error) error {
	if errors.Is(err, ErrStorage) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrStorage, err)
}
