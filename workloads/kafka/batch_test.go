package kafka

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"testing"

	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/sluice-sim/sluice/broker/record"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// The batches are built and read by broker/record; these tests check what
// the actors decide about them (header fields, sequences, codecs, which
// records a fetch yields and where the position goes) against franz-go and
// the codec libraries used directly.

var allCodecs = []record.Compression{record.CompressionNone, record.CompressionGzip,
	record.CompressionSnappy, record.CompressionLZ4, record.CompressionZstd}

// testFailer is what encodeForTest needs of a *testing.T or a *rapid.T.
type testFailer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// encodeForTest freezes records into a batch the way the producer does, for
// a producer with the given identity (idempotent when producerID >= 0),
// and returns the batch and the partition's next sequence.
func encodeForTest(t testFailer, recs []Record, codec record.Compression, producerID int64, producerEpoch int16, seq int32) (record.Batch, int32) {
	t.Helper()
	p := &Producer{cfg: ProducerConfig{Compression: codec}, idempotent: producerID >= 0,
		producerID: producerID, producerEpoch: producerEpoch}
	ps := &partState{nextSeq: seq}
	b := &batch{}
	for i := range recs {
		b.records = append(b.records, &pendingRecord{rec: recs[i]})
	}
	if !p.encode(ps, b) {
		t.Fatalf("encode failed")
	}
	if !b.sealed || (p.idempotent && b.seq != seq) {
		t.Fatalf("encoded batch sealed %v with sequence %d, want %d", b.sealed, b.seq, seq)
	}
	return b.encoded, ps.nextSeq
}

func genRecords(t *rapid.T) []Record {
	n := rapid.IntRange(1, 40).Draw(t, "records")
	base := rapid.Int64Range(0, 1<<41).Draw(t, "baseTs")
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		if rapid.Bool().Draw(t, "hasKey") {
			r.Key = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "key")
		}
		if rapid.IntRange(0, 9).Draw(t, "nullValue") != 0 {
			r.Value = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value")
		}
		for range rapid.IntRange(0, 3).Draw(t, "headers") {
			r.Headers = append(r.Headers, Header{
				Key:   rapid.StringN(0, 10, -1).Draw(t, "hkey"),
				Value: rapid.SliceOfN(rapid.Byte(), 0, 10).Draw(t, "hvalue"),
			})
		}
		r.TimestampMs = base + rapid.Int64Range(-1000, 100000).Draw(t, "tsDelta")
	}
	return recs
}

// TestBatchRoundTrip encodes random records as the producer does, with
// every codec, and reads them back as the consumer does: unchanged, offsets
// counted from the base offset a broker sets, the position after the batch,
// and the sequence advanced by the record count, wrapping past MaxInt32.
func TestBatchRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := genRecords(t)
		codec := rapid.SampledFrom(allCodecs).Draw(t, "codec")
		seq := rapid.OneOf(rapid.Int32Range(0, 1<<20), rapid.Int32Range(math.MaxInt32-50, math.MaxInt32)).Draw(t, "seq")
		b, next := encodeForTest(t, recs, codec, 7, 2, seq)
		if want := int32((int64(seq) + int64(len(recs))) % (math.MaxInt32 + 1)); next != want {
			t.Fatalf("next sequence %d after %d records from %d, want %d", next, len(recs), seq, want)
		}
		if err := b.VerifyProduced(); err != nil {
			t.Fatalf("the broker would refuse the batch: %v", err)
		}
		if b.BaseOffset() != 0 || b.PartitionLeaderEpoch() != -1 || b.ProducerID() != 7 || b.ProducerEpoch() != 2 ||
			b.BaseSequence() != seq || b.Compression() != codec || b.Transactional() || b.LogAppendTime() ||
			b.RecordCount() != int32(len(recs)) || b.LastOffsetDelta() != int32(len(recs)-1) {
			t.Fatalf("header %s", b)
		}
		// A broker assigns the base offset; the CRC does not cover it.
		b.SetBaseOffset(1000)
		cp := &consumedPart{tp: TopicPartition{Topic: "t", Partition: 3}, position: 1000}
		got, err := cp.takeBatches(b, nil)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(got) != len(recs) || cp.position != 1000+int64(len(recs)) {
			t.Fatalf("%d records, position %d", len(got), cp.position)
		}
		for i, r := range got {
			want := recs[i]
			if r.Topic != "t" || r.Partition != 3 || r.Offset != 1000+int64(i) || r.TimestampMs != want.TimestampMs ||
				!sameNullable(r.Key, want.Key) || !sameNullable(r.Value, want.Value) || !sameHeaders(r.Headers, want.Headers) {
				t.Fatalf("record %d: got %+v, want %+v", i, r, want)
			}
		}
	})
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameNullable(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// independentDecompress expands a payload with the codec libraries used
// directly (standard library gzip, xerial snappy, lz4 frames, zstd), not
// through broker/record.
func independentDecompress(t *testing.T, payload []byte, codec record.Compression) []byte {
	t.Helper()
	var out []byte
	var err error
	switch codec {
	case record.CompressionNone:
		return payload
	case record.CompressionGzip:
		var r *stdgzip.Reader
		if r, err = stdgzip.NewReader(bytes.NewReader(payload)); err == nil {
			out, err = io.ReadAll(r)
		}
	case record.CompressionSnappy:
		if !bytes.HasPrefix(payload, []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}) {
			t.Fatalf("snappy payload lacks the xerial header the Java client writes")
		}
		out, err = xerial.Decode(payload)
	case record.CompressionLZ4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(payload)))
	case record.CompressionZstd:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil); err == nil {
			out, err = d.DecodeAll(payload, nil)
			d.Close()
		}
	}
	if err != nil {
		t.Fatalf("%v: %v", codec, err)
	}
	return out
}

