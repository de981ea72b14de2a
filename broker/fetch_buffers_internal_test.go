package broker

import "testing"

// The read buffers kept for fetches are bounded in number and size, and
// grow towards the size of the reads: a small one gives way to a larger.
func TestFetchBuffersAreBoundedAndGrow(t *testing.T) {
	var fb fetchBuffers
	for range 2 * fetchBuffersMax {
		fb.put(make([]byte, 10, 1<<10))
	}
	fb.put(make([]byte, 0, 2*fetchBufferBytesMax))
	if len(fb.free) != fetchBuffersMax {
		t.Fatalf("%d buffers kept, want %d", len(fb.free), fetchBuffersMax)
	}
	fb.put(make([]byte, 0, 1<<20))
	largest := 0
	for _, b := range fb.free {
		if len(b) != 0 {
			t.Fatalf("a kept buffer has length %d, want 0", len(b))
		}
		if cap(b) > fetchBufferBytesMax {
			t.Fatalf("a kept buffer holds %d bytes, over %d", cap(b), fetchBufferBytesMax)
		}
		largest = max(largest, cap(b))
	}
	if largest != 1<<20 {
		t.Fatalf("largest kept buffer holds %d bytes, want the 1 MiB one put last", largest)
	}
	for range fetchBuffersMax {
		if fb.take() == nil {
			t.Fatal("take returned nothing while buffers were kept")
		}
	}
	if fb.take() != nil {
		t.Fatal("take returned a buffer from an empty pool")
	}
}
