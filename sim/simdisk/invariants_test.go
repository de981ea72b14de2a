package simdisk

import "fmt"

// checkInvariants checks the disk's internal consistency: images are zero
// beyond their sizes, clean sectors are equal in both images, buffers the
// page cache may change in place are not shared with the platter, and the
// reference counts and used bytes agree with the namespaces and journal.
func (d *Disk) checkInvariants() error {
	curLinks, comLinks, creates := make(map[*inode]int), make(map[*inode]int), make(map[*inode]int)
	d.cur.walk(func(_ string, e *entry) {
		if e.ino != nil {
			curLinks[e.ino]++
		}
	})
	d.committed.walk(func(_ string, e *entry) {
		if e.ino != nil {
			comLinks[e.ino]++
		}
	})
	for _, op := range d.journal {
		if op.kind == opCreate {
			creates[op.ino]++
		}
	}
	var used int64
	for _, ino := range d.sortedInodes() {
		if err := ino.checkImages(); err != nil {
			return fmt.Errorf("inode %d: %w", ino.id, err)
		}
		if ino.links != curLinks[ino] || ino.durLinks != comLinks[ino] || ino.journalRefs != creates[ino] {
			return fmt.Errorf("inode %d: links %d/%d/%d, namespaces and journal say %d/%d/%d",
				ino.id, ino.links, ino.durLinks, ino.journalRefs, curLinks[ino], comLinks[ino], creates[ino])
		}
		if ino.counted != (ino.links > 0 || ino.opens > 0) {
			return fmt.Errorf("inode %d: counted %v with %d links, %d opens", ino.id, ino.counted, ino.links, ino.opens)
		}
		if ino.counted {
			used += ino.cur.sizeBytes
		}
	}
	for ino := range curLinks {
		if !ino.live {
			return fmt.Errorf("inode %d is named but not live", ino.id)
		}
	}
	if used != d.usedBytes {
		return fmt.Errorf("used bytes %d, inodes add up to %d", d.usedBytes, used)
	}
	return nil
}

func (ino *inode) checkImages() error {
	sb := ino.sectorBytes
	for _, im := range []*image{&ino.cur, &ino.dur} {
		for s, buf := range im.sectors {
			if int64(len(buf)) != sb {
				return fmt.Errorf("sector %d has %d bytes", s, len(buf))
			}
			for i, b := range buf {
				if s*sb+int64(i) >= im.sizeBytes && b != 0 {
					return fmt.Errorf("byte %d beyond size %d is %#x", s*sb+int64(i), im.sizeBytes, b)
				}
			}
		}
	}
	for _, im := range []*image{&ino.cur, &ino.dur} {
		for s := range im.sectors {
			_, dirty := ino.dirty[s]
			_, lost := ino.lost[s]
			if !dirty && !lost && !sectorEqual(&ino.cur, &ino.dur, s, sb) {
				return fmt.Errorf("clean sector %d differs", s)
			}
		}
	}
	for s := range ino.lost {
		if _, dirty := ino.dirty[s]; dirty {
			return fmt.Errorf("sector %d is both dirty and lost", s)
		}
	}
	for s, e := range ino.dirty {
		if e.owned && ino.cur.sectors[s] != nil && sameBuffer(ino.cur.sectors[s], ino.dur.sectors[s]) {
			return fmt.Errorf("owned sector %d shared with the durable image", s)
		}
	}
	for i, spare := range ino.spares {
		for _, im := range []*image{&ino.cur, &ino.dur} {
			for s, buf := range im.sectors {
				if sameBuffer(spare, buf) {
					return fmt.Errorf("spare buffer %d is sector %d of an image", i, s)
				}
			}
		}
	}
	if ino.cur.sizeBytes != ino.dur.sizeBytes && len(ino.dirty) == 0 && len(ino.lost) == 0 && ino.durSeq == ino.seq {
		return fmt.Errorf("sizes %d and %d differ at the durable change count", ino.cur.sizeBytes, ino.dur.sizeBytes)
	}
	return nil
}
