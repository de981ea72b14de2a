package simdisk

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// Errors of the simulated disk beyond those of package sim. Like those, they
// come wrapped with the operation and name.
var (
	ErrInvalidPath  = errors.New("invalid path")
	ErrIsDir        = errors.New("is a directory")
	ErrNotDir       = errors.New("not a directory")
	ErrNotEmpty     = errors.New("directory not empty")
	ErrFileTooLarge = errors.New("file too large")
	ErrTooManyOpen  = errors.New("too many open files")
)

// Disk is one node's simulated disk. It is not safe for concurrent use; it
// runs on its loop like everything else in a simulated world.
type Disk struct {
	loop        *sched.Loop
	node        *sched.Node
	rng         *rand.Rand
	cfg         Config
	sectorBytes int64

	// Faults.
	capacityBytes int64
	slowFactor    float64
	failSyncs     int
	readErrorRate float64
	metaErrorRate float64
	// flipGuard, when set, spares bytes a scenario's fault budget keeps
	// from bit flips (see SetFlipGuard).
	flipGuard FlipGuard

	// cur is the namespace the process sees, committed the one on the
	// platter; journal holds the operations between them, oldest first,
	// and journalStart numbers journal[0] among all operations ever.
	cur, committed tree
	journal        []metaOp
	journalStart   uint64

	// inodes holds every inode something still refers to (a name, a
	// committed name, an uncommitted create, an open handle).
	inodes      map[uint64]*inode
	inodeNext   uint64
	usedBytes   int64
	openHandles int

	// processGen counts process incarnations: an FS or handle of an older
	// one is closed. powerGen counts power losses: a disk event of an
	// older one is void.
	processGen uint64
	powerGen   uint64
	// busyUntil is when the device finishes the syncs queued so far.
	busyUntil time.Duration
	// queued are the syncs the device has not finished, in the order it
	// serves them: a change of speed re-times them (see SetSlowFactor).
	queued       []queuedSync
	flusherArmed bool
}

// New returns an empty disk for node. rng is the disk's own random stream;
// it decides sync latencies, crash outcomes and injected faults.
func New(loop *sched.Loop, node *sched.Node, rng *rand.Rand, cfg Config) *Disk {
	sched.Assert(loop != nil && node != nil && rng != nil, "simdisk: New needs a loop, a node and a random stream")
	cfg = cfg.resolved()
	return &Disk{
		loop:          loop,
		node:          node,
		rng:           rng,
		cfg:           cfg,
		sectorBytes:   int64(cfg.SectorBytes),
		capacityBytes: cfg.CapacityBytes,
		slowFactor:    1,
		cur:           newTree(),
		committed:     newTree(),
		inodes:        make(map[uint64]*inode),
	}
}

// Config is the disk's configuration with defaults filled in.
func (d *Disk) Config() Config {
	c := d.cfg
	c.CrashModes = slices.Clone(c.CrashModes)
	return c
}

// FS is the file system as the node's current process incarnation sees it.
// ProcessKill and PowerLoss close it and every handle opened through it.
func (d *Disk) FS() sim.FS { return &diskFS{d: d, gen: d.processGen} }

// SetSlowFactor multiplies the time of syncs (1 is normal) from now on:
// of every later one, and of what is left of those queued. A device that
// stalls slows the requests already in its queue too, and one that
// recovers serves its queue at its healed speed: a backlog issued while
// it was slow does not keep the slow service times it would have had.
func (d *Disk) SetSlowFactor(f float64) {
	sched.Assert(f > 0, "simdisk: slow factor %v", f)
	if f == d.slowFactor {
		return
	}
	old := d.slowFactor
	d.slowFactor = f
	d.retimeQueued(old)
}

// FailSyncs makes the next n file or directory syncs fail with sim.ErrIO.
// What a failed file sync does to the data depends on Config.SyncFailure:
// SyncFailureDrops throws the file's unsynced data away, in the page cache
// too; SyncFailureLinux marks it clean but keeps showing it until a power
// loss or DropCaches. A failed directory sync commits nothing.
func (d *Disk) FailSyncs(n int) {
	sched.Assert(n >= 0, "simdisk: fail %d syncs", n)
	d.failSyncs = n
}

