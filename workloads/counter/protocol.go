// Package counter is the first scenario's system: a durable counter service
// and its clients. A client increments the counter with a unique id and
// retries until acknowledged; the server logs each id to a checksummed
// write-ahead log, group-commits it with fsync, and acknowledges only what
// is durable, deduplicating retries. It is small on purpose: it proves the
// simulated world end to end (disk, network, crashes, partitions, the trace)
// before the broker exists, and it runs unchanged on real sockets and files.
package counter

import (
	"encoding/binary"
	"fmt"

	"github.com/sluice-sim/sluice/faults"
)

// Planted bugs the counter scenario responds to.
var (
	BugAckBeforeSync = faults.BugAckBeforeSync
	BugDedupeOff     = faults.BugDedupeOff
	BugMapOrder      = faults.BugMapOrder
)

// Request and response opcodes and statuses.
const (
	opInc byte = 1
	opGet byte = 2

	statusOK    byte = 0
	statusRetry byte = 1 // the server could not make the write durable; try again
)

const (
	requestBytes  = 9  // op, id
	responseBytes = 17 // status, id, count
)

func encodeRequest(op byte, id uint64) []byte {
	b := make([]byte, requestBytes)
	b[0] = op
	binary.BigEndian.PutUint64(b[1:], id)
	return b
}

func decodeRequest(b []byte) (op byte, id uint64, err error) {
	if len(b) != requestBytes {
		return 0, 0, fmt.Errorf("request of %d bytes, want %d", len(b), requestBytes)
	}
	return b[0], binary.BigEndian.Uint64(b[1:]), nil
}

func encodeResponse(status byte, id, count uint64) []byte {
	b := make([]byte, responseBytes)
	b[0] = status
	binary.BigEndian.PutUint64(b[1:], id)
	binary.BigEndian.PutUint64(b[9:], count)
	return b
}

func decodeResponse(b []byte) (status byte, id, count uint64, err error) {
	if len(b) != responseBytes {
		return 0, 0, 0, fmt.Errorf("response of %d bytes, want %d", len(b), responseBytes)
	}
	return b[0], binary.BigEndian.Uint64(b[1:]), binary.BigEndian.Uint64(b[9:]), nil
}
