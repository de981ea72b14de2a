package slab

import "testing"

// TestTakeHandsOutDistinctZeroValues: values stay distinct and zeroed
// across the end of a slab.
func TestTakeHandsOutDistinctZeroValues(t *testing.T) {
	var s Slab[int]
	seen := map[*int]bool{}
	for i := range 2*Len + 1 {
		v := s.Take()
		if *v != 0 || seen[v] {
			t.Fatalf("take %d: value %d, seen before %v", i, *v, seen[v])
		}
		*v = i + 1
		seen[v] = true
	}
}