// SetCapacity changes the capacity; zero restores the configured one. A
// capacity at or below UsedBytes fills the disk: later growth fails with
// sim.ErrNoSpace.
func (d *Disk) SetCapacity(bytes int64) {
	sched.Assert(bytes >= 0, "simdisk: capacity %d", bytes)
	if bytes == 0 {
		bytes = d.cfg.CapacityBytes
	}
	d.capacityBytes = bytes
}

// SetReadErrorRate makes each ReadAt fail with sim.ErrIO with probability
// p.
func (d *Disk) SetReadErrorRate(p float64) {
	sched.Assert(p >= 0 && p <= 1, "simdisk: read error rate %v", p)
	d.readErrorRate = p
}

// SetMetaErrorRate makes each namespace or size change (Create, Remove,
// RemoveAll's removals, Rename, MkdirAll's new directories, Truncate)
// fail with sim.ErrIO with probability p, changing nothing, and each
// write (WriteAt, Append) with probability p write a prefix of its bytes
// (maybe none) and fail with sim.ErrIO, as write(2) returns a short count
// and then an error when the device fails part way.
func (d *Disk) SetMetaErrorRate(p float64) {
	sched.Assert(p >= 0 && p <= 1, "simdisk: metadata error rate %v", p)
	d.metaErrorRate = p
}

// metaError draws whether the operation op on name fails under
// SetMetaErrorRate, and traces the failure. It draws nothing while the
// rate is zero, so a disk without the fault keeps its random stream.
func (d *Disk) metaError(op, name string) error {
	if d.metaErrorRate == 0 || d.rng.Float64() >= d.metaErrorRate {
		return nil
	}
	d.noteFault(op, name)
	return fmt.Errorf("%s %s: %w (injected metadata error)", op, name, sim.ErrIO)
}

// shortWrite draws whether a write of n bytes fails part way under
// SetMetaErrorRate: it returns how many bytes it writes before failing,
// or n when it does not fail.
func (d *Disk) shortWrite(name string, n int) int {
	if d.metaErrorRate == 0 || d.rng.Float64() >= d.metaErrorRate {
		return n
	}
	d.noteFault("short write", name)
	return d.rng.IntN(n)
}

// noteFault traces an injected failure of op on name.
func (d *Disk) noteFault(op, name string) {
	tr := d.loop.Trace()
	label := ""
	if tr.Recording() {
		label = "injected " + op + " error " + name
	}
	tr.Note(d.loop.Now(), d.node, sched.KindFault, mix(xxhash.Sum64String(name), xxhash.Sum64String(op)), label)
}

// DirtyBytes is the size of the dirty sectors of every file.
func (d *Disk) DirtyBytes() int64 {
	var sectors int64
	for _, ino := range d.inodes { // a sum: order is irrelevant
		sectors += int64(len(ino.dirty))
	}
	return sectors * d.sectorBytes
}

// UsedBytes is the sum of the current sizes of the files a name or an open
// handle refers to; it is what the capacity bounds.
func (d *Disk) UsedBytes() int64 { return d.usedBytes }

// UncommittedOps is the number of metadata operations not yet committed.
func (d *Disk) UncommittedOps() int { return len(d.journal) }

// refresh updates an inode's accounting after its references changed.
func (d *Disk) refresh(ino *inode) {
	counted := ino.links > 0 || ino.opens > 0
	if counted != ino.counted {
		if counted {
			d.usedBytes += ino.cur.sizeBytes
		} else {
			d.usedBytes -= ino.cur.sizeBytes
		}
		ino.counted = counted
	}
	live := counted || ino.durLinks > 0 || ino.journalRefs > 0
	if live != ino.live {
		if live {
			d.inodes[ino.id] = ino
		} else {
			delete(d.inodes, ino.id)
		}
		ino.live = live
	}
}

// resized accounts for a change of an inode's current size.
func (d *Disk) resized(ino *inode, before int64) {
	if ino.counted {
		d.usedBytes += ino.cur.sizeBytes - before
	}
}

