package record

import (
	"math/rand/v2"
	"testing"
)

// TestFlippedBitNamesEachSingleFlip: every single bit flipped in the
// bytes the CRC covers, or in the stored CRC, is named exactly, and
// flipping it back makes the batch verify; a batch that verifies, a
// flip in a field the CRC does not cover, and damage of many bits (a
// sector's worth of zeros, two flips) are not taken for one flip.
func TestFlippedBitNamesEachSingleFlip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	b, err := NewBuilder().Build(randomRecords(rng, 0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.FlippedBit(); ok {
		t.Fatal("a batch that verifies is reported flipped")
	}
	for i := int64(offCRC) * 8; i < int64(len(b))*8; i++ {
		b.FlipBit(i)
		got, ok := b.FlippedBit()
		if !ok || got != i {
			t.Fatalf("bit %d of %d flipped: FlippedBit says %d, %v", i, len(b)*8, got, ok)
		}
		b.FlipBit(got)
		if err := b.Verify(); err != nil {
			t.Fatalf("bit %d flipped back: %v", i, err)
		}
	}
	b.FlipBit(3) // in the base offset: not covered, the CRC passes
	if _, ok := b.FlippedBit(); ok {
		t.Fatal("a flip outside the checksum's bytes is reported")
	}
	b.FlipBit(3)
	misses := 0
	for range 200 {
		i, j := offAttributes*8+rng.Int64N(int64(len(b)-offAttributes)*8), offAttributes*8+rng.Int64N(int64(len(b)-offAttributes)*8)
		if i == j {
			continue
		}
		b.FlipBit(i)
		b.FlipBit(j)
		if _, ok := b.FlippedBit(); ok {
			misses++
		}
		b.FlipBit(i)
		b.FlipBit(j)
	}
	if misses > 0 {
		t.Fatalf("%d of 200 double flips taken for one", misses)
	}
	torn := Batch(append([]byte(nil), b...))
	clear(torn[offAttributes+10:])
	if _, ok := torn.FlippedBit(); ok {
		t.Fatal("a batch zeroed past its header (a torn write) is taken for one flip")
	}
}
