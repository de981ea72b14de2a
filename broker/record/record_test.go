package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func randomRecords(rng *rand.Rand, base int64, n int) []Record {
	records := make([]Record, n)
	ts := int64(1_700_000_000_000) + rng.Int64N(1000)
	for i := range records {
		r := &records[i]
		r.Offset = base + int64(i)
		r.Timestamp = ts + rng.Int64N(2000) - 1000
		if rng.IntN(4) != 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", rng.IntN(50)))
		}
		if rng.IntN(5) != 0 {
			r.Value = bytes.Repeat([]byte{byte('a' + i%26)}, rng.IntN(300))
		}
		for h := rng.IntN(3); h > 0; h-- {
			r.Headers = append(r.Headers, Header{Key: fmt.Sprintf("h%d", h), Value: []byte("v")})
		}
	}
	return records
}

func sameRecords(t *testing.T, want, got []Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Offset != g.Offset || w.Timestamp != g.Timestamp || !bytes.Equal(w.Key, g.Key) || !bytes.Equal(w.Value, g.Value) ||
			(w.Key == nil) != (g.Key == nil) || (w.Value == nil) != (g.Value == nil) || len(w.Headers) != len(g.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		for h := range w.Headers {
			if w.Headers[h].Key != g.Headers[h].Key || !bytes.Equal(w.Headers[h].Value, g.Headers[h].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, h, g.Headers[h], w.Headers[h])
			}
		}
	}
}

func TestBuildAndDecodeEveryCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for c := CompressionNone; c < compressionCount; c++ {
		t.Run(c.String(), func(t *testing.T) {
			records := randomRecords(rng, 100, 40)
			bl := NewBuilder()
			bl.BaseOffset = 100
			bl.Compression = c
			bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = 7, 3, 11
			b, err := bl.Build(records)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.VerifyProduced(); err != nil {
				t.Fatal(err)
			}
			if b.Compression() != c || b.RecordCount() != 40 || b.LastOffset() != 139 || b.ProducerID() != 7 ||
				b.ProducerEpoch() != 3 || b.BaseSequence() != 11 || b.LastSequence() != 50 {
				t.Fatalf("header %s", b)
			}
			got, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, records, got)
		})
	}
}

