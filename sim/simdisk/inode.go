package simdisk

import (
	"maps"
	"slices"
	"time"
)

// image is one version of a file's content: the durable one (on the
// platter) or the current one (in the page cache).
//
// Sector buffers are shared between the two images, and with captures of
// in-flight syncs, and are then immutable: only a buffer marked owned in
// the inode's dirty set may be changed in place. That makes a sync capture
// and a completed sync cost a pointer per dirty sector instead of a copy.
type image struct {
	sizeBytes int64
	// sectors holds each sector's bytes; a missing sector reads as zeros.
	// Bytes at or beyond sizeBytes are always zero.
	sectors map[int64][]byte
}

func newImage() image { return image{sectors: make(map[int64][]byte)} }

func (im *image) clone() image {
	return image{sizeBytes: im.sizeBytes, sectors: maps.Clone(im.sectors)}
}

// readAt copies the bytes at off into p; the caller keeps the range inside
// the image's size.
func (im *image) readAt(p []byte, off int64, sectorBytes int64) {
	end := off + int64(len(p))
	for pos := off; pos < end; {
		s := pos / sectorBytes
		inSector := pos - s*sectorBytes
		n := min(sectorBytes-inSector, end-pos)
		dst := p[pos-off : pos-off+n]
		if buf := im.sectors[s]; buf != nil {
			copy(dst, buf[inSector:inSector+n])
		} else {
			clear(dst)
		}
		pos += n
	}
}

// bytes materializes the whole image.
func (im *image) bytes(sectorBytes int64) []byte {
	out := make([]byte, im.sizeBytes)
	im.readAt(out, 0, sectorBytes)
	return out
}

