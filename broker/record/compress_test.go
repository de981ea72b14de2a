package record

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestPooledCodersWriteWhatFreshOnesWrite: a coder taken from the pool
// after it compressed other data writes the same bytes as before, and
// they decompress to the input, so pooling changes no batch.
func TestPooledCodersWriteWhatFreshOnesWrite(t *testing.T) {
	inputs := [][]byte{
		bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 200),
		[]byte("a short value"),
		{},
	}
	for _, c := range []Compression{CompressionGzip, CompressionLZ4} {
		first := make([][]byte, len(inputs))
		for round := range 3 {
			for i, in := range inputs {
				out, err := compress(c, in)
				if err != nil {
					t.Fatalf("%v round %d input %d: %v", c, round, i, err)
				}
				if round == 0 {
					first[i] = out
				} else if !bytes.Equal(out, first[i]) {
					t.Fatalf("%v round %d input %d: %d bytes differ from the first round's %d", c, round, i, len(out), len(first[i]))
				}
				back, err := decompress(c, out)
				if err != nil || !bytes.Equal(back, in) {
					t.Fatalf("%v round %d input %d: decompressed %d bytes (%v), want the %d in", c, round, i, len(back), err, len(in))
				}
			}
		}
	}
}

// TestGzipSizeHintIsHeldToDeflatesExpansion: the trailer of a gzip member
// is not checked before it sizes the output, so a small batch claiming
// 4 GiB gets no more room than deflate could fill from it.
func TestGzipSizeHintIsHeldToDeflatesExpansion(t *testing.T) {
	src := make([]byte, 40)
	binary.LittleEndian.PutUint32(src[len(src)-4:], 0xFFFFFFFF)
	if hint := gzipSizeHint(src); hint > deflateExpansionMax*len(src) {
		t.Fatalf("a %d-byte member claiming 4 GiB sizes the output at %d bytes", len(src), hint)
	}
	out, err := compress(CompressionGzip, bytes.Repeat([]byte{'x'}, 5000))
	if err != nil {
		t.Fatal(err)
	}
	if hint := gzipSizeHint(out); hint != 5000 {
		t.Fatalf("a member of 5000 bytes hints %d", hint)
	}
	if _, err := decompress(CompressionGzip, src); err == nil {
		t.Fatal("a member of zeros decompressed")
	}
}
