package kafka

import (
	"encoding/binary"
	"fmt"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// toyBroker is a one-node Kafka broker just big enough to run the actors in
// the simulated world: one leader for every partition, an in-memory log,
// idempotent producer deduplication over the last five batches, immediate
// answers. Its log lives in toyLog, which the test keeps, so a restart of
// the broker's node keeps it (an ideal disk).
type toyBroker struct {
	env  sim.Env
	log  *toyLog
	addr string
}

// toyLog is the broker's durable state.
type toyLog struct {
	topic      string
	partitions []*toyPartition
	nextPID    int64
	// noIdempotence hides InitProducerId from ApiVersions, as a broker
	// older than Kafka 0.11 would.
	noIdempotence bool
	// leaderEpoch is every partition's leader epoch: metadata says it,
	// appended batches carry it, and requests naming another one are
	// fenced (OffsetForLeaderEpoch; fetches do not check).
	leaderEpoch int32
	// produceCode, when not zero, answers every produce with it; nothing
	// is appended.
	produceCode int16
	// initProducerIDCode, when not zero, answers every InitProducerId
	// with it.
	initProducerIDCode int16
	// createTopicsCode is what CreateTopics answers for every topic (the
	// toy serves its one topic whatever it is told); createTopicsAsked
	// counts the requests.
	createTopicsCode  int16
	createTopicsAsked int
	// metadataAsked counts Metadata requests.
	metadataAsked int
	// deletesDone and deletesRefused count the partitions DeleteRecords
	// answered without and with an error.
	deletesDone, deletesRefused int
}

type toyPartition struct {
	batches []toyBatch
	end     int64
	// start is the log start offset, which DeleteRecords moves up: reads
	// below it are out of range.
	start int64
	// producers maps a producer id to its epoch and last batches.
	producers map[int64]*toyProducer
}

type toyProducer struct {
	epoch  int16
	recent []toyProduced
}

type toyBatch struct {
	base, last int64
	raw        []byte
}

type toyProduced struct {
	firstSeq, lastSeq int32
	base              int64
}

func newToyLog(topic string, partitions int) *toyLog {
	l := &toyLog{topic: topic}
	for range partitions {
		l.partitions = append(l.partitions, &toyPartition{producers: map[int64]*toyProducer{}})
	}
	return l
}

// startToyBroker returns a start function serving log on port 9092.
func startToyBroker(log *toyLog) sim.Start {
	return func(env sim.Env) {
		b := &toyBroker{env: env, log: log, addr: env.Node + ":9092"}
		_, err := env.Net.Listen(b.addr, sim.ConnOptions{Framing: sim.FrameLength32},
			func(sim.Conn) sim.ConnHandler { return b })
		sim.Assert(err == nil, "toy broker listen: %v", err)
	}
}

func (b *toyBroker) OnOpen(sim.Conn)              {}
func (b *toyBroker) OnClose(sim.Conn, error)      {}
func (b *toyBroker) OnFrame(c sim.Conn, f []byte) { b.serve(c, f) }

func (b *toyBroker) serve(c sim.Conn, frame []byte) {
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	body := frame[10+max(idLen, 0):]
	req := kmsg.RequestForKey(key)
	sim.Assert(req != nil, "toy broker: key %d", key)
	req.SetVersion(version)
	if req.IsFlexible() {
		var err error
		body, err = skipTagBuffer(body)
		sim.Assert(err == nil, "toy broker: header tags: %v", err)
	}
	sim.Assert(req.ReadFrom(body) == nil, "toy broker: parse %s v%d", keyName(key), version)
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = b.apiVersions(r)
	case *kmsg.MetadataRequest:
		b.log.metadataAsked++
		resp = b.metadata(r)
	case *kmsg.InitProducerIDRequest:
		out := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		if out.ErrorCode = b.log.initProducerIDCode; out.ErrorCode == codeNone {
			out.ProducerID, out.ProducerEpoch = b.log.nextPID, 0
			b.log.nextPID++
		} else {
			out.ProducerID, out.ProducerEpoch = -1, -1
		}
		resp = out
	case *kmsg.ProduceRequest:
		resp = b.produce(r)
		if r.Acks == 0 {
			return
		}
	case *kmsg.FetchRequest:
		resp = b.fetch(r)
	case *kmsg.ListOffsetsRequest:
		resp = b.listOffsets(r)
	case *kmsg.OffsetForLeaderEpochRequest:
		resp = b.offsetForLeaderEpoch(r)
	case *kmsg.CreateTopicsRequest:
		resp = b.createTopics(r)
	case *kmsg.DeleteRecordsRequest:
		resp = b.deleteRecords(r)
	default:
		panic(fmt.Sprintf("toy broker: %s not served", keyName(key)))
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(corr))
	if resp.IsFlexible() && key != int16(kmsg.ApiVersions) {
		out = append(out, 0)
	}
	if err := c.Send(resp.AppendTo(out)); err != nil {
		b.env.Log.Logf("toy broker: send: %v", err)
	}
}

