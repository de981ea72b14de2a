package controller

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// Oracle judges a quorum from outside, as tests and scenarios see it: it
// remembers the entry first applied at every index by any controller, so
// that a controller applying a different entry at an index already applied
// somewhere (a committed entry lost) is a violation; it hears every
// controller that becomes leader, so that two leaders of one term are a
// violation; and it counts a controller that raft found with a damaged log
// (it lost entries it had acknowledged) as one too. Wire a controller to it
// through Config.OnApply and Config.OnLead.
type Oracle struct {
	now       func() time.Duration
	committed map[uint64]OracleEntry
	// leaders is who led each term.
	leaders      map[uint64]uint64
	violations   []string
	lostLogNoted map[*Controller]bool
	// bytes estimates what committed holds.
	bytes int64
}

// OracleEntry is an applied entry as the oracle first saw it.
type OracleEntry struct {
	Term uint64
	Data []byte
}

// oracleViolationsMax bounds the violations kept: the first ones say what
// went wrong; a quorum that lost an entry goes on disagreeing.
const oracleViolationsMax = 100

// NewOracle returns an oracle that stamps violations with now.
func NewOracle(now func() time.Duration) *Oracle {
	return &Oracle{now: now, committed: map[uint64]OracleEntry{}, leaders: map[uint64]uint64{},
		lostLogNoted: map[*Controller]bool{}}
}

func (o *Oracle) violate(format string, args ...any) {
	if len(o.violations) < oracleViolationsMax {
		o.violations = append(o.violations, fmt.Sprintf("%.3fs ", o.now().Seconds())+fmt.Sprintf(format, args...))
	}
}

// Applied notes that node applied an entry; pass it Config.OnApply's
// arguments.
func (o *Oracle) Applied(node string, index, term uint64, data []byte) {
	prev, ok := o.committed[index]
	if !ok {
		o.committed[index] = OracleEntry{Term: term, Data: slices.Clone(data)}
		o.bytes += oracleEntryBytes + int64(len(data))
		return
	}
	if prev.Term != term || !bytes.Equal(prev.Data, data) {
		o.violate("%s applied term %d %q at index %d where term %d %q was applied before",
			node, term, data, index, prev.Term, prev.Data)
	}
}

// Led notes that controller id became leader of term.
func (o *Oracle) Led(term, id uint64) {
	if other, ok := o.leaders[term]; ok && other != id {
		o.violate("term %d has leaders %d and %d", term, other, id)
		return
	}
	o.leaders[term] = id
}

// NoteLostLog counts a controller that stopped because raft found its log
// damaged, once per controller.
func (o *Oracle) NoteLostLog(node string, c *Controller) {
	if c == nil || c.LostLog == "" || o.lostLogNoted[c] {
		return
	}
	o.lostLogNoted[c] = true
	o.violate("%s lost acknowledged entries: %s", node, c.LostLog)
}

// Violations lists what the oracle found wrong, in the order found.
func (o *Oracle) Violations() []string { return o.violations }

// Entry is the entry first applied at index.
func (o *Oracle) Entry(index uint64) (OracleEntry, bool) {
	e, ok := o.committed[index]
	return e, ok
}

// Len is how many indexes some controller applied.
func (o *Oracle) Len() int { return len(o.committed) }

// Indexes lists the applied indexes, ascending.
func (o *Oracle) Indexes() []uint64 {
	out := make([]uint64, 0, len(o.committed))
	for i := range o.committed {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// Terms is how many terms had a leader.
func (o *Oracle) Terms() int { return len(o.leaders) }

// Bytes estimates the memory the oracle holds, for a run's memory budget.
func (o *Oracle) Bytes() int64 { return o.bytes }

// oracleEntryBytes estimates an entry's map slot and slice header.
const oracleEntryBytes = 64
