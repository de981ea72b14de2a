package collector

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// HDFSSink writes events to the agent's own file system the way Flume's
// hdfs sink writes to HDFS: hdfs.path may hold escapes resolved per event
// (%Y %m %d %H %M %S and the rest below, from the timestamp header, or the
// sink's clock with hdfs.useLocalTimeStamp; %{name} from a header), each
// resolved directory has its open file ("bucket"), named
// filePrefix.<counter>fileSuffix, the counter starting at the time the
// bucket opened in milliseconds, and written as inUsePrefix+name+
// inUseSuffix until it is closed (renamed to its name, the directory
// synced). A bucket closes on hdfs.rollInterval seconds after it opened,
// before an event that would pass hdfs.rollSize bytes or hdfs.rollCount
// events (0 disables each), and after hdfs.idleTimeout seconds without
// writes. Bodies are written as DataStream with a newline (Flume's TEXT
// serializer); a batch is delivered once every file it touched is synced.
// Times are read in UTC.
type HDFSSink struct {
	name    string
	env     sim.Env
	cfg     HDFSConfig
	buckets map[string]*hdfsBucket
	// openSeq orders buckets by last use, for maxOpenFiles.
	useSeq  uint64
	stopped bool
}

// HDFSConfig is an hdfs sink's settings (Flume's names without "hdfs.").
type HDFSConfig struct {
	Path, FilePrefix, FileSuffix, InUsePrefix, InUseSuffix string
	RollInterval, IdleTimeout                              time.Duration
	RollSize, RollCount                                    int64
	UseLocalTimeStamp                                      bool
	MaxOpenFiles                                           int
	// Round, RoundValue and RoundUnit round the escape time down.
	Round      bool
	RoundValue int64
	RoundUnit  time.Duration
}

func hdfsConfig(c *config.Sink, resolve func(string) string) HDFSConfig {
	units := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour}
	return HDFSConfig{
		Path: resolve(c.String("hdfs.path")), FilePrefix: c.String("hdfs.filePrefix"), FileSuffix: c.String("hdfs.fileSuffix"),
		InUsePrefix: c.String("hdfs.inUsePrefix"), InUseSuffix: c.String("hdfs.inUseSuffix"),
		RollInterval: time.Duration(c.Int("hdfs.rollInterval")) * time.Second, IdleTimeout: time.Duration(c.Int("hdfs.idleTimeout")) * time.Second,
		RollSize: c.Int("hdfs.rollSize"), RollCount: c.Int("hdfs.rollCount"), UseLocalTimeStamp: c.Bool("hdfs.useLocalTimeStamp"),
		MaxOpenFiles: int(c.Int("hdfs.maxOpenFiles")),
		Round:        c.Bool("hdfs.round"), RoundValue: c.Int("hdfs.roundValue"), RoundUnit: units[c.String("hdfs.roundUnit")],
	}
}

type hdfsBucket struct {
	dir     string
	counter int64
	// name is the open file's final name; file nil when none is open.
	name    string
	file    sim.File
	bytes   int64
	events  int64
	lastUse uint64
	// newName says the open file's name is not yet durable.
	newName bool
	rollTmr sim.Timer
	idleTmr sim.Timer
}

// NewHDFSSink creates an hdfs-style sink.
func NewHDFSSink(name string, env sim.Env, cfg HDFSConfig) *HDFSSink {
	return &HDFSSink{name: name, env: env, cfg: cfg, buckets: map[string]*hdfsBucket{}}
}

// Name is the sink's name.
func (s *HDFSSink) Name() string { return s.name }

