package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// SpoolDirSource reads the files dropped into a directory line by line,
// as Flume's spooldir source does: a file's lines go to the channels in
// batches, and once all of them are committed the file is renamed with
// fileSuffix (or deleted, deletePolicy immediate). Files are taken in name
// order (the seams show no modification times, so "oldest" is by name).
// The position within the current file is kept in trackerDir after each
// commit, so a restart resumes there: lines are delivered at least once.
//
// A spooled file must not change: one whose size or bytes differ from
// what was read when it is completed, or whose completed name already
// exists (a name reused), stops the source with a loud error, as Flume's
// does, rather than guess which lines to deliver.
type SpoolDirSource struct {
	name     string
	env      sim.Env
	cfg      spoolDirConfig
	proc     *channelProcessor
	counters SourceCounters
	timer    sim.Timer
	stopped  bool
	// cur is the file being read, nil between files.
	cur     *spoolFile
	backoff time.Duration
	// Failed is the error that stopped the source, if any.
	Failed error
	// onStopped, if not nil, is told of that error: the agent runs on
	// without the source until it is restarted.
	onStopped func(error)
	// tracker writes the tracker file durably.
	tracker *durableFile
}

type spoolDirConfig struct {
	dir, suffix, trackerDir string
	deleteImmediately       bool
	include, ignore         *regexp.Regexp
	batch, maxLine          int
	pollDelay, maxBackoff   time.Duration
	fileHeaderKey           string
	basenameHeaderKey       string
}

// spoolFile is the file being read: its size when opened, the offset up to
// which its lines are committed, and a checksum of those bytes.
type spoolFile struct {
	name string
	size int64
	pos  int64
	crc  uint32
}

// spoolMeta is what the tracker file holds.
type spoolMeta struct {
	File string `json:"file"`
	Size int64  `json:"size"`
	Pos  int64  `json:"pos"`
	CRC  uint32 `json:"crc"`
}

const (
	spoolReadBytesMax  = 1 << 20
	spoolBackoffMin    = 250 * time.Millisecond
	spoolTrackerName   = ".flumespool-main.meta"
	spoolDirEntriesMax = 1 << 16
)

func newSpoolDirSource(name string, env sim.Env, c *config.Source, proc *channelProcessor, resolve func(string) string) (*SpoolDirSource, error) {
	cfg := spoolDirConfig{
		dir: resolve(c.String("spoolDir")), suffix: c.String("fileSuffix"),
		deleteImmediately: c.String("deletePolicy") == "immediate",
		batch:             int(min(c.BatchSize(), int64(proc.batchMax))), maxLine: int(c.Int("deserializer.maxLineLength")),
		pollDelay: time.Duration(c.Int("pollDelay")) * time.Millisecond, maxBackoff: time.Duration(c.Int("maxBackoff")) * time.Millisecond,
	}
	cfg.trackerDir = c.String("trackerDir")
	if !strings.HasPrefix(cfg.trackerDir, "/") {
		cfg.trackerDir = path.Join(cfg.dir, cfg.trackerDir)
	} else {
		cfg.trackerDir = resolve(cfg.trackerDir)
	}
	var err error
	if cfg.include, err = regexp.Compile(c.String("includePattern")); err != nil {
		return nil, fmt.Errorf("spooldir source %s: includePattern: %w", name, err)
	}
	if cfg.ignore, err = regexp.Compile(c.String("ignorePattern")); err != nil {
		return nil, fmt.Errorf("spooldir source %s: ignorePattern: %w", name, err)
	}
	if c.Bool("fileHeader") {
		cfg.fileHeaderKey = c.String("fileHeaderKey")
	}
	if c.Bool("basenameHeader") {
		cfg.basenameHeaderKey = c.String("basenameHeaderKey")
	}
	return &SpoolDirSource{name: name, env: env, cfg: cfg, proc: proc}, nil
}

// Name is the source's name.
func (s *SpoolDirSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *SpoolDirSource) Counters() *SourceCounters { return &s.counters }

// Start resumes the file the tracker names, if any, and begins polling.
func (s *SpoolDirSource) Start() error {
	for _, dir := range []string{s.cfg.dir, s.cfg.trackerDir} {
		if err := s.env.FS.MkdirAll(dir); err != nil {
			return fmt.Errorf("spooldir source %s: create %s: %w", s.name, dir, err)
		}
	}
	s.tracker = newDurableFile(s.env.FS, path.Join(s.cfg.trackerDir, spoolTrackerName), func(err error) {
		s.env.Log.Logf("spooldir source %s: tracker: %v", s.name, err)
	})
	if meta, ok := s.readTracker(); ok {
		if info, err := s.env.FS.Stat(path.Join(s.cfg.dir, meta.File)); err == nil && !info.IsDir {
			s.cur = &spoolFile{name: meta.File, size: meta.Size, pos: meta.Pos, crc: meta.CRC}
			s.env.Log.Logf("spooldir source %s: resuming %s at byte %d", s.name, meta.File, meta.Pos)
			s.env.Hit(probeSpoolResumed)
		}
	}
	s.timer = s.env.Clock.AfterFunc(0, s.step)
	return nil
}

