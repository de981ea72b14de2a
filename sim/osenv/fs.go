package osenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/sluice-sim/sluice/sim"
)

// FS is a node's files under a root directory.
type FS struct {
	root string
	node *Node
}

func (fs *FS) path(name string) (string, error) {
	clean := path.Clean(name)
	if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("path %q: must be relative and inside the data directory", name)
	}
	return filepath.Join(fs.root, filepath.FromSlash(clean)), nil
}

// Create implements sim.FS.
func (fs *FS) Create(name string) (sim.File, error) {
	return fs.open(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
}

// Open implements sim.FS.
func (fs *FS) Open(name string) (sim.File, error) {
	return fs.open(name, os.O_RDWR)
}

func (fs *FS) open(name string, flag int) (sim.File, error) {
	p, err := fs.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return nil, mapError(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, mapError(err)
	}
	return &file{f: f, name: name, size: st.Size(), node: fs.node}, nil
}

// Remove implements sim.FS.
func (fs *FS) Remove(name string) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return mapError(os.Remove(p))
}

// RemoveAll implements sim.FS.
func (fs *FS) RemoveAll(name string) error {
	p, err := fs.path(name)
	if err != nil {
		return err
	}
	return mapError(os.RemoveAll(p))
}

// Rename implements sim.FS.
func (fs *FS) Rename(oldname, newname string) error {
	from, err := fs.path(oldname)
	if err != nil {
		return err
	}
	to, err := fs.path(newname)
	if err != nil {
		return err
	}
	return mapError(os.Rename(from, to))
}

// MkdirAll implements sim.FS.
func (fs *FS) MkdirAll(dir string) error {
	p, err := fs.path(dir)
	if err != nil {
		return err
	}
	return mapError(os.MkdirAll(p, 0o755))
}

// List implements sim.FS.
func (fs *FS) List(dir string) ([]string, error) {
	p, err := fs.path(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, mapError(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// Stat implements sim.FS.
func (fs *FS) Stat(name string) (sim.FileInfo, error) {
	p, err := fs.path(name)
	if err != nil {
		return sim.FileInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return sim.FileInfo{}, mapError(err)
	}
	return sim.FileInfo{Name: path.Base(name), Size: st.Size(), IsDir: st.IsDir()}, nil
}

// SyncDir implements sim.FS.
func (fs *FS) SyncDir(dir string, done func(error)) {
	p, err := fs.path(dir)
	if err != nil {
		// The loop is calling: it must not wait on its own queue.
		fs.node.runLater(func() { done(err) })
		return
	}
	fs.node.syncs.submit(func() error {
		d, err := os.Open(p)
		if err != nil {
			return mapError(err)
		}
		defer d.Close()
		return mapError(d.Sync())
	}, done)
}

// file keeps its size so that Append needs one system call; a file is
// expected to have one writing handle, as every log and channel file does.
type file struct {
	f    *os.File
	name string
	size int64
	node *Node
}

func (f *file) Name() string { return f.name }

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		err = mapError(err)
	}
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	if end := off + int64(n); end > f.size {
		f.size = end
	}
	return n, mapError(err)
}

func (f *file) Append(p []byte) (int, error) { return f.WriteAt(p, f.size) }

func (f *file) Truncate(size int64) error {
	if err := f.f.Truncate(size); err != nil {
		return mapError(err)
	}
	f.size = size
	return nil
}

func (f *file) Size() (int64, error) { return f.size, nil }

func (f *file) Sync(done func(error)) {
	f.node.syncs.submit(func() error { return mapError(f.f.Sync()) }, done)
}

func (f *file) Close() error { return mapError(f.f.Close()) }

// mapError wraps the system's errors in the seams' so that cores can test
// with errors.Is whichever world they run in.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w", sim.ErrNoSpace, err)
	case errors.Is(err, syscall.EIO):
		return fmt.Errorf("%w: %w", sim.ErrIO, err)
	}
	return err
}

// syncWorkers run fsyncs off the loop, a bounded number at a time, and hand
// each completion back to it. The loop submits without waiting (the list of
// pending jobs grows instead) and the workers complete without waiting (see
// Node.complete): the loop waiting on the workers while they wait on the
// loop would deadlock. The list is bounded by what the processes ask:
// every sync is one a process is waiting for.
type syncWorkers struct {
	node    *Node
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []syncJob
	stopped bool
	// jobsQueuedMax is the longest the list has been, for tests and
	// diagnostics.
	jobsQueuedMax int
	wg            sync.WaitGroup
}

type syncJob struct {
	sync func() error
	done func(error)
}

func newSyncWorkers(n *Node, count int) *syncWorkers {
	w := &syncWorkers{node: n}
	w.cond = sync.NewCond(&w.mu)
	for i := 0; i < count; i++ {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

func (w *syncWorkers) work() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for len(w.jobs) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		job := w.jobs[0]
		w.jobs[0] = syncJob{}
		w.jobs = w.jobs[1:]
		w.mu.Unlock()
		err := job.sync()
		done := job.done
		w.node.complete(func() { done(err) })
	}
}

// submit queues a sync; it never waits.
func (w *syncWorkers) submit(sync func() error, done func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.jobs = append(w.jobs, syncJob{sync: sync, done: done})
	w.jobsQueuedMax = max(w.jobsQueuedMax, len(w.jobs))
	w.cond.Signal()
}

// stop ends the workers once their current syncs return; queued syncs
// are dropped, as a crash drops them.
func (w *syncWorkers) stop() {
	w.mu.Lock()
	w.stopped = true
	w.jobs = nil
	w.cond.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
}
