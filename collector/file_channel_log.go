package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// The file channel's write-ahead log. Each committed transaction is one
// record, appended to the current log file ("log-N") of one of the data
// directories, each directory a log of its own, taken in turn:
//
//	length u32 | crc u32 (CRC-32C of the payload) | payload
//	payload: puts u32, {id u64, headers u16, {key u16+bytes, value u32+bytes}, body u32+bytes}...,
//	         takes u32, {id u64}...
//
// One record per transaction makes a transaction atomic on disk: a torn or
// flipped record fails its checksum and is dropped whole, so no part of an
// uncommitted or damaged transaction is ever replayed.
//
// Records need no order across logs: an event id is put by one record
// only and a committed take is final, so what is live is the puts minus
// the takes whatever order the logs are read in (a take read before its
// put, in another log, is held until the put turns up).
//
// The checkpoint ("checkpoint" in the checkpoint directory) lists the
// events live at a position in every log, so replay reads them and then
// only the records after those positions. With one data directory:
//
//	crc u32 (CRC-32C of the rest) | version 1 u8 | nextID u64 | file u32 | offset u64 |
//	count u64 | {id u64, file u32, offset u64}...
//
// With several, version 2 names a position per log, the log's directory
// (so that a reordered or renamed dataDirs is refused, not misread) and
// each event's log:
//
//	crc u32 | version 2 u8 | nextID u64 | logs u32 | {file u32, offset u64, dir u16+bytes}... |
//	count u64 | {id u64, log u32, file u32, offset u64}...

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	recordHeaderBytes = 8
	// recordBytesMax bounds one record: a transaction of
	// transactionCapacity events must fit.
	recordBytesMax = 256 << 20
	// logFilesMax bounds the log files one data directory may hold.
	logFilesMax = 1 << 16
	// takenAheadMax bounds the takes a replay holds for puts in logs
	// not read yet; past it, such an event may be delivered again.
	takenAheadMax  = 1 << 24
	checkpointName = "checkpoint"
	// checkpointVersionOneLog is the one-directory checkpoint; a
	// channel with several writes checkpointVersionLogs.
	checkpointVersionOneLog = 1
	checkpointVersionLogs   = 2
	logFilePrefix           = "log-"
	checkpointTempName      = "checkpoint.tmp"
)

// recordLoc is where a transaction's record starts: in which log (the
// data directory's index in dataDirs), which file of it, at what offset.
type recordLoc struct {
	log  uint32
	file uint32
	off  int64
}

func (l recordLoc) String() string {
	if l.log == 0 {
		return fmt.Sprintf("%s%d@%d", logFilePrefix, l.file, l.off)
	}
	return fmt.Sprintf("%s%d@%d of data directory %d", logFilePrefix, l.file, l.off, l.log+1)
}

func logFileName(dir string, id uint32) string {
	return path.Join(dir, logFilePrefix+strconv.FormatUint(uint64(id), 10))
}

// checkEncodable refuses a transaction the record format cannot hold, so
// that nothing is acknowledged that replay would refuse.
func checkEncodable(puts []Event, takes []item) error {
	size := recordHeaderBytes + 8 + 12*len(takes)
	for _, e := range puts {
		if len(e.Headers) > math.MaxUint16 {
			return fmt.Errorf("event with %d headers, beyond %d", len(e.Headers), math.MaxUint16)
		}
		size += 8 + 2 + 4 + len(e.Body)
		for k, v := range e.Headers {
			if len(k) > math.MaxUint16 {
				return fmt.Errorf("header name of %d bytes, beyond %d", len(k), math.MaxUint16)
			}
			size += 2 + len(k) + 4 + len(v)
		}
	}
	if size > recordBytesMax {
		return fmt.Errorf("transaction of %d bytes, beyond the %d-byte record bound", size, recordBytesMax)
	}
	return nil
}

