package simdisk

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// diskFS is the disk as one process incarnation sees it.
type diskFS struct {
	d   *Disk
	gen uint64
}

var _ sim.FS = (*diskFS)(nil)

// check refuses every call once the incarnation has ended.
func (f *diskFS) check(op, name string) error {
	if f.gen != f.d.processGen {
		return fmt.Errorf("%s %q: file system of a crashed process: %w", op, name, sim.ErrClosed)
	}
	return nil
}

// resolve checks a name and finds its entry (nil when missing).
func (f *diskFS) resolve(op, name string, rootAllowed bool) (string, *entry, error) {
	if err := f.check(op, name); err != nil {
		return "", nil, err
	}
	p, err := cleanPath(op, name, rootAllowed)
	if err != nil {
		return "", nil, err
	}
	return p, f.d.cur.lookup(p), nil
}

// parentDir checks that a new entry's parent is a directory.
func (f *diskFS) parentDir(op, p string) error {
	parent, _ := splitPath(p)
	e := f.d.cur.lookup(parent)
	switch {
	case e == nil:
		return fmt.Errorf("%s %s: parent directory %q: %w", op, p, parent, sim.ErrNotExist)
	case e.dir == nil:
		return fmt.Errorf("%s %s: parent %q: %w", op, p, parent, ErrNotDir)
	}
	return nil
}

// Create implements sim.FS.
func (f *diskFS) Create(name string) (sim.File, error) {
	p, e, err := f.resolve("create", name, false)
	if err != nil {
		return nil, err
	}
	d := f.d
	if e != nil && e.dir != nil {
		return nil, fmt.Errorf("create %s: %w", p, ErrIsDir)
	}
	if d.openHandles >= OpenHandlesMax {
		return nil, fmt.Errorf("create %s: %d handles open: %w", p, d.openHandles, ErrTooManyOpen)
	}
	if e == nil {
		if err := f.parentDir("create", p); err != nil {
			return nil, err
		}
	}
	if err := d.metaError("create", p); err != nil {
		return nil, err
	}
	if e != nil {
		// An existing file is truncated: a data change, not a new name.
		ino := e.ino
		if ino.cur.sizeBytes > 0 {
			before := ino.cur.sizeBytes
			ino.truncate(0, d.loop.Now())
			d.resized(ino, before)
			label := ""
			if d.loop.Trace().Recording() {
				label = "truncate " + p + " to 0"
			}
			d.note(mix(xxhash.Sum64String(p), 0), label)
			d.armFlusher()
		}
		return f.open(p, ino), nil
	}
	ino := d.newInode()
	d.metaOp(metaOp{kind: opCreate, path: p, ino: ino})
	return f.open(p, ino), nil
}

// Open implements sim.FS.
func (f *diskFS) Open(name string) (sim.File, error) {
	p, e, err := f.resolve("open", name, false)
	if err != nil {
		return nil, err
	}
	switch {
	case e == nil:
		return nil, fmt.Errorf("open %s: %w", p, sim.ErrNotExist)
	case e.dir != nil:
		return nil, fmt.Errorf("open %s: %w", p, ErrIsDir)
	case f.d.openHandles >= OpenHandlesMax:
		return nil, fmt.Errorf("open %s: %d handles open: %w", p, f.d.openHandles, ErrTooManyOpen)
	}
	return f.open(p, e.ino), nil
}

func (f *diskFS) open(p string, ino *inode) *handle {
	ino.opens++
	f.d.openHandles++
	f.d.refresh(ino)
	return &handle{d: f.d, gen: f.gen, ino: ino, name: p, nameHash: xxhash.Sum64String(p)}
}

// Remove implements sim.FS.
func (f *diskFS) Remove(name string) error {
	p, e, err := f.resolve("remove", name, false)
	if err != nil {
		return err
	}
	switch {
	case e == nil:
		return fmt.Errorf("remove %s: %w", p, sim.ErrNotExist)
	case e.dir != nil && len(e.dir.entries) > 0:
		return fmt.Errorf("remove %s: %w", p, ErrNotEmpty)
	}
	if err := f.d.metaError("remove", p); err != nil {
		return err
	}
	f.d.metaOp(metaOp{kind: opRemove, path: p})
	return nil
}

