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
// copy passed.
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
	}
	data, err = storage.Unseal(name, sealed)
	return data, false, err
}

// writeSealedInt replaces a sealed state file durably, then calls done.
func writeSealedInt(fs sim.FS, name string, n int64, done func(error)) {
	sealed := storage.Seal([]byte(strconv.FormatInt(n, 10) + "\n"))
	storage.ReplaceFile(fs, name, bytes.Repeat(sealed, sealedCopies), done)
}
