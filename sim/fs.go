package sim

import (
	"errors"
	"io/fs"
)

// FS is a node's disk. Names are slash-separated paths relative to the
// node's data root ("orders-0/00000000000000000000.log").
//
// Durability follows a page cache: WriteAt, Append, Truncate, Create, Rename
// and Remove change what later reads see at once, but only File.Sync makes a
// file's bytes durable and only FS.SyncDir makes a directory's entries
// durable. A crash may lose, keep or tear anything not yet durable.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and
	// opens it for reading and writing.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything below it; a missing path is
	// not an error.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string) error
	// List returns the names of a directory's entries, sorted.
	List(dir string) ([]string, error)
	// Stat describes a file or directory.
	Stat(name string) (FileInfo, error)
	// SyncDir makes the directory's entries (creates, renames, removes)
	// durable, then calls done on the node's loop.
	SyncDir(dir string, done func(error))
}

// FileInfo describes a directory entry.
type FileInfo struct {
	Name  string
	Size  int64
	IsDir bool
}

// File is an open file.
type File interface {
	Name() string
	// ReadAt reads len(p) bytes at off; as io.ReaderAt, a short read
	// returns io.EOF.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off, extending the file if needed. On an
	// error it may have written a prefix of p: n says how much, as
	// write(2)'s short count does when the device fails part way.
	WriteAt(p []byte, off int64) (int, error)
	// Append writes p at the end of the file; on an error, like WriteAt,
	// it may have written a prefix of p.
	Append(p []byte) (int, error)
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Size is the current size of the file.
	Size() (int64, error)
	// Sync makes every byte written before the call durable, then calls
	// done on the node's loop. Bytes written after the call are not
	// covered. After a failed sync (ErrIO) the unsynced bytes may be gone,
	// as on Linux, where the failed pages are marked clean.
	Sync(done func(error))
	// Close releases the handle. A crash closes every handle.
	Close() error
}

// Operating errors a disk returns. Implementations wrap them, so test with
// errors.Is.
var (
	ErrNotExist = fs.ErrNotExist
	ErrExist    = fs.ErrExist
	ErrIO       = errors.New("input/output error")
	ErrNoSpace  = errors.New("no space left on device")
	ErrClosed   = fs.ErrClosed
)
