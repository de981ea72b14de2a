package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// TaildirSource follows files as Flume's TAILDIR source does: filegroups
// name files by a directory and a regular expression on the file name,
// each complete line becomes an event, and a JSON position file records
// how far each file is read, [{"inode":N,"pos":N,"file":"/path"}]. The
// position advances only after the channel commit of the lines before it,
// and the file is written every writePosInterval, so a restart resumes
// from committed positions: lines are delivered at least once.
//
// The seams have no inodes, so a file is known by a fingerprint: a hash
// of its first line (or first 256 bytes), stored in the "inode" field. A
// rotated file (renamed, and a new one created under the old name) keeps
// its fingerprint, so it is followed under its new name from where it was,
// while its name still matches the filegroup, and the new file is read
// from its start: nothing is read twice. A file shorter than a first line
// waits until it has one. A file that shrinks below its position
// (truncated in place) is read again from its start.
type TaildirSource struct {
	name     string
	env      sim.Env
	cfg      taildirConfig
	proc     *channelProcessor
	counters SourceCounters
	// files are the followed files by fingerprint; loaded are positions
	// read from the position file for files not seen yet, in its order.
	files  map[uint64]*tailFile
	loaded map[uint64]loadedPosition
	// seenNext numbers the next file first seen (tailFile.seen).
	seenNext uint64
	timer    sim.Timer
	posTmr   sim.Timer
	dirty    bool
	// posFile writes the position file durably.
	posFile *durableFile
	backoff time.Duration
	stopped bool
	busy    bool
}

type taildirConfig struct {
	groups          []tailGroup
	positionFile    string
	batch           int
	writePos        time.Duration
	backoffStep     time.Duration
	backoffMax      time.Duration
	skipToEnd       bool
	fileHeaderKey   string
	byteOffsetHdr   bool
	readBytesPerRun int
}

type tailGroup struct {
	name    string
	dir     string
	re      *regexp.Regexp
	headers map[string]string
}

type tailFile struct {
	fp    uint64
	path  string
	group *tailGroup
	// pos is the offset up to which lines are committed.
	pos int64
	// seen orders the files as the source first saw them, the position
	// file's order carrying it across restarts. Flume reads the matched
	// files oldest-modified first, so that a file rotation renamed is
	// read to its end before its successor; the order files were first
	// seen in stands for that where the filesystem keeps no times.
	seen uint64
}

// loadedPosition is a position from the position file and its place there.
type loadedPosition struct {
	pos  int64
	seen uint64
}

// tailPosition is one entry of the position file.
type tailPosition struct {
	Inode uint64 `json:"inode"`
	Pos   int64  `json:"pos"`
	File  string `json:"file"`
}

const (
	tailFingerprintBytes = 256
	tailReadBytesMax     = 1 << 20
	tailFilesMax         = 1 << 12
	tailLineBytesMax     = 1 << 20
)

func newTaildirSource(name string, env sim.Env, c *config.Source, proc *channelProcessor, resolve func(string) string) (*TaildirSource, error) {
	cfg := taildirConfig{
		positionFile:  resolve(c.String("positionFile")),
		batch:         int(min(c.BatchSize(), int64(proc.batchMax))),
		writePos:      time.Duration(c.Int("writePosInterval")) * time.Millisecond,
		backoffStep:   time.Duration(c.Int("backoffSleepIncrement")) * time.Millisecond,
		backoffMax:    time.Duration(c.Int("maxBackoffSleep")) * time.Millisecond,
		skipToEnd:     c.Bool("skipToEnd"),
		byteOffsetHdr: c.Bool("byteOffsetHeader"),
	}
	if c.Bool("fileHeader") {
		cfg.fileHeaderKey = c.String("fileHeaderKey")
	}
	for _, g := range strings.Fields(c.String("filegroups")) {
		key := "filegroups." + g
		p, ok := c.Params[key]
		if !ok {
			return nil, fmt.Errorf("line %d: TAILDIR source %s: filegroup %s has no %s key naming its files", c.Line, name, g, key)
		}
		dir, pattern := path.Split(p.Value)
		re, err := regexp.Compile("^" + pattern + "$")
		if err != nil {
			return nil, fmt.Errorf("line %d: TAILDIR source %s: %s: %w", p.Line, name, key, err)
		}
		group := tailGroup{name: g, dir: resolve(path.Clean(dir)), re: re, headers: map[string]string{}}
		prefix := "headers." + g + "."
		for k, v := range c.Params {
			if h, ok := strings.CutPrefix(k, prefix); ok {
				group.headers[h] = v.Value
			}
		}
		cfg.groups = append(cfg.groups, group)
	}
	return &TaildirSource{name: name, env: env, cfg: cfg, proc: proc, files: map[uint64]*tailFile{}, loaded: map[uint64]loadedPosition{}}, nil
}

// Name is the source's name.
func (s *TaildirSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *TaildirSource) Counters() *SourceCounters { return &s.counters }

