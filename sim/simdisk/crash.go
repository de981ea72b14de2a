package simdisk

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/sluice-sim/sluice/sim/sched"
)

// PowerLoss is a machine crash. A random prefix of the uncommitted metadata
// journal survives; every file that then has a name gets, if it had
// unsynced data, a crash mode picked from Config.CrashModes and the content
// that mode leaves (see the package comment); files without a name are
// gone; syncs in flight are lost; every handle is closed. The caller
// crashes the node. It returns what was lost, torn or came back, sorted.
func (d *Disk) PowerLoss() []string {
	d.powerGen++
	d.busyUntil = d.loop.Now()
	d.queued = d.queued[:0]
	d.flusherArmed = false

	kept := d.rng.IntN(len(d.journal) + 1)
	next := d.committed.clone()
	for _, op := range d.journal[:kept] {
		next.apply(op)
	}
	report := diffNames(d.cur, next)

	next.walk(func(p string, e *entry) {
		if e.ino == nil || !e.ino.unsynced() {
			return
		}
		ino := e.ino
		mode := d.cfg.CrashModes[d.rng.IntN(len(d.cfg.CrashModes))]
		img := d.crashImage(ino, mode)
		if line, lost := describeLoss(p, ino, mode, img); lost {
			report = append(report, line)
		}
		ino.reset(img)
	})

	// Everything now refers to what next names, and nothing else.
	for _, ino := range d.inodes { // per-inode resets: order is irrelevant
		ino.links, ino.durLinks, ino.journalRefs, ino.opens = 0, 0, 0, 0
		ino.counted, ino.live = false, false
	}
	clear(d.inodes)
	d.usedBytes = 0
	next.walk(func(_ string, e *entry) {
		if e.ino != nil {
			e.ino.links, e.ino.durLinks = 1, 1
			d.refresh(e.ino)
		}
	})
	d.cur = next
	d.committed = next.clone()
	d.journalStart += uint64(len(d.journal))
	clear(d.journal)
	d.journal = d.journal[:0]
	d.processGen++
	d.openHandles = 0

	slices.Sort(report)
	var detail uint64
	for _, line := range report {
		detail = mix(detail, xxhash.Sum64String(line))
	}
	d.loop.Trace().Note(d.loop.Now(), d.node, sched.KindFault, detail, "")
	return report
}

