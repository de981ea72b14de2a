package collector

import (
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// FileRollSink writes each event's body and a newline to a file in
// sink.directory, as Flume's file_roll sink does with its TEXT
// serializer, starting a new file every sink.rollInterval seconds (0:
// never). Files are named as Flume's DefaultPathManager names them:
// prefix, the time the sink started in milliseconds, "-", a counter from
// 1, and ".extension" when one is set. Unlike Flume, which only flushes,
// a batch is reported delivered after the file is synced, so the channel
// gives up no event the file could lose.
type FileRollSink struct {
	name    string
	env     sim.Env
	cfg     FileRollConfig
	series  int64
	index   int
	file    sim.File
	syncing int
	closing bool
	rollTmr sim.Timer
	// newName says the open file's name is not yet durable.
	newName  bool
	stopped  bool
	appendBf []byte
}

// FileRollConfig is a file_roll sink's settings.
type FileRollConfig struct {
	Directory     string
	RollInterval  time.Duration
	Prefix        string
	Extension     string
	AppendNewline bool
}

func fileRollConfig(c *config.Sink, resolve func(string) string) FileRollConfig {
	return FileRollConfig{
		Directory:     resolve(c.String("sink.directory")),
		RollInterval:  time.Duration(c.Int("sink.rollInterval")) * time.Second,
		Prefix:        c.String("sink.pathManager.prefix"),
		Extension:     c.String("sink.pathManager.extension"),
		AppendNewline: c.Bool("sink.serializer.appendNewline"),
	}
}

// NewFileRollSink creates the sink's directory.
func NewFileRollSink(name string, env sim.Env, cfg FileRollConfig) (*FileRollSink, error) {
	if err := env.FS.MkdirAll(cfg.Directory); err != nil {
		return nil, fmt.Errorf("file_roll sink %s: create %s: %w", name, cfg.Directory, err)
	}
	s := &FileRollSink{name: name, env: env, cfg: cfg, series: env.Clock.Now().UnixMilli()}
	if cfg.RollInterval > 0 {
		s.rollTmr = env.Clock.AfterFunc(cfg.RollInterval, s.rollTick)
	}
	return s, nil
}

// Name is the sink's name.
func (s *FileRollSink) Name() string { return s.name }

func (s *FileRollSink) rollTick() {
	s.roll()
	if !s.stopped {
		s.rollTmr = s.env.Clock.AfterFunc(s.cfg.RollInterval, s.rollTick)
	}
}

// roll closes the current file once its syncs are done; the next batch
// opens a new one.
func (s *FileRollSink) roll() {
	if s.file == nil {
		return
	}
	if s.syncing > 0 {
		s.closing = true
		return
	}
	s.file.Close()
	s.file, s.closing = nil, false
}

func (s *FileRollSink) open() error {
	s.index++
	name := s.cfg.Prefix + strconv.FormatInt(s.series, 10) + "-" + strconv.Itoa(s.index)
	if s.cfg.Extension != "" {
		name += "." + s.cfg.Extension
	}
	f, err := s.env.FS.Create(path.Join(s.cfg.Directory, name))
	if err != nil {
		return fmt.Errorf("file_roll sink %s: %w", s.name, err)
	}
	s.file, s.newName = f, true
	return nil
}

// Deliver appends the batch and reports once it is synced.
func (s *FileRollSink) Deliver(events []Event, done func(error)) {
	sim.Assert(s.syncing == 0, "file_roll sink %s: a batch while one is syncing", s.name)
	if s.file == nil {
		if err := s.open(); err != nil {
			done(err)
			return
		}
	}
	buf := s.appendBf[:0]
	for _, e := range events {
		buf = append(buf, e.Body...)
		if s.cfg.AppendNewline {
			buf = append(buf, '\n')
		}
	}
	s.appendBf = buf[:0]
	f := s.file
	if _, err := f.Append(buf); err != nil {
		s.roll()
		done(fmt.Errorf("file_roll sink %s: write %s: %w", s.name, f.Name(), err))
		return
	}
	s.syncing++
	syncDir := s.newName
	s.newName = false
	f.Sync(func(err error) {
		s.syncing--
		if s.closing {
			s.roll()
		}
		if err != nil {
			done(fmt.Errorf("file_roll sink %s: sync %s: %w", s.name, f.Name(), err))
			return
		}
		if !syncDir {
			done(nil)
			return
		}
		// A new file's name must be durable too, or a power loss takes
		// the whole file with the events it reported delivered.
		s.env.FS.SyncDir(s.cfg.Directory, func(err error) {
			if err != nil {
				s.newName = true
				err = fmt.Errorf("file_roll sink %s: sync %s: %w", s.name, s.cfg.Directory, err)
			}
			done(err)
		})
	})
}

// Stop closes the file.
func (s *FileRollSink) Stop() {
	s.stopped = true
	if s.rollTmr != nil {
		s.rollTmr.Stop()
	}
	s.roll()
}
