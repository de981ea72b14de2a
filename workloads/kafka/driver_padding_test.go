package kafka

import (
	"testing"

	"github.com/sluice-sim/sluice/checkers/history"

	"pgregory.net/rapid"
)

// TestIsPaddedValueAgreesWithPaddedValue: the check that trims recorded
// values accepts exactly the values paddedValue builds.
func TestIsPaddedValueAgreesWithPaddedValue(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prefix := rapid.StringMatching(`[0-9]{1,4}-[0-9]{1,6}`).Draw(t, "prefix")
		size := rapid.IntRange(0, 4000).Draw(t, "size") // past two runs of the comparison
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
			keptWhole(t, damaged, size)
		}
		want := built // too short to pad: kept whole
		if len(prefix) < size {
			want = prefix
		}
		keptAs(t, []byte(built), size, want)
	})
}

// keptWhole asserts that the history keeps value whole.
func keptWhole(t *rapid.T, value []byte, size int) {
	keptAs(t, value, size, string(value))
}

// keptAs asserts that the history keeps value as want, whether the
// recorder sees it as bytes or as a string.
func keptAs(t *rapid.T, value []byte, size int, want string) {
	r := paddingRecorder{valueBytes: size}
	if got := r.historyValue(value); got != want {
		t.Fatalf("historyValue(%q) = %q, want %q", value, got, want)
	}
	if got := r.trim(history.Record{Value: string(value)}).Value; got != want {
		t.Fatalf("trim(%q) = %q, want %q", value, got, want)
	}
}

// TestHistoryValueCopiesOnlyThePrefix: a padded value reaches the history
// with one allocation, its prefix, however long the padding.
func TestHistoryValueCopiesOnlyThePrefix(t *testing.T) {
	value := paddedValue("7-42", 16<<10)
	r := paddingRecorder{valueBytes: len(value)}
	if allocs := testing.AllocsPerRun(100, func() { r.historyValue(value) }); allocs > 1 {
		t.Fatalf("historyValue of a %d-byte padded value allocates %v times, want at most 1", len(value), allocs)
	}
}
