package collector

import (
	"errors"
	"fmt"
	"path"

	"github.com/sluice-sim/sluice/sim"
)

// durableFile keeps a small file (a source's position or tracker file)
// durable across power loss: each write goes to a temporary file, which
// is synced, renamed over the file, and the directory synced, so that a
// crash leaves either the old content or the new, never a name pointing
// at bytes that did not reach the disk (empty or torn). Writes are
// one at a time; one asked for while another is in flight waits, and only
// the latest such waits (it supersedes the others). A removal is ordered
// among the writes, so that a write in flight cannot bring back a file
// removed after it.
type durableFile struct {
	fs   sim.FS
	name string
	// onError is told of a write or removal that failed; the caller
	// writes again later.
	onError func(error)
	busy    bool
	// next is the operation waiting for the one in flight.
	next *durableOp
	// idle are told once no operation is in flight or waiting.
	idle []func()
}

// durableOp is a write of data, or a removal when remove is set.
type durableOp struct {
	data   []byte
	remove bool
}

// durableIdleWaitersMax bounds the callbacks waiting for idle: one per
// stop of the source, so a handful at most.
const durableIdleWaitersMax = 64

func newDurableFile(fs sim.FS, name string, onError func(error)) *durableFile {
	return &durableFile{fs: fs, name: name, onError: onError}
}

// write replaces the file's content with data.
func (d *durableFile) write(data []byte) { d.do(&durableOp{data: data}) }

// remove removes the file.
func (d *durableFile) remove() { d.do(&durableOp{remove: true}) }

// whenIdle calls done once no operation is in flight or waiting.
func (d *durableFile) whenIdle(done func()) {
	if !d.busy {
		done()
		return
	}
	sim.Assert(len(d.idle) < durableIdleWaitersMax, "durable file %s: %d idle waiters", d.name, len(d.idle))
	d.idle = append(d.idle, done)
}

func (d *durableFile) do(op *durableOp) {
	if d.busy {
		d.next = op
		return
	}
	d.busy = true
	if op.remove {
		d.removeNow()
		return
	}
	d.writeNow(op.data)
}

func (d *durableFile) writeNow(data []byte) {
	tmp := d.name + ".tmp"
	f, err := d.fs.Create(tmp)
	if err != nil {
		d.finish(fmt.Errorf("create %s: %w", tmp, err))
		return
	}
	if _, err := f.Append(data); err != nil {
		f.Close()
		d.finish(fmt.Errorf("write %s: %w", tmp, err))
		return
	}
	f.Sync(func(err error) {
		f.Close()
		if err != nil {
			d.finish(fmt.Errorf("sync %s: %w", tmp, err))
			return
		}
		if err := d.fs.Rename(tmp, d.name); err != nil {
			d.finish(fmt.Errorf("rename %s: %w", tmp, err))
			return
		}
		d.syncDir()
	})
}

func (d *durableFile) removeNow() {
	if err := d.fs.Remove(d.name); err != nil && !errors.Is(err, sim.ErrNotExist) {
		d.finish(fmt.Errorf("remove %s: %w", d.name, err))
		return
	}
	d.syncDir()
}

func (d *durableFile) syncDir() {
	dir := path.Dir(d.name)
	d.fs.SyncDir(dir, func(err error) {
		if err != nil {
			err = fmt.Errorf("sync directory %s: %w", dir, err)
		}
		d.finish(err)
	})
}

func (d *durableFile) finish(err error) {
	d.busy = false
	if err != nil && d.onError != nil {
		d.onError(err)
	}
	if op := d.next; op != nil {
		d.next = nil
		d.do(op)
		return
	}
	idle := d.idle
	d.idle = nil
	for _, done := range idle {
		done()
	}
}
