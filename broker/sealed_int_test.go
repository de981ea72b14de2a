package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
)

// TestSealedIntSurvivesFlippedCopies: a sealed state file keeps three
// checksummed copies; bits flipped in any two leave the number readable,
// bits flipped in all three at different places are outvoted, and only a
// file whose copies are damaged alike (the same bit in two) is refused.
func TestSealedIntSurvivesFlippedCopies(t *testing.T) {
	r := newRig(t, 41, nil)
	r.runFor(time.Second)
	fs := r.w.Node(brokerNode).Disk().FS()
	name := dataDir + "/sealed-test"
	var done error = errSealedPending
	broker.WriteSealedInt(fs, name, 1234, func(err error) { done = err })
	r.runFor(time.Second)
	if done != nil {
		t.Fatalf("write: %v", done)
	}
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(at int64) {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, at); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x10
		if _, err := f.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
	}
	third := size / 3
	for _, at := range []int64{2, third + 3, 2*third + 4} {
		flip(at)
		if n, err := broker.ReadSealedInt(fs, name); err != nil || n != 1234 {
			t.Fatalf("one copy flipped at %d of %d bytes: read %d, %v", at, size, n, err)
		}
		flip(at) // back as it was
	}
	flip(2)
	flip(third + 3)
	if n, err := broker.ReadSealedInt(fs, name); err != nil || n != 1234 {
		t.Fatalf("two copies flipped: read %d, %v", n, err)
	}
	flip(2*third + 4)
	if n, err := broker.ReadSealedInt(fs, name); err != nil || n != 1234 {
		t.Fatalf("every copy flipped at a different byte: read %d, %v", n, err)
	}
	flip(third + 3) // copy two whole again, then damaged where copy one is
	flip(third + 2)
	if n, err := broker.ReadSealedInt(fs, name); err == nil {
		t.Fatalf("two copies flipped alike, the third elsewhere: read %d without an error", n)
	}
}

var errSealedPending = errors.New("the write did not complete")
