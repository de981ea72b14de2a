package simdisk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// The model: a namespace maps paths to directories or files; a file has
// the content the process last wrote and the content the last completed
// sync made durable. Uncommitted metadata operations are kept as the
// namespaces after each of them, so that a crash can be checked against
// every prefix of the journal.

type mFile struct {
	cur, dur []byte
}

type mNode struct {
	dir  bool
	file *mFile
}

type mNS map[string]mNode

func (ns mNS) clone() mNS { return maps.Clone(ns) }

// children lists the paths below p.
func (ns mNS) below(p string) []string {
	var out []string
	for q := range ns {
		if strings.HasPrefix(q, p+"/") {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out
}

// mSync is a sync the model expects the device to serve, in call order.
type mSync struct {
	file   *mFile // nil for a directory sync
	snap   []byte
	upto   int // directory sync: journal operations it commits
	fail   bool
	voided bool
}

type mHandle struct {
	f    sim.File
	file *mFile
}

var (
	modelFiles = []string{"f", "g", "d/f", "d/g", "d/e/f", "x/f"}
	modelDirs  = []string{"d", "d/e", "x"}
)

type diskMachine struct {
	t        *rapid.T
	cfg      Config
	loop     *sched.Loop
	node     *sched.Node
	disk     *Disk
	fs       sim.FS
	states   []mNS // states[0] is committed, the last is current
	jBase    int   // journal number of states[0]
	pending  []*mSync
	handles  []mHandle
	stale    []sim.File
	staleFS  sim.FS
	fails    int
	inodeOf  map[*mFile]*inode
	lastLoss []string
}

func newDiskMachine(t *rapid.T, modes []CrashMode) *diskMachine {
	cfg := Config{
		SectorBytes:   16,
		CapacityBytes: 250,
		SyncLatency:   sched.Latency{Base: 100 * time.Microsecond, Jitter: 50 * time.Microsecond},
		CrashModes:    modes,
	}
	loop := sched.New()
	node := loop.AddNode("n1")
	node.Boot()
	seed := rapid.Uint64().Draw(t, "seed")
	d := New(loop, node, sched.NewRand(seed, "disk/n1", 0), cfg)
	return &diskMachine{
		t: t, cfg: d.Config(), loop: loop, node: node, disk: d, fs: d.FS(),
		states: []mNS{{}}, inodeOf: make(map[*mFile]*inode),
	}
}

func (m *diskMachine) cur() mNS { return m.states[len(m.states)-1] }

func (m *diskMachine) push(ns mNS) { m.states = append(m.states, ns) }

// used is what the disk's capacity counts: files named or open.
func (m *diskMachine) used() int64 {
	seen := make(map[*mFile]bool)
	var n int64
	count := func(f *mFile) {
		if !seen[f] {
			seen[f] = true
			n += int64(len(f.cur))
		}
	}
	for _, node := range m.cur() {
		if !node.dir {
			count(node.file)
		}
	}
	for _, h := range m.handles {
		count(h.file)
	}
	return n
}

func (m *diskMachine) takeFail() bool {
	if m.fails == 0 {
		return false
	}
	m.fails--
	return true
}

func expectErr(t *rapid.T, what string, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("%s: unexpected error %v", what, got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

// parentErr is the error creating an entry at p must give, if any.
func (m *diskMachine) parentErr(p string) error {
	parent, _ := splitPath(p)
	if parent == "" {
		return nil
	}
	node, ok := m.cur()[parent]
	switch {
	case !ok:
		return sim.ErrNotExist
	case !node.dir:
		return ErrNotDir
	}
	return nil
}

func (m *diskMachine) Create(t *rapid.T) {
	p := rapid.SampledFrom(modelFiles).Draw(t, "path")
	f, err := m.fs.Create(p)
	node, exists := m.cur()[p]
	var want error
	switch {
	case exists && node.dir:
		want = ErrIsDir
	case !exists:
		want = m.parentErr(p)
	}
	expectErr(t, "create "+p, err, want)
	if err != nil {
		return
	}
	if exists {
		node.file.cur = nil
		m.handles = append(m.handles, mHandle{f, node.file})
		return
	}
	file := &mFile{}
	m.inodeOf[file] = f.(*handle).ino
	ns := m.cur().clone()
	ns[p] = mNode{file: file}
	m.push(ns)
	m.handles = append(m.handles, mHandle{f, file})
}

func (m *diskMachine) Open(t *rapid.T) {
	p := rapid.SampledFrom(modelFiles).Draw(t, "path")
	f, err := m.fs.Open(p)
	node, exists := m.cur()[p]
	var want error
	switch {
	case !exists:
		want = sim.ErrNotExist
	case node.dir:
		want = ErrIsDir
	}
	expectErr(t, "open "+p, err, want)
	if err == nil {
		m.handles = append(m.handles, mHandle{f, node.file})
	}
}

// pickHandle picks an open handle; ok is false when there is none and the
// action does nothing.
func (m *diskMachine) pickHandle(t *rapid.T) (i int, h mHandle, ok bool) {
	if len(m.handles) == 0 {
		return 0, mHandle{}, false
	}
	i = rapid.IntRange(0, len(m.handles)-1).Draw(t, "handle")
	return i, m.handles[i], true
}

func (m *diskMachine) Close(t *rapid.T) {
	i, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	if err := h.f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.handles = slices.Delete(m.handles, i, i+1)
	if err := h.f.Close(); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// writeAt writes through the handle and the model alike.
func (m *diskMachine) writeAt(t *rapid.T, h mHandle, data []byte, off int64, appending bool) {
	var n int
	var err error
	if appending {
		n, err = h.f.Append(data)
	} else {
		n, err = h.f.WriteAt(data, off)
	}
	end := off + int64(len(data))
	var want error
	if len(data) > 0 && end > int64(len(h.file.cur)) && m.used()+end-int64(len(h.file.cur)) > m.disk.cfg.CapacityBytes {
		want = sim.ErrNoSpace
	}
	if want != nil {
		stats.noSpace++
	}
	expectErr(t, fmt.Sprintf("write %d bytes at %d", len(data), off), err, want)
	if err != nil {
		if n != 0 {
			t.Fatalf("failed write wrote %d bytes", n)
		}
		return
	}
	if n != len(data) {
		t.Fatalf("wrote %d of %d bytes", n, len(data))
	}
	if len(data) == 0 {
		return // as pwrite: an empty write does not extend the file
	}
	if end > int64(len(h.file.cur)) {
		h.file.cur = append(h.file.cur, make([]byte, end-int64(len(h.file.cur)))...)
	}
	copy(h.file.cur[off:], data)
}

func (m *diskMachine) WriteAt(t *rapid.T) {
	_, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	off := rapid.Int64Range(0, 200).Draw(t, "off")
	data := rapid.SliceOfN(rapid.Byte(), 0, 60).Draw(t, "data")
	m.writeAt(t, h, data, off, false)
}

func (m *diskMachine) Append(t *rapid.T) {
	_, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	data := rapid.SliceOfN(rapid.Byte(), 1, 60).Draw(t, "data")
	m.writeAt(t, h, data, int64(len(h.file.cur)), true)
}

func (m *diskMachine) Truncate(t *rapid.T) {
	_, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	size := rapid.Int64Range(0, 250).Draw(t, "size")
	err := h.f.Truncate(size)
	var want error
	if size > int64(len(h.file.cur)) && m.used()+size-int64(len(h.file.cur)) > m.disk.cfg.CapacityBytes {
		want = sim.ErrNoSpace
	}
	if want != nil {
		stats.noSpace++
	}
	expectErr(t, fmt.Sprintf("truncate to %d", size), err, want)
	if err != nil {
		return
	}
	if size <= int64(len(h.file.cur)) {
		h.file.cur = h.file.cur[:size:size]
	} else {
		h.file.cur = append(h.file.cur, make([]byte, size-int64(len(h.file.cur)))...)
	}
}

// completed checks a device sync's result and applies it to the model; the
// device serves syncs in call order.
func (m *diskMachine) completed(t *rapid.T, s *mSync, err error, checkErr bool) {
	if len(m.pending) == 0 || m.pending[0] != s {
		t.Fatalf("sync completed out of call order")
	}
	m.pending = m.pending[1:]
	var want error
	switch {
	case s.fail, s.voided:
		want = sim.ErrIO
		if s.fail {
			stats.failedSyncs++
		} else {
			stats.voidedSyncs++
		}
	case s.file != nil:
		s.file.dur = s.snap
	default:
		if drop := s.upto - m.jBase; drop > 0 {
			m.states = m.states[drop:]
			m.jBase = s.upto
		}
	}
	if s.fail && s.file != nil {
		s.file.cur = slices.Clone(s.file.dur)
		for _, later := range m.pending {
			if later.file == s.file {
				later.voided = true
			}
		}
	}
	if checkErr {
		expectErr(t, "sync", err, want)
	}
}

// await runs the loop until flag is set.
func (m *diskMachine) await(t *rapid.T, flag *bool) {
	for steps := 0; !*flag; steps++ {
		if steps > 10000 || !m.loop.Step() {
			t.Fatalf("sync never completed")
		}
	}
}

func (m *diskMachine) Sync(t *rapid.T) {
	_, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	wait := rapid.Bool().Draw(t, "wait")
	s := &mSync{file: h.file, snap: slices.Clone(h.file.cur), fail: m.takeFail()}
	m.pending = append(m.pending, s)
	called := false
	h.f.Sync(func(err error) {
		called = true
		m.completed(t, s, err, true)
	})
	if wait {
		m.await(t, &called)
	}
}

// SyncBurst syncs one file several times without waiting, which is how a
// sync comes to be voided by an earlier failed one.
func (m *diskMachine) SyncBurst(t *rapid.T) {
	_, h, ok := m.pickHandle(t)
	if !ok {
		return
	}
	for range rapid.IntRange(2, 3).Draw(t, "syncs") {
		s := &mSync{file: h.file, snap: slices.Clone(h.file.cur), fail: m.takeFail()}
		m.pending = append(m.pending, s)
		h.f.Sync(func(err error) { m.completed(t, s, err, true) })
		if rapid.Bool().Draw(t, "write between") {
			m.writeAt(t, h, rapid.SliceOfN(rapid.Byte(), 1, 20).Draw(t, "data"), int64(len(h.file.cur)), true)
		}
	}
}

func (m *diskMachine) SyncDir(t *rapid.T) {
	dir := rapid.SampledFrom([]string{"", ".", "d", "x", "f"}).Draw(t, "dir")
	wait := rapid.Bool().Draw(t, "wait")
	p, _ := cleanPath("", dir, true)
	node, exists := m.cur()[p]
	var immediate error
	switch {
	case p == "":
	case !exists:
		immediate = sim.ErrNotExist
	case !node.dir:
		immediate = ErrNotDir
	}
	called := false
	if immediate != nil {
		m.fs.SyncDir(dir, func(err error) {
			called = true
			expectErr(t, "sync directory "+dir, err, immediate)
		})
	} else {
		s := &mSync{upto: m.jBase + len(m.states) - 1, fail: m.takeFail()}
		m.pending = append(m.pending, s)
		m.fs.SyncDir(dir, func(err error) {
			called = true
			m.completed(t, s, err, true)
		})
	}
	if wait {
		m.await(t, &called)
	}
}

func (m *diskMachine) RunLoop(t *rapid.T) {
	d := time.Duration(rapid.IntRange(0, 500).Draw(t, "µs")) * time.Microsecond
	m.loop.Run(sched.Limits{Until: m.loop.Now() + d})
}

func (m *diskMachine) FailSyncs(t *rapid.T) {
	n := rapid.IntRange(0, 2).Draw(t, "n")
	m.disk.FailSyncs(n)
	m.fails = n
}

func (m *diskMachine) Remove(t *rapid.T) {
	p := rapid.SampledFrom(append(slices.Clone(modelFiles), modelDirs...)).Draw(t, "path")
	err := m.fs.Remove(p)
	node, exists := m.cur()[p]
	var want error
	switch {
	case !exists:
		want = sim.ErrNotExist
	case node.dir && len(m.cur().below(p)) > 0:
		want = ErrNotEmpty
	}
	expectErr(t, "remove "+p, err, want)
	if err == nil {
		ns := m.cur().clone()
		delete(ns, p)
		m.push(ns)
	}
}

func (m *diskMachine) RemoveAll(t *rapid.T) {
	p := rapid.SampledFrom(append(slices.Clone(modelFiles), modelDirs...)).Draw(t, "path")
	if err := m.fs.RemoveAll(p); err != nil {
		t.Fatalf("remove all %s: %v", p, err)
	}
	if _, exists := m.cur()[p]; !exists {
		return
	}
	victims := append(m.cur().below(p), p)
	slices.Sort(victims)
	slices.Reverse(victims)
	for _, q := range victims {
		ns := m.cur().clone()
		delete(ns, q)
		m.push(ns)
	}
}

func (m *diskMachine) Rename(t *rapid.T) {
	all := append(slices.Clone(modelFiles), modelDirs...)
	from := rapid.SampledFrom(all).Draw(t, "from")
	to := rapid.SampledFrom(all).Draw(t, "to")
	err := m.fs.Rename(from, to)
	ns := m.cur()
	src, srcOK := ns[from]
	dst, dstOK := ns[to]
	var want error
	switch {
	case !srcOK:
		want = sim.ErrNotExist
	case from == to:
	case src.dir && strings.HasPrefix(to, from+"/"):
		want = ErrInvalidPath
	case dstOK && dst.dir && !src.dir:
		want = ErrIsDir
	case dstOK && !dst.dir && src.dir:
		want = ErrNotDir
	case dstOK && dst.dir && len(ns.below(to)) > 0:
		want = ErrNotEmpty
	default:
		want = m.parentErr(to)
	}
	expectErr(t, "rename "+from+" -> "+to, err, want)
	if err != nil || from == to {
		return
	}
	next := ns.clone()
	delete(next, to)
	moved := append([]string{from}, ns.below(from)...)
	for _, q := range moved {
		delete(next, q)
	}
	for _, q := range moved {
		next[to+strings.TrimPrefix(q, from)] = ns[q]
	}
	m.push(next)
}

func (m *diskMachine) MkdirAll(t *rapid.T) {
	p := rapid.SampledFrom(modelDirs).Draw(t, "dir")
	err := m.fs.MkdirAll(p)
	var want error
	parts := strings.Split(p, "/")
	for i := range parts {
		q := strings.Join(parts[:i+1], "/")
		node, exists := m.cur()[q]
		if !exists {
			ns := m.cur().clone()
			ns[q] = mNode{dir: true}
			m.push(ns)
			continue
		}
		if !node.dir {
			want = ErrNotDir
			break
		}
	}
	expectErr(t, "mkdir "+p, err, want)
}

func (m *diskMachine) endProcess() {
	for _, h := range m.handles {
		m.stale = append(m.stale, h.f)
	}
	m.handles = nil
	m.staleFS = m.fs
}

// ProcessKill crashes the process; syncs in flight complete while it is
// down, their callbacks gone, and nothing is lost.
func (m *diskMachine) ProcessKill(t *rapid.T) {
	stats.kills++
	m.node.Crash()
	m.disk.ProcessKill()
	m.loop.Run(sched.Limits{Until: m.loop.Now() + time.Second})
	for len(m.pending) > 0 {
		m.completed(t, m.pending[0], nil, false)
	}
	m.node.Boot()
	m.endProcess()
	m.fs = m.disk.FS()
	m.checkImage(t) // (e): everything the process saw is still there
}

// PowerLoss crashes the machine and checks what is left against every
// journal prefix and the crash modes configured.
func (m *diskMachine) PowerLoss(t *rapid.T) {
	m.node.Crash()
	m.lastLoss = m.disk.PowerLoss()
	m.node.Boot()
	stats.crashes++
	if len(m.lastLoss) > 0 {
		stats.lossyCrashes++
	}
	m.pending = nil // lost in flight: their effects never ran
	m.endProcess()
	m.fs = m.disk.FS()

	got := m.observe(t)
	var failures []string
	match := -1
	for k, ns := range m.states {
		if why := m.explains(ns, got); why != "" {
			failures = append(failures, fmt.Sprintf("prefix %d: %s", k, why))
			continue
		}
		match = k
		break
	}
	if match > 0 {
		stats.laterPrefix++
	}
	if match < 0 {
		t.Fatalf("power loss left an image no journal prefix and crash mode explains:\n%s\nreport: %q",
			strings.Join(failures, "\n"), m.lastLoss)
	}
	// (d) names committed before the crash with nothing uncommitted
	// after them survive: the committed namespace is prefix 0, and any
	// later one only adds the uncommitted operations.
	next := mNS{}
	m.inodeOf = make(map[*mFile]*inode)
	for p, o := range got {
		if o.dir {
			next[p] = mNode{dir: true}
			continue
		}
		f := &mFile{cur: o.data, dur: slices.Clone(o.data)}
		next[p] = mNode{file: f}
		m.inodeOf[f] = m.disk.cur.lookup(p).ino
	}
	m.states = []mNS{next}
	m.jBase = 0
}

// StaleHandle checks that handles and the file system of an ended process
// are closed.
func (m *diskMachine) StaleHandle(t *rapid.T) {
	if len(m.stale) == 0 {
		return
	}
	f := rapid.SampledFrom(m.stale).Draw(t, "stale")
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("write through stale handle: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("read through stale handle: %v", err)
	}
	if _, err := m.staleFS.Open("f"); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("open through stale file system: %v", err)
	}
	var got error
	called := false
	f.Sync(func(err error) { got, called = err, true })
	m.await(t, &called)
	if !errors.Is(got, sim.ErrClosed) {
		t.Fatalf("sync through stale handle: %v", got)
	}
}

type observed struct {
	dir  bool
	data []byte
}

// observe reads the whole namespace through the public API.
func (m *diskMachine) observe(t *rapid.T) map[string]observed {
	out := make(map[string]observed)
	var walk func(dir string)
	walk = func(dir string) {
		names, err := m.fs.List(dir)
		if err != nil {
			t.Fatalf("list %q: %v", dir, err)
		}
		if !slices.IsSorted(names) {
			t.Fatalf("list %q not sorted: %q", dir, names)
		}
		for _, name := range names {
			p := name
			if dir != "" {
				p = dir + "/" + name
			}
			info, err := m.fs.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if info.Name != name {
				t.Fatalf("stat %s: name %q", p, info.Name)
			}
			if info.IsDir {
				out[p] = observed{dir: true}
				walk(p)
				continue
			}
			f, err := m.fs.Open(p)
			if err != nil {
				t.Fatalf("open %s: %v", p, err)
			}
			data := make([]byte, info.Size+1)
			n, err := f.ReadAt(data, 0)
			if err != io.EOF || int64(n) != info.Size {
				t.Fatalf("read %s: %d bytes, %v; size %d", p, n, err, info.Size)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("close %s: %v", p, err)
			}
			out[p] = observed{data: data[:n]}
		}
	}
	walk("")
	return out
}

// explains says why a namespace and its files' durable and current
// contents cannot have produced got under the configured crash modes, or
// "" when they can.
func (m *diskMachine) explains(ns mNS, got map[string]observed) string {
	if !slices.Equal(slices.Sorted(maps.Keys(ns)), slices.Sorted(maps.Keys(got))) {
		return fmt.Sprintf("names %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(ns)))
	}
	for p, node := range ns {
		o := got[p]
		if node.dir != o.dir {
			return p + ": kind differs"
		}
		if node.dir {
			continue
		}
		if why := crashExplains(node.file.dur, node.file.cur, o.data, m.cfg.SectorBytes, m.cfg.CrashModes); why != "" {
			return p + ": " + why
		}
	}
	return ""
}

// crashExplains checks one file: the invariants every crash keeps, then
// that one of the modes produces got from durable dur and current cur.
func crashExplains(dur, cur, got []byte, sectorBytes int, modes []CrashMode) string {
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	// (a) synced bytes nothing changed since survive.
	if len(got) < min(len(dur), len(cur)) {
		return fmt.Sprintf("size %d below min(durable %d, current %d)", len(got), len(dur), len(cur))
	}
	for i := range min(len(dur), len(cur)) {
		if dur[i] == cur[i] && got[i] != dur[i] {
			return fmt.Sprintf("synced byte %d lost", i)
		}
	}
	// (b) nothing invented.
	for i := range got {
		if got[i] != at(dur, i) && got[i] != at(cur, i) {
			return fmt.Sprintf("byte %d = %#x is neither durable %#x nor current %#x", i, got[i], at(dur, i), at(cur, i))
		}
	}
	var whyNot []string
	for _, mode := range modes {
		why := modeExplains(mode, dur, cur, got, sectorBytes)
		if why == "" {
			return ""
		}
		whyNot = append(whyNot, mode.String()+": "+why)
	}
	return strings.Join(whyNot, "; ")
}

// modeExplains checks one crash mode's exact rule (c).
func modeExplains(mode CrashMode, dur, cur, got []byte, sectorBytes int) string {
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	switch mode {
	case DropUnsynced:
		if !bytes.Equal(got, dur) {
			return "not the durable content"
		}
	case KeepUnsynced:
		if !bytes.Equal(got, cur) {
			return "not the current content"
		}
	case KeepPrefix:
		if len(got) < min(len(dur), len(cur)) || len(got) > max(len(dur), len(cur)) {
			return fmt.Sprintf("size %d outside [durable %d, current %d]", len(got), len(dur), len(cur))
		}
		for i := range got {
			want := at(dur, i)
			if i >= len(dur) {
				want = cur[i]
			}
			if got[i] != want {
				return fmt.Sprintf("byte %d not the prefix's", i)
			}
		}
	case TearSectors:
		if len(got) != len(dur) && len(got) != len(cur) {
			return fmt.Sprintf("size %d neither durable %d nor current %d", len(got), len(dur), len(cur))
		}
		for start := 0; start < len(got); start += sectorBytes {
			old, new := true, true
			for i := start; i < min(start+sectorBytes, len(got)); i++ {
				old = old && got[i] == at(dur, i)
				new = new && got[i] == at(cur, i)
			}
			if !old && !new {
				return fmt.Sprintf("sector at %d mixes versions", start)
			}
		}
	}
	return ""
}

// checkImage checks that the namespace and every file read through the API
// are what the process wrote.
func (m *diskMachine) checkImage(t *rapid.T) {
	got := m.observe(t)
	want := m.cur()
	if !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))) {
		t.Fatalf("names %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for p, node := range want {
		o := got[p]
		if node.dir != o.dir || (!node.dir && !bytes.Equal(o.data, node.file.cur)) {
			t.Fatalf("%s: read %q (dir %v), want %q (dir %v)", p, o.data, o.dir, node.file.cur, node.dir)
		}
	}
}

// Check runs after every action.
func (m *diskMachine) Check(t *rapid.T) {
	m.checkImage(t)
	for _, h := range m.handles {
		size, err := h.f.Size()
		if err != nil || size != int64(len(h.file.cur)) {
			t.Fatalf("%s: size %d, %v; want %d", h.f.Name(), size, err, len(h.file.cur))
		}
		data := make([]byte, size)
		if n, err := h.f.ReadAt(data, 0); int64(n) != size || (err != nil && err != io.EOF) {
			t.Fatalf("%s: read %d, %v", h.f.Name(), n, err)
		}
		if !bytes.Equal(data, h.file.cur) {
			t.Fatalf("%s: read %q through handle, want %q", h.f.Name(), data, h.file.cur)
		}
	}
	if got, want := m.disk.UsedBytes(), m.used(); got != want {
		t.Fatalf("used bytes %d, want %d", got, want)
	}
	// White box: the durable images are exactly what the completed syncs
	// made durable, and the committed namespace is the model's.
	for file, ino := range m.inodeOf {
		if got := ino.dur.bytes(ino.sectorBytes); !bytes.Equal(got, file.dur) && ino.live {
			t.Fatalf("inode %d: durable %q, want %q", ino.id, got, file.dur)
		}
	}
	if got, want := m.disk.UncommittedOps(), len(m.states)-1; got != want {
		t.Fatalf("%d uncommitted operations, want %d", got, want)
	}
	checkTree(t, "committed", m.disk.committed, m.states[0], m.inodeOf)
	checkTree(t, "current", m.disk.cur, m.cur(), m.inodeOf)
	if err := m.disk.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func checkTree(t *rapid.T, what string, tr tree, ns mNS, inodeOf map[*mFile]*inode) {
	n := 0
	tr.walk(func(p string, e *entry) {
		n++
		node, ok := ns[p]
		switch {
		case !ok:
			t.Fatalf("%s namespace has %s, the model does not", what, p)
		case node.dir != (e.dir != nil):
			t.Fatalf("%s namespace: %s kind differs", what, p)
		case !node.dir && inodeOf[node.file] != e.ino:
			t.Fatalf("%s namespace: %s names inode %d, want %d", what, p, e.ino.id, inodeOf[node.file].id)
		}
	})
	if n != len(ns) {
		t.Fatalf("%s namespace has %d names, the model %d", what, n, len(ns))
	}
}

func TestDiskAgainstModel(t *testing.T) {
	configs := map[string][]CrashMode{"all-modes": AllCrashModes()}
	for _, mode := range AllCrashModes() {
		configs[mode.String()] = []CrashMode{mode}
	}
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		t.Run(name, func(t *testing.T) {
			stats = modelStats{}
			// Each round is rapid's number of runs (fewer with -short)
			// from a fresh seed; a run takes well under a millisecond, so
			// rounds buy depth cheaply.
			for range 10 {
				rapid.Check(t, func(t *rapid.T) {
					m := newDiskMachine(t, configs[name])
					runActions(t, m, 300)
				})
				if t.Failed() {
					return
				}
			}
			t.Logf("%+v", stats)
			// The runs must have reached the cases that matter, or passing
			// proves little.
			if stats.lossyCrashes == 0 || stats.laterPrefix == 0 || stats.noSpace == 0 ||
				stats.failedSyncs == 0 || stats.voidedSyncs == 0 || stats.kills == 0 {
				t.Fatalf("the runs missed a case: %+v", stats)
			}
		})
	}
}

// runActions runs a random number of random actions, checking after each.
// It stands in for rapid's Repeat to run longer sequences: crashes need
// unsynced data, pending syncs and journal entries to accumulate first.
func runActions(t *rapid.T, m *diskMachine, stepsMax int) {
	actions := rapid.StateMachineActions(m)
	names := slices.Sorted(maps.Keys(actions))
	steps := rapid.IntRange(1, stepsMax).Draw(t, "steps")
	m.Check(t)
	for range steps {
		actions[rapid.SampledFrom(names).Draw(t, "action")](t)
		m.Check(t)
	}
}

// modelStats counts how often the model runs reached the cases that
// matter.
type modelStats struct {
	crashes, lossyCrashes, laterPrefix, noSpace, failedSyncs, voidedSyncs, kills int
}

var stats modelStats
