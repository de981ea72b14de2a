package controller

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// The broker-controller protocol: a request frame is frameRequest followed
// by a JSON Request, a response frame is frameResponse followed by a JSON
// Response with the same ID. Only the active controller (the raft leader
// holding its quorum) serves; any other answers NOT_CONTROLLER with the
// leader's address when it knows it.

// Op names a request.
type Op string

// The requests.
const (
	OpRegister           Op = "register"
	OpHeartbeat          Op = "heartbeat"
	OpControlledShutdown Op = "controlled-shutdown"
	OpAlterPartition     Op = "alter-partition"
	OpCreateTopic        Op = "create-topic"
	OpDeleteTopic        Op = "delete-topic"
	OpFetchMetadata      Op = "fetch-metadata"
	// OpAlterTopicConfigs replaces a topic's whole config set (Configs,
	// with Unclean its unclean.leader.election.enable).
	OpAlterTopicConfigs Op = "alter-topic-configs"
	// OpCreatePartitions raises a topic's partition count to Partitions.
	OpCreatePartitions Op = "create-partitions"
)

// Request is one request to a controller.
type Request struct {
	ID uint64 `json:"id"`
	Op Op     `json:"op"`

	BrokerID    int32  `json:"broker_id,omitempty"`
	BrokerEpoch int64  `json:"broker_epoch,omitempty"`
	Addr        string `json:"addr,omitempty"`
	Incarnation string `json:"incarnation,omitempty"`
	// MetadataOffset is how far the heartbeating broker's image has got:
	// a broker is unfenced only once it has caught up to its own
	// registration.
	MetadataOffset int64 `json:"metadata_offset,omitempty"`

	Topic   string `json:"topic,omitempty"`
	TopicID string `json:"topic_id,omitempty"`
	// Partitions is a new topic's partition count, or the count
	// CreatePartitions raises a topic to.
	Partitions        int32 `json:"partitions,omitempty"`
	ReplicationFactor int16 `json:"replication_factor,omitempty"`
	Unclean           bool  `json:"unclean,omitempty"`
	// Configs are a new topic's configs, or an altered topic's new set.
	Configs map[string]string `json:"configs,omitempty"`

	Partition      int32   `json:"partition,omitempty"`
	LeaderEpoch    int32   `json:"leader_epoch,omitempty"`
	PartitionEpoch int32   `json:"partition_epoch,omitempty"`
	ISR            []int32 `json:"isr,omitempty"`

	// FromOffset is where a metadata fetch starts.
	FromOffset int64 `json:"from_offset,omitempty"`
}

// Response answers a Request.
type Response struct {
	ID   uint64        `json:"id"`
	Code metadata.Code `json:"code"`
	// LeaderHint is the active controller's address, with NOT_CONTROLLER,
	// when this controller knows it.
	LeaderHint  string              `json:"leader_hint,omitempty"`
	BrokerEpoch int64               `json:"broker_epoch,omitempty"`
	Fenced      bool                `json:"fenced,omitempty"`
	TopicID     string              `json:"topic_id,omitempty"`
	Partition   *metadata.Partition `json:"partition,omitempty"`
	// Offset is the offset of the record a proposed request was answered
	// by, so a broker can wait until its image holds it.
	Offset int64 `json:"offset,omitempty"`
	// Delta and Committed answer a metadata fetch: Committed is the
	// offset through which the log is committed and applied.
	Delta     *metadata.Delta `json:"delta,omitempty"`
	Committed int64           `json:"committed,omitempty"`
}

func encodeMessage(kind byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode controller message: %v", err))
	}
	return append([]byte{kind}, b...)
}

// EncodeRequest frames a request.
func EncodeRequest(r Request) []byte { return encodeMessage(frameRequest, r) }

// DecodeResponse parses a response frame.
func DecodeResponse(frame []byte) (Response, error) {
	var r Response
	if len(frame) == 0 || frame[0] != frameResponse {
		return r, fmt.Errorf("controller response: frame is not a response")
	}
	if fastDecodeResponse(frame[1:], &r) {
		return r, nil
	}
	if err := json.Unmarshal(frame[1:], &r); err != nil {
		return r, fmt.Errorf("controller response: %w", err)
	}
	return r, nil
}

func decodeRequest(body []byte) (Request, error) {
	var r Request
	if fastDecodeRequest(body, &r) {
		return r, nil
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("controller request: %w", err)
	}
	return r, nil
}
