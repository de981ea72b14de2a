package broker

import (
	"fmt"
	"path"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// CreatePartitions: v0-3.
//
// Raises a topic's partition count (never lowers it: INVALID_PARTITIONS).
// The new partitions are served once topics.json records the new count;
// until then clients see the old one. In a cluster the controller records
// the count and the new partitions' replicas in the metadata log, every
// broker opens its replicas from its image, and the answer waits for this
// broker's image to hold them. Manual assignments are refused;
// validate_only checks without changing. v2 is flexible; v3 is v2 again.
func init() { serve(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, req *request) {
	r := req.kreq.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	pending := 1
	finish := func() {
		pending--
		if pending == 0 {
			req.respond(resp)
		}
	}
	seen := map[string]bool{}
	for _, rt := range r.Topics {
		i := len(resp.Topics)
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		resp.Topics = append(resp.Topics, st)
		fail := func(e *kerr.Error, msg string) {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = e.Code, &msg
		}
		t, e, msg := b.checkNewPartitions(rt, seen)
		seen[rt.Topic] = true
		if e != nil {
			fail(e, msg)
			continue
		}
		if r.ValidateOnly {
			continue
		}
		pending++
		if b.cluster != nil {
			b.cluster.createPartitions(rt.Topic, rt.Count, func(code metadata.Code) {
				if code != metadata.CodeNone {
					fail(controllerError(code), "the controller refused: "+code.String())
				}
				finish()
			})
			continue
		}
		b.addPartitions(t, rt.Count, func(err error) {
			if err != nil {
				fail(kerr.KafkaStorageError, err.Error())
			}
			finish()
		})
	}
	finish()
}

func (b *Broker) checkNewPartitions(rt kmsg.CreatePartitionsRequestTopic, seen map[string]bool) (*topic, *kerr.Error, string) {
	t := b.topics.get(rt.Topic)
	if b.cluster != nil {
		t = b.cluster.topicView(rt.Topic)
		if t != nil {
			t.partitions = make([]*partition, t.Partitions)
		}
	}
	switch {
	case seen[rt.Topic]:
		return nil, kerr.InvalidRequest, "topic named twice in one request"
	case t == nil:
		return nil, kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %s does not exist", rt.Topic)
	case len(rt.Assignment) > 0:
		return nil, kerr.InvalidReplicaAssignment, "manual replica assignment is not supported"
	case rt.Count <= int32(len(t.partitions)):
		return nil, kerr.InvalidPartitions, fmt.Sprintf("topic %s has %d partitions; the count can only go up", rt.Topic, len(t.partitions))
	case rt.Count > partitionsMax:
		return nil, kerr.InvalidPartitions, fmt.Sprintf("%d partitions, want at most %d", rt.Count, partitionsMax)
	case t.Partitions != int32(len(t.partitions)):
		return nil, kerr.ReassignmentInProgress, fmt.Sprintf("topic %s is already changing its partition count", rt.Topic)
	}
	return t, nil, ""
}

// addPartitions opens partitions up to count and records the new count
// durably before serving them; done gets the outcome.
func (b *Broker) addPartitions(t *topic, count int32, done func(error)) {
	old := int32(len(t.partitions))
	var added []*partition
	for i := old; i < count; i++ {
		// A recovery point read at start may belong to an earlier topic
		// of the same name.
		delete(b.recoveryPoints, path.Base(partitionDir("", t.Name, i)))
		p, err := openPartition(b, t, i)
		if err != nil {
			for _, q := range added {
				q.close()
			}
			done(fmt.Errorf("open partition %s-%d: %w", t.Name, i, err))
			return
		}
		added = append(added, p)
	}
	t.Partitions = count
	b.topics.persist(func(err error) {
		if b.topics == nil || b.topics.byName[t.Name] != t {
			for _, q := range added {
				q.close()
			}
			done(fmt.Errorf("topic %s went away", t.Name))
			return
		}
		if err != nil {
			// Unrecorded, the partitions would vanish at the next start:
			// drop them (their directories are strays for that start).
			t.Partitions = old
			for _, q := range added {
				q.close()
			}
			done(err)
			return
		}
		t.partitions = append(t.partitions, added...)
		done(nil)
	})
}