// Start loads the position file and begins following.
func (s *TaildirSource) Start() error {
	if err := s.env.FS.MkdirAll(path.Dir(s.cfg.positionFile)); err != nil {
		return fmt.Errorf("TAILDIR source %s: %w", s.name, err)
	}
	s.loadPositions()
	s.posFile = newDurableFile(s.env.FS, s.cfg.positionFile, func(err error) {
		s.env.Log.Logf("TAILDIR source %s: write positions: %v", s.name, err)
		s.dirty = true // the next tick writes them again
	})
	s.timer = s.env.Clock.AfterFunc(0, s.run)
	s.posTmr = s.env.Clock.AfterFunc(s.cfg.writePos, s.writePositionsTick)
	return nil
}

// Stop stops reading and writes the committed positions.
func (s *TaildirSource) Stop() {
	s.stopped = true
	s.timer.Stop()
	s.posTmr.Stop()
	s.writePositions()
}

// Positions returns the committed position of every followed file, by
// path, for tests and monitoring.
func (s *TaildirSource) Positions() map[string]int64 {
	out := map[string]int64{}
	for _, f := range s.files {
		out[f.path] = f.pos
	}
	return out
}

func (s *TaildirSource) loadPositions() {
	f, err := s.env.FS.Open(s.cfg.positionFile)
	if err != nil {
		return
	}
	defer f.Close()
	size, _ := f.Size()
	buf := make([]byte, min(size, 64<<20))
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		s.env.Log.Logf("TAILDIR source %s: read %s: %v; starting without positions", s.name, s.cfg.positionFile, err)
		return
	}
	var list []tailPosition
	if err := json.Unmarshal(buf, &list); err != nil {
		s.env.Log.Logf("TAILDIR source %s: %s is not a position file (%v); starting without positions", s.name, s.cfg.positionFile, err)
		return
	}
	for i, p := range list {
		s.loaded[p.Inode] = loadedPosition{pos: p.Pos, seen: uint64(i)}
	}
	s.seenNext = uint64(len(list))
	s.env.Log.Logf("TAILDIR source %s: loaded %d positions", s.name, len(list))
}

func (s *TaildirSource) writePositionsTick() {
	s.writePositions()
	if !s.stopped {
		s.posTmr = s.env.Clock.AfterFunc(s.cfg.writePos, s.writePositionsTick)
	}
}

// whenDurable calls done once the position file written last is durable.
func (s *TaildirSource) whenDurable(done func()) { s.posFile.whenIdle(done) }

// writePositions replaces the position file with the committed positions,
// durably (durableFile): a power loss leaves the last file written, not an
// empty one that would send every followed file again from its start.
func (s *TaildirSource) writePositions() {
	if !s.dirty {
		return
	}
	files := make([]*tailFile, 0, len(s.files))
	for _, f := range s.files {
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].seen < files[j].seen })
	list := make([]tailPosition, 0, len(files))
	for _, f := range files {
		list = append(list, tailPosition{Inode: f.fp, Pos: f.pos, File: "/" + f.path})
	}
	b, _ := json.Marshal(list)
	s.dirty = false
	s.posFile.write(b)
}

// scan finds the files the filegroups match and follows new ones.
func (s *TaildirSource) scan() ([]*tailFile, error) {
	var out []*tailFile
	seen := map[uint64]bool{}
	for gi := range s.cfg.groups {
		g := &s.cfg.groups[gi]
		names, err := s.env.FS.List(g.dir)
		if err != nil {
			continue
		}
		for _, n := range names {
			if !g.re.MatchString(n) || len(out) >= tailFilesMax {
				continue
			}
			p := path.Join(g.dir, n)
			fp, size, ok, err := s.fingerprint(p)
			if err != nil {
				// Which known file this is cannot be told: forgetting
				// one would read it again from its start, so this
				// scan ends without dropping any.
				return nil, err
			}
			if !ok || seen[fp] {
				continue
			}
			seen[fp] = true
			tf := s.files[fp]
			if tf == nil {
				tf = &tailFile{fp: fp, group: g}
				if lp, ok := s.loaded[fp]; ok {
					tf.pos, tf.seen = lp.pos, lp.seen
					delete(s.loaded, fp)
				} else {
					tf.seen = s.seenNext
					s.seenNext++
					if s.cfg.skipToEnd {
						tf.pos = size
					}
				}
				s.files[fp] = tf
				s.dirty = true
			}
			if tf.path != p && tf.path != "" {
				s.env.Log.Logf("TAILDIR source %s: %s is now %s; following it from byte %d", s.name, tf.path, p, tf.pos)
				s.env.Hit(probeTaildirRotated)
				s.dirty = true
			}
			tf.path = p
			if size < tf.pos {
				s.env.Log.Logf("TAILDIR source %s: %s shrank below byte %d; reading it from its start", s.name, p, tf.pos)
				tf.pos = 0
				s.dirty = true
			}
			out = append(out, tf)
		}
	}
	for fp := range s.files {
		if !seen[fp] {
			delete(s.files, fp)
			s.dirty = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seen < out[j].seen })
	return out, nil
}