// encodeRecord builds a transaction's record; checkEncodable passed.
func encodeRecord(buf []byte, ids []uint64, puts []Event, takes []item) []byte {
	buf = append(buf[:0], make([]byte, recordHeaderBytes)...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(puts)))
	for i, e := range puts {
		buf = binary.BigEndian.AppendUint64(buf, ids[i])
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(e.Headers)))
		for _, k := range sortedHeaderKeys(e.Headers) {
			v := e.Headers[k]
			buf = binary.BigEndian.AppendUint16(buf, uint16(len(k)))
			buf = append(buf, k...)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
			buf = append(buf, v...)
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(e.Body)))
		buf = append(buf, e.Body...)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(takes)))
	for _, t := range takes {
		buf = binary.BigEndian.AppendUint64(buf, t.id)
	}
	payload := buf[recordHeaderBytes:]
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:8], crc32.Checksum(payload, castagnoli))
	return buf
}

// decodedRecord is a record's contents.
type decodedRecord struct {
	putIDs []uint64
	puts   []Event
	takes  []uint64
}

var errTruncatedRecord = errors.New("record ends early")

type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errTruncatedRecord
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
func (r *payloadReader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}
func (r *payloadReader) u32() int {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint32(b))
}
func (r *payloadReader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// decodeRecord reads a payload whose checksum matched.
func decodeRecord(payload []byte) (decodedRecord, error) {
	r := &payloadReader{b: payload}
	var d decodedRecord
	puts := r.u32()
	for i := 0; i < puts && r.err == nil; i++ {
		id := r.u64()
		headers := r.u16()
		var e Event
		if headers > 0 {
			e.Headers = make(map[string]string, headers)
		}
		for h := 0; h < headers && r.err == nil; h++ {
			k := string(r.take(r.u16()))
			e.Headers[k] = string(r.take(r.u32()))
		}
		e.Body = append([]byte(nil), r.take(r.u32())...)
		d.putIDs = append(d.putIDs, id)
		d.puts = append(d.puts, e)
	}
	takes := r.u32()
	for i := 0; i < takes && r.err == nil; i++ {
		d.takes = append(d.takes, r.u64())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the record's contents", len(r.b))
	}
	return d, r.err
}

// errLogReadFailed marks a read of the log that failed: the disk's error,
// not damage. The bytes may be intact on the platter, so replay stops
// rather than drop the records from there on.
var errLogReadFailed = errors.New("log read failed")

// readRecord reads and checks the record at off; the returned size is the
// whole record's. A read that fails wraps errLogReadFailed; any other
// error is a record torn or damaged.
func readRecord(f sim.File, off, fileSize int64) (decodedRecord, int64, error) {
	if fileSize-off < recordHeaderBytes {
		return decodedRecord{}, 0, fmt.Errorf("%d bytes, shorter than a record header", fileSize-off)
	}
	var header [recordHeaderBytes]byte
	if _, err := f.ReadAt(header[:], off); err != nil {
		return decodedRecord{}, 0, fmt.Errorf("%w: record header: %w", errLogReadFailed, err)
	}
	n := int64(binary.BigEndian.Uint32(header[0:4]))
	if n > recordBytesMax || off+recordHeaderBytes+n > fileSize {
		return decodedRecord{}, 0, fmt.Errorf("record length %d runs past the file's end or the %d-byte bound", n, recordBytesMax)
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, off+recordHeaderBytes); err != nil && !errors.Is(err, io.EOF) {
		return decodedRecord{}, 0, fmt.Errorf("%w: record: %w", errLogReadFailed, err)
	}
	if got, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(header[4:8]); got != want {
		return decodedRecord{}, 0, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	d, err := decodeRecord(payload)
	if err != nil {
		return decodedRecord{}, 0, err
	}
	return d, recordHeaderBytes + n, nil
}

// checkpoint is what the checkpoint file holds.
type checkpoint struct {
	nextID uint64
	// from is, per log, the position before which every record is
	// reflected in live.
	from []recordLoc
	// dirs are the logs' directories (version 2 only).
	dirs []string
	live []item // id and loc only
}

func encodeCheckpoint(cp checkpoint) []byte {
	if len(cp.from) == 1 {
		return encodeCheckpointOneLog(cp)
	}
	buf := make([]byte, 4, 4+1+8+4+12*len(cp.from)+8+len(cp.live)*24)
	buf = append(buf, checkpointVersionLogs)
	buf = binary.BigEndian.AppendUint64(buf, cp.nextID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(cp.from)))
	for i, at := range cp.from {
		buf = binary.BigEndian.AppendUint32(buf, at.file)
		buf = binary.BigEndian.AppendUint64(buf, uint64(at.off))
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(cp.dirs[i])))
		buf = append(buf, cp.dirs[i]...)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(cp.live)))
	for _, it := range cp.live {
		buf = binary.BigEndian.AppendUint64(buf, it.id)
		buf = binary.BigEndian.AppendUint32(buf, it.loc.log)
		buf = binary.BigEndian.AppendUint32(buf, it.loc.file)
		buf = binary.BigEndian.AppendUint64(buf, uint64(it.loc.off))
	}
	binary.BigEndian.PutUint32(buf[0:4], crc32.Checksum(buf[4:], castagnoli))
	return buf
}

