package storage

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/sim"
)

// PartitionOffset is one line of an offset checkpoint.
type PartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Names of the per-data-directory checkpoints a broker keeps, as Kafka
// names them.
const (
	RecoveryPointCheckpointName = "recovery-point-offset-checkpoint"
	ReplicationCheckpointName   = "replication-offset-checkpoint"
	LogStartCheckpointName      = "log-start-offset-checkpoint"
)

const checkpointVersion = 0

// checkpointFileBytesMax bounds the checkpoint files read.
const checkpointFileBytesMax = 64 << 20

// EncodeOffsetCheckpoint writes Kafka's offset checkpoint text format:
// a version line ("0"), a count line, then one "topic partition offset"
// line per entry, sorted by topic and partition so that equal contents give
// equal bytes.
func EncodeOffsetCheckpoint(entries []PartitionOffset) ([]byte, error) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b PartitionOffset) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", checkpointVersion, len(sorted))
	for i, e := range sorted {
		if e.Topic == "" || strings.ContainsAny(e.Topic, " \t\r\n") {
			return nil, fmt.Errorf("checkpoint entry %d: topic %q cannot be written", i, e.Topic)
		}
		if i > 0 && sorted[i-1].Topic == e.Topic && sorted[i-1].Partition == e.Partition {
			return nil, fmt.Errorf("checkpoint: %s-%d listed twice", e.Topic, e.Partition)
		}
		fmt.Fprintf(&buf, "%s %d %d\n", e.Topic, e.Partition, e.Offset)
	}
	return buf.Bytes(), nil
}

// DecodeOffsetCheckpoint reads what EncodeOffsetCheckpoint (or Kafka)
// writes.
func DecodeOffsetCheckpoint(data []byte) ([]PartitionOffset, error) {
	lines, err := checkpointLines(data)
	if err != nil {
		return nil, err
	}
	entries := make([]PartitionOffset, 0, len(lines))
	for i, line := range lines {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("checkpoint line %d: %q is not \"topic partition offset\"", i+3, line)
		}
		partition, err := strconv.ParseInt(fields[1], 10, 32)
		if err != nil || partition < 0 {
			return nil, fmt.Errorf("checkpoint line %d: partition %q", i+3, fields[1])
		}
		offset, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("checkpoint line %d: offset %q", i+3, fields[2])
		}
		entries = append(entries, PartitionOffset{Topic: fields[0], Partition: int32(partition), Offset: offset})
	}
	return entries, nil
}

// checkpointLines checks the version and count lines of Kafka's
// checkpoint format and returns the entry lines.
func checkpointLines(data []byte) ([]string, error) {
	if len(data) > checkpointFileBytesMax {
		return nil, fmt.Errorf("checkpoint of %d bytes exceeds %d", len(data), checkpointFileBytesMax)
	}
	text := string(data)
	if !strings.HasSuffix(text, "\n") {
		return nil, errors.New("checkpoint does not end with a newline (torn write?)")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("checkpoint has %d lines, want a version and a count", len(lines))
	}
	if lines[0] != strconv.Itoa(checkpointVersion) {
		return nil, fmt.Errorf("checkpoint version %q, want %d", lines[0], checkpointVersion)
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count < 0 {
		return nil, fmt.Errorf("checkpoint count %q", lines[1])
	}
	if count != len(lines)-2 {
		return nil, fmt.Errorf("checkpoint says %d entries and holds %d", count, len(lines)-2)
	}
	return lines[2:], nil
}

// ReadCheckpointFile reads a whole checkpoint or small state file. A
// missing file is sim.ErrNotExist.
func ReadCheckpointFile(fs sim.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readWhole(f, checkpointFileBytesMax)
}

// readWhole reads a file of at most limit bytes.
func readWhole(f sim.File, limit int64) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes exceeds %d", f.Name(), size, limit)
	}
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return nil, err
	}
	return buf, nil
}

// ReplaceFile replaces name with data durably, the way Kafka
// writes its checkpoints: write name.tmp, sync it, rename it over name,
// sync the directory, then call done. A crash at any point leaves either
// the old or the new file whole.
func ReplaceFile(fs sim.FS, name string, data []byte, done func(error)) {
	tmp := name + suffixTmp
	f, err := fs.Create(tmp)
	if err == nil {
		_, err = f.WriteAt(data, 0)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		// Let the caller hear about it after its own callback returns,
		// as it would hear of a sync failure.
		fs.SyncDir(path.Dir(name), func(error) { done(fmt.Errorf("write %s: %w", tmp, err)) })
		return
	}
	f.Sync(func(err error) {
		f.Close()
		if err != nil {
			done(fmt.Errorf("sync %s: %w", tmp, err))
			return
		}
		if err := fs.Rename(tmp, name); err != nil {
			done(fmt.Errorf("rename %s: %w", tmp, err))
			return
		}
		fs.SyncDir(path.Dir(name), func(err error) {
			if err != nil {
				err = fmt.Errorf("sync directory of %s: %w", name, err)
			}
			done(err)
		})
	})
}

// sealPrefix opens the first line of a sealed file.
const sealPrefix = "crc32c "

// Seal prefixes data with a line holding its CRC-32C, so that a state
// file with no checksum of its own (a topic registry, a producer-id block)
// cannot be misread after a bit flip: Unseal refuses it instead.
func Seal(data []byte) []byte {
	out := fmt.Appendf(nil, "%s%08x\n", sealPrefix, crc32.Checksum(data, castagnoli))
	return append(out, data...)
}

// Unseal checks and strips what Seal added; name is for the error.
func Unseal(name string, sealed []byte) ([]byte, error) {
	line, rest, ok := bytes.Cut(sealed, []byte{'\n'})
	var want uint32
	if !ok || !bytes.HasPrefix(line, []byte(sealPrefix)) {
		return nil, fmt.Errorf("%s: %w: no checksum line", name, ErrCorrupt)
	}
	if _, err := fmt.Sscanf(string(line[len(sealPrefix):]), "%08x", &want); err != nil {
		return nil, fmt.Errorf("%s: %w: checksum line %q", name, ErrCorrupt, line)
	}
	if got := crc32.Checksum(rest, castagnoli); got != want {
		return nil, fmt.Errorf("%s: %w: checksum %08x, the file says %08x", name, ErrCorrupt, got, want)
	}
	return rest, nil
}