// checkGrowth refuses growth of a file to end bytes that the size bound or
// the capacity does not allow.
func (d *Disk) checkGrowth(ino *inode, end int64) error {
	if end > FileBytesMax {
		return fmt.Errorf("size %d exceeds %d: %w", end, FileBytesMax, ErrFileTooLarge)
	}
	if growth := end - ino.cur.sizeBytes; growth > 0 && d.usedBytes+growth > d.capacityBytes {
		return fmt.Errorf("%d more bytes with %d of %d used: %w", growth, d.usedBytes, d.capacityBytes, sim.ErrNoSpace)
	}
	return nil
}

func (d *Disk) newInode() *inode {
	d.inodeNext++
	return newInode(d.inodeNext, d.sectorBytes)
}

// metaOp applies a checked metadata operation to the current namespace and
// journals it.
func (d *Disk) metaOp(op metaOp) {
	op.at = d.loop.Now()
	if len(d.journal) >= JournalOpsMax {
		d.commit(d.journalStart + uint64(len(d.journal)))
	}
	added, removed := d.cur.apply(op)
	if added != nil {
		added.links++
		added.journalRefs++
		d.refresh(added)
	}
	if removed != nil {
		removed.links--
		d.refresh(removed)
	}
	d.journal = append(d.journal, op)
	label := ""
	if d.loop.Trace().Recording() {
		label = op.String()
	}
	d.note(mix(xxhash.Sum64String(op.path), xxhash.Sum64String(op.newPath)^uint64(op.kind)), label)
	d.armFlusher()
}

// commit makes the journaled operations numbered below upto durable.
func (d *Disk) commit(upto uint64) {
	if upto <= d.journalStart {
		return
	}
	n := int(min(upto-d.journalStart, uint64(len(d.journal))))
	for _, op := range d.journal[:n] {
		added, removed := d.committed.apply(op)
		if added != nil {
			added.durLinks++
			added.journalRefs--
			d.refresh(added)
		}
		if removed != nil {
			removed.durLinks--
			d.refresh(removed)
		}
	}
	rest := copy(d.journal, d.journal[n:])
	clear(d.journal[rest:]) // let removed inodes be collected
	d.journal = d.journal[:rest]
	d.journalStart += uint64(n)
}

// note adds a trace entry for a change made by the node's process; callers
// build label only when the trace is recording.
func (d *Disk) note(detail uint64, label string) {
	d.loop.Trace().Note(d.loop.Now(), d.node, sched.KindWrite, detail, label)
}

// mix folds b into a for trace details.
func mix(a, b uint64) uint64 {
	h := a ^ (b * 0x9e3779b97f4a7c15)
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return h
}

// errPowerLost is what a sync whose completion a power loss prevented
// reports, should its process still be there to hear it.
var errPowerLost = fmt.Errorf("power lost before the sync completed: %w", sim.ErrIO)

