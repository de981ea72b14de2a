package counter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/sluice-sim/sluice/sim"
)

// A WAL record is 16 bytes: a CRC-32C of the rest, a magic number, the id.
// A record that fails its checksum ends the log: everything from it on is a
// torn or corrupt tail and is cut off.
const (
	walRecordBytes = 16
	walMagic       = 0x5a17c0de
	walName        = "counter.wal"
	// walRecordsMax bounds a log scan.
	walRecordsMax = 1 << 26
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeWALRecord(id uint64) []byte {
	b := make([]byte, walRecordBytes)
	binary.BigEndian.PutUint32(b[4:], walMagic)
	binary.BigEndian.PutUint64(b[8:], id)
	binary.BigEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
	return b
}

// scanWAL reads every valid record of f and reports the byte length of the
// valid prefix.
func scanWAL(f sim.File) (ids []uint64, validBytes int64, err error) {
	size, err := f.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("size of %s: %w", walName, err)
	}
	buf := make([]byte, walRecordBytes)
	for off := int64(0); off+walRecordBytes <= size; off += walRecordBytes {
		if len(ids) >= walRecordsMax {
			return nil, 0, fmt.Errorf("%s: more than %d records", walName, walRecordsMax)
		}
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("read %s at %d: %w", walName, off, err)
		}
		if binary.BigEndian.Uint32(buf[4:]) != walMagic ||
			binary.BigEndian.Uint32(buf[0:]) != crc32.Checksum(buf[4:], castagnoli) {
			return ids, off, nil
		}
		ids = append(ids, binary.BigEndian.Uint64(buf[8:]))
	}
	return ids, int64(len(ids)) * walRecordBytes, nil
}

// RecoverIDs reads the ids a server's disk holds, as the server would on
// start; scenario checks use it to judge what survived.
func RecoverIDs(fs sim.FS) ([]uint64, error) {
	f, err := fs.Open(walName)
	if errors.Is(err, sim.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", walName, err)
	}
	defer f.Close()
	ids, _, err := scanWAL(f)
	return ids, err
}