// encodeCheckpointOneLog writes version 1, which a one-directory channel
// has always written.
func encodeCheckpointOneLog(cp checkpoint) []byte {
	buf := make([]byte, 4, 4+1+8+4+8+8+len(cp.live)*20)
	buf = append(buf, checkpointVersionOneLog)
	buf = binary.BigEndian.AppendUint64(buf, cp.nextID)
	buf = binary.BigEndian.AppendUint32(buf, cp.from[0].file)
	buf = binary.BigEndian.AppendUint64(buf, uint64(cp.from[0].off))
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(cp.live)))
	for _, it := range cp.live {
		buf = binary.BigEndian.AppendUint64(buf, it.id)
		buf = binary.BigEndian.AppendUint32(buf, it.loc.file)
		buf = binary.BigEndian.AppendUint64(buf, uint64(it.loc.off))
	}
	binary.BigEndian.PutUint32(buf[0:4], crc32.Checksum(buf[4:], castagnoli))
	return buf
}

func decodeCheckpoint(data []byte) (checkpoint, error) {
	if len(data) < 4+1+8+4+8+8 {
		return checkpoint{}, fmt.Errorf("%d bytes, shorter than a checkpoint", len(data))
	}
	if got, want := crc32.Checksum(data[4:], castagnoli), binary.BigEndian.Uint32(data[0:4]); got != want {
		return checkpoint{}, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	r := &payloadReader{b: data[4:]}
	version := r.take(1)[0]
	if version != checkpointVersionOneLog && version != checkpointVersionLogs {
		return checkpoint{}, fmt.Errorf("version %d, want %d or %d", version, checkpointVersionOneLog, checkpointVersionLogs)
	}
	cp := checkpoint{nextID: r.u64()}
	logs := 1
	if version == checkpointVersionLogs {
		logs = r.u32()
		if logs == 0 || logs > config.DataDirsMax {
			return checkpoint{}, fmt.Errorf("positions in %d logs, want 1 to %d", logs, config.DataDirsMax)
		}
	}
	for l := 0; l < logs; l++ {
		at := recordLoc{log: uint32(l), file: uint32(r.u32())}
		at.off = int64(r.u64())
		cp.from = append(cp.from, at)
		if version == checkpointVersionLogs {
			cp.dirs = append(cp.dirs, string(r.take(r.u16())))
		}
	}
	itemBytes := uint64(20)
	if version == checkpointVersionLogs {
		itemBytes = 24
	}
	n := r.u64()
	if n > uint64(len(r.b))/itemBytes {
		return checkpoint{}, fmt.Errorf("%d live events do not fit in %d bytes", n, len(r.b))
	}
	for i := uint64(0); i < n; i++ {
		it := item{id: r.u64()}
		if version == checkpointVersionLogs {
			it.loc.log = uint32(r.u32())
			if int(it.loc.log) >= logs {
				return checkpoint{}, fmt.Errorf("event %d in log %d of %d", it.id, it.loc.log+1, logs)
			}
		}
		it.loc.file = uint32(r.u32())
		it.loc.off = int64(r.u64())
		cp.live = append(cp.live, it)
	}
	return cp, r.err
}

// readWholeFile reads a small file (the checkpoint).
func readWholeFile(fs sim.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > recordBytesMax {
		return nil, fmt.Errorf("%s: %d bytes is beyond the %d-byte bound", name, size, recordBytesMax)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// logFileIDs lists the ids of the log files in dir, ascending.
func logFileIDs(fs sim.FS, dir string) ([]uint32, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var ids []uint32
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, logFilePrefix)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, uint32(id))
		if len(ids) > logFilesMax {
			return nil, fmt.Errorf("%s holds more than %d log files", dir, logFilesMax)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// replayed is what a replay found.
type replayed struct {
	live   map[uint64]item
	nextID uint64
	// lastIDs are, per log, the highest log file id present.
	lastIDs []uint32
	// problems are checksum failures, unreadable records and a damaged
	// checkpoint: reported, never delivered.
	problems []string
	records  int
	// badRecord and checkpointDamaged say which recovery paths the
	// replay took, for the probes.
	badRecord, checkpointDamaged bool
	// taken are the events whose put and take the replayed records both
	// hold, in log order: among them takes whose commit was durable
	// before the crash though nobody heard of it.
	taken []Event
	// takenAhead are, with several logs, the ids taken by a record read
	// before any put of them: their put may lie in a log read later.
	takenAhead map[uint64]bool
}

// replay rebuilds a file channel's contents from its checkpoint and logs.
func replay(fs sim.FS, dataDirs []string, checkpointDir string) (*replayed, error) {
	r := &replayed{live: map[uint64]item{}, nextID: 1, lastIDs: make([]uint32, len(dataDirs))}
	if len(dataDirs) > 1 {
		r.takenAhead = map[uint64]bool{}
	}
	fileIDs := make([][]uint32, len(dataDirs))
	for l, dir := range dataDirs {
		ids, err := logFileIDs(fs, dir)
		if err != nil {
			return nil, err
		}
		fileIDs[l] = ids
		if len(ids) > 0 {
			r.lastIDs[l] = ids[len(ids)-1]
		}
	}
	from, err := r.loadCheckpoint(fs, dataDirs, checkpointDir)
	if err != nil {
		return nil, err
	}
	for l, ids := range fileIDs {
		for _, id := range ids {
			if id < from[l].file {
				continue
			}
			start := int64(0)
			if id == from[l].file {
				start = from[l].off
			}
			if err := r.scan(fs, dataDirs[l], recordLoc{log: uint32(l), file: id, off: start}); err != nil {
				return nil, err
			}
		}
	}
	for id := range r.takenAhead {
		r.nextID = max(r.nextID, id+1)
	}
	return r, nil
}

// loadCheckpoint reads the checkpoint's live events and returns where
// each log's replay starts: at its start when there is no checkpoint or
// it is damaged, and for a log the checkpoint does not name (a data
// directory added to dataDirs).
func (r *replayed) loadCheckpoint(fs sim.FS, dataDirs []string, checkpointDir string) ([]recordLoc, error) {
	from := make([]recordLoc, len(dataDirs))
	data, err := readWholeFile(fs, path.Join(checkpointDir, checkpointName))
	switch {
	case errors.Is(err, sim.ErrNotExist):
	case err != nil:
		r.problems = append(r.problems, fmt.Sprintf("checkpoint unreadable (%v): replaying every log file", err))
		r.checkpointDamaged = true
	default:
		cp, err := decodeCheckpoint(data)
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("checkpoint damaged (%v): replaying every log file", err))
			r.checkpointDamaged = true
			break
		}
		if len(cp.from) > len(dataDirs) {
			// Its events in the logs now missing would be lost
			// silently.
			return nil, fmt.Errorf("the checkpoint names %d data directories, dataDirs %d: a directory was left out", len(cp.from), len(dataDirs))
		}
		for i, dir := range cp.dirs {
			if dir != dataDirs[i] {
				return nil, fmt.Errorf("data directory %d is %s, the checkpoint's %s: dataDirs were reordered or renamed", i+1, dataDirs[i], dir)
			}
		}
		copy(from, cp.from)
		r.nextID = cp.nextID
		if err := r.loadCheckpointed(fs, dataDirs, cp.live); err != nil {
			return nil, err
		}
	}
	return from, nil
}

// loadCheckpointed reads the records holding the checkpoint's live events.
// A read that fails is an error: the events may be intact on disk.
func (r *replayed) loadCheckpointed(fs sim.FS, dataDirs []string, live []item) error {
	files := map[recordLoc]sim.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	records := map[recordLoc]decodedRecord{}
	for _, it := range live {
		d, ok := records[it.loc]
		if !ok {
			var err error
			d, err = readRecordAt(fs, dataDirs[it.loc.log], files, it.loc)
			if errors.Is(err, errLogReadFailed) {
				return fmt.Errorf("event %d in %s: %w", it.id, it.loc, err)
			}
			if err != nil {
				r.problems = append(r.problems, fmt.Sprintf("event %d in %s lost: %v", it.id, it.loc, err))
				continue
			}
			records[it.loc] = d
		}
		found := false
		for i, id := range d.putIDs {
			if id == it.id {
				r.live[id] = item{id: id, ev: d.puts[i], loc: it.loc}
				found = true
			}
		}
		if !found {
			r.problems = append(r.problems, fmt.Sprintf("event %d lost: the record at %s does not hold it", it.id, it.loc))
		}
	}
	return nil
}

// readRecordAt reads the record at loc, keeping its file open in files
// (keyed by log and file, offset zero).
func readRecordAt(fs sim.FS, dataDir string, files map[recordLoc]sim.File, loc recordLoc) (decodedRecord, error) {
	key := recordLoc{log: loc.log, file: loc.file}
	f, ok := files[key]
	if !ok {
		var err error
		f, err = fs.Open(logFileName(dataDir, loc.file))
		if errors.Is(err, sim.ErrIO) {
			return decodedRecord{}, fmt.Errorf("%w: open: %w", errLogReadFailed, err)
		}
		if err != nil {
			return decodedRecord{}, err
		}
		files[key] = f
	}
	size, err := f.Size()
	if err != nil {
		return decodedRecord{}, fmt.Errorf("%w: size: %w", errLogReadFailed, err)
	}
	d, _, err := readRecord(f, loc.off, size)
	return d, err
}

// scan applies the records of one log file from start.off; a bad record
// ends the file's replay, as nothing after it can be framed. A failed
// read ends the whole replay with an error.
func (r *replayed) scan(fs sim.FS, dataDir string, start recordLoc) error {
	name := logFileName(dataDir, start.file)
	f, err := fs.Open(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("size of %s: %w", name, err)
	}
	for off := start.off; off < size; {
		d, n, err := readRecord(f, off, size)
		if errors.Is(err, errLogReadFailed) {
			return fmt.Errorf("%s offset %d: %w", name, off, err)
		}
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("%s offset %d: %v; the %d bytes from there are not replayed", name, off, err, size-off))
			r.badRecord = true
			return nil
		}
		r.apply(d, recordLoc{log: start.log, file: start.file, off: off})
		r.records++
		off += n
	}
	return nil
}

// apply reflects one record in live.
func (r *replayed) apply(d decodedRecord, loc recordLoc) {
	for i, pid := range d.putIDs {
		r.nextID = max(r.nextID, pid+1)
		if r.takenAhead[pid] {
			delete(r.takenAhead, pid)
			r.taken = append(r.taken, d.puts[i])
			continue
		}
		r.live[pid] = item{id: pid, ev: d.puts[i], loc: loc}
	}
	for _, tid := range d.takes {
		it, ok := r.live[tid]
		switch {
		case ok:
			r.taken = append(r.taken, it.ev)
			delete(r.live, tid)
		case r.takenAhead != nil && len(r.takenAhead) < takenAheadMax:
			r.takenAhead[tid] = true
		}
	}
}

// sortedLive lists the live events in id (commit) order.
func (r *replayed) sortedLive() []item {
	out := make([]item, 0, len(r.live))
	for _, it := range r.live {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
