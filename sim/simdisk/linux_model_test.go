package simdisk

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// The Linux model: one file under SyncFailureLinux, checked against a
// plain reference of the rules in the package comment: whole byte slices
// for the page cache and the platter, a dirty set with the change count of
// each sector's last change, and the lost set. It has none of the disk's
// buffer sharing, so it checks that too.

const linuxSectorBytes = 16

type linuxSync struct {
	seq     int
	call    int
	size    int
	sectors map[int][]byte
	fail    bool
	err     error
	done    bool
}

type linuxModel struct {
	cur, dur []byte
	dirty    map[int]int
	lost     map[int]bool
	lostAt   map[int]int
	calls    int
	seq      int
	durSeq   int
	pending  []*linuxSync
}

// sector returns sector s of b, zero beyond b's end.
func sector(b []byte, s int) []byte {
	out := make([]byte, linuxSectorBytes)
	if start := s * linuxSectorBytes; start < len(b) {
		copy(out, b[start:min(len(b), start+linuxSectorBytes)])
	}
	return out
}

// setSector writes sector s of content into b, within b's size.
func setSector(b []byte, s int, content []byte) {
	start := s * linuxSectorBytes
	if start >= len(b) {
		return
	}
	copy(b[start:min(len(b), start+linuxSectorBytes)], content)
}

func resized(b []byte, size int) []byte {
	if size <= len(b) {
		return slices.Clone(b[:size])
	}
	return append(slices.Clone(b), make([]byte, size-len(b))...)
}

func (m *linuxModel) touch(s int) {
	m.dirty[s] = m.seq
	delete(m.lost, s)
}

// grow extends the page cache; a lost sector the old size cut is dirty
// again, its zeros past the old size not the platter's.
func (m *linuxModel) grow(size int) {
	if old := len(m.cur); old%linuxSectorBytes != 0 && m.lost[old/linuxSectorBytes] {
		m.touch(old / linuxSectorBytes)
	}
	m.cur = resized(m.cur, size)
}

func (m *linuxModel) write(data []byte, off int) {
	m.seq++
	if end := off + len(data); end > len(m.cur) {
		m.grow(end)
	}
	copy(m.cur[off:], data)
	for s := off / linuxSectorBytes; s*linuxSectorBytes < off+len(data); s++ {
		m.touch(s)
	}
}

func (m *linuxModel) truncate(size int) {
	m.seq++
	if size < len(m.cur) {
		// The sector the cut falls in and every one past it change.
		for s := size / linuxSectorBytes; s*linuxSectorBytes < len(m.cur); s++ {
			m.touch(s)
		}
		m.cur = resized(m.cur, size)
		return
	}
	if size > len(m.cur) {
		m.grow(size)
	}
}

func (m *linuxModel) sync(fail bool) *linuxSync {
	m.calls++
	c := &linuxSync{seq: m.seq, call: m.calls, size: len(m.cur), sectors: map[int][]byte{}, fail: fail}
	for s := range m.dirty {
		c.sectors[s] = sector(m.cur, s)
	}
	m.pending = append(m.pending, c)
	return c
}

// complete applies the oldest pending sync, as the device serves them in
// call order.
func (m *linuxModel) complete() *linuxSync {
	c := m.pending[0]
	m.pending = m.pending[1:]
	if c.fail {
		for s := range c.sectors {
			v, ok := m.dirty[s]
			limit := min(c.size, len(m.cur))
			if !ok || v > c.seq || s*linuxSectorBytes >= limit {
				continue
			}
			below := min(linuxSectorBytes, limit-s*linuxSectorBytes)
			switch {
			case !bytes.Equal(sector(m.cur, s)[:below], sector(m.dur, s)[:below]):
				delete(m.dirty, s)
				m.lost[s] = true
				m.lostAt[s] = m.calls
			case bytes.Equal(sector(m.cur, s), sector(m.dur, s)):
				delete(m.dirty, s)
			}
		}
		return c
	}
	if m.durSeq >= c.seq {
		return c
	}
	m.dur = resized(m.dur, c.size)
	for s, content := range c.sectors {
		if at, ok := m.lostAt[s]; ok && at >= c.call {
			continue // the failed writeback was the one this sync waited for
		}
		setSector(m.dur, s, content)
		if v, ok := m.dirty[s]; ok && v <= c.seq {
			delete(m.dirty, s)
		}
	}
	m.durSeq = c.seq
	for s, at := range m.lostAt {
		if at <= c.call {
			delete(m.lostAt, s)
		}
	}
	return c
}