// Deliver writes the batch and reports once the files are synced.
func (s *HDFSSink) Deliver(events []Event, done func(error)) {
	steps := newCompletions(done)
	touched := map[*hdfsBucket]bool{}
	var order []*hdfsBucket
	for _, e := range events {
		dir, err := s.resolvePath(e)
		if err != nil {
			steps.finish(fmt.Errorf("hdfs sink %s: %w", s.name, err))
			return
		}
		b := s.bucket(dir, steps)
		if b.file != nil && s.mustRoll(b, e) {
			s.closeBucket(b, steps)
		}
		if b.file == nil {
			if err := s.open(b); err != nil {
				steps.finish(err)
				return
			}
		}
		line := append(append(make([]byte, 0, len(e.Body)+1), e.Body...), '\n')
		if _, err := b.file.Append(line); err != nil {
			steps.finish(fmt.Errorf("hdfs sink %s: write %s: %w", s.name, b.name, err))
			return
		}
		b.bytes += int64(len(line))
		b.events++
		if !touched[b] {
			touched[b] = true
			order = append(order, b)
		}
	}
	for _, b := range order {
		if b.file == nil {
			continue // closed (and synced) within the batch
		}
		s.touchIdle(b)
		steps.add()
		name, dir, syncDir := b.name, b.dir, b.newName
		b.newName = false
		b.file.Sync(func(err error) {
			if err != nil || !syncDir {
				if err != nil {
					err = fmt.Errorf("hdfs sink %s: sync %s: %w", s.name, name, err)
				}
				steps.finish(err)
				return
			}
			// The new in-use file's name must be durable too.
			s.env.FS.SyncDir(dir, func(err error) {
				if err != nil {
					err = fmt.Errorf("hdfs sink %s: sync %s: %w", s.name, dir, err)
				}
				steps.finish(err)
			})
		})
	}
	steps.finish(nil)
}

func (s *HDFSSink) mustRoll(b *hdfsBucket, e Event) bool {
	return (s.cfg.RollCount > 0 && b.events >= s.cfg.RollCount) ||
		(s.cfg.RollSize > 0 && b.bytes > 0 && b.bytes+int64(len(e.Body))+1 > s.cfg.RollSize)
}

// bucket returns the bucket of a directory, closing the least recently
// used one when maxOpenFiles are open.
func (s *HDFSSink) bucket(dir string, steps *completions) *hdfsBucket {
	s.useSeq++
	if b := s.buckets[dir]; b != nil {
		b.lastUse = s.useSeq
		return b
	}
	if len(s.buckets) >= s.cfg.MaxOpenFiles {
		var oldest *hdfsBucket
		for _, b := range s.buckets {
			if oldest == nil || b.lastUse < oldest.lastUse {
				oldest = b
			}
		}
		s.closeBucket(oldest, steps)
		delete(s.buckets, oldest.dir)
	}
	b := &hdfsBucket{dir: dir, counter: s.env.Clock.Now().UnixMilli(), lastUse: s.useSeq}
	s.buckets[dir] = b
	return b
}

func (s *HDFSSink) open(b *hdfsBucket) error {
	if err := s.env.FS.MkdirAll(b.dir); err != nil {
		return fmt.Errorf("hdfs sink %s: create %s: %w", s.name, b.dir, err)
	}
	b.name = s.cfg.FilePrefix + "." + strconv.FormatInt(b.counter, 10) + s.cfg.FileSuffix
	b.counter++
	f, err := s.env.FS.Create(path.Join(b.dir, s.cfg.InUsePrefix+b.name+s.cfg.InUseSuffix))
	if err != nil {
		return fmt.Errorf("hdfs sink %s: create %s: %w", s.name, b.name, err)
	}
	b.file, b.bytes, b.events, b.newName = f, 0, 0, true
	if s.cfg.RollInterval > 0 {
		file := f
		b.rollTmr = s.env.Clock.AfterFunc(s.cfg.RollInterval, func() {
			if b.file == file {
				s.closeBucket(b, nil)
			}
		})
	}
	return nil
}

func (s *HDFSSink) touchIdle(b *hdfsBucket) {
	if s.cfg.IdleTimeout <= 0 {
		return
	}
	if b.idleTmr != nil {
		b.idleTmr.Stop()
	}
	file := b.file
	b.idleTmr = s.env.Clock.AfterFunc(s.cfg.IdleTimeout, func() {
		if b.file == file {
			s.closeBucket(b, nil)
			delete(s.buckets, b.dir)
		}
	})
}

