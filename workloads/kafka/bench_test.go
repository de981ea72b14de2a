package kafka

import (
	"fmt"
	"testing"
)

// benchRecords is a producer batch's worth of 100-byte records.
func benchRecords() []Record {
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Topic: "t", Key: []byte(fmt.Sprintf("key-%04d", i)),
			Value: []byte(fmt.Sprintf("%0100d", i*7919)), TimestampMs: 1_700_000_000_000 + int64(i)}
	}
	return recs
}

// BenchmarkEncodeBatch is the producer freezing a batch of 100 records.
func BenchmarkEncodeBatch(b *testing.B) {
	recs := benchRecords()
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			p := &Producer{cfg: ProducerConfig{Compression: codec}, idempotent: true, producerID: 5, producerEpoch: 1}
			ps := &partState{}
			bt := &batch{}
			for i := range recs {
				bt.records = append(bt.records, &pendingRecord{rec: recs[i]})
			}
			b.ReportAllocs()
			for b.Loop() {
				bt.encoded = nil
				if !p.encode(ps, bt) {
					b.Fatal("encode failed")
				}
			}
		})
	}
}

// BenchmarkTakeBatches is the consumer reading a fetch of ten such batches.
func BenchmarkTakeBatches(b *testing.B) {
	recs := benchRecords()
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			var data []byte
			for i := range 10 {
				enc, _ := encodeForTest(b, recs, codec, 5, 1, int32(i*len(recs)))
				enc.SetBaseOffset(int64(i * len(recs)))
				data = append(data, enc...)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				cp := &consumedPart{}
				got, err := cp.takeBatches(data, nil)
				if err != nil || len(got) != 10*len(recs) {
					b.Fatalf("%d records, %v", len(got), err)
				}
			}
		})
	}
}