// evictLost gives the lost sectors of the page cache the platter's bytes.
func (m *linuxModel) evictLost() {
	bumped := false
	for s := range m.lost {
		setSector(m.cur, s, sector(m.dur, s))
		if bytes.Equal(sector(m.cur, s), sector(m.dur, s)) {
			continue
		}
		// Cut by the current size: the page cache's zeros past it are
		// not the platter's bytes.
		if !bumped {
			m.seq++
			bumped = true
		}
		m.dirty[s] = m.seq
	}
	clear(m.lost)
}

type linuxMachine struct {
	t      *rapid.T
	mode   CrashMode
	loop   *sched.Loop
	node   *sched.Node
	disk   *Disk
	f      sim.File
	m      linuxModel
	failed int
	lost   int
}

func (lm *linuxMachine) reopen(t *rapid.T) {
	f, err := lm.disk.FS().Open("f")
	if err != nil {
		t.Fatal(err)
	}
	lm.f = f
}

func (lm *linuxMachine) Write(t *rapid.T) {
	off := rapid.IntRange(0, 120).Draw(t, "off")
	data := rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, "data")
	if _, err := lm.f.WriteAt(data, int64(off)); err != nil {
		t.Fatal(err)
	}
	lm.m.write(data, off)
}

func (lm *linuxMachine) Truncate(t *rapid.T) {
	size := rapid.IntRange(0, 160).Draw(t, "size")
	if err := lm.f.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	lm.m.truncate(size)
}

func (lm *linuxMachine) Sync(t *rapid.T) {
	fail := rapid.IntRange(0, 2).Draw(t, "fail") == 0
	if fail {
		lm.disk.FailSyncs(1)
		lm.failed++
	}
	c := lm.m.sync(fail)
	lm.f.Sync(func(err error) { c.err, c.done = err, true })
}

// Run lets the device serve what is queued.
func (lm *linuxMachine) Run(t *rapid.T) {
	lm.loop.Run(sched.Limits{Until: lm.loop.Now() + time.Duration(rapid.IntRange(0, 400).Draw(t, "µs"))*time.Microsecond})
	lm.settled(t, true)
}

// settled applies to the model the syncs the device completed; with
// callbacks, their results must be ErrIO for a failing one and success
// for every other: the error is reported once.
func (lm *linuxMachine) settled(t *rapid.T, callbacks bool) {
	for len(lm.m.pending) > 0 && (lm.m.pending[0].done || !callbacks) {
		c := lm.m.complete()
		if !callbacks {
			continue
		}
		if c.fail != errors.Is(c.err, sim.ErrIO) || (!c.fail && c.err != nil) {
			t.Fatalf("sync (failing %v) returned %v", c.fail, c.err)
		}
	}
}

func (lm *linuxMachine) Kill(t *rapid.T) {
	lm.node.Crash()
	lm.disk.ProcessKill()
	lm.loop.Run(sched.Limits{Until: lm.loop.Now() + time.Second})
	lm.settled(t, false) // the syncs completed; their callbacks are gone
	lm.node.Boot()
	lm.reopen(t)
}

func (lm *linuxMachine) DropCaches(t *rapid.T) {
	lm.disk.DropCaches()
	lm.m.evictLost()
}

func (lm *linuxMachine) PowerLoss(t *rapid.T) {
	lm.lost += len(lm.m.lost)
	lm.node.Crash()
	lm.disk.PowerLoss()
	lm.node.Boot()
	m := &lm.m
	m.pending = nil
	if lm.mode == KeepUnsynced {
		// Every dirty page is written just in time; lost ones are clean.
		m.evictLost()
		m.dur = slices.Clone(m.cur)
	}
	m.cur = slices.Clone(m.dur)
	clear(m.dirty)
	clear(m.lost)
	clear(m.lostAt)
	lm.reopen(t)
}

