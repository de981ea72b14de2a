package broker

// slab hands out zeroed values cut from arrays of slabLen: the broker
// makes a request, and a produce call or a fetch wait, for every request
// it serves, and one allocation per slab instead of per value is a fair
// part of a simulation's allocations. Values are never reused; a slab
// stays alive while any value cut from it is referenced (a fetch held
// for its max wait), a few kilobytes at most.
type slab[T any] struct {
	free []T
}

// slabLen is how many values one allocation makes room for.
const slabLen = 32

// take returns a pointer to a zero value of its own.
func (s *slab[T]) take() *T {
	if len(s.free) == 0 {
		s.free = make([]T, slabLen)
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}
