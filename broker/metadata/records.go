// Package metadata is the cluster's metadata state machine: brokers and
// their epochs, topics, partitions, replica sets, leaders and ISRs. The
// controller quorum replicates Records in a log; every controller applies
// them in log order to a State, and brokers apply the same records to an
// Image. Apply is deterministic: the same records in the same order give the
// same state and the same results on every node, so decisions such as where
// replicas go and who leads after a failure are made once, by the log.
package metadata

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-sim/sluice/sim"
)

// Kind names what a record does.
type Kind string

// The record kinds.
const (
	KindRegisterBroker     Kind = "register-broker"
	KindUnfenceBroker      Kind = "unfence-broker"
	KindFenceBroker        Kind = "fence-broker"
	KindControlledShutdown Kind = "controlled-shutdown"
	KindCreateTopic        Kind = "create-topic"
	KindDeleteTopic        Kind = "delete-topic"
	KindAlterPartition     Kind = "alter-partition"
	KindElectPreferred     Kind = "elect-preferred"
	// KindAlterTopicConfigs replaces a topic's whole config map (Kafka's
	// ConfigRecord, one record for the topic's new set).
	KindAlterTopicConfigs Kind = "alter-topic-configs"
	// KindCreatePartitions raises a topic's partition count to Partitions
	// (Kafka's PartitionRecords for the new partitions).
	KindCreatePartitions Kind = "create-partitions"
	// KindNoop carries nothing; tests and the controller's own liveness
	// proposals use it.
	KindNoop Kind = "noop"
)

// Record is one entry of the metadata log. Fields a kind does not use are
// left empty and omitted from the encoding.
type Record struct {
	Kind Kind `json:"k"`
	// Req identifies the request that proposed the record, so that the
	// controller that proposed it can answer once it is applied.
	Req string `json:"req,omitempty"`

	BrokerID    int32  `json:"b,omitempty"`
	BrokerEpoch int64  `json:"be,omitempty"`
	Addr        string `json:"addr,omitempty"`
	// Incarnation tells a broker's restart from a retried registration.
	Incarnation string `json:"inc,omitempty"`

	Topic             string `json:"t,omitempty"`
	TopicID           string `json:"tid,omitempty"`
	Partitions        int32  `json:"np,omitempty"`
	ReplicationFactor int16  `json:"rf,omitempty"`
	// Unclean is the topic's unclean.leader.election.enable.
	Unclean bool `json:"unclean,omitempty"`
	// Configs are the topic's configs (min.insync.replicas, retention,
	// ...), kept for the brokers that host its partitions.
	Configs map[string]string `json:"cfg,omitempty"`

	Partition      int32   `json:"p,omitempty"`
	LeaderEpoch    int32   `json:"le,omitempty"`
	PartitionEpoch int32   `json:"pe,omitempty"`
	ISR            []int32 `json:"isr,omitempty"`

	// Elect lists the partitions a preferred-leader election covers.
	Elect []TopicPartition `json:"elect,omitempty"`
	// Payload is opaque bytes for noop records.
	Payload []byte `json:"pl,omitempty"`
}

// TopicPartition names a partition by topic id.
type TopicPartition struct {
	TopicID   string `json:"tid"`
	Partition int32  `json:"p"`
}

// Encode serialises a record. JSON keeps records readable in dumps; the
// short field names keep them small.
func (r Record) Encode() []byte {
	b, err := json.Marshal(r)
	sim.Assert(err == nil, "encode record: %v", err)
	return b
}

// DecodeRecord parses what Encode wrote.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode metadata record: %w", err)
	}
	if r.Kind == "" {
		return Record{}, fmt.Errorf("decode metadata record: no kind in %q", b)
	}
	return r, nil
}

// Code is an error code, numbered as Kafka numbers them so that a broker
// can pass them on unchanged.
type Code int16

// The codes the state machine and the controller answer with.
const (
	CodeNone                     Code = 0
	CodeUnknownTopicOrPartition  Code = 3
	CodeNotLeaderOrFollower      Code = 6
	CodeRequestTimedOut          Code = 7
	CodeTopicAlreadyExists       Code = 36
	CodeInvalidPartitions        Code = 37
	CodeInvalidReplicationFactor Code = 38
	CodeNotController            Code = 41
	CodeInvalidRequest           Code = 42
	CodeFencedLeaderEpoch        Code = 74
	CodeStaleBrokerEpoch         Code = 77
	CodeUnknownTopicID           Code = 100
	CodeBrokerIDNotRegistered    Code = 102
	CodeIneligibleReplica        Code = 107
	CodeInvalidUpdateVersion     Code = 108
)

var codeNames = map[Code]string{
	CodeNone: "NONE", CodeUnknownTopicOrPartition: "UNKNOWN_TOPIC_OR_PARTITION",
	CodeNotLeaderOrFollower: "NOT_LEADER_OR_FOLLOWER", CodeRequestTimedOut: "REQUEST_TIMED_OUT",
	CodeTopicAlreadyExists: "TOPIC_ALREADY_EXISTS", CodeInvalidPartitions: "INVALID_PARTITIONS",
	CodeInvalidReplicationFactor: "INVALID_REPLICATION_FACTOR", CodeNotController: "NOT_CONTROLLER",
	CodeInvalidRequest: "INVALID_REQUEST", CodeFencedLeaderEpoch: "FENCED_LEADER_EPOCH",
	CodeStaleBrokerEpoch: "STALE_BROKER_EPOCH", CodeUnknownTopicID: "UNKNOWN_TOPIC_ID",
	CodeBrokerIDNotRegistered: "BROKER_ID_NOT_REGISTERED", CodeIneligibleReplica: "INELIGIBLE_REPLICA",
	CodeInvalidUpdateVersion: "INVALID_UPDATE_VERSION",
}

func (c Code) String() string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return fmt.Sprintf("CODE_%d", int16(c))
}