// diffNames describes how the namespace a crash leaves differs from the one
// the process saw.
func diffNames(before, after tree) []string {
	type named struct {
		dir bool
		ino *inode
	}
	collect := func(t tree) map[string]named {
		m := make(map[string]named)
		t.walk(func(p string, e *entry) { m[p] = named{dir: e.dir != nil, ino: e.ino} })
		return m
	}
	was, now := collect(before), collect(after)
	var out []string
	for _, p := range slices.Sorted(maps.Keys(was)) {
		w := was[p]
		n, ok := now[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: name lost (uncommitted create or rename)", p))
		case w.dir != n.dir || w.ino != n.ino:
			out = append(out, fmt.Sprintf("%s: name refers to an older file (uncommitted create or rename)", p))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(now)) {
		if _, ok := was[p]; !ok {
			out = append(out, fmt.Sprintf("%s: name came back (uncommitted remove or rename)", p))
		}
	}
	return out
}

// crashImage is the content a crash in mode leaves of ino.
func (d *Disk) crashImage(ino *inode, mode CrashMode) image {
	sb := d.sectorBytes
	durSize, curSize := ino.dur.sizeBytes, ino.cur.sizeBytes
	switch mode {
	case DropUnsynced:
		return ino.dur.clone()
	case KeepUnsynced:
		// Lost sectors are clean to the kernel: no writeback saves them.
		img := ino.cur.clone()
		for _, s := range sortedLost(ino) {
			restoreSector(&img, &ino.dur, s, sb)
		}
		return img
	case KeepPrefix:
		lo, hi := min(durSize, curSize), max(durSize, curSize)
		size := lo + d.rng.Int64N(hi-lo+1)
		img := ino.dur.clone()
		if size > durSize {
			// Above the durable size the current bytes survive. Sectors
			// there that are not dirty read as zeros in both images.
			for _, s := range sortedDirty(ino) {
				start := s * sb
				if start+sb <= durSize || start >= size {
					continue
				}
				buf := make([]byte, sb)
				if old := img.sectors[s]; old != nil {
					copy(buf, old)
				}
				from := max(durSize, start) - start
				if cur := ino.cur.sectors[s]; cur != nil {
					copy(buf[from:], cur[from:])
				} else {
					clear(buf[from:])
				}
				img.sectors[s] = buf
			}
		}
		img.cutTo(size, sb)
		return img
	case TearSectors:
		size := durSize
		if d.rng.IntN(2) == 1 {
			size = curSize
		}
		img := ino.dur.clone()
		for _, s := range sortedDirty(ino) {
			if d.rng.IntN(2) == 0 {
				continue
			}
			if buf := ino.cur.sectors[s]; buf != nil {
				img.sectors[s] = buf
			} else {
				delete(img.sectors, s)
			}
		}
		img.cutTo(size, sb)
		return img
	}
	sched.Assert(false, "simdisk: crash mode %v", mode)
	return image{}
}

func sortedDirty(ino *inode) []int64 {
	return slices.Sorted(maps.Keys(ino.dirty))
}

func sortedLost(ino *inode) []int64 {
	return slices.Sorted(maps.Keys(ino.lost))
}

// describeLoss says what a crash did to a file, and whether it lost
// anything of the content the process last saw.
func describeLoss(p string, ino *inode, mode CrashMode, img image) (string, bool) {
	sb := ino.sectorBytes
	keptSectors, dirtySectors := 0, len(ino.dirty)+len(ino.lost)
	for s := range ino.dirty { // a count: order is irrelevant
		if sectorEqual(&img, &ino.cur, s, sb) {
			keptSectors++
		}
	}
	for s := range ino.lost { // a count: order is irrelevant
		if sectorEqual(&img, &ino.cur, s, sb) {
			keptSectors++
		}
	}
	if img.sizeBytes == ino.cur.sizeBytes && keptSectors == dirtySectors {
		return "", false
	}
	return fmt.Sprintf("%s: %s: size %d -> %d (durable %d), %d of %d dirty sectors kept",
		p, mode, ino.cur.sizeBytes, img.sizeBytes, ino.dur.sizeBytes, keptSectors, dirtySectors), true
}

// sectorEqual compares sector s of two images, over the bytes both sizes
// cover (beyond a size a sector reads as zeros, so it compares too).
func sectorEqual(a, b *image, s, sb int64) bool {
	x, y := a.sectors[s], b.sectors[s]
	switch {
	case x == nil && y == nil:
		return true
	case x == nil:
		return allZero(y)
	case y == nil:
		return allZero(x)
	}
	return string(x) == string(y)
}

// Corrupt flips one random bit in each of n random bytes of random non-empty
// files, in the page cache and, where the byte is durable, on the platter
// too, as bit rot that a re-read would see. It returns the flips as
// "name@offset bit b", sorted.
func (d *Disk) Corrupt(n int) []string {
	sched.Assert(n >= 0, "simdisk: corrupt %d bytes", n)
	var files []corruptible
	d.cur.walk(func(p string, e *entry) {
		if e.ino != nil && e.ino.cur.sizeBytes > 0 {
			files = append(files, corruptible{p, e.ino})
		}
	})
	return d.corrupt(files, n)
}

// CorruptFile flips one random bit in each of n random bytes of the named
// file, as Corrupt does across the disk: damage aimed at one file that a
// scenario wants its program to meet. It returns the flips, or none when
// no non-empty file has the name.
func (d *Disk) CorruptFile(name string, n int) []string {
	sched.Assert(n >= 0, "simdisk: corrupt %d bytes", n)
	e := d.cur.lookup(name)
	if e == nil || e.ino == nil || e.ino.cur.sizeBytes == 0 {
		return nil
	}
	return d.corrupt([]corruptible{{name, e.ino}}, n)
}

// FlipGuard says whether a bit flip drawn at a spot must be spared: the
// flip is not made and another spot is drawn. A scenario sets one where
// its fault budget depends on what the program holds at the moment of
// the flip, which a schedule drawn in advance cannot know (a flip must
// not destroy the only copy of committed data in a replicated log, when
// the scenario promises a result only while one copy is left).
type FlipGuard func(spot FlipSpot) bool

// FlipSpot is where a bit flip was drawn: a file, a byte of it, and the
// file's current size and bytes, as the process would read them but
// without faults (Read returns how many bytes it read: fewer at the end).
type FlipSpot struct {
	Name      string
	Offset    int64
	SizeBytes int64
	Read      func(p []byte, off int64) int
}

// flipSpot is the spot at byte off of f.
func (d *Disk) flipSpot(f corruptible, off int64) FlipSpot {
	return FlipSpot{Name: f.name, Offset: off, SizeBytes: f.ino.cur.sizeBytes, Read: func(p []byte, at int64) int {
		if at < 0 || at >= f.ino.cur.sizeBytes {
			return 0
		}
		n := min(int64(len(p)), f.ino.cur.sizeBytes-at)
		f.ino.cur.readAt(p[:n], at, d.sectorBytes)
		return int(n)
	}}
}

// SetFlipGuard makes every later Corrupt and CorruptFile ask guard
// before each flip (nil: flip wherever drawn). A spot it spares still
// counts among the attempts, so a guard that spares everything flips
// nothing; a guard that spares nothing leaves the draws as they were.
func (d *Disk) SetFlipGuard(guard FlipGuard) { d.flipGuard = guard }

// corruptible is a file a bit flip may land in.
type corruptible struct {
	name string
	ino  *inode
}

func (d *Disk) corrupt(files []corruptible, n int) []string {
	if len(files) == 0 {
		return nil
	}
	type spot struct {
		ino uint64
		off int64
	}
	seen := make(map[spot]bool)
	var out []string
	for attempt := 0; len(out) < n && attempt < 4*n+16; attempt++ {
		f := files[d.rng.IntN(len(files))]
		off := d.rng.Int64N(f.ino.cur.sizeBytes)
		bit := d.rng.IntN(8)
		if seen[spot{f.ino.id, off}] {
			continue
		}
		seen[spot{f.ino.id, off}] = true
		if d.flipGuard != nil && d.flipGuard(d.flipSpot(f, off)) {
			continue
		}
		d.flipBit(f.ino, off, bit)
		out = append(out, fmt.Sprintf("%s@%d bit %d", f.name, off, bit))
	}
	slices.Sort(out)
	var detail uint64
	for _, line := range out {
		detail = mix(detail, xxhash.Sum64String(line))
	}
	d.loop.Trace().Note(d.loop.Now(), d.node, sched.KindFault, detail, "")
	return out
}

// flipBit flips a bit of the byte at off, which is below the current size.
func (d *Disk) flipBit(ino *inode, off int64, bit int) {
	sb := d.sectorBytes
	s, in := off/sb, off%sb
	flipped := func(buf []byte) []byte {
		out := make([]byte, sb)
		copy(out, buf)
		out[in] ^= 1 << bit
		return out
	}
	_, dirty := ino.dirty[s]
	_, lost := ino.lost[s]
	delete(ino.lost, s) // flipped below, the sector becomes dirty
	if !dirty && !lost && off < ino.dur.sizeBytes {
		// Clean: both images share the sector and keep sharing it.
		buf := flipped(ino.cur.sectors[s])
		ino.cur.sectors[s] = buf
		ino.dur.sectors[s] = buf
		return
	}
	if off < ino.dur.sizeBytes {
		ino.dur.sectors[s] = flipped(ino.dur.sectors[s])
	}
	// The page cache now holds bytes the platter may not: the sector is
	// dirty, changed after any capture of it.
	ino.seq++
	e, wasDirty := ino.dirty[s]
	if !wasDirty {
		e.since = d.loop.Now()
	}
	ino.cur.sectors[s] = flipped(ino.cur.sectors[s])
	e.version, e.owned = ino.seq, true
	ino.dirty[s] = e
}