// Stop stops reading after the batch in flight.
func (s *SpoolDirSource) Stop() {
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *SpoolDirSource) readTracker() (spoolMeta, bool) {
	var meta spoolMeta
	f, err := s.env.FS.Open(path.Join(s.cfg.trackerDir, spoolTrackerName))
	if err != nil {
		return meta, false
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size > 1<<16 {
		return meta, false
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return meta, false
	}
	if err := json.Unmarshal(buf, &meta); err != nil {
		s.env.Log.Logf("spooldir source %s: tracker file unreadable, ignored: %v", s.name, err)
		return meta, false
	}
	return meta, true
}

// writeTracker records the committed position, durably (durableFile): a
// power loss leaves the last tracker written, not an empty one that would
// send the file again from its start. One that failed is written again
// after the next commit.
func (s *SpoolDirSource) writeTracker() {
	b, _ := json.Marshal(spoolMeta{File: s.cur.name, Size: s.cur.size, Pos: s.cur.pos, CRC: s.cur.crc})
	s.tracker.write(b)
}

// whenDurable calls done once the tracker written last is durable.
func (s *SpoolDirSource) whenDurable(done func()) { s.tracker.whenIdle(done) }

func (s *SpoolDirSource) after(d time.Duration) {
	if !s.stopped && s.Failed == nil {
		s.timer = s.env.Clock.AfterFunc(d, s.step)
	}
}

// fail stops the source: a spooled file broke the rules.
func (s *SpoolDirSource) fail(err error) {
	s.Failed = fmt.Errorf("spooldir source %s: %w", s.name, err)
	s.env.Log.Logf("FATAL: %v; the source stops. Restart or reconfigure the agent to continue processing.", s.Failed)
	if s.onStopped != nil {
		s.onStopped(s.Failed)
	}
}

func (s *SpoolDirSource) step() {
	if s.stopped || s.Failed != nil {
		return
	}
	if s.cur == nil {
		next, err := s.nextFile()
		if err != nil {
			s.env.Log.Logf("spooldir source %s: %v", s.name, err)
			s.after(s.cfg.pollDelay)
			return
		}
		if next == nil {
			s.after(s.cfg.pollDelay)
			return
		}
		s.cur = next
	}
	events, end, crc, err := s.readBatch()
	if err != nil {
		s.env.Log.Logf("spooldir source %s: read %s: %v", s.name, s.cur.name, err)
		s.after(s.cfg.pollDelay)
		return
	}
	if len(events) == 0 {
		s.complete()
		return
	}
	s.counters.EventReceivedCount += int64(len(events))
	s.counters.AppendBatchReceivedCount++
	s.proc.process(events, func(err error) {
		if err != nil {
			s.counters.ChannelWriteFail++
			s.backoff = min(max(2*s.backoff, spoolBackoffMin), s.cfg.maxBackoff)
			s.env.Log.Logf("spooldir source %s: %d lines not accepted, retrying in %v: %v", s.name, len(events), s.backoff, err)
			s.after(s.backoff)
			return
		}
		s.backoff = 0
		s.counters.EventAcceptedCount += int64(len(events))
		s.counters.AppendBatchAcceptedCount++
		s.cur.pos, s.cur.crc = end, crc
		s.writeTracker()
		s.after(0)
	})
	if s.proc.full() {
		s.proc.relieve()
	}
}

// nextFile picks the first file by name that is to be spooled.
func (s *SpoolDirSource) nextFile() (*spoolFile, error) {
	names, err := s.env.FS.List(s.cfg.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.cfg.dir, err)
	}
	for _, n := range names[:min(len(names), spoolDirEntriesMax)] {
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, s.cfg.suffix) || !s.cfg.include.MatchString(n) || s.cfg.ignore.MatchString(n) {
			continue
		}
		info, err := s.env.FS.Stat(path.Join(s.cfg.dir, n))
		if err != nil || info.IsDir {
			continue
		}
		s.env.Log.Logf("spooldir source %s: reading %s (%d bytes)", s.name, n, info.Size)
		return &spoolFile{name: n, size: info.Size, crc: 0}, nil
	}
	return nil, nil
}

