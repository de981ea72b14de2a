package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/sim"
)

// recordDeleter is an admin deleting records as Kafka's
// AdminClient.deleteRecords (kafka-delete-records.sh) does: about every
// so often it moves the log start of one of the driver's partitions, in
// turn, up to the position the driver's first consumer has reached, an
// offset below the high watermark. The broker refuses reads below the new
// start and deletes the segments wholly below it; consumers further
// behind fall out of range and reset; the checkers excuse records below a
// partition's final log start.
type recordDeleter struct {
	env        sim.Env
	cl         *cluster
	topic      string
	partitions []int32
	every      time.Duration
	// position is where the deletion of a partition goes up to; false
	// while unknown.
	position func(TopicPartition) (int64, bool)
	stats    *DriverStats
	next     int
	timer    sim.Timer
	stopped  bool
}

// recordDeleteTimeoutMs is the DeleteRecords request's timeout.
const recordDeleteTimeoutMs = 5000

// startRecordDeleter starts deleting records of topic's partitions on the
// bootstrap brokers' cluster.
func startRecordDeleter(env sim.Env, bootstrap []string, topic string, partitions []int32, every time.Duration,
	position func(TopicPartition) (int64, bool), stats *DriverStats) *recordDeleter {
	rd := &recordDeleter{env: env, topic: topic, partitions: partitions, every: every, position: position, stats: stats}
	rd.cl = newCluster(env, adminClusterConfig(bootstrap, "sluice-admin-delete"), func() {})
	rd.cl.want(topic)
	rd.schedule()
	return rd
}

func (rd *recordDeleter) schedule() {
	if !rd.stopped {
		rd.timer = rd.env.Clock.AfterFunc(rd.every, rd.deleteNext)
	}
}

// deleteNext asks the leader of the next partition to delete the records
// below the consumer's position; a partition without a position or a
// known leader waits for its next turn.
func (rd *recordDeleter) deleteNext() {
	tp := TopicPartition{Topic: rd.topic, Partition: rd.partitions[rd.next%len(rd.partitions)]}
	rd.next++
	offset, known := rd.position(tp)
	leader := rd.cl.leader(tp.Topic, tp.Partition)
	if !known || offset <= 0 || leader < 0 {
		if leader < 0 {
			rd.cl.refresh()
		}
		rd.schedule()
		return
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = recordDeleteTimeoutMs
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = tp.Topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = tp.Partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rd.cl.call(leader, req, time.Duration(recordDeleteTimeoutMs)*time.Millisecond, false, rd.answered)
}

// answered counts the deletion's outcome and schedules the next.
func (rd *recordDeleter) answered(resp kmsg.Response, err error) {
	if rd.stopped {
		return
	}
	code := codeNone
	if err == nil {
		r := resp.(*kmsg.DeleteRecordsResponse)
		if len(r.Topics) == 1 && len(r.Topics[0].Partitions) == 1 {
			code = r.Topics[0].Partitions[0].ErrorCode
		}
	}
	if err != nil || code != codeNone {
		rd.stats.RecordDeletesFailed++
		rd.cl.refresh()
	} else {
		rd.stats.RecordDeletes++
	}
	rd.schedule()
}

// stop ends the deletions and closes the deleter's connections.
func (rd *recordDeleter) stop() {
	if rd.stopped {
		return
	}
	rd.stopped = true
	if rd.timer != nil {
		rd.timer.Stop()
	}
	rd.cl.close()
}
