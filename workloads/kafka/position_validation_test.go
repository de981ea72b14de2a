package kafka

import (
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// epochWorld runs a toy broker at leader epoch 2 holding n records of
// partition 0, and a consumer that sends leader epochs; once the records
// are in, seek positions the consumer and it polls on, keeping what it
// read.
func epochWorld(t *testing.T, n int, seek func(*Consumer, TopicPartition) error) (*world.World, *toyLog, func() (*Consumer, []Record)) {
	t.Helper()
	log := newToyLog(testTopic, 1)
	log.leaderEpoch = 2
	w := world.New(world.Config{Seed: 5})
	w.AddNode("broker", startToyBroker(log))
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	var co *Consumer
	var read []Record
	w.AddNode("client", func(env sim.Env) {
		p, err := NewProducer(env, ProducerConfig{Bootstrap: []string{"broker:9092"}, ManualPartition: true})
		if err != nil {
			panic(err)
		}
		co, err = NewConsumer(env, ConsumerConfig{Bootstrap: []string{"broker:9092"}, SendLeaderEpoch: true,
			FetchMaxWait: 50 * time.Millisecond, MetadataMinInterval: 20 * time.Millisecond})
		if err != nil {
			panic(err)
		}
		if err := co.Assign([]TopicPartition{tp}); err != nil {
			panic(err)
		}
		var poll func()
		poll = func() {
			if err := co.Poll(func(r PollResult) { read = append(read, r.Records...); poll() }); err != nil {
				panic(err)
			}
		}
		var send func(i int)
		send = func(i int) {
			if i == n {
				if err := seek(co, tp); err != nil {
					panic(err)
				}
				poll()
				return
			}
			rec := Record{Topic: testTopic, Partition: 0, Value: []byte("v" + strconv.Itoa(i))}
			if err := p.Send(rec, func(Result) { send(i + 1) }); err != nil {
				panic(err)
			}
		}
		send(0)
	})
	return w, log, func() (*Consumer, []Record) { return co, read }
}

// TestConsumerValidatesTruncatedPosition (KIP-320): a position of epoch 2
// past the end of the leader's log (offset 50 of 10) is validated with
// OffsetForLeaderEpoch and moves back to where the log ends, not reset to
// the earliest offset, so none of 0..9 is read again. Without an epoch
// the same seek resets, and reading sets the position's epoch to its
// batch's.
func TestConsumerValidatesTruncatedPosition(t *testing.T) {
	w, _, clients := epochWorld(t, 10, func(co *Consumer, tp TopicPartition) error { return co.SeekEpoch(tp, 50, 2) })
	w.Run(2*time.Second, simEventsMax)
	co, read := clients()
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	s := co.Stats()
	if s.Validations == 0 || s.Truncations != 1 || s.Resets != 0 || len(read) != 0 {
		t.Fatalf("after the seek: %d validations, %d truncations, %d resets, %d records read", s.Validations, s.Truncations, s.Resets, len(read))
	}
	if pos, ok := co.Position(tp); !ok || pos != 10 {
		t.Fatalf("position %d (%v), want 10 where the log ends", pos, ok)
	}
	// The same seek without an epoch cannot be validated: it resets.
	w, _, clients = epochWorld(t, 10, func(co *Consumer, tp TopicPartition) error { return co.Seek(tp, 50) })
	w.Run(2*time.Second, simEventsMax)
	co, read = clients()
	if s := co.Stats(); s.Validations != 0 || s.Resets != 1 || len(read) != 10 || read[0].Offset != 0 {
		t.Fatalf("without an epoch: %d validations, %d resets, %d records read", s.Validations, s.Resets, len(read))
	}
	if e := co.PositionEpoch(tp); e != 2 {
		t.Fatalf("position epoch %d after reading batches of epoch 2", e)
	}
}

// TestConsumerWaitsForCommittedEpoch (KIP-320): a position of epoch 4
// is not fetched while metadata knows the leader only at epoch 2 (that
// leader may be deposed and miss the records before it); once the
// leader's epoch reaches 4 the position is validated and read from.
func TestConsumerWaitsForCommittedEpoch(t *testing.T) {
	w, log, clients := epochWorld(t, 10, func(co *Consumer, tp TopicPartition) error { return co.SeekEpoch(tp, 5, 4) })
	w.Run(time.Second, simEventsMax)
	co, read := clients()
	s := co.Stats()
	if s.Fetches != 0 || s.Validations != 0 || s.MetadataRequests < 5 || len(read) != 0 {
		t.Fatalf("at epoch 2: %d fetches, %d validations, %d metadata requests, %d records", s.Fetches, s.Validations, s.MetadataRequests, len(read))
	}
	log.leaderEpoch = 4
	w.Run(2*time.Second, simEventsMax)
	co, read = clients()
	if s := co.Stats(); s.Validations == 0 || s.Resets != 0 || s.Truncations != 0 || len(read) != 5 || read[0].Offset != 5 {
		t.Fatalf("at epoch 4: %d validations, %d resets, %d truncations, %d records", s.Validations, s.Resets, s.Truncations, len(read))
	}
}

// TestConsumerValidatesStartOfEmptyLog (KIP-320): offset 0 of epoch 2 on
// a leader at epoch 2 whose log is empty is answered end offset 0, epoch
// 2: the position is the log's end, valid, neither truncated nor reset
// (only an end offset of -1, UNDEFINED_EPOCH_OFFSET, calls for the reset
// policy).
func TestConsumerValidatesStartOfEmptyLog(t *testing.T) {
	w, _, clients := epochWorld(t, 0, func(co *Consumer, tp TopicPartition) error { return co.SeekEpoch(tp, 0, 2) })
	w.Run(time.Second, simEventsMax)
	co, read := clients()
	if s := co.Stats(); s.Validations == 0 || s.Truncations != 0 || s.Resets != 0 || len(read) != 0 {
		t.Fatalf("%d validations, %d truncations, %d resets, %d records read; want validated alone",
			s.Validations, s.Truncations, s.Resets, len(read))
	}
	tp := TopicPartition{Topic: testTopic, Partition: 0}
	if pos, ok := co.Position(tp); !ok || pos != 0 || co.PositionEpoch(tp) != 2 {
		t.Fatalf("position %d (%v) of epoch %d, want 0 of epoch 2", pos, ok, co.PositionEpoch(tp))
	}
}
