package sched

import (
	"fmt"
	"strings"
	"time"
)

// Kind names what an event or trace entry is.
type Kind uint8

// Event kinds. Dispatched events and notes made inside a callback (a frame
// sent, bytes written) share one numbering, so the trace index of an entry
// counts both.
const (
	KindWorld  Kind = iota // a world action: fault, schedule step
	KindBoot               // a node came up
	KindCrash              // a node crashed
	KindPause              // a node paused
	KindResume             // a node resumed
	KindTimer              // a timer fired
	KindDial               // a connection attempt resolved
	KindAccept             // a listener accepted a connection
	KindFrame              // a frame was delivered
	KindSend               // a frame was sent (note)
	KindClose              // a connection ended
	KindPacket             // a datagram was delivered
	KindSync               // a file or directory sync completed
	KindWrite              // bytes were written to a file (note)
	KindFault              // a fault took effect
	KindUser               // an actor's own note
	kindCount
)

var kindNames = [kindCount]string{
	"world", "boot", "crash", "pause", "resume", "timer", "dial", "accept",
	"frame", "send", "close", "packet", "sync", "write", "fault", "user",
}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Record is one trace entry, kept when recording is on.
type Record struct {
	Index  uint64
	At     time.Duration
	Node   string // empty for world events
	Kind   Kind
	Detail uint64
	Label  string
	// Hash is the rolling hash after this entry.
	Hash uint64
}

func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "event #%d at %v", r.Index, r.At)
	if r.Node != "" {
		fmt.Fprintf(&b, " on %s", r.Node)
	}
	fmt.Fprintf(&b, ": %s", r.Kind)
	if r.Label != "" {
		fmt.Fprintf(&b, " %s", r.Label)
	}
	fmt.Fprintf(&b, " (detail %#x)", r.Detail)
	return b.String()
}

// recordsMax bounds the records one run keeps: past it the hash still
// rolls but entries are no longer stored.
const recordsMax = 8 << 20

// Trace is the rolling hash of a run's events. Two runs of the same seed
// must end with the same hash; when recording, each entry is kept so that
// the first divergence between two runs can be named.
type Trace struct {
	hash      uint64
	count     uint64
	recording bool
	truncated bool
	records   []Record
}

// Hash is the rolling hash so far.
func (t *Trace) Hash() uint64 { return t.hash }

// Count is the number of entries so far.
func (t *Trace) Count() uint64 { return t.count }

// Record turns on keeping entries.
func (t *Trace) Record() { t.recording = true }

// Recording reports whether entries are kept; callers that build labels
// check it first so that an unrecorded run pays nothing for them.
func (t *Trace) Recording() bool { return t.recording }

// Records returns the kept entries and whether they stopped short of the
// run (recordsMax reached).
func (t *Trace) Records() ([]Record, bool) { return t.records, t.truncated }

// Note adds an entry made inside a callback: a frame sent, bytes written, an
// actor's own decision. detail should summarise the content (a hash of a
// payload) so that a run that sends different bytes diverges here.
func (t *Trace) Note(at time.Duration, n *Node, kind Kind, detail uint64, label string) {
	t.add(at, n, kind, detail, label)
}

func (t *Trace) add(at time.Duration, n *Node, kind Kind, detail uint64, label string) {
	node := int64(-1)
	if n != nil {
		node = int64(n.ID)
	}
	h := t.hash
	h = mix(h, uint64(at))
	h = mix(h, uint64(node)<<8|uint64(kind))
	h = mix(h, detail)
	t.hash = h
	t.count++
	if !t.recording || t.truncated {
		return
	}
	if len(t.records) >= recordsMax {
		t.truncated = true
		return
	}
	r := Record{Index: t.count - 1, At: at, Kind: kind, Detail: detail, Label: label, Hash: h}
	if n != nil {
		r.Node = n.Name
	}
	t.records = append(t.records, r)
}

// mix folds v into h. It need not be cryptographic, only order-sensitive
// and cheap: it runs once per field of every event.
func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 29
	return h
}

// Divergence is the first point where two recorded runs differ.
type Divergence struct {
	Index       uint64
	First       *Record // nil when the first run had ended
	Second      *Record // nil when the second run had ended
	Before      []Record
	Unavailable bool // a run was longer than recordsMax
}

func (d Divergence) String() string {
	var b strings.Builder
	if d.Unavailable {
		fmt.Fprintf(&b, "runs diverge (their trace hashes differ), but two recorded reruns agreed on their first %d events: the divergence could not be named\n", d.Index)
		return b.String()
	}
	fmt.Fprintf(&b, "runs diverge at event #%d\n", d.Index)
	describe := func(name string, r *Record) {
		if r == nil {
			fmt.Fprintf(&b, "  %s run: (ended)\n", name)
			return
		}
		fmt.Fprintf(&b, "  %s run: %s\n", name, r)
	}
	describe("first ", d.First)
	describe("second", d.Second)
	if len(d.Before) > 0 {
		b.WriteString("  last common events:\n")
		for _, r := range d.Before {
			fmt.Fprintf(&b, "    %s\n", r)
		}
	}
	return b.String()
}

// contextRecords is how many common entries a divergence report shows.
const contextRecords = 5

// Diverge compares two recorded runs and returns the first entry at which
// they differ, or false when they are the same.
func Diverge(a, b []Record) (Divergence, bool) {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i].Hash != b[i].Hash {
			return divergenceAt(a, b, i), true
		}
	}
	if len(a) == len(b) {
		return Divergence{}, false
	}
	return divergenceAt(a, b, n), true
}

func divergenceAt(a, b []Record, i int) Divergence {
	d := Divergence{Index: uint64(i)}
	if i < len(a) {
		d.First = &a[i]
	}
	if i < len(b) {
		d.Second = &b[i]
	}
	d.Before = a[max(0, i-contextRecords):i]
	return d
}
