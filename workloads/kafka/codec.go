package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec; its value is the batch's
// attribute bits 0-2.
type Codec int8

// Codecs, numbered as Kafka numbers them.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLz4    Codec = 3
	CodecZstd   Codec = 4
)

// codecMask selects the compression bits of a batch's attributes.
const codecMask = 0x07

// String is the codec's compression.type name.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLz4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCodec reads a codec name as Kafka's compression.type spells it.
func ParseCodec(name string) (Codec, error) {
	for c := CodecNone; c <= CodecZstd; c++ {
		if c.String() == name {
			return c, nil
		}
	}
	return CodecNone, fmt.Errorf("unknown compression codec %q (none, gzip, snappy, lz4, zstd)", name)
}

// errDecompressedTooLarge says a compressed batch expands beyond the bound
// the decoder accepts.
var errDecompressedTooLarge = errors.New("decompressed batch too large")

// compressor compresses batch payloads. It keeps one zstd encoder, built on
// first use; it belongs to one actor and is used on its loop only.
type compressor struct {
	zstdEncoder *zstd.Encoder
}

// compress appends src compressed with codec to dst. Snappy uses the xerial
// framing the Java producer writes; lz4 the LZ4 frame format Kafka uses
// since message format v1.
func (c *compressor) compress(dst, src []byte, codec Codec) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		buf := bytes.NewBuffer(dst)
		w := gzip.NewWriter(buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		if len(dst) != 0 {
			// xerial.Encode appends blocks to an existing xerial stream
			// when dst is not empty, so give it a fresh slice.
			return append(dst, xerial.Encode(nil, src)...), nil
		}
		return xerial.Encode(nil, src), nil
	case CodecLz4:
		buf := bytes.NewBuffer(dst)
		w := lz4.NewWriter(buf)
		if _, err := w.Write(src); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CodecZstd:
		if c.zstdEncoder == nil {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
			if err != nil {
				return nil, fmt.Errorf("zstd encoder: %w", err)
			}
			c.zstdEncoder = enc
		}
		return c.zstdEncoder.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("compress with %v: unknown codec", codec)
}

// decompressor expands batch payloads, refusing to produce more than
// maxBytes so that a hostile or corrupt batch cannot exhaust memory.
type decompressor struct {
	maxBytes    int
	zstdDecoder *zstd.Decoder
}

func (d *decompressor) decompress(src []byte, codec Codec) ([]byte, error) {
	switch codec {
	case CodecNone:
		return src, nil
	case CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return d.readBounded(r, "gzip")
	case CodecSnappy:
		out, err := xerial.Decode(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if len(out) > d.maxBytes {
			return nil, fmt.Errorf("snappy: %w (limit %d bytes)", errDecompressedTooLarge, d.maxBytes)
		}
		return out, nil
	case CodecLz4:
		return d.readBounded(lz4.NewReader(bytes.NewReader(src)), "lz4")
	case CodecZstd:
		if d.zstdDecoder == nil {
			dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(uint64(d.maxBytes)))
			if err != nil {
				return nil, fmt.Errorf("zstd decoder: %w", err)
			}
			d.zstdDecoder = dec
		}
		out, err := d.zstdDecoder.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, fmt.Errorf("zstd: %w (limit %d bytes)", errDecompressedTooLarge, d.maxBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) > d.maxBytes {
			return nil, fmt.Errorf("zstd: %w (limit %d bytes)", errDecompressedTooLarge, d.maxBytes)
		}
		return out, nil
	}
	return nil, fmt.Errorf("decompress: unknown codec %v", codec)
}

func (d *decompressor) readBounded(r io.Reader, name string) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(d.maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) > d.maxBytes {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", name, errDecompressedTooLarge, d.maxBytes)
	}
	return out, nil
}
