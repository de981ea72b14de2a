package sched

import (
	"hash/fnv"
	"math/rand/v2"
)

// NewRand returns a random stream derived from the run seed and a name.
// Every consumer of randomness (each node's processes, the network, each
// disk) draws from its own stream so that one consumer drawing more does not
// shift what the others see: adding a log line to an actor must not change
// which packet the network drops.
func NewRand(seed uint64, name string, incarnation uint32) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()^uint64(incarnation)<<48))
}