// RemoveAll implements sim.FS. It journals one removal per entry, deepest
// first, so a crash may keep any prefix of them, and so may an injected
// metadata error, which stops it.
func (f *diskFS) RemoveAll(name string) error {
	p, e, err := f.resolve("remove all", name, false)
	if err != nil || e == nil {
		return err
	}
	victims := []string{p}
	if e.dir != nil {
		walkDir(e.dir, p, func(q string, _ *entry) { victims = append(victims, q) })
	}
	// Reverse order puts every entry before its parent directory.
	slices.Sort(victims)
	slices.Reverse(victims)
	for _, q := range victims {
		if err := f.d.metaError("remove", q); err != nil {
			return fmt.Errorf("remove all %s: %w", p, err)
		}
		f.d.metaOp(metaOp{kind: opRemove, path: q})
	}
	return nil
}

// Rename implements sim.FS.
func (f *diskFS) Rename(oldname, newname string) error {
	oldPath, from, err := f.resolve("rename", oldname, false)
	if err != nil {
		return err
	}
	newPath, to, err := f.resolve("rename", newname, false)
	if err != nil {
		return err
	}
	op := "rename " + oldPath + " -> " + newPath + ":"
	switch {
	case from == nil:
		return fmt.Errorf("%s %w", op, sim.ErrNotExist)
	case oldPath == newPath:
		return nil
	case from.dir != nil && strings.HasPrefix(newPath, oldPath+"/"):
		return fmt.Errorf("%s %w (a directory cannot move inside itself)", op, ErrInvalidPath)
	case to != nil && to.dir != nil && from.dir == nil:
		return fmt.Errorf("%s %w", op, ErrIsDir)
	case to != nil && to.dir == nil && from.dir != nil:
		return fmt.Errorf("%s %w", op, ErrNotDir)
	case to != nil && to.dir != nil && len(to.dir.entries) > 0:
		return fmt.Errorf("%s %w", op, ErrNotEmpty)
	}
	if err := f.parentDir("rename", newPath); err != nil {
		return err
	}
	if err := f.d.metaError("rename", oldPath+" -> "+newPath); err != nil {
		return err
	}
	f.d.metaOp(metaOp{kind: opRename, path: oldPath, newPath: newPath})
	return nil
}

// MkdirAll implements sim.FS.
func (f *diskFS) MkdirAll(dir string) error {
	p, _, err := f.resolve("mkdir", dir, true)
	if err != nil || p == "" {
		return err
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		q := strings.Join(parts[:i+1], "/")
		e := f.d.cur.lookup(q)
		switch {
		case e == nil:
			if err := f.d.metaError("mkdir", q); err != nil {
				return err
			}
			f.d.metaOp(metaOp{kind: opMkdir, path: q})
		case e.dir == nil:
			return fmt.Errorf("mkdir %s: %s: %w", p, q, ErrNotDir)
		}
	}
	return nil
}

// List implements sim.FS.
func (f *diskFS) List(dir string) ([]string, error) {
	p, e, err := f.resolve("list", dir, true)
	if err != nil {
		return nil, err
	}
	switch {
	case e == nil:
		return nil, fmt.Errorf("list %q: %w", p, sim.ErrNotExist)
	case e.dir == nil:
		return nil, fmt.Errorf("list %q: %w", p, ErrNotDir)
	}
	return e.dir.sortedNames(), nil
}

// Stat implements sim.FS.
func (f *diskFS) Stat(name string) (sim.FileInfo, error) {
	p, e, err := f.resolve("stat", name, true)
	if err != nil {
		return sim.FileInfo{}, err
	}
	if e == nil {
		return sim.FileInfo{}, fmt.Errorf("stat %s: %w", p, sim.ErrNotExist)
	}
	info := sim.FileInfo{Name: path.Base(p), IsDir: e.dir != nil}
	if p == "" {
		info.Name = "."
	}
	if e.ino != nil {
		info.Size = e.ino.cur.sizeBytes
	}
	return info, nil
}

// SyncDir implements sim.FS. Like ext4, it commits the whole journal, every
// directory's operations, as it stood at the call.
func (f *diskFS) SyncDir(dir string, done func(error)) {
	p, e, err := f.resolve("sync directory", dir, true)
	if err == nil {
		switch {
		case e == nil:
			err = fmt.Errorf("sync directory %q: %w", p, sim.ErrNotExist)
		case e.dir == nil:
			err = fmt.Errorf("sync directory %q: %w", p, ErrNotDir)
		}
	}
	if err != nil {
		f.d.failNow(done, err)
		return
	}
	f.d.syncDir(p, done)
}

// failNow delivers a sync's immediate failure on the node's loop, as its
// success would be.
func (d *Disk) failNow(done func(error), err error) {
	d.loop.At(d.loop.Now(), d.node, sched.KindSync, 0, func() { done(err) })
}

