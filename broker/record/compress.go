package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

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
		return compressPooled(&gzipWriters, c, src)
	case CompressionSnappy:
		return xerial.Encode(nil, src), nil
	case CompressionLZ4:
		return compressPooled(&lz4Writers, c, src)
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
		out, err = decompressGzip(src)
	case CompressionSnappy:
		out, err = snappyDecode(src)
	case CompressionLZ4:
		out, err = decompressLZ4(src)
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

// gzip and lz4 coders hold tens of kilobytes of tables: a fresh one per
// batch made allocating and zeroing them most of the cost of a compressed
// batch, so they are pooled. Reset leaves no state behind, so a pooled
// coder writes the same bytes as a fresh one.
var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaders sync.Pool // *gzip.Reader; gzip.NewReader needs a header to read
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
)

// pooledWriter is a coder a pool keeps: gzip's and lz4's writers.
type pooledWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// compressPooled encodes src with a writer from pool.
func compressPooled(pool *sync.Pool, c Compression, src []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := pool.Get().(pooledWriter)
	defer pool.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("%v: %w", c, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("%v: %w", c, err)
	}
	return buf.Bytes(), nil
}

func decompressGzip(src []byte) ([]byte, error) {
	r, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(bytes.NewReader(src))
	} else {
		err = r.Reset(bytes.NewReader(src))
	}
	if err != nil {
		return nil, err
	}
	defer gzipReaders.Put(r)
	return readBounded(r, gzipSizeHint(src))
}

// lz4RatioGuess is the first guess at an lz4 batch's decompressed size,
// in multiples of its compressed size; lz4 frames need not say.
const lz4RatioGuess = 4

func decompressLZ4(src []byte) ([]byte, error) {
	r := lz4Readers.Get().(*lz4.Reader)
	defer lz4Readers.Put(r)
	r.Reset(bytes.NewReader(src))
	return readBounded(r, lz4RatioGuess*len(src))
}

// readBounded reads r to its end, refusing more than DecompressedBytesMax.
// sizeHint is the size expected, so that a batch whose size the codec
// tells decompresses into one allocation.
func readBounded(r io.Reader, sizeHint int) ([]byte, error) {
	out := make([]byte, 0, min(max(sizeHint, decompressedBytesMin), DecompressedBytesMax)+1)
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		switch {
		case len(out) > DecompressedBytesMax:
			return nil, fmt.Errorf("more than %d bytes", DecompressedBytesMax)
		case err == io.EOF:
			return out, nil
		case err != nil:
			return nil, err
		}
	}
}

// decompressedBytesMin is the least room a decompression starts with.
const decompressedBytesMin = 512

// gzipSizeHint is the uncompressed size a gzip member's trailer gives
// (ISIZE, modulo 2^32): a hint only, for the trailer is not checked yet,
// so it is held to what deflate can expand src to, and a small hostile
// batch cannot claim a large allocation.
func gzipSizeHint(src []byte) int {
	if len(src) < gzipTrailerBytes {
		return 0
	}
	claimed := int(binary.LittleEndian.Uint32(src[len(src)-4:]))
	return min(claimed, deflateExpansionMax*len(src))
}

// deflateExpansionMax bounds deflate's expansion: a 258-byte match in
// about two bits, a little over 1032 to 1.
const deflateExpansionMax = 1032

// gzipTrailerBytes is a gzip member's CRC-32 and ISIZE.
const gzipTrailerBytes = 8

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
