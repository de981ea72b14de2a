package metadata

// Assign spreads partitions' replicas over brokers (sorted ids) the way
// Kafka's rack-unaware assignment does: partition p's replicas are
// consecutive brokers from a start that moves one broker per partition, so
// leaderships (the first replica) spread evenly. The start depends on seed
// (the creating record's offset), so topics do not all pile their first
// partition on the lowest broker, and the result is the same on every node.
func Assign(brokers []int32, partitions, replicationFactor int, seed int64) [][]int32 {
	n := len(brokers)
	if n == 0 || replicationFactor > n {
		return nil
	}
	start := int(uint64(seed) % uint64(n))
	out := make([][]int32, partitions)
	for p := range partitions {
		replicas := make([]int32, replicationFactor)
		for r := range replicationFactor {
			replicas[r] = brokers[(start+p+r)%n]
		}
		out[p] = replicas
	}
	return out
}