// handle is an open file.
type handle struct {
	d        *Disk
	gen      uint64
	ino      *inode
	name     string
	nameHash uint64
	closed   bool
}

var _ sim.File = (*handle)(nil)

func (h *handle) check(op string) error {
	if h.closed || h.gen != h.d.processGen {
		return fmt.Errorf("%s %s: %w", op, h.name, sim.ErrClosed)
	}
	return nil
}

// Name implements sim.File: the name the file was opened by.
func (h *handle) Name() string { return h.name }

// ReadAt implements sim.File.
func (h *handle) ReadAt(p []byte, off int64) (int, error) {
	if err := h.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: %w (negative offset)", h.name, off, fs.ErrInvalid)
	}
	d := h.d
	if d.readErrorRate > 0 && d.rng.Float64() < d.readErrorRate {
		return 0, fmt.Errorf("read %s at %d: %w", h.name, off, sim.ErrIO)
	}
	size := h.ino.cur.sizeBytes
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	h.ino.cur.readAt(p[:n], off, d.sectorBytes)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements sim.File.
func (h *handle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("write %s at %d: %w (negative offset)", h.name, off, fs.ErrInvalid)
	}
	return h.write(p, off)
}

// Append implements sim.File.
func (h *handle) Append(p []byte) (int, error) {
	if err := h.check("append"); err != nil {
		return 0, err
	}
	return h.write(p, h.ino.cur.sizeBytes)
}

func (h *handle) write(p []byte, off int64) (int, error) {
	d, ino := h.d, h.ino
	if off > FileBytesMax {
		return 0, fmt.Errorf("write %s at %d: %w", h.name, off, ErrFileTooLarge)
	}
	if len(p) == 0 {
		return 0, nil // as pwrite: an empty write does not extend the file
	}
	if err := d.checkGrowth(ino, off+int64(len(p))); err != nil {
		return 0, fmt.Errorf("write %s at %d: %w", h.name, off, err)
	}
	if n := d.shortWrite(h.name, len(p)); n < len(p) {
		if n > 0 {
			h.writeChecked(p[:n], off)
		}
		return n, fmt.Errorf("write %s at %d: %d of %d bytes written: %w (injected short write)", h.name, off, n, len(p), sim.ErrIO)
	}
	h.writeChecked(p, off)
	return len(p), nil
}

// writeChecked writes p at off, its bounds checked.
func (h *handle) writeChecked(p []byte, off int64) {
	d, ino := h.d, h.ino
	before := ino.cur.sizeBytes
	ino.write(p, off, d.loop.Now())
	d.resized(ino, before)
	tr := d.loop.Trace()
	label := ""
	if tr.Recording() {
		label = "write " + h.name + "@" + strconv.FormatInt(off, 10) + "+" + strconv.Itoa(len(p))
	}
	tr.Note(d.loop.Now(), d.node, sched.KindWrite, mix(mix(xxhash.Sum64(p), h.nameHash), uint64(off)), label)
	d.armFlusher()
}

// Truncate implements sim.File.
func (h *handle) Truncate(size int64) error {
	if err := h.check("truncate"); err != nil {
		return err
	}
	d, ino := h.d, h.ino
	if size < 0 {
		return fmt.Errorf("truncate %s to %d: %w (negative size)", h.name, size, fs.ErrInvalid)
	}
	if err := d.checkGrowth(ino, size); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", h.name, size, err)
	}
	if err := d.metaError("truncate", h.name); err != nil {
		return err
	}
	before := ino.cur.sizeBytes
	ino.truncate(size, d.loop.Now())
	d.resized(ino, before)
	label := ""
	if d.loop.Trace().Recording() {
		label = "truncate " + h.name + " to " + strconv.FormatInt(size, 10)
	}
	d.note(mix(h.nameHash, uint64(size)), label)
	d.armFlusher()
	return nil
}

// Size implements sim.File.
func (h *handle) Size() (int64, error) {
	if err := h.check("size"); err != nil {
		return 0, err
	}
	return h.ino.cur.sizeBytes, nil
}

// Sync implements sim.File.
func (h *handle) Sync(done func(error)) {
	if err := h.check("sync"); err != nil {
		h.d.failNow(done, err)
		return
	}
	h.d.syncFile(h.ino, h.name, done)
}

// Close implements sim.File.
func (h *handle) Close() error {
	if err := h.check("close"); err != nil {
		return err
	}
	h.closed = true
	h.ino.opens--
	h.d.openHandles--
	h.d.refresh(h.ino)
	return nil
}
