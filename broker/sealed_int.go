package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// A sealed state file holds its number twice, each copy sealed with its
// own checksum, one after the other: a bit the disk flips damages one
// copy, and the broker reads the other, as file systems keep their own
// metadata twice. Nothing else holds these numbers (a start count, the
// producer ids handed out), so a broker whose only copy failed its
// checksum could not start at all. A file with one copy (written before
// the second was added) still reads.

// readSealedInt reads a non-negative number from a sealed state file; a
// missing file is zero. A file whose every copy fails its checksum is an
// error: a broker that guessed would hand out an id or an epoch twice.
func readSealedInt(fs sim.FS, name string) (int64, error) {
	sealed, err := storage.ReadCheckpointFile(fs, name)
	if errors.Is(err, sim.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	data, err := unsealCopies(name, sealed)
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(string(data))
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s holds %q, not a count", name, text)
	}
	return n, nil
}

// unsealCopies returns the first copy of a sealed file that passes its
// checksum: the file's halves, then the whole file (one copy).
func unsealCopies(name string, sealed []byte) ([]byte, error) {
	if half := len(sealed) / 2; len(sealed)%2 == 0 && half > 0 {
		for _, copy := range [][]byte{sealed[:half], sealed[half:]} {
			if data, err := storage.Unseal(name, copy); err == nil {
				return data, nil
			}
		}
	}
	return storage.Unseal(name, sealed)
}

// writeSealedInt replaces a sealed state file durably, then calls done.
func writeSealedInt(fs sim.FS, name string, n int64, done func(error)) {
	sealed := storage.Seal([]byte(strconv.FormatInt(n, 10) + "\n"))
	storage.ReplaceFile(fs, name, append(sealed, sealed...), done)
}
