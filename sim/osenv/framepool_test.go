package osenv

import (
	"testing"
	"unsafe"
)

// A frame lent by NewFrame goes back to the pool once sent and is lent
// again; a frame the caller allocated is never taken, since the caller
// may still hold it.
func TestFramePoolReusesOnlyLentFrames(t *testing.T) {
	var p framePool
	lent := p.get(100 << 10)
	if cap(lent) < 100<<10 {
		t.Fatalf("lent frame has capacity %d, want at least %d", cap(lent), 100<<10)
	}
	own := make([]byte, 0, 256<<10)
	if p.lend(own) {
		t.Fatal("a frame the caller allocated was taken as lent")
	}
	if !p.lend(lent) {
		t.Fatal("a lent frame was not recognised when sent")
	}
	if p.lend(lent) {
		t.Fatal("a lent frame was recognised twice")
	}
	p.put(lent)
	again := p.get(64 << 10)
	if unsafe.SliceData(again) != unsafe.SliceData(lent) {
		t.Fatal("a sent frame's buffer was not lent again")
	}
}

// The pool keeps at most framePoolBuffersMax buffers, none larger than
// framePoolBufferBytesMax, and its list of lent buffers stays bounded when
// callers outgrow theirs.
func TestFramePoolIsBounded(t *testing.T) {
	var p framePool
	for range 3 * framePoolBuffersMax {
		p.put(make([]byte, 0, 1<<10))
	}
	p.put(make([]byte, 0, 2*framePoolBufferBytesMax))
	if len(p.free) != framePoolBuffersMax {
		t.Fatalf("pool holds %d buffers, want %d", len(p.free), framePoolBuffersMax)
	}
	for _, b := range p.free {
		if cap(b) > framePoolBufferBytesMax {
			t.Fatalf("pool holds a buffer of %d bytes, over %d", cap(b), framePoolBufferBytesMax)
		}
	}
	for range 2 * framePoolLentMax {
		p.get(1 << 10) // outgrown: never sent
	}
	if len(p.lent) > framePoolLentMax {
		t.Fatalf("%d lent buffers tracked, at most %d", len(p.lent), framePoolLentMax)
	}
	if big := p.get(2 * framePoolBufferBytesMax); p.lend(big) {
		t.Fatal("a frame larger than the pool keeps was lent from it")
	}
}
