package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// DeleteTopics: v0-5.
//
// Forgets each named topic durably, then deletes its partitions' files;
// requests waiting on its partitions are answered with
// UNKNOWN_TOPIC_OR_PARTITION. In a cluster the controller deletes it, and
// the answer waits until this broker's image no longer holds it.
func init() { serve(20, 0, 5, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, req *request) {
	r := req.kreq.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	names := r.TopicNames
	for _, t := range r.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	pending := 1
	finish := func() {
		pending--
		if pending == 0 {
			req.respond(resp)
		}
	}
	for _, name := range names {
		i := len(resp.Topics)
		st := kmsg.NewDeleteTopicsResponseTopic()
		n := name
		st.Topic = &n
		resp.Topics = append(resp.Topics, st)
		if b.cluster != nil {
			pending++
			b.cluster.deleteTopic(name, func(code metadata.Code) {
				resp.Topics[i].ErrorCode = int16(code)
				finish()
			})
			continue
		}
		if b.topics.get(name) == nil {
			resp.Topics[i].ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		resp.Topics[i].TopicID = b.topics.get(name).id
		pending++
		b.topics.remove(name, func(err error) {
			if err != nil {
				resp.Topics[i].ErrorCode = kerr.KafkaStorageError.Code
			}
			finish()
		})
	}
	finish()
}
