package record

import "math/bits"

// A batch whose checksum fails was either written part way (a torn
// write loses whole sectors: many bits) or rotted after it was written
// (a bit flipped on the disk). CRC-32C tells them apart: its
// Hamming distance is at least 3 for every length a batch can have, so
// each single-bit error has its own syndrome (stored ^ computed), and a
// syndrome that matches one names the bit. Recovery uses it to keep a
// rotted batch as damage instead of cutting the log there as if it were
// a torn tail, which would drop the valid batches after it.

// flipSearchBytesMax bounds the batches FlippedBit searches (8 steps per
// byte): larger ones are not classified.
const flipSearchBytesMax = 16 << 20

// FlippedBit reports whether b fails its checksum by exactly one bit,
// and which (as a bit index into b: byte index*8 + bit, bit 0 the
// least significant): flipping it back makes the checksum pass. The bit
// may lie in the bytes the CRC covers or in the stored CRC itself. Bits
// of the fields before the CRC (base offset, length, leader epoch,
// magic) are not covered and never reported. b must hold a whole frame.
// A torn write matches some single-bit syndrome by chance with
// probability about 8·len(b)/2^32.
func (b Batch) FlippedBit() (int64, bool) {
	if len(b) < HeaderBytes || len(b) > flipSearchBytesMax {
		return 0, false
	}
	syndrome := b.CRC() ^ b.ComputeCRC()
	if syndrome == 0 {
		return 0, false
	}
	if bits.OnesCount32(syndrome) == 1 {
		// The stored CRC is big-endian: bit k of the value is in byte
		// offCRC + 3 - k/8.
		k := bits.TrailingZeros32(syndrome)
		return int64(offCRC+3-k/8)*8 + int64(k%8), true
	}
	// The syndrome of bit j of byte i among n covered bytes is the CRC
	// register after the byte 1<<j and n-1-i zero bytes; step all eight
	// registers one zero byte at a time from the last byte back.
	var regs [8]uint32
	for j := range regs {
		regs[j] = castagnoli[byte(1)<<j]
	}
	covered := len(b) - offAttributes
	for k := range covered {
		for j, r := range regs {
			if r == syndrome {
				return int64(offAttributes+covered-1-k)*8 + int64(j), true
			}
			regs[j] = castagnoli[byte(r)] ^ (r >> 8)
		}
	}
	return 0, false
}

// FlipBit flips bit i of b (as FlippedBit numbers them).
func (b Batch) FlipBit(i int64) { b[i/8] ^= 1 << (i % 8) }
