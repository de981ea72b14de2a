package broker

// LogStart is a partition's log start offset on this broker, -1 when it
// holds no replica of it.
func (b *Broker) LogStart(topicName string, index int32) int64 {
	if b.topics == nil {
		return -1
	}
	t := b.topics.byName[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) || t.partitions[index] == nil {
		return -1
	}
	return t.partitions[index].log.StartOffset()
}
