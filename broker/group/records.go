package group

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetsTopic is the compacted topic that holds committed offsets and group
// metadata, in Kafka's record formats, so that a log written here reads as
// Kafka's would and replication carries it like any topic.
const OffsetsTopic = "__consumer_offsets"

// Key versions of __consumer_offsets records: 0 and 1 are an offset commit,
// 2 is group metadata (Kafka's GroupMetadataManager).
const (
	keyVersionOffsetCommit = 1
	keyVersionGroup        = 2
	// valueVersionOffsetCommit 3 carries the leader epoch; 4 is flexible
	// and adds nothing the coordinator uses.
	valueVersionOffsetCommit = 3
	// valueVersionGroup 3 carries group.instance.id.
	valueVersionGroup = 3
)

// Record is one record to append to a __consumer_offsets partition. A nil
// Value is a tombstone: compaction then forgets the key.
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// PartitionFor is the __consumer_offsets partition of a group: Java's
// String.hashCode of the id, made non-negative as Kafka's Utils.abs does
// (a mask, so that MinInt32 maps to 0), modulo the partition count.
func PartitionFor(groupID string, partitions int32) int32 {
	return (javaStringHash(groupID) & 0x7fffffff) % partitions
}

// javaStringHash is String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code
// units, wrapping at 32 bits.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xd800+(r>>10))
			h = 31*h + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

func offsetCommitKey(groupID, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: keyVersionOffsetCommit, Group: groupID, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetCommitValue(o Offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = valueVersionOffsetCommit
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestampMs
	return v.AppendTo(nil)
}

func groupKey(groupID string) []byte {
	k := kmsg.GroupMetadataKey{Version: keyVersionGroup, Group: groupID}
	return k.AppendTo(nil)
}

// groupValue is a group's metadata as Kafka writes it after a rebalance
// completes (or the group empties).
func groupValue(g *group) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = valueVersionGroup
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = &g.protocol
	}
	if g.leader != "" {
		v.Leader = &g.leader
	}
	v.CurrentStateTimestamp = g.stateTimestampMs
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID = m.id, m.instanceID
		vm.ClientID, vm.ClientHost = m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = m.protocolMetadata(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// decodedRecord is a __consumer_offsets record read back: an offset commit
// (Topic set) or group metadata; Value nil is a tombstone.
type decodedRecord struct {
	group     string
	topic     string
	partition int32
	isOffset  bool
	offset    *kmsg.OffsetCommitValue
	metadata  *kmsg.GroupMetadataValue
}

// decodeRecord parses a key and value Kafka or this coordinator wrote.
// Unknown key versions (transaction markers of other record kinds) are
// reported as errors for the loader to skip.
func decodeRecord(key, value []byte) (decodedRecord, error) {
	if len(key) < 2 {
		return decodedRecord{}, fmt.Errorf("key of %d bytes has no version", len(key))
	}
	var d decodedRecord
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return d, fmt.Errorf("offset commit key: %w", err)
		}
		d.group, d.topic, d.partition, d.isOffset = k.Group, k.Topic, k.Partition, true
		if value != nil {
			v := kmsg.NewOffsetCommitValue()
			if err := v.ReadFrom(value); err != nil {
				return d, fmt.Errorf("offset commit value of group %s: %w", k.Group, err)
			}
			if v.Version < 3 {
				v.LeaderEpoch = -1
			}
			d.offset = &v
		}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return d, fmt.Errorf("group metadata key: %w", err)
		}
		d.group = k.Group
		if value != nil {
			v := kmsg.NewGroupMetadataValue()
			if err := v.ReadFrom(value); err != nil {
				return d, fmt.Errorf("group metadata value of group %s: %w", k.Group, err)
			}
			d.metadata = &v
		}
	default:
		return d, fmt.Errorf("unknown key version %d", version)
	}
	return d, nil
}
