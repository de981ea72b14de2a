package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterTopicDeletionOnAFailingDiskLeavesNoDirectoryUnderItsName: a
// broker that deletes a topic's partition directories while its disk
// fails metadata operations leaves nothing under the topic's name, where
// a topic created again under that name would open the old records as
// its own. Each directory is moved aside first, as Kafka renames a
// deleted log's directory, so that a removal failing part way leaves a
// stray under another name; a move that fails starts the broker over,
// as Kafka takes a log directory it cannot rename offline, and the start
// removes the directory of the topic the image no longer holds.
func TestClusterTopicDeletionOnAFailingDiskLeavesNoDirectoryUnderItsName(t *testing.T) {
	const topic, failing = "doomed", int32(2)
	c := newClusterRig(t, 31, nil, nil)
	spec := newTopicSpec(topic, 1)
	spec.ReplicationFactor = 3
	expectCode(t, "create "+topic, c.createTopics(false, spec)[0].ErrorCode, nil)
	c.checkPartitionsEverywhere(topic, 1)
	leader := c.image().Topics[topic].Partitions[0].Leader
	pr := produceRequest(topic, 0, -1, buildBatch(t, plain, c.now().Milliseconds(), "old-a", "old-b"))
	pr.TimeoutMillis = 5_000
	expectCode(t, "acks=all produce to "+topic, producePartition(t, c.ask(leader, pr)).ErrorCode, nil)

	disk := c.w.Node(brokerName(failing)).Disk()
	disk.SetMetaErrorRate(1)
	resp := c.ask(1, deleteTopicsRequest(topic)).(*kmsg.DeleteTopicsResponse)
	expectCode(t, "delete "+topic, resp.Topics[0].ErrorCode, nil)
	c.runUntil("the failing broker applied the deletion", 10*time.Second, func() bool {
		return c.logged(brokerName(failing), "topic "+topic+" deleted")
	})
	disk.SetMetaErrorRate(0)
	c.runUntil("every broker unfenced", 30*time.Second, func() bool { return c.unfenced() == 3 })
	c.runFor(2 * time.Second)
	names, err := disk.FS().List(dataDir)
	if err != nil {
		t.Fatalf("list %s: %v", dataDir, err)
	}
	for _, name := range names {
		if name == topic+"-0" {
			t.Fatalf("broker %d keeps %s/%s after the deletion: %v", failing, dataDir, name, names)
		}
	}
}
