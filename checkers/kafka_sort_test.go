package checkers

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortObservationsMatchesSort compares the counting sort with a plain
// sort on dense, sparse and small random observations.
func TestSortObservationsMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 500 {
		n := rng.IntN(400)
		span := int64(1 + rng.IntN(3*n+1))
		if i%5 == 0 {
			span = 1 << 40 // sparse: the plain sort's path
		}
		obs := make([]observation, n)
		for k := range obs {
			obs[k] = observation{offset: 1000 + rng.Int64N(span), value: int32(rng.IntN(4)), pos: rng.IntN(50)}
		}
		want := slices.Clone(obs)
		slices.SortFunc(want, compareObservations)
		sortObservations(obs)
		if !slices.Equal(obs, want) {
			t.Fatalf("case %d (%d observations over %d offsets): got %v, want %v", i, n, span, obs, want)
		}
	}
}
