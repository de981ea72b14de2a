package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is the codec of a batch's records section (attribute bits
// 0-2).
type Compression uint8

// Codecs, numbered as in Kafka.
const (
	CompressionNone Compression = iota
	CompressionGzip
	CompressionSnappy
	CompressionLZ4
	CompressionZstd
	compressionCount
)

var compressionNames = [compressionCount]string{"none", "gzip", "snappy", "lz4", "zstd"}

func (c Compression) valid() bool { return c < compressionCount }

// String is the codec's name as compression.type spells it.
func (c Compression) String() string {
	if c.valid() {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// ParseCompression reads a codec name as Kafka's compression.type spells
// it.
func ParseCompression(name string) (Compression, error) {
	for i, n := range compressionNames {
		if n == name {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q (want one of %v)", name, compressionNames)
}

// DecompressedBytesMax bounds what one batch may decompress to, so that a
// small hostile batch cannot make the broker allocate without bound.
const DecompressedBytesMax = 64 << 20

// zstd coders are safe for concurrent use through EncodeAll and DecodeAll
// and costly to create, so the package keeps one of each. Concurrency 1
// keeps them from starting goroutines of their own.
var (
	zstdEncoder = mustZstdEncoder()
	zstdDecoder = mustZstdDecoder()
)

func mustZstdEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(fmt.Sprintf("record: zstd encoder: %v", err))
	}
	return enc
}

func mustZstdDecoder() *zstd.Decoder {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(DecompressedBytesMax))
	if err != nil {
		panic(fmt.Sprintf("record: zstd decoder: %v", err))
	}
	return dec
}

// compress encodes src with c. Snappy uses the xerial framing Kafka's Java
// client writes, which every client reads.
func compress(c Compression, src []byte) ([]byte, error) {
	switch c {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionSnappy:
		return xerial.Encode(nil, src), nil
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionZstd:
		return zstdEncoder.EncodeAll(src, nil), nil
	}
	panic(fmt.Sprintf("record: compress with %v", c))
}

// decompress decodes src, refusing output beyond DecompressedBytesMax.
func decompress(c Compression, src []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		var r *gzip.Reader
		r, err = gzip.NewReader(bytes.NewReader(src))
		if err == nil {
			out, err = readBounded(r)
		}
	case CompressionSnappy:
		out, err = snappyDecode(src)
	case CompressionLZ4:
		out, err = readBounded(lz4.NewReader(bytes.NewReader(src)))
	case CompressionZstd:
		out, err = zstdDecoder.DecodeAll(src, nil)
	default:
		return nil, fmt.Errorf("%w: unknown compression %d", ErrCorrupt, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v records: %v", ErrCorrupt, c, err)
	}
	if len(out) > DecompressedBytesMax {
		return nil, fmt.Errorf("%w: %v records decompress past %d bytes", ErrCorrupt, c, DecompressedBytesMax)
	}
	return out, nil
}

func readBounded(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, DecompressedBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(out) > DecompressedBytesMax {
		return nil, fmt.Errorf("more than %d bytes", DecompressedBytesMax)
	}
	return out, nil
}

// xerialMagic opens snappy data in the framing of the xerial library that
// Kafka's Java client uses; other clients (librdkafka, franz-go) send raw
// snappy blocks.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderBytes = 16 // magic, version, compatible version

// snappyDecode reads raw snappy or xerial-framed snappy, checking each
// block's declared size against the output bound before decoding it.
func snappyDecode(src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src)
	}
	if len(src) < xerialHeaderBytes {
		return nil, fmt.Errorf("xerial header of %d bytes", len(src))
	}
	var out []byte
	rest := src[xerialHeaderBytes:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, fmt.Errorf("xerial block size cut short")
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("xerial block of %d bytes with %d left", size, len(rest))
		}
		var err error
		out, err = snappyBlock(out, rest[:size])
		if err != nil {
			return nil, err
		}
		rest = rest[size:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst.
func snappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > DecompressedBytesMax-len(dst) {
		return nil, fmt.Errorf("snappy block decodes to %d bytes after %d", n, len(dst))
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := s2.Decode(dst[start:], block); err != nil {
		return nil, err
	}
	return dst, nil
}