// transferTime is how long the device takes to write bytes at the
// configured bandwidth.
func (d *Disk) transferTime(bytes int64) time.Duration {
	hi, lo := bits.Mul64(uint64(bytes), uint64(time.Second))
	bw := uint64(d.cfg.BandwidthBytesPerSec)
	if hi >= bw {
		return time.Duration(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, bw)
	return time.Duration(min(q, 1<<62))
}

// schedule queues one sync on the device. effect runs when the device is
// done, as a disk event that a power loss voids but a process crash does
// not; done then gets its result on the node's loop, unless the node has
// crashed since the call.
func (d *Disk) schedule(bytes int64, detail uint64, effect func() error, done func(error)) {
	d.scheduleOp(&syncOp{effect: effect, done: done}, bytes, detail)
}

// scheduleOp is schedule for an op with its effect (and done) set.
func (d *Disk) scheduleOp(op *syncOp, bytes int64, detail uint64) {
	now := d.loop.Now()
	service := d.cfg.SyncLatency.Sample(d.rng) + d.transferTime(bytes)
	at := max(now, d.busyUntil) + scaled(service, d.slowFactor)
	d.busyUntil = at
	op.d, op.gen, op.result, op.detail = d, d.powerGen, errPowerLost, detail
	d.dropFinished(now)
	d.queued = append(d.queued, queuedSync{op: op, service: service, end: at, inc: d.node.Incarnation()})
	d.post(op, at, true)
}

// post schedules op's two events at at; the node hears of it only when
// its incarnation that asked is still the node's.
func (d *Disk) post(op *syncOp, at time.Duration, tell bool) {
	d.loop.AtRunner(at, nil, sched.KindSync, op.detail, (*syncEffect)(op))
	if tell {
		d.loop.AtRunner(at, d.node, sched.KindSync, op.detail, (*syncDone)(op))
	}
}

// scaled is a service time at a slow factor.
func scaled(service time.Duration, factor float64) time.Duration {
	return time.Duration(float64(service) * factor)
}

// queuedSync is a sync the device has not finished: its service time at
// normal speed, when it ends, and the incarnation of the node that asked.
type queuedSync struct {
	op      *syncOp
	service time.Duration
	end     time.Duration
	inc     uint32
}

// dropFinished forgets the queued syncs that ended by now.
func (d *Disk) dropFinished(now time.Duration) {
	i := 0
	for i < len(d.queued) && d.queued[i].end <= now {
		i++
	}
	if i == len(d.queued) {
		d.queued = d.queued[:0]
		return
	}
	d.queued = d.queued[i:]
}

// retimeQueued moves the queued syncs to the times the new slow factor
// gives them, old being the factor they were timed at: the sync in
// service keeps the share of its work done and does the rest at the new
// speed; each after it starts when the one before ends. A moved sync's
// events stay in the loop and do nothing; its new ones carry it.
func (d *Disk) retimeQueued(old float64) {
	now := d.loop.Now()
	d.dropFinished(now)
	prevEnd := now
	for i := range d.queued {
		q := &d.queued[i]
		oldService := scaled(q.service, old)
		end := prevEnd + scaled(q.service, d.slowFactor)
		if start := q.end - oldService; start < now {
			left := float64(q.end-now) / float64(oldService)
			end = now + time.Duration(left*float64(scaled(q.service, d.slowFactor)))
		}
		moved := *q.op
		q.op.moved = true
		q.op, q.end = &moved, end
		d.post(&moved, end, q.inc == d.node.Incarnation())
		prevEnd = end
	}
	if len(d.queued) > 0 {
		d.busyUntil = prevEnd
	}
}

// syncOp is one scheduled sync. Its two events are two views of one
// allocation (where closures and the result they shared were three). A
// file's sync, the common kind, carries its effect's state itself (file)
// instead of a closure over it.
type syncOp struct {
	d *Disk
	// effect is the sync's effect; nil for a file sync, whose effect is
	// fileSync.complete.
	effect func() error
	file   fileSync
	done   func(error)
	result error
	gen    uint64
	detail uint64
	// moved says a change of the device's speed re-timed the sync: these
	// events do nothing, a copy's carry it.
	moved bool
}

// fileSync is what completing a file's sync needs.
type fileSync struct {
	ino  *inode
	c    capture
	name string
}

// complete makes the captured data durable, unless a failed sync since
// dropped it.
func (f *fileSync) complete(now time.Duration) error {
	if f.ino.revertSeq > f.c.seq {
		return fmt.Errorf("sync %s: %w (an earlier failed sync dropped the data)", f.name, sim.ErrIO)
	}
	f.ino.complete(f.c, now)
	return nil
}

// syncEffect is the device finishing the sync, unless power was lost since.
type syncEffect syncOp

func (op *syncEffect) Run() {
	if op.moved || op.d.powerGen != op.gen {
		return
	}
	if op.effect == nil {
		op.result = op.file.complete(op.d.loop.Now())
		return
	}
	op.result = op.effect()
}

// syncDone hands the result to the node.
type syncDone syncOp

func (op *syncDone) Run() {
	if !op.moved {
		op.done(op.result)
	}
}

// takeSyncFailure reports whether the sync being called is one of those
// FailSyncs asked for.
func (d *Disk) takeSyncFailure() bool {
	if d.failSyncs == 0 {
		return false
	}
	d.failSyncs--
	return true
}

// syncFile queues a sync of ino's data as it is now.
func (d *Disk) syncFile(ino *inode, name string, done func(error)) {
	detail := mix(xxhash.Sum64String(name), 1)
	bytes := int64(len(ino.dirty)) * d.sectorBytes
	failing := d.takeSyncFailure()
	if failing && d.cfg.SyncFailure == SyncFailureDrops {
		d.schedule(bytes, detail, func() error {
			before := ino.cur.sizeBytes
			ino.revert()
			d.resized(ino, before)
			return fmt.Errorf("sync %s: %w (unsynced data dropped)", name, sim.ErrIO)
		}, done)
		return
	}
	c := ino.capture()
	if failing {
		d.schedule(bytes, detail, func() error {
			ino.markLost(c)
			return fmt.Errorf("sync %s: %w (dirty pages marked clean, not written)", name, sim.ErrIO)
		}, done)
		return
	}
	d.scheduleOp(&syncOp{file: fileSync{ino: ino, c: c, name: name}, done: done}, bytes, detail)
}

// syncDir queues a commit of the journal as it is now.
func (d *Disk) syncDir(dir string, done func(error)) {
	detail := mix(xxhash.Sum64String(dir), 2)
	upto := d.journalStart + uint64(len(d.journal))
	if d.takeSyncFailure() {
		d.schedule(0, detail, func() error {
			return fmt.Errorf("sync directory %q: %w", dir, sim.ErrIO)
		}, done)
		return
	}
	d.schedule(0, detail, func() error {
		d.commit(upto)
		return nil
	}, done)
}

// armFlusher makes sure background writeback runs while anything is
// unsynced. It ticks on a fixed grid of WritebackAge/6, as Linux's flusher
// wakes every dirty_writeback_centisecs.
func (d *Disk) armFlusher() {
	if d.cfg.WritebackAge <= 0 || d.flusherArmed {
		return
	}
	d.flusherArmed = true
	period := max(d.cfg.WritebackAge/6, 1)
	next := (d.loop.Now()/period + 1) * period
	gen := d.powerGen
	d.loop.At(next, nil, sched.KindSync, uint64(next), func() {
		if d.powerGen != gen {
			return
		}
		d.flusherArmed = false
		d.flush()
	})
}

// flush writes back every file whose oldest unsynced change is at least
// WritebackAge old, and commits metadata operations as old.
func (d *Disk) flush() {
	cutoff := d.loop.Now() - d.cfg.WritebackAge
	pending := false
	for _, ino := range d.sortedInodes() {
		at, ok := ino.oldestChange()
		if !ok {
			continue
		}
		if at <= cutoff {
			ino.writeback()
		} else {
			pending = true
		}
	}
	upto := d.journalStart
	for _, op := range d.journal {
		if op.at > cutoff {
			break
		}
		upto++
	}
	d.commit(upto)
	if pending || len(d.journal) > 0 {
		d.armFlusher()
	}
}

func (d *Disk) sortedInodes() []*inode {
	out := make([]*inode, 0, len(d.inodes))
	for _, ino := range d.inodes {
		out = append(out, ino)
	}
	slices.SortFunc(out, func(a, b *inode) int { return cmpUint64(a.id, b.id) })
	return out
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// closeHandles ends a process incarnation: every FS and handle of it is
// closed, and files only they kept are gone.
func (d *Disk) closeHandles() {
	d.processGen++
	d.openHandles = 0
	for _, ino := range d.inodes { // per-inode updates and a sum: order is irrelevant
		ino.opens = 0
		d.refresh(ino)
	}
}

// DropCaches evicts the clean pages that hold data a failed sync never
// wrote (SyncFailureLinux), as `echo 1 > /proc/sys/vm/drop_caches` or
// memory pressure would: reads see what the platter holds again. It
// returns how many sectors changed back.
func (d *Disk) DropCaches() int {
	n := 0
	for _, ino := range d.sortedInodes() {
		n += ino.evictLost(d.loop.Now())
	}
	d.loop.Trace().Note(d.loop.Now(), d.node, sched.KindFault, uint64(n), "")
	return n
}

// ProcessKill is a process crash (kill -9): every handle is closed, but the
// page cache and the device survive, so nothing is lost and syncs in flight
// still complete. The caller crashes the node, which drops their callbacks.
func (d *Disk) ProcessKill() {
	d.closeHandles()
}