// readBatch reads up to batchSize lines after the committed position; a
// last line without its newline counts at the end of the file. It returns
// the offset after them and the checksum up to there.
func (s *SpoolDirSource) readBatch() ([]Event, int64, uint32, error) {
	f, err := s.env.FS.Open(path.Join(s.cfg.dir, s.cur.name))
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, 0, 0, err
	}
	pos, crc := s.cur.pos, s.cur.crc
	var events []Event
	for len(events) < s.cfg.batch && pos < size {
		buf := make([]byte, min(size-pos, spoolReadBytesMax))
		n, err := f.ReadAt(buf, pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, 0, err
		}
		buf = buf[:n]
		if n == 0 {
			break
		}
		for len(events) < s.cfg.batch && len(buf) > 0 {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 && pos+int64(len(buf)) < size && len(buf) < spoolReadBytesMax {
				break // the rest of the line is past this read
			}
			line := buf
			used := len(buf)
			if i >= 0 {
				line, used = buf[:i], i+1
			}
			crc = crc32.Update(crc, crc32.IEEETable, buf[:used])
			buf, pos = buf[used:], pos+int64(used)
			if len(line) > s.cfg.maxLine {
				s.env.Log.Logf("spooldir source %s: %s: line over %d bytes, truncated", s.name, s.cur.name, s.cfg.maxLine)
				line = line[:s.cfg.maxLine]
			}
			events = append(events, s.event(line))
		}
	}
	return events, pos, crc, nil
}

func (s *SpoolDirSource) event(line []byte) Event {
	e := Event{Body: bytes.Clone(line)}
	if s.cfg.fileHeaderKey != "" || s.cfg.basenameHeaderKey != "" {
		e.Headers = map[string]string{}
		if s.cfg.fileHeaderKey != "" {
			e.Headers[s.cfg.fileHeaderKey] = "/" + path.Join(s.cfg.dir, s.cur.name)
		}
		if s.cfg.basenameHeaderKey != "" {
			e.Headers[s.cfg.basenameHeaderKey] = s.cur.name
		}
	}
	return e
}

// complete retires a file whose every line is committed, after checking
// it did not change while it was read. A read that fails during the check
// is the disk's error, not a change: the check is tried again.
func (s *SpoolDirSource) complete() {
	name := path.Join(s.cfg.dir, s.cur.name)
	changed, err := s.checkUnchanged(name)
	if err != nil {
		s.env.Log.Logf("spooldir source %s: check %s: %v; trying again", s.name, name, err)
		s.after(s.cfg.pollDelay)
		return
	}
	if changed != nil {
		s.fail(changed)
		return
	}
	if s.cfg.deleteImmediately {
		if err := s.env.FS.Remove(name); err != nil {
			s.fail(fmt.Errorf("delete %s: %w", name, err))
			return
		}
	} else {
		done := name + s.cfg.suffix
		if _, err := s.env.FS.Stat(done); err == nil {
			s.fail(fmt.Errorf("file name has been re-used with different files: %s already exists; spooling assumptions violated for %s", done, name))
			return
		}
		if err := s.env.FS.Rename(name, done); err != nil {
			s.fail(fmt.Errorf("rename %s: %w", name, err))
			return
		}
	}
	s.env.Log.Logf("spooldir source %s: completed %s", s.name, s.cur.name)
	s.cur = nil
	s.tracker.remove()
	s.after(0)
}

// checkUnchanged compares the file with what was read: its size, and the
// checksum of its bytes. changed says how it differs (or that it is
// gone); err is a read that failed, which tells nothing.
func (s *SpoolDirSource) checkUnchanged(name string) (changed, err error) {
	f, err := s.env.FS.Open(name)
	if errors.Is(err, sim.ErrNotExist) {
		return fmt.Errorf("reopen %s: %w", name, err), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reopen %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", name, err)
	}
	if size != s.cur.size || size != s.cur.pos {
		return fmt.Errorf("file has changed size since being read: %s (%d bytes when opened, %d read, %d now)", name, s.cur.size, s.cur.pos, size), nil
	}
	var crc uint32
	buf := make([]byte, min(size, spoolReadBytesMax))
	for off := int64(0); off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reread %s: %w", name, err)
		}
		if n == 0 {
			break
		}
		crc = crc32.Update(crc, crc32.IEEETable, buf[:n])
		off += int64(n)
	}
	if crc != s.cur.crc {
		return fmt.Errorf("file has changed since being read: %s (same size, different bytes)", name), nil
	}
	return nil, nil
}
