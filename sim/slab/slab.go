// Package slab hands out zeroed values cut from arrays: the simulated
// broker and clients make a few small structs for every request and
// record (a request, a produce call, a fetch wait, a record's state, its
// batch, the history's copies), and one allocation per slab instead of
// per value is a fair part of a simulation's allocations.
package slab

// Len is how many values one allocation makes room for.
const Len = 32

// Slab hands out values that are never reused: a slab stays alive while
// any value cut from it is referenced (a fetch held for its max wait, a
// history record kept for the whole run), a few kilobytes at most.
type Slab[T any] struct {
	free []T
}

// Take returns a pointer to a zero value of its own.
func (s *Slab[T]) Take() *T {
	if len(s.free) == 0 {
		s.free = make([]T, Len)
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}
