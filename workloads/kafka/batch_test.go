package kafka

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLz4, CodecZstd}

func genBatchRecords(t *rapid.T) []batchRecord {
	n := rapid.IntRange(1, 40).Draw(t, "records")
	base := rapid.Int64Range(0, 1<<41).Draw(t, "baseTs")
	recs := make([]batchRecord, n)
	for i := range recs {
		r := &recs[i]
		if rapid.Bool().Draw(t, "hasKey") {
			r.key = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "key")
		}
		if rapid.IntRange(0, 9).Draw(t, "nullValue") != 0 {
			r.value = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "value")
		}
		for range rapid.IntRange(0, 3).Draw(t, "headers") {
			r.headers = append(r.headers, Header{
				Key:   rapid.StringN(0, 10, -1).Draw(t, "hkey"),
				Value: rapid.SliceOfN(rapid.Byte(), 0, 10).Draw(t, "hvalue"),
			})
		}
		r.timestampMs = base + rapid.Int64Range(-1000, 100000).Draw(t, "tsDelta")
	}
	return recs
}

// TestBatchRoundTrip encodes random records with every codec and decodes
// them back unchanged, offsets counted from the base offset a broker sets.
func TestBatchRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := genBatchRecords(t)
		codec := rapid.SampledFrom(allCodecs).Draw(t, "codec")
		spec := batchSpec{codec: codec, producerID: 7, producerEpoch: 2, baseSequence: rapid.Int32Range(0, 1<<30).Draw(t, "seq")}
		var comp compressor
		raw, err := appendBatch(nil, recs, spec, &comp)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		// A broker assigns the base offset; the CRC does not cover it.
		binary.BigEndian.PutUint64(raw, 1000)
		dec := decompressor{maxBytes: 1 << 20}
		var got []*decodedBatch
		if err := decodeBatches(raw, &dec, 10, func(b *decodedBatch) { got = append(got, b) }); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("%d batches decoded", len(got))
		}
		b := got[0]
		if b.producerID != 7 || b.producerEpoch != 2 || b.baseSequence != spec.baseSequence || Codec(b.attributes&codecMask) != codec {
			t.Fatalf("header: pid %d seq %d attrs %x", b.producerID, b.baseSequence, b.attributes)
		}
		if b.lastOffset() != 1000+int64(len(recs))-1 || len(b.records) != len(recs) {
			t.Fatalf("last offset %d with %d records", b.lastOffset(), len(b.records))
		}
		for i, r := range b.records {
			want := recs[i]
			if r.offset != 1000+int64(i) || r.timestampMs != want.timestampMs ||
				!sameNullable(r.key, want.key) || !sameNullable(r.value, want.value) || !sameHeaders(r.headers, want.headers) {
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
// through the package's decompressor.
func independentDecompress(t *testing.T, payload []byte, codec Codec) []byte {
	t.Helper()
	var out []byte
	var err error
	switch codec {
	case CodecNone:
		return payload
	case CodecGzip:
		var r *stdgzip.Reader
		if r, err = stdgzip.NewReader(bytes.NewReader(payload)); err == nil {
			out, err = io.ReadAll(r)
		}
	case CodecSnappy:
		if !bytes.HasPrefix(payload, []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}) {
			t.Fatalf("snappy payload lacks the xerial header the Java client writes")
		}
		out, err = xerial.Decode(payload)
	case CodecLz4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(payload)))
	case CodecZstd:
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

// TestBatchMatchesKmsg parses batches we encode with kmsg's RecordBatch and
// Record readers, so the layout is checked by an implementation other than
// our decoder.
func TestBatchMatchesKmsg(t *testing.T) {
	recs := []batchRecord{
		{key: []byte("k1"), value: []byte("v1"), timestampMs: 1_700_000_000_000},
		{key: nil, value: []byte("second"), timestampMs: 1_700_000_000_005, headers: []Header{{Key: "h", Value: []byte("x")}}},
		{key: []byte(""), value: nil, timestampMs: 1_699_999_999_990},
	}
	for _, codec := range allCodecs {
		var comp compressor
		raw, err := appendBatch(nil, recs, batchSpec{codec: codec, producerID: -1, producerEpoch: -1, baseSequence: -1}, &comp)
		if err != nil {
			t.Fatal(err)
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(raw); err != nil {
			t.Fatalf("%v: kmsg cannot read our batch: %v", codec, err)
		}
		if kb.Magic != 2 || int(kb.Length) != len(raw)-12 || kb.NumRecords != 3 || kb.LastOffsetDelta != 2 ||
			kb.FirstTimestamp != 1_699_999_999_990 || kb.MaxTimestamp != 1_700_000_000_005 ||
			kb.ProducerID != -1 || kb.FirstSequence != -1 || kb.PartitionLeaderEpoch != -1 ||
			Codec(kb.Attributes&codecMask) != codec {
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
			if kr.OffsetDelta != int32(i) || kb.FirstTimestamp+kr.TimestampDelta64 != want.timestampMs ||
				!sameNullable(kr.Key, want.key) || !sameNullable(kr.Value, want.value) || len(kr.Headers) != len(want.headers) {
				t.Fatalf("%v record %d: %+v", codec, i, kr)
			}
		}
		if len(payload) != 0 {
			t.Fatalf("%v: %d bytes after the records", codec, len(payload))
		}
	}
}

// TestDecodeKmsgBatch decodes a batch built with kmsg's writer.
func TestDecodeKmsgBatch(t *testing.T) {
	var records []byte
	for i, v := range []string{"a", "bb", "ccc"} {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = int64(i * 10)
		r.Value = []byte(v)
		body := r.AppendTo(nil)
		// kmsg writes Length as given: fill it in with the body size.
		r.Length = int32(len(body) - 1)
		records = r.AppendTo(records)
	}
	kb := kmsg.NewRecordBatch()
	kb.FirstOffset = 50
	kb.Magic = 2
	kb.LastOffsetDelta = 2
	kb.FirstTimestamp = 5000
	kb.MaxTimestamp = 5020
	kb.ProducerID = -1
	kb.ProducerEpoch = -1
	kb.FirstSequence = -1
	kb.NumRecords = 3
	kb.Records = records
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32c))
	dec := decompressor{maxBytes: 1 << 20}
	var got []decodedRecord
	err := decodeBatches(raw, &dec, 10, func(b *decodedBatch) { got = append(got, b.records...) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].offset != 52 || string(got[2].value) != "ccc" || got[1].timestampMs != 5010 {
		t.Fatalf("decoded %+v", got)
	}
}

func TestDecodeBatchesEdges(t *testing.T) {
	recs := []batchRecord{{value: []byte("x"), timestampMs: 1}, {value: []byte("y"), timestampMs: 2}}
	var comp compressor
	one, err := appendBatch(nil, recs, batchSpec{codec: CodecNone, producerID: -1, producerEpoch: -1, baseSequence: -1}, &comp)
	if err != nil {
		t.Fatal(err)
	}
	two := append(append([]byte{}, one...), one...)
	binary.BigEndian.PutUint64(two[len(one):], 2)
	dec := decompressor{maxBytes: 1 << 20}
	count := func(data []byte) (int, error) {
		n := 0
		err := decodeBatches(data, &dec, 10, func(*decodedBatch) { n++ })
		return n, err
	}
	// A batch cut by the fetch byte limit is dropped silently.
	if n, err := count(two[:len(two)-5]); n != 1 || err != nil {
		t.Fatalf("truncated tail: %d batches, %v", n, err)
	}
	if n, err := count(two[:len(one)+7]); n != 1 || err != nil {
		t.Fatalf("truncated header: %d batches, %v", n, err)
	}
	// A flipped bit fails the CRC.
	bad := append([]byte{}, one...)
	bad[len(bad)-1] ^= 1
	if _, err := count(bad); !errors.Is(err, errCorruptBatch) {
		t.Fatalf("corrupt batch: %v", err)
	}
	// Old message formats are refused rather than misread.
	old := append([]byte{}, one...)
	old[batchOffsetMagic] = 1
	if _, err := count(old); !errors.Is(err, errCorruptBatch) {
		t.Fatalf("magic 1: %v", err)
	}
	// The batch bound holds.
	if err := decodeBatches(two, &dec, 1, func(*decodedBatch) {}); !errors.Is(err, errCorruptBatch) {
		t.Fatalf("batch bound: %v", err)
	}
	// A control batch yields no records but still ends at its last offset.
	ctl := append([]byte{}, one...)
	binary.BigEndian.PutUint16(ctl[batchOffsetAttributes:], attrControl|attrTransactional)
	binary.BigEndian.PutUint32(ctl[batchOffsetCRC:], crc32.Checksum(ctl[batchOffsetAttributes:], crc32c))
	var got *decodedBatch
	if err := decodeBatches(ctl, &dec, 10, func(b *decodedBatch) { got = b }); err != nil || got == nil {
		t.Fatalf("control batch: %v", err)
	}
	if !got.control() || len(got.records) != 0 || got.lastOffset() != 1 {
		t.Fatalf("control batch decoded as %+v", got)
	}
}

func TestDecompressBound(t *testing.T) {
	big := bytes.Repeat([]byte("sluice "), 20000)
	for _, codec := range allCodecs[1:] {
		var comp compressor
		packed, err := comp.compress(nil, big, codec)
		if err != nil {
			t.Fatal(err)
		}
		small := decompressor{maxBytes: 1000}
		if _, err := small.decompress(packed, codec); !errors.Is(err, errDecompressedTooLarge) {
			t.Errorf("%v: bound not enforced: %v", codec, err)
		}
		roomy := decompressor{maxBytes: len(big)}
		out, err := roomy.decompress(packed, codec)
		if err != nil || !bytes.Equal(out, big) {
			t.Errorf("%v: round trip at the bound: %v", codec, err)
		}
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Errorf("%v: %v %v", c, got, err)
		}
	}
	if _, err := ParseCodec("brotli"); err == nil {
		t.Error("brotli accepted")
	}
}
