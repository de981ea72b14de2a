package kafka

import (
	"encoding/binary"
	"math/rand/v2"
)

// Murmur2 is the 32-bit MurmurHash2 of Kafka's Java client
// (org.apache.kafka.common.utils.Utils.murmur2), seed 0x9747b28c, reading
// the data as little-endian 32-bit words.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// KeyPartition is the partition Kafka's Java client picks for a keyed
// record: toPositive(murmur2(key)) % partitions, where toPositive clears
// the sign bit (it is not an absolute value).
func KeyPartition(key []byte, partitions int) int32 {
	if partitions <= 0 {
		panic("kafka: KeyPartition over no partitions")
	}
	positive := uint32(Murmur2(key)) & 0x7fffffff
	return int32(positive % uint32(partitions))
}

// stickyPartitioner places records without a key as KIP-480 does: every
// record of a topic goes to one partition until the batch it filled is
// closed, then a new partition is drawn at random, avoiding the previous
// one when there is a choice.
type stickyPartitioner struct {
	rand *rand.Rand
	// current is each topic's sticky partition and the batch it fills.
	current map[string]stickyChoice
}

type stickyChoice struct {
	partition int32
	batch     *batch
}

func newStickyPartitioner(r *rand.Rand) *stickyPartitioner {
	return &stickyPartitioner{rand: r, current: map[string]stickyChoice{}}
}

// partition picks the partition for a keyless record of topic. available
// lists the partitions with a known leader; when it is empty every one of
// the topic's partitions may be drawn.
func (s *stickyPartitioner) partition(topic string, partitions int, available []int32) int32 {
	cur, ok := s.current[topic]
	if ok && cur.batch != nil && !cur.batch.sealed && int(cur.partition) < partitions {
		return cur.partition
	}
	prev := int32(-1)
	if ok {
		prev = cur.partition
	}
	var p int32
	switch {
	case len(available) == 1:
		p = available[0]
	case len(available) > 1:
		p = available[s.rand.IntN(len(available))]
		if p == prev {
			// Draw among the others, uniformly.
			i := s.rand.IntN(len(available) - 1)
			if available[i] == prev {
				i = len(available) - 1
			}
			p = available[i]
		}
	default:
		p = int32(s.rand.IntN(partitions))
	}
	s.current[topic] = stickyChoice{partition: p}
	return p
}

// filled tells the partitioner which batch its choice for topic went into.
func (s *stickyPartitioner) filled(topic string, partition int32, b *batch) {
	if cur, ok := s.current[topic]; ok && cur.partition == partition {
		s.current[topic] = stickyChoice{partition: partition, batch: b}
	}
}