func (b *toyBroker) apiVersions(r *kmsg.ApiVersionsRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.InitProducerID,
		kmsg.ApiVersions, kmsg.OffsetForLeaderEpoch, kmsg.CreateTopics, kmsg.DeleteRecords} {
		if key == kmsg.InitProducerID && b.log.noIdempotence {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = int16(key), 0, ourVersions[key].max
		out.ApiKeys = append(out.ApiKeys, k)
	}
	return out
}

func (b *toyBroker) metadata(r *kmsg.MetadataRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.MetadataResponse)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = 0, b.env.Node, 9092
	out.Brokers = append(out.Brokers, br)
	for _, rt := range r.Topics {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = rt.Topic
		if rt.Topic == nil || *rt.Topic != b.log.topic {
			t.ErrorCode = codeUnknownTopicOrPartition
		} else {
			for i := range b.log.partitions {
				p := kmsg.NewMetadataResponseTopicPartition()
				p.Partition, p.Leader, p.Replicas, p.ISR = int32(i), 0, []int32{0}, []int32{0}
				p.LeaderEpoch = b.log.leaderEpoch
				t.Partitions = append(t.Partitions, p)
			}
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

func (b *toyBroker) partition(topic string, p int32) *toyPartition {
	if topic != b.log.topic || p < 0 || int(p) >= len(b.log.partitions) {
		return nil
	}
	return b.log.partitions[p]
}

func (b *toyBroker) produce(r *kmsg.ProduceRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = rp.Partition
			p.ErrorCode, p.BaseOffset = b.append(b.partition(rt.Topic, rp.Partition), rp.Records)
			t.Partitions = append(t.Partitions, p)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

// append validates one batch and appends it, deduplicating idempotent
// retries as Kafka does.
func (b *toyBroker) append(part *toyPartition, raw []byte) (int16, int64) {
	if part == nil {
		return codeUnknownTopicOrPartition, -1
	}
	if b.log.produceCode != codeNone {
		return b.log.produceCode, -1
	}
	batches, err := record.Split(raw, 1)
	if err != nil || len(batches) != 1 || batches[0].VerifyProduced() != nil {
		return codeCorruptMessage, -1
	}
	got := batches[0]
	if _, err := got.Records(); err != nil {
		return codeCorruptMessage, -1
	}
	count := got.RecordCount()
	pid := got.ProducerID()
	var prod *toyProducer
	if pid >= 0 {
		prod = part.producers[pid]
		switch {
		case prod == nil:
			prod = &toyProducer{epoch: got.ProducerEpoch()}
			part.producers[pid] = prod
		case got.ProducerEpoch() < prod.epoch:
			return codeInvalidProducerEpoch, -1 // fenced by a newer epoch
		case got.ProducerEpoch() > prod.epoch:
			// KIP-360: a bumped epoch starts its sequence at 0.
			if got.BaseSequence() != 0 {
				return codeOutOfOrderSequenceNumber, -1
			}
			prod.epoch, prod.recent = got.ProducerEpoch(), nil
		}
		for _, pr := range prod.recent {
			if pr.firstSeq == got.BaseSequence() {
				return codeNone, pr.base // a retry of a batch already in the log
			}
		}
		expected := int32(0)
		if n := len(prod.recent); n > 0 {
			expected = prod.recent[n-1].lastSeq + 1
		}
		if got.BaseSequence() != expected {
			return codeOutOfOrderSequenceNumber, -1
		}
	}
	stored := append([]byte(nil), raw...)
	binary.BigEndian.PutUint64(stored, uint64(part.end))
	record.Batch(stored).SetPartitionLeaderEpoch(b.log.leaderEpoch)
	base := part.end
	part.batches = append(part.batches, toyBatch{base: base, last: base + int64(count) - 1, raw: stored})
	part.end += int64(count)
	if prod != nil {
		prod.recent = append(prod.recent, toyProduced{got.BaseSequence(), got.BaseSequence() + count - 1, base})
		if len(prod.recent) > 5 {
			prod.recent = prod.recent[1:]
		}
	}
	return codeNone, base
}

func (b *toyBroker) fetch(r *kmsg.FetchRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.FetchResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			part := b.partition(rt.Topic, rp.Partition)
			switch {
			case part == nil:
				p.ErrorCode = codeUnknownTopicOrPartition
			case rp.FetchOffset < part.start || rp.FetchOffset > part.end:
				p.ErrorCode = codeOffsetOutOfRange
				p.HighWatermark = part.end
			default:
				p.HighWatermark, p.LastStableOffset = part.end, part.end
				for _, tb := range part.batches {
					if tb.last < rp.FetchOffset {
						continue
					}
					if len(p.RecordBatches) > 0 && len(p.RecordBatches)+len(tb.raw) > int(rp.PartitionMaxBytes) {
						break
					}
					p.RecordBatches = append(p.RecordBatches, tb.raw...)
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

func (b *toyBroker) listOffsets(r *kmsg.ListOffsetsRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			part := b.partition(rt.Topic, rp.Partition)
			switch {
			case part == nil:
				p.ErrorCode = codeUnknownTopicOrPartition
			case rp.Timestamp == timestampEarliest:
				p.Offset = part.start
			default:
				p.Offset = part.end
			}
			t.Partitions = append(t.Partitions, p)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

// offsetForLeaderEpoch answers where each asked epoch ends: the log end for
// the current epoch, else the base of the first batch of a later epoch,
// with the largest epoch at or below the one asked; nothing for an epoch
// newer than the current one.
func (b *toyBroker) offsetForLeaderEpoch(r *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	current := b.log.leaderEpoch
	for _, rt := range r.Topics {
		t := kmsg.NewOffsetForLeaderEpochResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			p.Partition, p.LeaderEpoch, p.EndOffset = rp.Partition, -1, -1
			part := b.partition(rt.Topic, rp.Partition)
			switch {
			case part == nil:
				p.ErrorCode = codeUnknownTopicOrPartition
			case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < current:
				p.ErrorCode = codeFencedLeaderEpoch
			case rp.CurrentLeaderEpoch > current:
				p.ErrorCode = codeUnknownLeaderEpoch
			case rp.LeaderEpoch == current:
				p.LeaderEpoch, p.EndOffset = current, part.end
			case rp.LeaderEpoch < current:
				p.EndOffset = part.end
				for _, tb := range part.batches {
					e := record.Batch(tb.raw).PartitionLeaderEpoch()
					if e > rp.LeaderEpoch {
						p.EndOffset = tb.base
						break
					}
					p.LeaderEpoch = e
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

// createTopics answers every topic with createTopicsCode.
func (b *toyBroker) createTopics(r *kmsg.CreateTopicsRequest) kmsg.Response {
	b.log.createTopicsAsked++
	out := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.ErrorCode = rt.Topic, b.log.createTopicsCode
		out.Topics = append(out.Topics, t)
	}
	return out
}

// deleteRecords moves log starts up as Kafka does: to the offset asked,
// the high watermark for -1, and OFFSET_OUT_OF_RANGE for an offset past
// the high watermark (here the log end).
func (b *toyBroker) deleteRecords(r *kmsg.DeleteRecordsRequest) kmsg.Response {
	out := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDeleteRecordsResponseTopicPartition()
			p.Partition, p.LowWatermark = rp.Partition, -1
			part := b.partition(rt.Topic, rp.Partition)
			offset := rp.Offset
			if part != nil && offset == -1 {
				offset = part.end
			}
			switch {
			case part == nil:
				p.ErrorCode = codeUnknownTopicOrPartition
			case offset < 0 || offset > part.end:
				p.ErrorCode = codeOffsetOutOfRange
			default:
				part.start = max(part.start, offset)
				p.LowWatermark = part.start
			}
			if p.ErrorCode == codeNone {
				b.log.deletesDone++
			} else {
				b.log.deletesRefused++
			}
			t.Partitions = append(t.Partitions, p)
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}
