package storage

import (
	"fmt"
	"testing"
)

// TestReplayAfterProcessCrashIsDeduplicated: a producer's batch appended
// just before the broker process died, never flushed, is still in the page
// cache when the log reopens; the producer's retry of it must be answered
// with the original offsets, not appended again.
func TestReplayAfterProcessCrashIsDeduplicated(t *testing.T) {
	for _, flushed := range []int{0, 3} {
		t.Run(fmt.Sprintf("flushed-%d", flushed), func(t *testing.T) {
			r := newRig(t, 31, testDiskConfig())
			l, _ := r.open(Config{}, 0)
			var last AppendResult
			for seq := int32(0); seq < 5; seq++ {
				last = mustAppend(t, l, producerBatch(t, 7, 0, seq, 1, fmt.Sprintf("s%d", seq)), 0)
				if int(seq)+1 == flushed {
					if err := r.flush(l); err != nil {
						t.Fatal(err)
					}
				}
			}
			checkpoint := l.RecoveryPoint()
			r.crash(false)
			l2, _ := r.open(Config{}, checkpoint)
			replay, err := l2.Append(producerBatch(t, 7, 0, 4, 1, "s4"), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !replay.Duplicate || replay.BaseOffset != last.BaseOffset {
				t.Fatalf("replay after a process crash: %+v, want a duplicate at %d (end %d)", replay, last.BaseOffset, l2.EndOffset())
			}
		})
	}
}