// TestBatchMatchesKmsg parses the producer's batches, with and without a
// producer id, with kmsg's RecordBatch and Record readers and the codec
// libraries, so the layout and every codec's framing are checked by
// implementations other than broker/record.
func TestBatchMatchesKmsg(t *testing.T) {
	recs := []Record{
		{Key: []byte("k1"), Value: []byte("v1"), TimestampMs: 1_700_000_000_000},
		{Key: nil, Value: []byte("second"), TimestampMs: 1_700_000_000_005, Headers: []Header{{Key: "h", Value: []byte("x")}}},
		{Key: []byte(""), Value: nil, TimestampMs: 1_699_999_999_990},
	}
	for _, codec := range allCodecs {
		for _, pid := range []int64{-1, 12} {
			raw, _ := encodeForTest(t, recs, codec, pid, 4, 9)
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(raw); err != nil {
				t.Fatalf("%v: kmsg cannot read our batch: %v", codec, err)
			}
			wantEpoch, wantSeq := int16(-1), int32(-1)
			if pid >= 0 {
				wantEpoch, wantSeq = 4, 9
			}
			// The base timestamp is the first record's, as the Java
			// producer writes it; later records may lie before it.
			if kb.FirstOffset != 0 || kb.Magic != 2 || int(kb.Length) != len(raw)-12 || kb.NumRecords != 3 ||
				kb.LastOffsetDelta != 2 || kb.FirstTimestamp != 1_700_000_000_000 || kb.MaxTimestamp != 1_700_000_000_005 ||
				kb.ProducerID != pid || kb.ProducerEpoch != wantEpoch || kb.FirstSequence != wantSeq ||
				kb.PartitionLeaderEpoch != -1 || record.Compression(kb.Attributes&0x07) != codec || kb.Attributes&^0x07 != 0 {
				t.Fatalf("%v: header %+v", codec, kb)
			}
			if uint32(kb.CRC) != crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)) {
				t.Fatalf("%v: crc", codec)
			}
			payload := independentDecompress(t, kb.Records, codec)
			for i, want := range recs {
				var kr kmsg.Record
				// kmsg reads one record from the front; find its extent.
				length, n := binary.Varint(payload)
				if err := kr.ReadFrom(payload[:n+int(length)]); err != nil {
					t.Fatalf("%v record %d: %v", codec, i, err)
				}
				payload = payload[n+int(length):]
				if kr.OffsetDelta != int32(i) || kb.FirstTimestamp+kr.TimestampDelta64 != want.TimestampMs ||
					!sameNullable(kr.Key, want.Key) || !sameNullable(kr.Value, want.Value) || len(kr.Headers) != len(want.Headers) {
					t.Fatalf("%v record %d: %+v", codec, i, kr)
				}
			}
			if len(payload) != 0 {
				t.Fatalf("%v: %d bytes after the records", codec, len(payload))
			}
		}
	}
}

