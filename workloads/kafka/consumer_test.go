package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// TestAssignmentIsSortedByTopicThenPartition: Assignment lists the
// assigned partitions sorted, by topic and then by number within a topic,
// each once however often Assign was given it.
func TestAssignmentIsSortedByTopicThenPartition(t *testing.T) {
	tp := func(topic string, partition int32) TopicPartition {
		return TopicPartition{Topic: topic, Partition: partition}
	}
	var co *Consumer
	w := world.New(world.Config{Seed: 1})
	w.AddNode("client", func(env sim.Env) {
		var err error
		if co, err = NewConsumer(env, ConsumerConfig{Bootstrap: []string{"broker:9092"}}); err != nil {
			panic(err)
		}
		if err := co.Assign([]TopicPartition{tp("b", 1), tp("a", 2), tp("b", 0), tp("a", 0), tp("b", 1), tp("a", 2)}); err != nil {
			panic(err)
		}
	})
	w.Run(time.Millisecond, simEventsMax)
	want := []TopicPartition{tp("a", 0), tp("a", 2), tp("b", 0), tp("b", 1)}
	if got := co.Assignment(); !slices.Equal(got, want) {
		t.Fatalf("assignment %v, want %v", got, want)
	}
}
