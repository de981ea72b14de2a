package simdisk

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/sim/sched"
)

// dirNode is a directory.
type dirNode struct {
	entries map[string]*entry
}

// entry is a name: a directory or a file, never both.
type entry struct {
	dir *dirNode
	ino *inode
}

func newDirNode() *dirNode { return &dirNode{entries: make(map[string]*entry)} }

// tree is a namespace: the current one (what the process sees) or the
// committed one (what the journal has made durable).
type tree struct {
	root *dirNode
}

func newTree() tree { return tree{root: newDirNode()} }

// clone copies the directories; inodes are shared.
func (t tree) clone() tree { return tree{root: cloneDir(t.root)} }

func cloneDir(d *dirNode) *dirNode {
	out := &dirNode{entries: make(map[string]*entry, len(d.entries))}
	for name, e := range d.entries { // builds a map: order is irrelevant
		if e.dir != nil {
			out.entries[name] = &entry{dir: cloneDir(e.dir)}
		} else {
			out.entries[name] = &entry{ino: e.ino}
		}
	}
	return out
}

// lookup returns the entry at p ("" is the root), or nil.
func (t tree) lookup(p string) *entry {
	if p == "" {
		return &entry{dir: t.root}
	}
	d := t.root
	for {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return d.entries[p]
		}
		e := d.entries[p[:i]]
		if e == nil || e.dir == nil {
			return nil
		}
		d, p = e.dir, p[i+1:]
	}
}

// splitPath returns a non-root path's parent directory ("" for the root)
// and base name.
func splitPath(p string) (parent, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// sortedNames returns a directory's entry names in order.
func (d *dirNode) sortedNames() []string {
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// walk calls fn for every entry below the root, parents before children,
// siblings in name order.
func (t tree) walk(fn func(p string, e *entry)) {
	walkDir(t.root, "", fn)
}

func walkDir(d *dirNode, prefix string, fn func(p string, e *entry)) {
	for _, name := range d.sortedNames() {
		e := d.entries[name]
		p := path.Join(prefix, name)
		fn(p, e)
		if e.dir != nil {
			walkDir(e.dir, p, fn)
		}
	}
}

// opKind is a kind of metadata operation.
type opKind uint8

const (
	opMkdir opKind = iota
	opCreate
	opRemove
	opRename
)

// metaOp is one metadata operation, as the journal records it.
type metaOp struct {
	kind    opKind
	path    string
	newPath string // rename only
	ino     *inode // create only
	at      time.Duration
}

func (op metaOp) String() string {
	switch op.kind {
	case opMkdir:
		return "mkdir " + op.path
	case opCreate:
		return "create " + op.path
	case opRemove:
		return "remove " + op.path
	case opRename:
		return "rename " + op.path + " -> " + op.newPath
	}
	return fmt.Sprintf("op(%d)", op.kind)
}

// apply performs op on the tree and returns the inode that gained a name and
// the one that lost it, if any. The caller has checked op against this
// tree's state (or replays ops in the order they were checked), so a failure
// is a simulator bug.
func (t tree) apply(op metaOp) (added, removed *inode) {
	parentPath, base := splitPath(op.path)
	parent := t.lookup(parentPath)
	sched.Assert(parent != nil && parent.dir != nil, "simdisk: %s: no parent directory", op)
	dir := parent.dir
	switch op.kind {
	case opMkdir:
		sched.Assert(dir.entries[base] == nil, "simdisk: %s: exists", op)
		dir.entries[base] = &entry{dir: newDirNode()}
	case opCreate:
		sched.Assert(dir.entries[base] == nil, "simdisk: %s: exists", op)
		dir.entries[base] = &entry{ino: op.ino}
		added = op.ino
	case opRemove:
		e := dir.entries[base]
		sched.Assert(e != nil, "simdisk: %s: missing", op)
		sched.Assert(e.dir == nil || len(e.dir.entries) == 0, "simdisk: %s: directory not empty", op)
		delete(dir.entries, base)
		removed = e.ino
	case opRename:
		e := dir.entries[base]
		sched.Assert(e != nil, "simdisk: %s: missing", op)
		newParentPath, newBase := splitPath(op.newPath)
		newParent := t.lookup(newParentPath)
		sched.Assert(newParent != nil && newParent.dir != nil, "simdisk: %s: no target directory", op)
		if old := newParent.dir.entries[newBase]; old != nil {
			sched.Assert((old.dir == nil) == (e.dir == nil), "simdisk: %s: replaces another kind", op)
			sched.Assert(old.dir == nil || len(old.dir.entries) == 0, "simdisk: %s: replaces a non-empty directory", op)
			removed = old.ino
		}
		delete(dir.entries, base)
		newParent.dir.entries[newBase] = e
	default:
		sched.Assert(false, "simdisk: unknown op %d", op.kind)
	}
	return added, removed
}

// cleanPath checks a name and returns it in the form the namespace uses
// ("" for the root). Names are clean, relative, slash-separated paths
// without "..": a name the simulated disk accepts names the same file on
// every real file system.
func cleanPath(op, name string, rootAllowed bool) (string, error) {
	if name == "" || name == "." {
		if rootAllowed {
			return "", nil
		}
		return "", fmt.Errorf("%s %q: %w (the root directory is not allowed here)", op, name, ErrInvalidPath)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%s %q: %w (absolute; names are relative to the data root)", op, name, ErrInvalidPath)
	}
	if path.Clean(name) != name {
		return "", fmt.Errorf("%s %q: %w (not clean; use %q)", op, name, ErrInvalidPath, path.Clean(name))
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%s %q: %w (\"..\" leaves the data root)", op, name, ErrInvalidPath)
		}
	}
	return name, nil
}
