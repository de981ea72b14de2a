package kafka

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// toyWorld runs a toy broker serving log at broker:9092 and client on a
// node of its own.
func toyWorld(log *toyLog, client sim.Start) *world.World {
	w := world.New(world.Config{Seed: 7})
	w.AddNode("broker", startToyBroker(log))
	w.AddNode("client", client)
	return w
}

// TestTopicCreatorStopsAtFirstAnswerThatItExists: a broker that answers
// the first CreateTopics with "created" or TOPIC_ALREADY_EXISTS is asked
// once. The creator then closes before it ever armed a retry timer, so
// closing must not touch that timer.
func TestTopicCreatorStopsAtFirstAnswerThatItExists(t *testing.T) {
	for _, code := range []int16{codeNone, codeTopicAlreadyExists} {
		log := newToyLog(testTopic, 1)
		log.createTopicsCode = code
		var tc *topicCreator
		w := toyWorld(log, func(env sim.Env) {
			tc = startTopicCreator(env, []string{"broker:9092"}, "admin", testTopic, TopicSpec{Partitions: 1})
		})
		w.Run(5*time.Second, simEventsMax)
		if log.createTopicsAsked != 1 || !tc.done || tc.attempts != 1 {
			t.Errorf("answered %s: %d CreateTopics asked, %d attempts, done %v; want one and done",
				errorName(code), log.createTopicsAsked, tc.attempts, tc.done)
		}
	}
}

// TestTopicCreatorGivesUpAfterItsAttempts: a broker whose policy refuses
// the topic for good is asked exactly topicCreateAttemptsMax times (a
// retry every 200 ms: a minute), then the creator stops.
func TestTopicCreatorGivesUpAfterItsAttempts(t *testing.T) {
	log := newToyLog(testTopic, 1)
	log.createTopicsCode = codePolicyViolation
	var tc *topicCreator
	w := toyWorld(log, func(env sim.Env) {
		tc = startTopicCreator(env, []string{"broker:9092"}, "admin", testTopic, TopicSpec{Partitions: 1})
	})
	// Twice the minute the attempts take: none may follow the last.
	w.Run(2*time.Duration(topicCreateAttemptsMax)*topicCreateRetry, simEventsMax)
	if log.createTopicsAsked != topicCreateAttemptsMax || !tc.done {
		t.Fatalf("%d CreateTopics asked, done %v; want %d and done", log.createTopicsAsked, tc.done, topicCreateAttemptsMax)
	}
}

// TestRecordDeleterCountsAnswers: a deletion the broker performs counts
// in RecordDeletes, one it refuses (an offset past the high watermark:
// OFFSET_OUT_OF_RANGE) in RecordDeletesFailed, as DriverStats documents.
// Two partitions of three are deleted from, so that the two counts differ
// and counters swapped would show.
func TestRecordDeleterCountsAnswers(t *testing.T) {
	log := newToyLog(testTopic, 3)
	for _, part := range log.partitions {
		part.end = 10 // ten offsets each; nothing reads them
	}
	var stats DriverStats
	turns := 0
	position := func(tp TopicPartition) (int64, bool) {
		turns++
		if turns > 12 {
			return 0, false // no more deletions: every answer is in before the run ends
		}
		if tp.Partition == 2 {
			return 50, true
		}
		return 5, true
	}
	w := toyWorld(log, func(env sim.Env) {
		startRecordDeleter(env, []string{"broker:9092"}, testTopic, []int32{0, 1, 2}, 50*time.Millisecond, position, &stats)
	})
	w.Run(time.Second, simEventsMax)
	if log.deletesRefused == 0 || log.deletesDone <= log.deletesRefused || log.partitions[0].start != 5 || log.partitions[2].start != 0 {
		t.Fatalf("broker performed %d deletions, refused %d, log starts %d and %d; want more performed, partition 0 from 5",
			log.deletesDone, log.deletesRefused, log.partitions[0].start, log.partitions[2].start)
	}
	if stats.RecordDeletes != log.deletesDone || stats.RecordDeletesFailed != log.deletesRefused {
		t.Fatalf("counted %d deletions and %d failed; the broker performed %d and refused %d",
			stats.RecordDeletes, stats.RecordDeletesFailed, log.deletesDone, log.deletesRefused)
	}
}

// TestRecordDeleterRefreshesMetadataSparingly: an admin deleting records
// asks for metadata when it starts and when a leader is unknown, not again
// the moment each answer arrives: with no bound on the metadata's age it
// once asked about 5,000 times a simulated second for a whole run.
func TestRecordDeleterRefreshesMetadataSparingly(t *testing.T) {
	log := newToyLog(testTopic, 3)
	var stats DriverStats
	position := func(TopicPartition) (int64, bool) { return 0, false }
	w := toyWorld(log, func(env sim.Env) {
		startRecordDeleter(env, []string{"broker:9092"}, testTopic, []int32{0, 1, 2}, time.Second, position, &stats)
	})
	w.Run(10*time.Second, simEventsMax)
	if log.metadataAsked == 0 || log.metadataAsked > 2 {
		t.Fatalf("%d Metadata requests in 10 s; want the first one, and no refresh before metadata.max.age.ms", log.metadataAsked)
	}
}
