package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// readSealedInt reads a non-negative number from a sealed state file; a
// missing file is zero. A file that fails its checksum is an error: a
// broker that guessed would hand out an id or an epoch twice.
func readSealedInt(fs sim.FS, name string) (int64, error) {
	sealed, err := storage.ReadCheckpointFile(fs, name)
	if errors.Is(err, sim.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	data, err := storage.Unseal(name, sealed)
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

// writeSealedInt replaces a sealed state file durably, then calls done.
func writeSealedInt(fs sim.FS, name string, n int64, done func(error)) {
	storage.ReplaceFile(fs, name, storage.Seal([]byte(strconv.FormatInt(n, 10)+"\n")), done)
}
