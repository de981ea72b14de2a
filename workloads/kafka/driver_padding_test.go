package kafka

import (
	"testing"

	"pgregory.net/rapid"
)

// TestIsPaddedValueAgreesWithPaddedValue: the check that trims recorded
// values accepts exactly the values paddedValue builds.
func TestIsPaddedValueAgreesWithPaddedValue(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prefix := rapid.StringMatching(`[0-9]{1,4}-[0-9]{1,6}`).Draw(t, "prefix")
		size := rapid.IntRange(0, 64).Draw(t, "size")
		built := string(paddedValue(prefix, size))
		if want := len(prefix) < size; isPaddedValue(built, prefix, size) != want {
			t.Fatalf("isPaddedValue(%q, %q, %d) = %v, want %v", built, prefix, size, !want, want)
		}
		if len(built) > len(prefix)+1 {
			i := rapid.IntRange(len(prefix)+1, len(built)-1).Draw(t, "flipped")
			damaged := []byte(built)
			damaged[i] ^= 1
			if isPaddedValue(string(damaged), prefix, size) {
				t.Fatalf("damaged value %q passed as %q padded to %d", damaged, prefix, size)
			}
		}
	})
}
