package kafka

import (
	"fmt"

	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// versionRange is the versions of one API key we speak.
type versionRange struct {
	min, max int16
}

// ourVersions are the request versions the actors can send. The minimums
// are where a feature we rely on appears; the maximums stop before topic
// ids replace topic names (Produce v13, Fetch v13), which these actors do
// not track.
var ourVersions = map[kmsg.Key]versionRange{
	// v3 is the first to carry RecordBatch v2.
	kmsg.Produce: {3, 12},
	// v4 is the first to return RecordBatch v2 and the isolation level.
	kmsg.Fetch: {4, 12},
	// v1 returns a single offset per partition instead of a list.
	kmsg.ListOffsets: {1, 8},
	// v1 distinguishes "no topics" from "all topics" and names the
	// controller.
	kmsg.Metadata:       {1, 12},
	kmsg.InitProducerID: {0, 5},
	kmsg.ApiVersions:    {0, 3},
	// The group consumer's (group_consumer.go): FindCoordinator before
	// v4's batched keys, JoinGroup from v4's MEMBER_ID_REQUIRED,
	// OffsetFetch before v8's many groups.
	kmsg.FindCoordinator: {1, 3},
	kmsg.JoinGroup:       {4, 9},
	kmsg.SyncGroup:       {1, 5},
	kmsg.Heartbeat:       {1, 4},
	kmsg.LeaveGroup:      {1, 5},
	kmsg.OffsetCommit:    {2, 8},
	kmsg.OffsetFetch:     {1, 7},
	// Consumers validate positions from v3, as Kafka's do (KIP-320).
	kmsg.OffsetForLeaderEpoch: {3, 4},
	// A driver creates its topic with configs (TopicSpec).
	kmsg.CreateTopics: {2, 7},
	// A driver's admin deletes records (DeleteRecordsEvery).
	kmsg.DeleteRecords: {0, 2},
}

// apiVersionsAsk is the ApiVersions version a connection opens with. A
// broker that does not serve it answers UNSUPPORTED_VERSION in v0 form with
// its ranges, which is enough.
const apiVersionsAsk = 3

// brokerVersions is what a broker advertised: the max version per key, -1
// for a key it does not serve.
type brokerVersions struct {
	max [brokerKeysMax]int16
}

// brokerKeysMax bounds the API keys we remember; higher keys are ignored.
const brokerKeysMax = 128

func newBrokerVersions(resp *kmsg.ApiVersionsResponse) brokerVersions {
	var bv brokerVersions
	for i := range bv.max {
		bv.max[i] = -1
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey >= 0 && int(k.ApiKey) < brokerKeysMax && k.MaxVersion >= k.MinVersion {
			bv.max[k.ApiKey] = k.MaxVersion
		}
	}
	return bv
}

// errUnsupported says a broker does not serve a version of an API key we
// can speak; it is a definite error (the request was never sent).
type errUnsupported struct {
	key         kmsg.Key
	brokerMax   int16
	ourMin      int16
	brokerKnown bool
}

// Error says what the broker lacks.
func (e *errUnsupported) Error() string {
	if e.brokerKnown && e.brokerMax >= 0 {
		return fmt.Sprintf("broker serves %s up to v%d, we need v%d or later", keyName(int16(e.key)), e.brokerMax, e.ourMin)
	}
	return fmt.Sprintf("broker does not serve %s", keyName(int16(e.key)))
}

// ourVersionsByKey and ourVersionKnown are ourVersions as arrays: a
// request looks its key up, and a map lookup per request showed.
var (
	ourVersionsByKey [brokerKeysMax]versionRange
	ourVersionKnown  [brokerKeysMax]bool
)

func init() {
	for key, r := range ourVersions {
		if key >= 0 && int(key) < brokerKeysMax {
			ourVersionsByKey[key], ourVersionKnown[key] = r, true
		}
	}
}

// negotiate picks min(our max, the broker's max) for key, as franz-go and
// the Java client do.
func (bv *brokerVersions) negotiate(key kmsg.Key) (int16, error) {
	var ours versionRange
	ok := key >= 0 && int(key) < brokerKeysMax && ourVersionKnown[key]
	if ok {
		ours = ourVersionsByKey[key]
	}
	if !ok {
		// Inside the branch: Assert's arguments are boxed, which
		// allocates, and this runs on every request.
		sim.Assert(false, "no version range for %s", keyName(int16(key)))
	}
	theirs := bv.max[key]
	if theirs < ours.min {
		return 0, &errUnsupported{key: key, brokerMax: theirs, ourMin: ours.min, brokerKnown: true}
	}
	return min(ours.max, theirs), nil
}