// kmsgBatch is a batch written by kmsg with records at the given offset
// deltas (a compacted batch has holes) over lastOffsetDelta+1 offsets.
func kmsgBatch(baseOffset int64, deltas []int32, lastOffsetDelta int32) []byte {
	var records []byte
	for _, d := range deltas {
		r := kmsg.NewRecord()
		r.OffsetDelta = d
		r.TimestampDelta64 = int64(d * 10)
		r.Value = bytes.Repeat([]byte{'a' + byte(d)}, int(d)+1)
		body := r.AppendTo(nil)
		// kmsg writes Length as given: fill it in with the body size.
		r.Length = int32(len(body) - 1)
		records = r.AppendTo(records)
	}
	kb := kmsg.NewRecordBatch()
	kb.FirstOffset = baseOffset
	kb.Magic = 2
	kb.LastOffsetDelta = lastOffsetDelta
	kb.FirstTimestamp = 5000
	kb.MaxTimestamp = 5000 + int64(lastOffsetDelta*10)
	kb.ProducerID = -1
	kb.ProducerEpoch = -1
	kb.FirstSequence = -1
	kb.NumRecords = int32(len(deltas))
	kb.Records = records
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestTakeKmsgBatches reads batches kmsg wrote: a whole one and a
// compacted one, whose gaps the position passes.
func TestTakeKmsgBatches(t *testing.T) {
	data := append(kmsgBatch(50, []int32{0, 1, 2}, 2), kmsgBatch(53, []int32{1, 4}, 6)...)
	cp := &consumedPart{position: 50}
	got, err := cp.takeBatches(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		offset int64
		delta  int32
	}{{50, 0}, {51, 1}, {52, 2}, {54, 1}, {57, 4}}
	if len(got) != len(want) || cp.position != 60 {
		t.Fatalf("decoded %+v, position %d", got, cp.position)
	}
	for i, r := range got {
		w := want[i]
		if r.Offset != w.offset || r.TimestampMs != 5000+int64(w.delta)*10 ||
			!bytes.Equal(r.Value, bytes.Repeat([]byte{'a' + byte(w.delta)}, int(w.delta)+1)) {
			t.Fatalf("record %d: %+v, want offset %d delta %d", i, r, w.offset, w.delta)
		}
	}
}

// producedBatch is a two-record batch from the producer at baseOffset.
func producedBatch(t *testing.T, baseOffset int64) record.Batch {
	t.Helper()
	b, _ := encodeForTest(t, []Record{{Value: []byte("x"), TimestampMs: 1}, {Value: []byte("y"), TimestampMs: 2}},
		record.CompressionNone, -1, -1, -1)
	b.SetBaseOffset(baseOffset)
	return b
}

func concat(batches ...[]byte) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

func TestTakeBatchesEdges(t *testing.T) {
	one, two := producedBatch(t, 0), producedBatch(t, 2)
	both := concat(one, two)
	take := func(position int64, data []byte) ([]Record, int64, error) {
		cp := &consumedPart{position: position}
		got, err := cp.takeBatches(data, nil)
		return got, cp.position, err
	}
	// A batch cut by the fetch byte limit is dropped silently, wherever
	// the cut falls.
	for _, cut := range []int{len(both) - 1, len(one) + record.HeaderBytes, len(one) + 12, len(one) + 7, len(one) + 1} {
		if got, pos, err := take(0, both[:cut]); len(got) != 2 || pos != 2 || err != nil {
			t.Fatalf("cut at %d: %d records, position %d, %v", cut, len(got), pos, err)
		}
	}
	// Records before the position are passed over.
	if got, pos, err := take(3, both); len(got) != 1 || got[0].Offset != 3 || pos != 4 || err != nil {
		t.Fatalf("from 3: %+v, position %d, %v", got, pos, err)
	}
	// A flipped bit fails the CRC; the batch before it is still taken and
	// the position stops at the corrupt one.
	bad := concat(one, two)
	bad[len(bad)-1] ^= 1
	if got, pos, err := take(0, bad); !errors.Is(err, record.ErrChecksum) || len(got) != 2 || pos != 2 {
		t.Fatalf("corrupt batch: %d records, position %d, %v", len(got), pos, err)
	}
	// Old message formats are refused rather than misread.
	old := concat(one)
	old[16] = 1
	if _, _, err := take(0, old); !errors.Is(err, record.ErrCorrupt) || errors.Is(err, record.ErrPartial) {
		t.Fatalf("magic 1: %v", err)
	}
	// A length field shorter than a header is corrupt, not partial.
	short := concat(one)
	binary.BigEndian.PutUint32(short[8:], 20)
	if _, _, err := take(0, short); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("short length: %v", err)
	}
	// A control batch yields no records but the position moves past it;
	// a corrupt one is corrupt all the same.
	ctl := record.NewBuilder()
	ctl.BaseOffset, ctl.Control, ctl.Transactional = 2, true, true
	marker, err := ctl.Build([]record.Record{{Offset: 2, Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, pos, err := take(0, concat(one, marker, producedBatch(t, 3))); len(got) != 4 || pos != 5 || err != nil || got[2].Offset != 3 {
		t.Fatalf("control batch: %+v, position %d, %v", got, pos, err)
	}
	marker[len(marker)-1] ^= 1
	if _, pos, err := take(0, concat(one, marker)); !errors.Is(err, record.ErrChecksum) || pos != 2 {
		t.Fatalf("corrupt control batch: position %d, %v", pos, err)
	}
	// A batch that compaction emptied still moves the position.
	emptied := record.NewBuilder()
	emptied.BaseOffset, emptied.LastOffsetDelta = 2, 4
	gap, err := emptied.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, pos, err := take(0, concat(one, gap)); len(got) != 2 || pos != 7 || err != nil {
		t.Fatalf("emptied batch: %d records, position %d, %v", len(got), pos, err)
	}
}

// TestTakeBatchesBound: beyond fetchBatchesMax batches the walk stops
// without an error, and the position says where the next fetch starts.
func TestTakeBatchesBound(t *testing.T) {
	unit, _ := encodeForTest(t, []Record{{Value: []byte("v"), TimestampMs: 1}}, record.CompressionNone, -1, -1, -1)
	data := make([]byte, 0, (fetchBatchesMax+2)*len(unit))
	for i := range fetchBatchesMax + 2 {
		unit.SetBaseOffset(int64(i))
		data = append(data, unit...)
	}
	cp := &consumedPart{}
	got, err := cp.takeBatches(data, nil)
	if err != nil || len(got) != fetchBatchesMax || cp.position != fetchBatchesMax {
		t.Fatalf("%d records, position %d, %v", len(got), cp.position, err)
	}
	if got, err = cp.takeBatches(data[fetchBatchesMax*len(unit):], got); err != nil || len(got) != fetchBatchesMax+2 {
		t.Fatalf("the rest: %d records, %v", len(got), err)
	}
}

// TestDecompressionBombIsCorrupt: a batch whose records expand past
// record.DecompressedBytesMax yields nothing and is corrupt.
func TestDecompressionBombIsCorrupt(t *testing.T) {
	bomb, _ := encodeForTest(t, []Record{{Value: make([]byte, record.DecompressedBytesMax), TimestampMs: 1}},
		record.CompressionZstd, -1, -1, -1)
	if len(bomb) > 1<<20 {
		t.Fatalf("a %d-byte bomb", len(bomb))
	}
	cp := &consumedPart{}
	if got, err := cp.takeBatches(bomb, nil); !errors.Is(err, record.ErrCorrupt) || len(got) != 0 || cp.position != 0 {
		t.Fatalf("bomb: %d records, position %d, %v", len(got), cp.position, err)
	}
}

// TestCorruptBatchesCounted: the consumer counts a served batch that fails
// its CRC or structure in CorruptBatches, once per response, and neither a
// partial batch at the end nor a control batch.
func TestCorruptBatchesCounted(t *testing.T) {
	one, two := producedBatch(t, 0), producedBatch(t, 2)
	flipped := concat(one, two)
	flipped[len(flipped)-3] ^= 0x10
	cases := []struct {
		name    string
		data    []byte
		corrupt int
		records int
	}{
		{"whole", concat(one, two), 0, 4},
		{"partial tail", concat(one, two)[:len(one)+30], 0, 2},
		{"crc", flipped, 1, 2},
		{"crc twice", concat(flipped, flipped), 1, 2},
		{"structure", concat(one, two[:8], []byte{0, 0, 0, 10}, two[12:]), 1, 2},
	}
	w := newWorld(t)
	for _, c := range cases {
		w.do(func() {
			co, err := NewConsumer(w.env(), ConsumerConfig{Bootstrap: []string{"127.0.0.1:9"}})
			if err != nil {
				w.fatal(err)
			}
			co.poll = &pollState{}
			cp := &consumedPart{tp: TopicPartition{Topic: "t"}}
			p := kmsg.NewFetchResponseTopicPartition()
			p.RecordBatches = c.data
			co.onFetchPartition(cp, &p, 0)
			if co.stats.CorruptBatches != c.corrupt || len(co.poll.records) != c.records {
				w.fatalf("%s: %d corrupt, %d records", c.name, co.stats.CorruptBatches, len(co.poll.records))
			}
			if backedOff := cp.failures > 0; backedOff != (c.corrupt > 0) {
				w.fatalf("%s: %d failures", c.name, cp.failures)
			}
		})
	}
}