// fingerprint hashes a file's first line; ok is false while it has none
// or is gone. A read that fails is an error.
func (s *TaildirSource) fingerprint(p string) (uint64, int64, bool, error) {
	f, err := s.env.FS.Open(p)
	if errors.Is(err, sim.ErrNotExist) {
		return 0, 0, false, nil // removed since the listing
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, 0, false, fmt.Errorf("size of %s: %w", p, err)
	}
	buf := make([]byte, min(size, tailFingerprintBytes))
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, false, fmt.Errorf("read %s: %w", p, err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else if len(buf) < tailFingerprintBytes {
		return 0, 0, false, nil
	}
	h := fnv.New64a()
	h.Write(buf)
	return h.Sum64(), size, true, nil
}

// run reads a batch from the first file with complete lines past its
// position; with nothing to read it backs off. A read that fails backs
// off too rather than read a later file, whose lines must not overtake
// the failed file's.
func (s *TaildirSource) run() {
	if s.stopped || s.busy {
		return
	}
	files, err := s.scan()
	if err != nil {
		s.env.Log.Logf("TAILDIR source %s: scan: %v", s.name, err)
		files = nil
	}
	for _, tf := range files {
		events, end, err := s.read(tf)
		if err != nil {
			s.env.Log.Logf("TAILDIR source %s: read %s: %v", s.name, tf.path, err)
			break
		}
		if len(events) == 0 {
			continue
		}
		s.commit(tf, events, end)
		return
	}
	s.backoff = min(s.backoff+s.cfg.backoffStep, s.cfg.backoffMax)
	s.timer = s.env.Clock.AfterFunc(s.backoff, s.run)
}

func (s *TaildirSource) commit(tf *tailFile, events []Event, end int64) {
	s.busy = true
	s.counters.EventReceivedCount += int64(len(events))
	s.counters.AppendBatchReceivedCount++
	if s.proc.bugs.On(faults.BugTaildirPositionBeforeCommit) {
		// The planted bug: the position file says the batch is done
		// before its commit is, so a restart skips it if the commit
		// never completes.
		committed := tf.pos
		tf.pos, s.dirty = end, true
		s.writePositions()
		tf.pos = committed
	}
	s.proc.process(events, func(err error) {
		s.busy = false
		if err != nil {
			s.counters.ChannelWriteFail++
			s.backoff = min(max(2*s.backoff, s.cfg.backoffStep), s.cfg.backoffMax)
			s.env.Log.Logf("TAILDIR source %s: %d lines of %s not accepted, retrying in %v: %v", s.name, len(events), tf.path, s.backoff, err)
			s.timer = s.env.Clock.AfterFunc(s.backoff, s.run)
			return
		}
		s.counters.EventAcceptedCount += int64(len(events))
		s.counters.AppendBatchAcceptedCount++
		tf.pos = end
		s.dirty = true
		s.backoff = 0
		s.timer = s.env.Clock.AfterFunc(0, s.run)
	})
	if s.busy && s.proc.full() {
		s.proc.relieve()
	}
}

// read returns up to batchSize complete lines after the file's position
// and the offset after them.
func (s *TaildirSource) read(tf *tailFile) ([]Event, int64, error) {
	f, err := s.env.FS.Open(tf.path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size <= tf.pos {
		return nil, 0, err
	}
	buf := make([]byte, min(size-tf.pos, tailReadBytesMax))
	n, err := f.ReadAt(buf, tf.pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	buf = buf[:n]
	pos := tf.pos
	var events []Event
	for len(events) < s.cfg.batch {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) >= tailLineBytesMax {
				// A line longer than a whole read: deliver what there is
				// rather than wait forever for its end.
				i = len(buf) - 1
			} else {
				break
			}
		}
		events = append(events, s.event(tf, buf[:i], pos))
		buf, pos = buf[i+1:], pos+int64(i+1)
	}
	return events, pos, nil
}

func (s *TaildirSource) event(tf *tailFile, line []byte, offset int64) Event {
	e := Event{Body: bytes.Clone(bytes.TrimSuffix(line, []byte("\r")))}
	if len(tf.group.headers) > 0 || s.cfg.fileHeaderKey != "" || s.cfg.byteOffsetHdr {
		e.Headers = make(map[string]string, len(tf.group.headers)+2)
		for k, v := range tf.group.headers {
			e.Headers[k] = v
		}
		if s.cfg.fileHeaderKey != "" {
			e.Headers[s.cfg.fileHeaderKey] = "/" + tf.path
		}
		if s.cfg.byteOffsetHdr {
			e.Headers["byteoffset"] = fmt.Sprint(offset)
		}
	}
	return e
}