func TestParseCompression(t *testing.T) {
	for c := CompressionNone; c < compressionCount; c++ {
		got, err := ParseCompression(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCompression(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseCompression("brotli"); err == nil {
		t.Fatal("brotli accepted")
	}
}

// TestKmsgReadsOurBatches checks our encoding against franz-go's
// independent decoder.
func TestKmsgReadsOurBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	records := randomRecords(rng, 0, 10)
	bl := NewBuilder()
	bl.PartitionLeaderEpoch = 5
	b, err := bl.Build(records)
	if err != nil {
		t.Fatal(err)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if kb.NumRecords != 10 || kb.LastOffsetDelta != 9 || kb.PartitionLeaderEpoch != 5 || uint32(kb.CRC) != b.CRC() || int(kb.Length) != len(b)-12 {
		t.Fatalf("kmsg read %+v", kb)
	}
	rest := kb.Records
	for i := range records {
		var kr kmsg.Record
		if err := kr.ReadFrom(rest); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kr.Value, records[i].Value) || int64(kr.OffsetDelta) != int64(i) ||
			records[0].Timestamp+kr.TimestampDelta64 != records[i].Timestamp {
			t.Fatalf("record %d: kmsg read %+v", i, kr)
		}
		rest = rest[int(kr.Length)+varlongBytes(int64(kr.Length)):]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
}

// TestWeReadKmsgBatches decodes a batch franz-go encoded.
func TestWeReadKmsgBatches(t *testing.T) {
	var recs []byte
	for i := 0; i < 5; i++ {
		kr := kmsg.Record{Attributes: 0, TimestampDelta64: int64(i * 10), OffsetDelta: int32(i), Key: []byte{byte(i)}, Value: []byte(fmt.Sprintf("value %d", i))}
		body := kr.AppendTo(nil)
		kr.Length = int32(len(body) - 1) // Length itself was encoded as the one-byte varint 0
		recs = append(recs, kr.AppendTo(nil)...)
	}
	kb := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: 4,
		FirstTimestamp: 1000, MaxTimestamp: 1040, ProducerID: 9, ProducerEpoch: 1, FirstSequence: 0,
		NumRecords: 5, Records: recs,
	}
	kb.Length = int32(HeaderBytes - 12 + len(recs))
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
	b := Batch(raw)
	if err := b.VerifyProduced(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Offset != int64(i) || r.Timestamp != 1000+int64(i*10) || string(r.Value) != fmt.Sprintf("value %d", i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

func TestSnappyRawAndXerialFraming(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	records := randomRecords(rng, 0, 30)
	plain, err := NewBuilder().Build(records)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(plain[HeaderBytes:])
	for name, compressed := range map[string][]byte{
		"raw":    s2.EncodeSnappy(nil, body),
		"xerial": mustCompress(t, CompressionSnappy, body),
	} {
		b := rewriteBody(plain, CompressionSnappy, compressed)
		got, err := b.Records()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameRecords(t, records, got)
	}
}

func mustCompress(t *testing.T, c Compression, body []byte) []byte {
	out, err := compress(c, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteBody replaces a batch's records section and fixes length and CRC.
func rewriteBody(b Batch, c Compression, body []byte) Batch {
	out := append(Batch(nil), b[:HeaderBytes]...)
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-LengthFieldEnd))
	attrs := out.Attributes()&^compressionMask | int16(c)
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(out[offCRC:], out.ComputeCRC())
	return out
}

func TestDecompressionBombRefused(t *testing.T) {
	big := make([]byte, DecompressedBytesMax+1)
	for _, c := range []Compression{CompressionGzip, CompressionZstd, CompressionLZ4, CompressionSnappy} {
		compressed := mustCompress(t, c, big)
		if _, err := decompress(c, compressed); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: decompressing %d bytes: %v", c, len(big), err)
		}
	}
}

func TestHeaderFieldsOutsideCRC(t *testing.T) {
	b, err := NewBuilder().Build(randomRecords(rand.New(rand.NewPCG(7, 8)), 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	b.SetBaseOffset(1 << 40)
	b.SetPartitionLeaderEpoch(77)
	if err := b.Verify(); err != nil {
		t.Fatalf("after assigning offset and epoch: %v", err)
	}
	recs, err := b.Records()
	if err != nil || recs[2].Offset != 1<<40+2 || b.PartitionLeaderEpoch() != 77 {
		t.Fatalf("records %+v, %v", recs, err)
	}
}

// TestEveryBitFlipDetected flips every bit of the CRC'd range and the CRC.
func TestEveryBitFlipDetected(t *testing.T) {
	b, err := NewBuilder().Build(randomRecords(rand.New(rand.NewPCG(9, 10)), 0, 4))
	if err != nil {
		t.Fatal(err)
	}
	for i := offCRC; i < len(b); i++ {
		for bit := 0; bit < 8; bit++ {
			c := append(Batch(nil), b...)
			c[i] ^= 1 << bit
			if err := c.Verify(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip of byte %d bit %d not detected", i, bit)
			}
			if _, err := c.Records(); err == nil {
				t.Fatalf("flip of byte %d bit %d decoded", i, bit)
			}
		}
	}
}

func TestVerifyProducedRules(t *testing.T) {
	bl := NewBuilder()
	bl.LastOffsetDelta = 5
	b, err := bl.Build(randomRecords(rand.New(rand.NewPCG(11, 12)), 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil {
		t.Fatalf("compacted-shape batch: %v", err)
	}
	if err := b.VerifyProduced(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("3 records over 6 offsets accepted from a producer: %v", err)
	}
	empty, err := bl.Build(nil)
	if err != nil || empty.Verify() != nil || empty.RecordCount() != 0 || empty.LastOffset() != 5 {
		t.Fatalf("empty batch %s: %v", empty, err)
	}
	if err := empty.VerifyProduced(); err == nil {
		t.Fatal("empty batch accepted from a producer")
	}
	control := NewBuilder()
	control.Control = true
	cb, _ := control.Build(randomRecords(rand.New(rand.NewPCG(1, 1)), 0, 1))
	if err := cb.VerifyProduced(); err == nil {
		t.Fatal("control batch accepted from a producer")
	}
}

func TestIncrementSequenceWraps(t *testing.T) {
	if got := IncrementSequence(math.MaxInt32, 1); got != 0 {
		t.Fatalf("MaxInt32+1 = %d", got)
	}
	if got := IncrementSequence(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("MaxInt32-1+3 = %d", got)
	}
	if got := IncrementSequence(5, 4); got != 9 {
		t.Fatalf("5+4 = %d", got)
	}
}

func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var all []byte
	var want []Batch
	for i := 0; i < 5; i++ {
		b, err := NewBuilder().Build(randomRecords(rng, 0, 1+i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
		all = append(all, b...)
	}
	got, err := Split(all, 10)
	if err != nil || len(got) != 5 {
		t.Fatalf("split: %d batches, %v", len(got), err)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	for cut := 1; cut < len(want[4]); cut += 7 {
		got, err := Split(all[:len(all)-cut], 10)
		if !errors.Is(err, ErrPartial) || len(got) != 4 {
			t.Fatalf("cut %d: %d batches, %v", cut, len(got), err)
		}
	}
	if _, err := Split(all, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bound of 3 batches: %v", err)
	}
	bad := append([]byte(nil), all...)
	binary.BigEndian.PutUint32(bad[len(want[0])+offBatchLength:], 10)
	got, err = Split(bad, 10)
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrPartial) || len(got) != 1 {
		t.Fatalf("bad length: %d batches, %v", len(got), err)
	}
	if got, err := Split(nil, 1); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

// FuzzBatch: arbitrary bytes never panic the parser or the decoder, and a
// batch whose CRC does not match never yields records.
// SplitFirst agrees with Split on every prefix of some batches and on
// too many of them: the same count, the same first batch, the same error.
func TestSplitFirstAgreesWithSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var all []byte
	for i := 0; i < 3; i++ {
		b, err := NewBuilder().Build(randomRecords(rng, 0, 1+i))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for end := 0; end <= len(all); end++ {
		for _, most := range []int{1, 2, 5} {
			want, wantErr := Split(all[:end], most)
			first, count, err := SplitFirst(all[:end], most)
			if count != len(want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("%d bytes, at most %d: SplitFirst %d batches, %v; Split %d, %v", end, most, count, err, len(want), wantErr)
			}
			if len(want) > 0 && !bytes.Equal(first, want[0]) || len(want) == 0 && first != nil {
				t.Fatalf("%d bytes, at most %d: first batch differs", end, most)
			}
		}
	}
}

func FuzzBatch(f *testing.F) {
	rng := rand.New(rand.NewPCG(15, 16))
	for c := CompressionNone; c < compressionCount; c++ {
		bl := NewBuilder()
		bl.Compression = c
		b, err := bl.Build(randomRecords(rng, 0, 3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(b))
		f.Add(append(append([]byte(nil), b...), b[:20]...))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 70))
	f.Fuzz(func(t *testing.T, data []byte) {
		batches, _ := Split(data, 1000)
		for _, b := range batches {
			_ = b.String()
			records, err := b.Records()
			if err == nil {
				if b.CRC() != b.ComputeCRC() {
					t.Fatalf("records from a batch whose CRC fails: %s", b)
				}
				if len(records) != int(b.RecordCount()) {
					t.Fatalf("%d records from %s", len(records), b)
				}
			}
		}
		// Fix the CRC so that the decoder itself is exercised on
		// arbitrary record sections.
		if len(data) >= HeaderBytes {
			fixed := Batch(append([]byte(nil), data...))
			binary.BigEndian.PutUint32(fixed[offBatchLength:], uint32(len(fixed)-LengthFieldEnd))
			fixed[offMagic] = Magic
			binary.BigEndian.PutUint32(fixed[offCRC:], fixed.ComputeCRC())
			if records, err := fixed.Records(); err == nil && len(records) != int(fixed.RecordCount()) {
				t.Fatalf("%d records from %s", len(records), fixed)
			}
		}
	})
}