// cutTo makes every byte at or beyond size zero, by dropping whole sectors
// and copying the boundary one; it never changes a shared buffer.
func (im *image) cutTo(size int64, sectorBytes int64) {
	first := (size + sectorBytes - 1) / sectorBytes
	for s := range im.sectors { // order is irrelevant: each key is deleted or kept
		if s >= first {
			delete(im.sectors, s)
		}
	}
	if tail := size % sectorBytes; tail != 0 {
		if buf := im.sectors[size/sectorBytes]; buf != nil && !allZero(buf[tail:]) {
			fresh := make([]byte, sectorBytes)
			copy(fresh, buf[:tail])
			im.sectors[size/sectorBytes] = fresh
		}
	}
	im.sizeBytes = size
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// sameBuffer reports whether two sector buffers are the same memory (or both
// absent, which reads as zeros).
func sameBuffer(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return &a[0] == &b[0]
}

// dirtySector is a sector whose current bytes may differ from its durable
// ones.
type dirtySector struct {
	// version is the inode's change counter at the sector's last change.
	version uint64
	// since is when the sector became dirty, for background writeback.
	since time.Duration
	// owned says the current buffer is private to the page cache and may
	// be changed in place; a sync capture takes ownership away.
	owned bool
}

// inode is a file: its durable and current content and what refers to it.
//
// Invariants: cur and dur are equal byte for byte in every sector in
// neither dirty nor lost; no sector is in both; dur equals what cur was
// when the change counter read durSeq, except in lost sectors.
type inode struct {
	id          uint64
	sectorBytes int64
	cur, dur    image
	dirty       map[int64]dirtySector
	// lost holds the sectors a failed sync marked clean under
	// SyncFailureLinux: the page cache shows bytes the platter does not
	// hold and no sync will write, until a change makes them dirty again.
	lost map[int64]struct{}
	// lostAt holds, for each sector a failed sync made lost, the number of
	// captures taken when it did: a sync called before the failure
	// completed does not write the sector, whatever happened to it since.
	lostAt map[int64]uint64
	// captures counts sync captures of the file.
	captures uint64
	// seq counts changes to cur.
	seq uint64
	// durSeq is the change count whose content dur holds.
	durSeq uint64
	// revertSeq is the change count of the last failed sync, which threw
	// away the page cache: captures older than it are void.
	revertSeq uint64
	// sizeSince is when cur's size began to differ from dur's.
	sizeSince time.Duration

	// links counts current names (0 or 1), durLinks committed names,
	// journalRefs uncommitted creates, opens open handles.
	links, durLinks, journalRefs, opens int
	// counted says the current size is in the disk's used bytes; live
	// says the inode is in the disk's registry.
	counted, live bool
	// spares are sector buffers the durable image let go of and nothing
	// else holds (see complete), taken by the next copy-on-write: a file
	// appended to and synced in turn copies its tail sector on every
	// append, and this way reuses the one the sync before made obsolete.
	spares [][]byte
}

// sparesMax bounds the buffers an inode keeps for reuse.
const sparesMax = 2

func newInode(id uint64, sectorBytes int64) *inode {
	return &inode{id: id, sectorBytes: sectorBytes, cur: newImage(), dur: newImage(),
		dirty: make(map[int64]dirtySector), lost: make(map[int64]struct{}), lostAt: make(map[int64]uint64)}
}

// unsynced reports whether a crash could lose anything of the file.
func (ino *inode) unsynced() bool {
	return len(ino.dirty) > 0 || len(ino.lost) > 0 || ino.cur.sizeBytes != ino.dur.sizeBytes
}

// oldestChange is when the oldest change not yet durable was made; ok is
// false when everything is durable.
func (ino *inode) oldestChange() (at time.Duration, ok bool) {
	if ino.cur.sizeBytes != ino.dur.sizeBytes {
		at, ok = ino.sizeSince, true
	}
	for _, e := range ino.dirty { // a minimum: order is irrelevant
		if !ok || e.since < at {
			at, ok = e.since, true
		}
	}
	return at, ok
}

// writableSector returns the current buffer of sector s, private to the page
// cache, and marks the sector changed. whole says the caller overwrites all
// of it, so a fresh buffer need not copy the old bytes.
func (ino *inode) writableSector(s int64, now time.Duration, whole bool) []byte {
	e, dirty := ino.dirty[s]
	buf := ino.cur.sectors[s]
	delete(ino.lost, s) // dirty again: the next sync writes all of it
	if !dirty || !e.owned || buf == nil {
		if buf != nil && !whole && int64(len(buf)) == ino.sectorBytes {
			// Copied into a spare, or cloned, not made and copied
			// into: make zeroes the sector first, and appends after
			// every sync copy one.
			if n := len(ino.spares); n > 0 {
				spare := ino.spares[n-1]
				ino.spares[n-1] = nil
				ino.spares = ino.spares[:n-1]
				copy(spare, buf)
				buf = spare
			} else {
				buf = slices.Clone(buf)
			}
		} else {
			fresh := make([]byte, ino.sectorBytes)
			if buf != nil && !whole {
				copy(fresh, buf)
			}
			buf = fresh
		}
		ino.cur.sectors[s] = buf
	}
	if !dirty {
		e.since = now
	}
	e.version = ino.seq
	e.owned = true
	ino.dirty[s] = e
	return buf
}

func (ino *inode) setCurSize(size int64, now time.Duration) {
	if ino.cur.sizeBytes == ino.dur.sizeBytes && size != ino.dur.sizeBytes {
		ino.sizeSince = now
	}
	if old := ino.cur.sizeBytes; size > old && old%ino.sectorBytes != 0 {
		// Growth brings the zeros past the old size of its last sector
		// into the file. If that sector is lost, the platter holds
		// other bytes there: the page is dirty again.
		if _, lost := ino.lost[old/ino.sectorBytes]; lost {
			delete(ino.lost, old/ino.sectorBytes)
			ino.dirty[old/ino.sectorBytes] = dirtySector{version: ino.seq, since: now}
		}
	}
	ino.cur.sizeBytes = size
}

// write puts p at off in the page cache.
func (ino *inode) write(p []byte, off int64, now time.Duration) {
	ino.seq++
	sb := ino.sectorBytes
	end := off + int64(len(p))
	for pos := off; pos < end; {
		s := pos / sb
		inSector := pos - s*sb
		n := min(sb-inSector, end-pos)
		buf := ino.writableSector(s, now, n == sb)
		copy(buf[inSector:inSector+n], p[pos-off:pos-off+n])
		pos += n
	}
	if end > ino.cur.sizeBytes {
		ino.setCurSize(end, now)
	}
}

// truncate sets the page cache's size; growth reads as zeros.
func (ino *inode) truncate(size int64, now time.Duration) {
	ino.seq++
	sb := ino.sectorBytes
	old := ino.cur.sizeBytes
	if size < old {
		// The sector the cut falls in is zeroed past the cut and
		// dirtied, as the kernel zeroes and dirties the page, even
		// where it holds a hole: the platter may hold older bytes.
		if tail := size % sb; tail != 0 {
			clear(ino.writableSector(size/sb, now, false)[tail:])
		}
		first := (size + sb - 1) / sb
		last := (old - 1) / sb
		if last-first+1 > int64(len(ino.cur.sectors)+len(ino.lost)+len(ino.dirty)) {
			// Each key is handled alone: order is irrelevant. Lost and
			// dirty sectors may hold no buffer.
			for s := range ino.cur.sectors {
				if s >= first {
					ino.dropSector(s, now)
				}
			}
			for s := range ino.lost {
				if s >= first {
					ino.dropSector(s, now)
				}
			}
			for s := range ino.dirty {
				if s >= first {
					ino.dropSector(s, now)
				}
			}
		} else {
			for s := first; s <= last; s++ {
				ino.dropSector(s, now)
			}
		}
	}
	ino.setCurSize(size, now)
}

// dropSector removes a sector beyond the new size from the page cache; the
// platter may still hold it, so it is dirty, changed after every capture.
func (ino *inode) dropSector(s int64, now time.Duration) {
	_, cached := ino.cur.sectors[s]
	_, lost := ino.lost[s]
	_, wasDirty := ino.dirty[s]
	if !cached && !lost && !wasDirty {
		return // a clean hole: both images read zeros
	}
	delete(ino.cur.sectors, s)
	delete(ino.lost, s)
	e, dirty := ino.dirty[s]
	if !dirty {
		e.since = now
	}
	e.version = ino.seq
	e.owned = false
	ino.dirty[s] = e
}

// capturedSector is a dirty sector's content at a sync call.
type capturedSector struct {
	index int64
	buf   []byte
}

// capture is what a sync call covers: the dirty sectors and size at the
// call.
type capture struct {
	seq uint64
	// call numbers the capture among the file's captures.
	call      uint64
	sizeBytes int64
	sectors   []capturedSector
}

func (ino *inode) capture() capture {
	ino.captures++
	c := capture{seq: ino.seq, call: ino.captures, sizeBytes: ino.cur.sizeBytes, sectors: make([]capturedSector, 0, len(ino.dirty))}
	// Map order reaches only the order of c.sectors, which completing the
	// sync applies as a set.
	for s, e := range ino.dirty {
		c.sectors = append(c.sectors, capturedSector{index: s, buf: ino.cur.sectors[s]})
		e.owned = false
		ino.dirty[s] = e
	}
	return c
}

// complete makes a capture durable, unless something newer already is.
// Sectors not changed since the capture become clean; the age of those
// changed since counts from now. A sector a failed sync with a capture at
// least as new made lost is skipped (SyncFailureLinux): the writeback that
// failed was the one this sync waited for.
func (ino *inode) complete(c capture, now time.Duration) {
	if ino.durSeq >= c.seq {
		return
	}
	if c.sizeBytes < ino.dur.sizeBytes {
		// Past the size the platter reads as zeros; a lost sector the
		// capture skips below would otherwise keep old bytes there.
		ino.dur.cutTo(c.sizeBytes, ino.sectorBytes)
	}
	ino.dur.sizeBytes = c.sizeBytes
	for _, cs := range c.sectors {
		if at, lost := ino.lostAt[cs.index]; lost && at >= c.call {
			continue // the failed writeback was the one this sync waited for
		}
		old := ino.dur.sectors[cs.index]
		if cs.buf == nil {
			delete(ino.dur.sectors, cs.index)
		} else {
			ino.dur.sectors[cs.index] = cs.buf
		}
		ino.keepSpare(old, cs)
		if e, ok := ino.dirty[cs.index]; ok {
			if e.version <= c.seq {
				delete(ino.dirty, cs.index)
			} else {
				e.since = now
				ino.dirty[cs.index] = e
			}
		}
	}
	ino.durSeq = c.seq
	for s, at := range ino.lostAt { // each key alone: order is irrelevant
		if at <= c.call {
			delete(ino.lostAt, s) // every capture it voids has completed
		}
	}
	if ino.cur.sizeBytes != ino.dur.sizeBytes {
		ino.sizeSince = now
	}
}

// keepSpare keeps old, the durable buffer complete just replaced with
// cs's, for reuse when nothing else can hold it. Buffers are shared by the
// two images and by sync captures. The current image is checked. A
// capture holds the buffer the current image had when it was taken; one
// holding old was taken when the current image showed old, so before cs
// was (cs shows a later buffer, and only a revert brings an older one
// back, voiding every capture before it): it completes, if ever, after a
// newer capture did, and so changes nothing. Crash images are built from
// the images at the crash, which no longer hold old.
func (ino *inode) keepSpare(old []byte, cs capturedSector) {
	if old == nil || len(ino.spares) >= sparesMax || int64(len(old)) != ino.sectorBytes ||
		sameBuffer(old, cs.buf) || sameBuffer(old, ino.cur.sectors[cs.index]) {
		return
	}
	ino.spares = append(ino.spares, old)
}

// writeback makes the whole current content durable.
func (ino *inode) writeback() {
	ino.copyDirty(&ino.cur, &ino.dur)
	ino.dur.sizeBytes = ino.cur.sizeBytes
	ino.durSeq = ino.seq
}

// copyDirty makes the dirty sectors of to equal those of from; after it
// no sector is dirty.
func (ino *inode) copyDirty(from, to *image) {
	for s := range ino.dirty { // each key is handled alone: order is irrelevant
		if buf := from.sectors[s]; buf != nil {
			to.sectors[s] = buf
		} else {
			delete(to.sectors, s)
		}
	}
	clear(ino.dirty)
}

// revert throws the page cache's unsynced content away, as Linux marks the
// pages of a failed writeback clean: what remains is the durable content.
func (ino *inode) revert() {
	ino.copyDirty(&ino.dur, &ino.cur)
	ino.cur.sizeBytes = ino.dur.sizeBytes
	ino.seq++
	ino.revertSeq = ino.seq
	ino.durSeq = ino.seq
}

// markLost applies a failed sync under SyncFailureLinux: the sectors the
// capture held, below the current size, that nothing changed since become
// clean without reaching the platter; the page cache keeps showing them. Sizes stay as they are: the
// next successful sync or writeback makes the current size durable, and
// the lost sectors then read as whatever the platter holds (zeros past
// the old size), as on ext4.
func (ino *inode) markLost(c capture) {
	for _, cs := range c.sectors {
		e, dirty := ino.dirty[cs.index]
		if !dirty || e.version > c.seq {
			continue // rewritten since: the next sync writes the new bytes
		}
		// Below the smaller of the sizes at the call and now the page held
		// data; past it a truncation cut the sector, which is metadata,
		// not a page to lose: that part stays dirty, so that the sync
		// that makes the smaller size durable also clears the platter.
		limit := min(c.sizeBytes, ino.cur.sizeBytes)
		if cs.index*ino.sectorBytes >= limit {
			continue
		}
		switch {
		case !sectorEqualBelow(&ino.cur, &ino.dur, cs.index, ino.sectorBytes, limit):
			delete(ino.dirty, cs.index)
			ino.lost[cs.index] = struct{}{}
			ino.lostAt[cs.index] = ino.captures
		case sectorEqual(&ino.cur, &ino.dur, cs.index, ino.sectorBytes):
			delete(ino.dirty, cs.index)
		default:
			// It differs only past the limit: it stays dirty.
		}
	}
}

// sectorEqualBelow compares sector s of two images below offset limit.
func sectorEqualBelow(a, b *image, s, sectorBytes, limit int64) bool {
	n := min(sectorBytes, limit-s*sectorBytes)
	if n <= 0 {
		return true
	}
	x, y := make([]byte, n), make([]byte, n)
	if buf := a.sectors[s]; buf != nil {
		copy(x, buf)
	}
	if buf := b.sectors[s]; buf != nil {
		copy(y, buf)
	}
	return string(x) == string(y)
}

// evictLost drops the lost sectors from the page cache, as the kernel
// evicts clean pages: reads see the platter's bytes again. A sector the
// current size cuts reads as zeros past it, unlike the platter's (whose
// size is still the larger one): it is dirty, newer than any capture.
func (ino *inode) evictLost(now time.Duration) int {
	n := len(ino.lost)
	bumped := false
	for _, s := range sortedLost(ino) {
		restoreSector(&ino.cur, &ino.dur, s, ino.sectorBytes)
		if sectorEqual(&ino.cur, &ino.dur, s, ino.sectorBytes) {
			continue
		}
		if !bumped {
			ino.seq++
			bumped = true
		}
		ino.dirty[s] = dirtySector{version: ino.seq, since: now}
	}
	clear(ino.lost)
	return n
}

// restoreSector makes sector s of to hold from's bytes, zero beyond to's
// size; it never changes a shared buffer.
func restoreSector(to, from *image, s, sectorBytes int64) {
	buf := from.sectors[s]
	if buf == nil {
		delete(to.sectors, s)
		return
	}
	if end := to.sizeBytes - s*sectorBytes; end < sectorBytes {
		if end <= 0 {
			delete(to.sectors, s)
			return
		}
		fresh := make([]byte, sectorBytes)
		copy(fresh, buf[:end])
		buf = fresh
	}
	to.sectors[s] = buf
}

// reset makes img both the durable and the current content, as after a
// crash.
func (ino *inode) reset(img image) {
	ino.cur = img.clone()
	ino.dur = img.clone()
	clear(ino.dirty)
	clear(ino.lost)
	clear(ino.lostAt)
	ino.seq++
	ino.durSeq = ino.seq
}