// closeBucket syncs the open file, closes it and renames it to its final
// name, then syncs the directory; steps, when not nil, waits for it.
func (s *HDFSSink) closeBucket(b *hdfsBucket, steps *completions) {
	f, dir, name := b.file, b.dir, b.name
	if f == nil {
		return
	}
	b.file = nil
	if b.rollTmr != nil {
		b.rollTmr.Stop()
	}
	if steps != nil {
		steps.add()
	}
	finish := func(err error) {
		if err != nil {
			s.env.Log.Logf("hdfs sink %s: close %s: %v", s.name, name, err)
		}
		if steps != nil {
			steps.finish(err)
		}
	}
	f.Sync(func(err error) {
		f.Close()
		if err != nil {
			finish(fmt.Errorf("sync %s: %w", name, err))
			return
		}
		inUse := path.Join(dir, s.cfg.InUsePrefix+name+s.cfg.InUseSuffix)
		if inUse != path.Join(dir, name) {
			if err := s.env.FS.Rename(inUse, path.Join(dir, name)); err != nil {
				finish(fmt.Errorf("rename %s: %w", inUse, err))
				return
			}
		}
		s.env.FS.SyncDir(dir, finish)
	})
}

// Stop closes every open file.
func (s *HDFSSink) Stop() {
	s.stopped = true
	dirs := make([]string, 0, len(s.buckets))
	for d := range s.buckets {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		b := s.buckets[d]
		if b.idleTmr != nil {
			b.idleTmr.Stop()
		}
		s.closeBucket(b, nil)
	}
}

var errNoTimestamp = errors.New("expected timestamp in the event headers, but it was missing (add a timestamp interceptor or set hdfs.useLocalTimeStamp)")

// resolvePath expands hdfs.path's escapes for one event.
func (s *HDFSSink) resolvePath(e Event) (string, error) {
	p := s.cfg.Path
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var ts time.Time
	haveTime := false
	when := func() (time.Time, error) {
		if haveTime {
			return ts, nil
		}
		if s.cfg.UseLocalTimeStamp {
			ts = s.env.Clock.Now()
		} else {
			v, ok := e.Headers["timestamp"]
			if !ok {
				return ts, errNoTimestamp
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ts, fmt.Errorf("timestamp header %q is not milliseconds", v)
			}
			ts = time.UnixMilli(ms)
		}
		ts = ts.UTC()
		if s.cfg.Round && s.cfg.RoundValue > 0 {
			ts = ts.Truncate(time.Duration(s.cfg.RoundValue) * s.cfg.RoundUnit)
		}
		haveTime = true
		return ts, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		c := p[i]
		if c == '{' {
			end := strings.IndexByte(p[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("hdfs.path %q: unterminated %%{", p)
			}
			b.WriteString(e.Headers[p[i+1:i+end]])
			i += end
			continue
		}
		if c == '%' {
			b.WriteByte('%')
			continue
		}
		t, err := when()
		if err != nil {
			return "", err
		}
		v, ok := timeEscape(c, t)
		if !ok {
			return "", fmt.Errorf("hdfs.path %q: unknown escape %%%c", p, c)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// timeEscape expands one of Flume's time escapes.
func timeEscape(c byte, t time.Time) (string, bool) {
	two := func(n int) string { return fmt.Sprintf("%02d", n) }
	switch c {
	case 'Y':
		return strconv.Itoa(t.Year()), true
	case 'y':
		return two(t.Year() % 100), true
	case 'm':
		return two(int(t.Month())), true
	case 'd':
		return two(t.Day()), true
	case 'e':
		return strconv.Itoa(t.Day()), true
	case 'H':
		return two(t.Hour()), true
	case 'k':
		return strconv.Itoa(t.Hour()), true
	case 'M':
		return two(t.Minute()), true
	case 'S':
		return two(t.Second()), true
	case 's':
		return strconv.FormatInt(t.Unix(), 10), true
	case 't':
		return strconv.FormatInt(t.UnixMilli(), 10), true
	case 'j':
		return fmt.Sprintf("%03d", t.YearDay()), true
	case 'b':
		return t.Format("Jan"), true
	case 'B':
		return t.Format("January"), true
	case 'a':
		return t.Format("Mon"), true
	case 'A':
		return t.Format("Monday"), true
	case 'p':
		return t.Format("PM"), true
	}
	return "", false
}
