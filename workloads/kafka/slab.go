package kafka

// slab hands out zeroed values cut from arrays of slabLen: the producer
// makes a few small structs for every record it sends (the record's
// state, its batch, the history's copies of it), and one allocation per
// slab instead of per value is a good part of a simulated client's
// allocations. A slab stays alive while any value cut from it is
// referenced, a few kilobytes at most; history records, which the
// history keeps for the whole run, are kept anyway.
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