func (lm *linuxMachine) Check(t *rapid.T) {
	size, err := lm.f.Size()
	if err != nil || size != int64(len(lm.m.cur)) {
		t.Fatalf("size %d (%v), model %d", size, err, len(lm.m.cur))
	}
	got := make([]byte, size)
	if n, err := lm.f.ReadAt(got, 0); int64(n) != size || (err != nil && err != io.EOF) {
		t.Fatalf("read %d, %v", n, err)
	}
	if !bytes.Equal(got, lm.m.cur) {
		t.Fatalf("page cache %q, model %q", got, lm.m.cur)
	}
	ino := lm.f.(*handle).ino
	if err := lm.disk.checkInvariants(); err != nil {
		t.Fatalf("%v: page cache %v, platter %v, dirty %v, lost %v", err, ino.cur.sectors, ino.dur.sectors, ino.dirty, ino.lost)
	}
	if dur := ino.dur.bytes(ino.sectorBytes); !bytes.Equal(dur, lm.m.dur) {
		t.Fatalf("platter %q, model %q", dur, lm.m.dur)
	}
	var wantLost []int64
	for _, s := range slices.Sorted(maps.Keys(lm.m.lost)) {
		wantLost = append(wantLost, int64(s))
	}
	if got := sortedLost(ino); !slices.Equal(got, wantLost) {
		t.Fatalf("lost sectors %v, model %v", got, wantLost)
	}
}

// TestLinuxSyncFailuresAgainstModel checks the disk under SyncFailureLinux
// against the reference above, for the two crash modes whose outcome is
// fixed: what survives a power loss is exactly what successful syncs
// wrote, and nothing a failed sync marked lost, even when every unsynced
// page is kept.
func TestLinuxSyncFailuresAgainstModel(t *testing.T) {
	for _, mode := range []CrashMode{DropUnsynced, KeepUnsynced} {
		t.Run(mode.String(), func(t *testing.T) {
			failed, lost := 0, 0
			// Each round is rapid's number of runs from a fresh seed; a run
			// takes well under a millisecond.
			for range 20 {
				linuxModelRound(t, mode, &failed, &lost)
				if t.Failed() {
					return
				}
			}
			// The runs must have lost pages to power, or they prove little.
			if failed == 0 || lost == 0 {
				t.Fatalf("%d failed syncs, %d lost sectors taken by power losses", failed, lost)
			}
			t.Logf("%d failed syncs, %d lost sectors taken by power losses", failed, lost)
		})
	}
}

// linuxModelRound runs one rapid check of the Linux model.
func linuxModelRound(t *testing.T, mode CrashMode, failed, lost *int) {
	rapid.Check(t, func(rt *rapid.T) {
		loop := sched.New()
		node := loop.AddNode("n1")
		node.Boot()
		cfg := Config{SectorBytes: linuxSectorBytes, CrashModes: []CrashMode{mode}, SyncFailure: SyncFailureLinux,
			SyncLatency: sched.Latency{Base: 100 * time.Microsecond, Jitter: 50 * time.Microsecond}}
		d := New(loop, node, sched.NewRand(rapid.Uint64().Draw(rt, "seed"), "disk/n1", 0), cfg)
		lm := &linuxMachine{t: rt, mode: mode, loop: loop, node: node, disk: d,
			m: linuxModel{dirty: map[int]int{}, lost: map[int]bool{}, lostAt: map[int]int{}}}
		f, err := d.FS().Create("f")
		if err != nil {
			rt.Fatal(err)
		}
		lm.f = f
		named := false
		d.FS().SyncDir("", func(err error) { named = err == nil })
		loop.Run(sched.Limits{Until: time.Second})
		if !named {
			rt.Fatal("the file's name did not become durable")
		}
		rt.Repeat(rapid.StateMachineActions(lm))
		*failed += lm.failed
		*lost += lm.lost
	})
}
