package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkCommitAndHeartbeat is the state machine's cost of one member's
// commit of one partition plus a heartbeat and the deadline look-up the
// broker makes after each, among groups other groups.
func BenchmarkCommitAndHeartbeat(b *testing.B) {
	for _, groups := range []int{1, 1000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			cfg := testConfig()
			cfg.InitialRebalanceDelay = 0
			h := newHarness(b, cfg)
			var id string
			for i := range groups {
				req := joinRequest(fmt.Sprintf("g%d", i), "", nil)
				req.Version = 3
				to := h.join(req)
				h.advance(time.Millisecond)
				id = h.joinReply(to).MemberID
				h.sync(fmt.Sprintf("g%d", i), id, 1, map[string]string{id: "a"})
			}
			group := fmt.Sprintf("g%d", groups-1)
			commit := kmsg.NewPtrOffsetCommitRequest()
			commit.Version = 8
			commit.Group, commit.MemberID, commit.Generation = group, id, 1
			commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}}}
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = group, id, 1
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				commit.Topics[0].Partitions[0].Offset = int64(i)
				out := h.c.OffsetCommit(h.now, 1, commit)
				out.Done(true)
				h.c.Heartbeat(h.now, 2, hb)
				h.c.NextDeadline()
			}
		})
	}
}
