package checkers

import "fmt"

// plog is an immutable, persistent log of entries (offset, value id) in
// increasing offset order: appending returns a new log and leaves the old one intact, sharing all but O(log n) of its
// memory. Porcupine keeps every state it visits, so the model's state must
// be cheap to derive and to compare.
//
// The shape is Clojure's persistent vector: a 32-way trie of full leaves
// plus a tail of up to 32 values, appended to in place by the first log to
// append to it and copied by any other.
type plog struct {
	size int
	// shift is the bit shift of the root's level: 5 when the root's
	// children are leaves.
	shift uint
	root  *plogNode
	tail  []logEntry
	// tailBuf is tail's array. The first log to append to a tail with
	// room writes the next slot in place and claims it (tailBuf.used);
	// any other log that shares the tail copies it, so that a log's
	// entries never change.
	tailBuf *plogTail
	// hash is an order-dependent hash of the contents; equal logs have
	// equal hashes.
	hash uint64
}

type plogNode struct {
	kids []*plogNode // inner node
	vals []logEntry  // leaf: exactly plogWidth entries
}

// plogTail is a tail's array and how much of it some log has claimed.
type plogTail struct {
	vals [plogWidth]logEntry
	used int
}

// logEntry is one record of a modelled partition log.
type logEntry struct {
	offset int64
	value  int32
}

const (
	plogBits  = 5
	plogWidth = 1 << plogBits
	plogMask  = plogWidth - 1
)

// emptyPlog is the log with nothing in it.
var emptyPlog = &plog{shift: plogBits}

// Len is the number of entries in the log.
func (l *plog) Len() int { return l.size }

// trieSize is how many values live in the trie rather than the tail.
func (l *plog) trieSize() int { return l.size - len(l.tail) }

// At is the entry at position i (not offset), which must be below Len.
func (l *plog) At(i int) logEntry {
	if i < 0 || i >= l.size {
		panic(fmt.Sprintf("checkers: plog offset %d out of range [0, %d)", i, l.size))
	}
	if start := l.trieSize(); i >= start {
		return l.tail[i-start]
	}
	n := l.root
	for s := l.shift; s > 0; s -= plogBits {
		n = n.kids[(i>>s)&plogMask]
	}
	return n.vals[i&plogMask]
}

// Append returns a log with v added at the end.
func (l *plog) Append(v logEntry) *plog {
	if l.size > 0 && v.offset <= l.Last().offset {
		panic(fmt.Sprintf("checkers: plog append at offset %d after %d", v.offset, l.Last().offset))
	}
	out := &plog{size: l.size + 1, shift: l.shift, root: l.root, hash: mixHash(l.hash, v)}
	if n := len(l.tail); n < plogWidth {
		// A model's states mostly grow one from another, so the slot
		// after l.tail is mostly free: taking it spares a copy of the
		// tail per append.
		buf := l.tailBuf
		if buf == nil || buf.used != n {
			buf = &plogTail{}
			copy(buf.vals[:], l.tail)
		}
		buf.vals[n] = v
		buf.used = n + 1
		out.tail, out.tailBuf = buf.vals[:n+1:n+1], buf
		return out
	}
	leaf := &plogNode{vals: l.tail}
	full := l.trieSize()
	switch {
	case l.root == nil:
		out.root = &plogNode{kids: []*plogNode{leaf}}
	case full == 1<<(l.shift+plogBits):
		out.root = &plogNode{kids: []*plogNode{l.root, plogPath(l.shift, leaf)}}
		out.shift = l.shift + plogBits
	default:
		out.root = plogPush(l.shift, l.root, leaf, full)
	}
	buf := &plogTail{used: 1}
	buf.vals[0] = v
	out.tail, out.tailBuf = buf.vals[:1:1], buf
	return out
}

// plogPath is a chain of inner nodes down to leaf, for a node at shift.
func plogPath(shift uint, leaf *plogNode) *plogNode {
	if shift == 0 {
		return leaf
	}
	return &plogNode{kids: []*plogNode{plogPath(shift-plogBits, leaf)}}
}

// plogPush copies the path to the slot of offset `at` and puts leaf there.
func plogPush(shift uint, n *plogNode, leaf *plogNode, at int) *plogNode {
	i := (at >> shift) & plogMask
	kids := make([]*plogNode, max(len(n.kids), i+1))
	copy(kids, n.kids)
	switch {
	case shift == plogBits:
		kids[i] = leaf
	case kids[i] != nil:
		kids[i] = plogPush(shift-plogBits, kids[i], leaf, at)
	default:
		kids[i] = plogPath(shift-plogBits, leaf)
	}
	return &plogNode{kids: kids}
}

// Last is the newest entry; the log must not be empty.
func (l *plog) Last() logEntry { return l.At(l.size - 1) }

// Find is the position of the entry at offset, or -1 if there is none.
func (l *plog) Find(offset int64) int {
	lo, hi := 0, l.size
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.At(mid).offset < offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < l.size && l.At(lo).offset == offset {
		return lo
	}
	return -1
}

// mixHash folds e into h so that order matters.
func mixHash(h uint64, e logEntry) uint64 {
	const prime = 0x100000001b3
	for _, x := range [2]uint64{uint64(e.offset), uint64(uint32(e.value))} {
		h ^= x + 0x9e3779b97f4a7c15
		h *= prime
		h ^= h >> 29
	}
	return h
}

// Equal reports whether both logs hold the same values in the same order.
func (l *plog) Equal(o *plog) bool {
	if l == o {
		return true
	}
	if l.size != o.size || l.hash != o.hash || len(l.tail) != len(o.tail) {
		return false
	}
	for i := range l.tail {
		if l.tail[i] != o.tail[i] {
			return false
		}
	}
	return plogNodesEqual(l.root, o.root)
}

// plogNodesEqual compares two tries of the same shape; shared subtrees
// compare in O(1), which is the common case between porcupine's states.
func plogNodesEqual(a, b *plogNode) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || len(a.kids) != len(b.kids) || len(a.vals) != len(b.vals) {
		return false
	}
	for i := range a.vals {
		if a.vals[i] != b.vals[i] {
			return false
		}
	}
	for i := range a.kids {
		if !plogNodesEqual(a.kids[i], b.kids[i]) {
			return false
		}
	}
	return true
}
