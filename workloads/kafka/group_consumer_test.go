package kafka

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
)

// groupCommitted reports, per partition, the highest offset committed by the
// members, from the history.
func groupCommitted(h history.History) map[int32]int64 {
	out := map[int32]int64{}
	for _, op := range h {
		if op.F == history.Commit && op.Type == history.OK {
			for _, o := range op.Offsets {
				out[o.Partition] = max(out[o.Partition], o.Offset)
			}
		}
	}
	return out
}

// TestGroupConsumerWithFranzGoCoordinator runs members against kfake's
// group coordinator (franz-go's, not ours): with each assignor two
// members share the topic, each partition owned by one; one leaves, the
// other takes its partitions over from the committed offsets, and the
// group reads every record with the groups checker finding nothing.
func TestGroupConsumerWithFranzGoCoordinator(t *testing.T) {
	for _, assignor := range Assignors {
		t.Run(assignor, func(t *testing.T) {
			c := startKfake(t)
			w := newWorld(t)
			var p *Producer
			var members []*GroupConsumer
			w.do(func() {
				var err error
				p, err = NewProducer(w.env(), ProducerConfig{Bootstrap: c.ListenAddrs(), Process: 0, Recorder: w.hist,
					ManualPartition: true, Linger: time.Millisecond})
				if err != nil {
					w.fatal(err)
				}
				for i := range 2 {
					g, err := NewGroupConsumer(w.env(), GroupConsumerConfig{
						Consumer: ConsumerConfig{Bootstrap: c.ListenAddrs(), Process: 1 + i, Recorder: w.hist,
							ClientID: "m" + strconv.Itoa(i), FetchMaxWait: 50 * time.Millisecond},
						Group: "g", Topics: []string{testTopic}, Assignor: assignor,
						SessionTimeout: 6 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
						ProcessTimeMax: 5 * time.Millisecond,
					})
					if err != nil {
						w.fatal(err)
					}
					members = append(members, g)
				}
			})
			const n = 200
			produce := func(from int) {
				sendAll(t, w, p, n, func(i int) Record {
					return Record{Topic: testTopic, Partition: int32(i % testPartitions), Value: []byte(assignor + "-" + strconv.Itoa(from+i))}
				}, 20*time.Second)
			}
			caughtUp := func() bool {
				committed := groupCommitted(w.hist.Ops)
				for _, op := range w.hist.Ops {
					if op.F == history.Send && op.Type == history.OK && committed[op.Record.Partition] <= op.Record.Offset {
						return false
					}
				}
				return true
			}
			produce(0)
			w.waitFor("both members to own partitions and commit everything", 30*time.Second, func() bool {
				return len(members[0].Assignment()) > 0 && len(members[1].Assignment()) > 0 && caughtUp()
			})
			w.do(func() {
				a, b := members[0].Assignment(), members[1].Assignment()
				for _, tp := range a {
					if slices.Contains(b, tp) {
						w.fatalf("%s owned by both members: %v and %v", tp, a, b)
					}
				}
				if len(a)+len(b) != testPartitions {
					w.fatalf("the members own %v and %v of %d partitions", a, b, testPartitions)
				}
				members[0].Close(nil)
			})
			produce(n)
			w.waitFor("the remaining member to take every partition over", 30*time.Second, func() bool {
				return members[0].Closed() && len(members[1].Assignment()) == testPartitions && caughtUp()
			})
			h := w.history()
			opts := checkers.DefaultOptions()
			checkHistory(t, h, opts)
			if v := checkers.CheckGroups(h, opts); !v.Valid {
				t.Fatalf("groups: %+v", v.Anomalies)
			}
			if s := members[1].Stats(); s.Syncs < 2 || s.CommitsOK == 0 {
				t.Fatalf("the member synced %d times and committed %d: %+v", s.Syncs, s.CommitsOK, s)
			}
		})
	}
}
