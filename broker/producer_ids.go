package broker

import (
	"fmt"
	"path"

	"github.com/sluice-sim/sluice/sim"
)

// producerIDsFile records the first producer id not yet handed out in a
// block. Ids are handed out in blocks, and a block is recorded before any
// id of it is used, so that a restart never repeats an id: two producers
// sharing an id would fence or deduplicate each other's writes.
const (
	producerIDsFile      = "producer-ids"
	producerIDBlockCount = 1000
)

type producerIDs struct {
	fs   sim.FS
	name string
	// next is the next id to hand out; blockEnd the first id beyond the
	// durably reserved block.
	next, blockEnd int64
	reserving      bool
	waiting        []func(int64, error)
}

func loadProducerIDs(fs sim.FS, dir string) (*producerIDs, error) {
	name := path.Join(dir, producerIDsFile)
	next, rewrite, err := readSealedIntCopies(fs, name)
	if err != nil {
		return nil, err
	}
	ids := &producerIDs{fs: fs, name: name, next: next, blockEnd: next}
	if rewrite {
		// A copy failed its checksum: write both again before a second
		// flip takes the other. Allocations wait as for a reservation; a
		// failed write leaves the file as it was, for the next start.
		ids.reserving = true
		writeSealedInt(fs, name, next, func(error) {
			ids.reserving = false
			waiting := ids.waiting
			ids.waiting = nil
			for _, w := range waiting {
				ids.allocate(w)
			}
		})
	}
	return ids, nil
}

// allocate hands out a producer id, reserving a new block durably first
// when the current one is spent.
func (ids *producerIDs) allocate(done func(int64, error)) {
	if ids.next < ids.blockEnd {
		id := ids.next
		ids.next++
		done(id, nil)
		return
	}
	ids.waiting = append(ids.waiting, done)
	if ids.reserving {
		return
	}
	ids.reserving = true
	end := ids.blockEnd + producerIDBlockCount
	writeSealedInt(ids.fs, ids.name, end, func(err error) {
		ids.reserving = false
		waiting := ids.waiting
		ids.waiting = nil
		if err == nil {
			ids.blockEnd = end
		}
		for _, w := range waiting {
			if err != nil {
				w(-1, fmt.Errorf("reserve producer ids: %w", err))
				continue
			}
			ids.allocate(w)
		}
	})
}
