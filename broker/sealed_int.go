package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// A sealed state file holds its number three times, each copy sealed
// with its own checksum, one after the other: bits the disk flips damage
// some copies, and the broker reads one that passes, as file systems keep
// their own metadata in several places. Nothing else holds these numbers
// (a start count, the producer ids handed out), so a broker whose only
// copy failed its checksum could not start at all. A file found with a
// damaged copy is written whole again. A file with one copy (written
// before the others were added) still reads.

// readSealedInt reads a non-negative number from a sealed state file; a
// missing file is zero. A file whose every copy fails its checksum is an
// error: a broker that guessed would hand out an id or an epoch twice.
func readSealedInt(fs sim.FS, name string) (int64, error) {
	n, _, err := readSealedIntCopies(fs, name)
	return n, err
}

// readSealedIntCopies is readSealedInt that also reports whether the file
// is not whole (a copy failed, or it holds one): the caller writes it
// again, so that damage does not pile up until no copy is left.
func readSealedIntCopies(fs sim.FS, name string) (n int64, rewrite bool, err error) {
	sealed, err := storage.ReadCheckpointFile(fs, name)
	if errors.Is(err, sim.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", name, err)
	}
	data, whole, err := unsealCopies(name, sealed)
	if err != nil {
		return 0, false, err
	}
	text := strings.TrimSpace(string(data))
	n, err = strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("%s holds %q, not a count", name, text)
	}
	return n, !whole, nil
}

// sealedCopies is how many copies a sealed state file holds.
const sealedCopies = 3

// unsealCopies returns the first copy of a sealed file that passes its
// checksum (or the whole file, for a file of one copy); whole says every
// copy passed. When every copy fails, the bitwise majority of the three
// is tried: flips that hit each copy at a different bit (the way bits
// flip, one at a time, anywhere) leave two copies agreeing on every bit,
// so the vote rebuilds the number, and its checksum still has the last
// word (a small file is much of an almost empty disk, so a few flips
// early in a broker's life can reach all three: cluster-swarm seed 1647).
func unsealCopies(name string, sealed []byte) (data []byte, whole bool, err error) {
	if size := len(sealed) / sealedCopies; len(sealed)%sealedCopies == 0 && size > 0 {
		whole = true
		for i := range sealedCopies {
			value, err := storage.Unseal(name, sealed[i*size:(i+1)*size])
			switch {
			case err != nil:
				whole = false
			case data == nil:
				data = value
			}
		}
		if data != nil {
			return data, whole, nil
		}
		if data, err := storage.Unseal(name, majorityOfCopies(sealed, size)); err == nil {
			return data, false, nil
		}
	}
	data, err = storage.Unseal(name, sealed)
	return data, false, err
}

// majorityOfCopies is each bit of the three copies of size bytes as at
// least two of them hold it.
func majorityOfCopies(sealed []byte, size int) []byte {
	a, b, c := sealed[:size], sealed[size:2*size], sealed[2*size:3*size]
	voted := make([]byte, size)
	for i := range voted {
		voted[i] = a[i]&b[i] | a[i]&c[i] | b[i]&c[i]
	}
	return voted
}

// writeSealedInt replaces a sealed state file durably, then calls done.
func writeSealedInt(fs sim.FS, name string, n int64, done func(error)) {
	sealed := storage.Seal([]byte(strconv.FormatInt(n, 10) + "\n"))
	storage.ReplaceFile(fs, name, bytes.Repeat(sealed, sealedCopies), done)
}
