package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// EpochEntry says that leader epoch Epoch wrote its first batch at
// StartOffset (KIP-101).
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// UndefinedEpoch and UndefinedOffset are Kafka's answers for an epoch the
// cache cannot place.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// epochEntriesMax bounds the cache; past it the oldest entries go, which
// only loses answers for epochs no follower still asks about.
const epochEntriesMax = 1 << 16

// epochCache is the leader epoch cache: entries with strictly increasing
// epochs and non-decreasing start offsets.
type epochCache struct {
	entries []EpochEntry
}

func (c *epochCache) latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

func (c *epochCache) latestEpoch() int32 {
	if e, ok := c.latest(); ok {
		return e.Epoch
	}
	return UndefinedEpoch
}

// assign records that epoch starts at startOffset. As Kafka's cache does,
// it drops entries the new one contradicts (an equal or later epoch, or a
// start offset at or after the new one) and reports whether anything
// changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	if epoch < 0 {
		return false
	}
	if e, ok := c.latest(); ok && e.Epoch == epoch && e.StartOffset <= startOffset {
		return false
	}
	keep := c.entries[:0]
	for _, e := range c.entries {
		if e.Epoch < epoch && e.StartOffset < startOffset {
			keep = append(keep, e)
		}
	}
	c.entries = append(keep, EpochEntry{Epoch: epoch, StartOffset: startOffset})
	if len(c.entries) > epochEntriesMax {
		c.entries = append(c.entries[:0], c.entries[len(c.entries)-epochEntriesMax:]...)
	}
	return true
}

// truncateFromEnd drops epochs that start at or after endOffset, as the
// log lost those offsets.
func (c *epochCache) truncateFromEnd(endOffset int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= endOffset {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart forgets epochs wholly below startOffset; the epoch in
// force at startOffset is kept, starting there.
func (c *epochCache) truncateFromStart(startOffset int64) bool {
	first := 0
	for first+1 < len(c.entries) && c.entries[first+1].StartOffset <= startOffset {
		first++
	}
	changed := first > 0
	c.entries = append(c.entries[:0], c.entries[first:]...)
	if len(c.entries) > 0 && c.entries[0].StartOffset < startOffset {
		c.entries[0].StartOffset = startOffset
		changed = true
	}
	return changed
}

// endOffsetFor answers OffsetForLeaderEpoch as Kafka does: for the latest
// epoch, the log end; for an older one, the start of the next epoch the
// cache knows, paired with the largest known epoch not above the request.
func (c *epochCache) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	if epoch == UndefinedEpoch {
		return UndefinedEpoch, UndefinedOffset
	}
	if latest, ok := c.latest(); ok && latest.Epoch == epoch {
		return epoch, logEnd
	}
	higher := -1
	for i, e := range c.entries {
		if e.Epoch > epoch {
			higher = i
			break
		}
	}
	if higher < 0 {
		return UndefinedEpoch, UndefinedOffset
	}
	if higher == 0 {
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// encodeEpochs writes Kafka's leader-epoch-checkpoint format.
func encodeEpochs(entries []EpochEntry) []byte {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", checkpointVersion, len(entries))
	for _, e := range entries {
		fmt.Fprintf(&buf, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return buf.Bytes()
}

// decodeEpochs reads the leader-epoch-checkpoint format and checks that
// epochs and offsets increase.
func decodeEpochs(data []byte) ([]EpochEntry, error) {
	lines, err := checkpointLines(data)
	if err != nil {
		return nil, err
	}
	if len(lines) > epochEntriesMax {
		return nil, fmt.Errorf("leader epoch checkpoint holds %d entries, more than %d", len(lines), epochEntriesMax)
	}
	entries := make([]EpochEntry, 0, len(lines))
	for i, line := range lines {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("leader epoch line %d: %q is not \"epoch offset\"", i+3, line)
		}
		epoch, err1 := strconv.ParseInt(fields[0], 10, 32)
		offset, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || offset < 0 {
			return nil, fmt.Errorf("leader epoch line %d: %q", i+3, line)
		}
		e := EpochEntry{Epoch: int32(epoch), StartOffset: offset}
		if n := len(entries); n > 0 && (entries[n-1].Epoch >= e.Epoch || entries[n-1].StartOffset > e.StartOffset) {
			return nil, fmt.Errorf("leader epoch line %d: %v after %v", i+3, e, entries[n-1])
		}
		entries = append(entries, e)
	}
	return entries, nil
}
