package simdisk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// rig is one node with its disk, driven by hand.
type rig struct {
	t    testing.TB
	loop *sched.Loop
	node *sched.Node
	disk *Disk
	fs   sim.FS
}

func newRig(t testing.TB, seed uint64, cfg Config) *rig {
	loop := sched.New()
	node := loop.AddNode("n1")
	node.Boot()
	d := New(loop, node, sched.NewRand(seed, "disk/n1", 0), cfg)
	return &rig{t: t, loop: loop, node: node, disk: d, fs: d.FS()}
}

// testConfig is a small-sector disk with one crash mode and no background
// writeback, so that a test decides exactly what is durable.
func testConfig(mode CrashMode) Config {
	return Config{
		SectorBytes: 16,
		SyncLatency: sched.Latency{Base: 100 * time.Microsecond, Jitter: 50 * time.Microsecond},
		CrashModes:  []CrashMode{mode},
	}
}

func (r *rig) create(name string) sim.File {
	r.t.Helper()
	f, err := r.fs.Create(name)
	if err != nil {
		r.t.Fatalf("create %s: %v", name, err)
	}
	return f
}

func (r *rig) writeAt(f sim.File, off int64, data string) {
	r.t.Helper()
	if n, err := f.WriteAt([]byte(data), off); err != nil || n != len(data) {
		r.t.Fatalf("write %s at %d: %d, %v", f.Name(), off, n, err)
	}
}

// await runs the loop until *called.
func (r *rig) await(called *bool) {
	r.t.Helper()
	for steps := 0; !*called; steps++ {
		if steps > 1_000_000 || !r.loop.Step() {
			r.t.Fatalf("callback never came")
		}
	}
}

// mustFlipOnlyIn fails unless flips are n flips, all in file name.
func (r *rig) mustFlipOnlyIn(flips []string, n int, name string) {
	r.t.Helper()
	if len(flips) != n {
		r.t.Fatalf("flips %q, want %d in %s", flips, n, name)
	}
	for _, flip := range flips {
		if !strings.HasPrefix(flip, name+"@") {
			r.t.Fatalf("flip %q outside %s", flip, name)
		}
	}
}

// writeDurable creates name holding data, synced and closed.
func (r *rig) writeDurable(name, data string) {
	r.t.Helper()
	f := r.create(name)
	r.writeAt(f, 0, data)
	if err := r.sync(f); err != nil {
		r.t.Fatal(err)
	}
	f.Close()
}

func (r *rig) sync(f sim.File) error {
	r.t.Helper()
	var got error
	called := false
	f.Sync(func(err error) { got, called = err, true })
	r.await(&called)
	return got
}

func (r *rig) syncDir(dir string) error {
	r.t.Helper()
	var got error
	called := false
	r.fs.SyncDir(dir, func(err error) { got, called = err, true })
	r.await(&called)
	return got
}

func (r *rig) powerLoss() []string {
	r.node.Crash()
	report := r.disk.PowerLoss()
	r.node.Boot()
	r.fs = r.disk.FS()
	return report
}

func (r *rig) kill() {
	r.node.Crash()
	r.disk.ProcessKill()
	r.node.Boot()
	r.fs = r.disk.FS()
}

func (r *rig) run(d time.Duration) {
	r.loop.Run(sched.Limits{Until: r.loop.Now() + d})
}

// read returns a file's content, or ok false when it does not exist.
func (r *rig) read(name string) (data string, ok bool) {
	r.t.Helper()
	f, err := r.fs.Open(name)
	if errors.Is(err, sim.ErrNotExist) {
		return "", false
	}
	if err != nil {
		r.t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); int64(n) != size || (err != nil && err != io.EOF) {
		r.t.Fatalf("read %s: %d, %v", name, n, err)
	}
	return string(buf), true
}

func (r *rig) mustRead(name, want string) {
	r.t.Helper()
	got, ok := r.read(name)
	if !ok {
		r.t.Fatalf("%s is gone, want %q", name, want)
	}
	if got != want {
		r.t.Fatalf("%s holds %q, want %q", name, got, want)
	}
}

func TestSyncCoversOnlyDataWrittenBeforeTheCall(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	first := strings.Repeat("a", 40)
	r.writeAt(f, 0, first)
	var got error
	called := false
	f.Sync(func(err error) { got, called = err, true })
	r.writeAt(f, 0, "BBBB")   // rewrites captured sector 0
	r.writeAt(f, 40, "CCCC")  // rewrites captured sector 2 and grows
	r.writeAt(f, 100, "DDDD") // a sector the sync never saw
	r.await(&called)
	if got != nil {
		t.Fatalf("sync: %v", got)
	}
	// Sectors 0 and 2 were rewritten after the call, 6 never synced.
	if got := r.disk.DirtyBytes(); got != 3*16 {
		t.Fatalf("dirty bytes %d after the sync, want 48", got)
	}
	r.mustRead("f", "BBBB"+first[4:]+"CCCC"+strings.Repeat("\x00", 56)+"DDDD")
	r.powerLoss()
	r.mustRead("f", first)
}

func TestSyncsAreServedOneAtATime(t *testing.T) {
	cfg := testConfig(DropUnsynced)
	cfg.SyncLatency = sched.Latency{Base: time.Millisecond}
	cfg.SectorBytes = 1000
	cfg.BandwidthBytesPerSec = 1e6 // 1 ms per sector
	r := newRig(t, 1, cfg)
	f, g := r.create("f"), r.create("g")
	r.writeAt(f, 0, "x")
	var doneAt []time.Duration
	record := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		doneAt = append(doneAt, r.loop.Now())
	}
	f.Sync(record) // 1 ms latency + 1 ms for its sector
	g.Sync(record) // queued behind: 1 ms latency, nothing dirty
	r.fs.SyncDir("", record)
	r.run(time.Second)
	want := []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond}
	if !slices.Equal(doneAt, want) {
		t.Fatalf("syncs done at %v, want %v", doneAt, want)
	}

	r.disk.SetSlowFactor(3)
	doneAt = nil
	start := r.loop.Now()
	r.writeAt(f, 0, "y")
	f.Sync(record)
	r.run(time.Second)
	if len(doneAt) != 1 || doneAt[0]-start != 6*time.Millisecond {
		t.Fatalf("slow sync took %v, want 6ms", doneAt[0]-start)
	}
}

// TestSpeedChangeRetimesQueuedSyncs: a device that heals serves the
// syncs queued while it was slow at its healed speed (the one in service
// keeps the share of its work done), and one that slows down stretches
// what is left of its queue; a sync whose process crashed still makes its
// data durable but tells nobody.
func TestSpeedChangeRetimesQueuedSyncs(t *testing.T) {
	cfg := testConfig(DropUnsynced)
	cfg.SyncLatency = sched.Latency{Base: time.Millisecond} // nothing dirty: 1 ms each
	r := newRig(t, 1, cfg)
	f := r.create("f")
	var doneAt []time.Duration
	record := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		doneAt = append(doneAt, r.loop.Now())
	}
	r.disk.SetSlowFactor(1000) // 1 s each
	for range 3 {
		f.Sync(record)
	}
	r.run(500 * time.Millisecond)
	r.disk.SetSlowFactor(1)
	r.run(time.Second)
	// Half of the first sync's work was done at 0.5 s; the rest takes
	// 0.5 ms, and the two queued behind it 1 ms each.
	want := []time.Duration{500*time.Millisecond + 500*time.Microsecond, 501500 * time.Microsecond, 502500 * time.Microsecond}
	if !slices.Equal(doneAt, want) {
		t.Fatalf("after the heal syncs done at %v, want %v", doneAt, want)
	}

	doneAt = nil
	start := r.loop.Now()
	f.Sync(record)
	f.Sync(record)
	r.disk.SetSlowFactor(10) // at once: both take 10 ms
	r.run(time.Second)
	want = []time.Duration{start + 10*time.Millisecond, start + 20*time.Millisecond}
	if !slices.Equal(doneAt, want) {
		t.Fatalf("after the slowdown syncs done at %v, want %v", doneAt, want)
	}

	r.disk.SetSlowFactor(1000)
	doneAt = nil
	r.writeAt(f, 0, "kept")
	f.Sync(record)
	r.run(100 * time.Millisecond)
	r.node.Crash()
	r.node.Boot()
	r.disk.ProcessKill()
	r.fs = r.disk.FS()
	r.disk.SetSlowFactor(1)
	r.run(time.Second)
	if len(doneAt) != 0 {
		t.Fatalf("a crashed process heard of its sync at %v", doneAt)
	}
	r.powerLoss()
	r.mustRead("f", "kept")
}

func TestFailedSyncDropsDirtyData(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	r.writeAt(f, 0, "hello")
	if err := r.sync(f); err != nil {
		t.Fatal(err)
	}
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, 0, "HELLO world")
	r.disk.FailSyncs(1)
	if err := r.sync(f); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("failing sync: %v, want ErrIO", err)
	}
	r.mustRead("f", "hello") // the page cache lost it too
	if size, _ := f.Size(); size != 5 || r.disk.DirtyBytes() != 0 || r.disk.UsedBytes() != 5 {
		t.Fatalf("after the failed sync: size %d, dirty %d, used %d", size, r.disk.DirtyBytes(), r.disk.UsedBytes())
	}

	// A sync called before the failure completes is void too; one called
	// after is served.
	r.writeAt(f, 5, " again")
	r.disk.FailSyncs(1)
	results := make([]error, 3)
	calls := 0
	f.Sync(func(err error) { results[0] = err; calls++ })
	r.writeAt(f, 11, "!")
	f.Sync(func(err error) { results[1] = err; calls++ })
	r.run(time.Second)
	r.mustRead("f", "hello")
	r.writeAt(f, 5, " at last")
	f.Sync(func(err error) { results[2] = err; calls++ })
	r.run(time.Second)
	if calls != 3 || !errors.Is(results[0], sim.ErrIO) || !errors.Is(results[1], sim.ErrIO) || results[2] != nil {
		t.Fatalf("sync results %v", results)
	}
	r.powerLoss()
	r.mustRead("f", "hello at last")

	// A failed directory sync commits nothing.
	g := r.create("g")
	g.Close()
	r.disk.FailSyncs(1)
	if err := r.syncDir(""); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("failing directory sync: %v", err)
	}
	if r.disk.UncommittedOps() != 1 {
		t.Fatalf("%d uncommitted operations after a failed directory sync, want 1", r.disk.UncommittedOps())
	}
}

func TestNoSpace(t *testing.T) {
	cfg := testConfig(DropUnsynced)
	cfg.CapacityBytes = 100
	r := newRig(t, 1, cfg)
	f := r.create("f")
	r.writeAt(f, 0, strings.Repeat("a", 60))
	if n, err := f.WriteAt(make([]byte, 50), 60); !errors.Is(err, sim.ErrNoSpace) || n != 0 {
		t.Fatalf("write past capacity: %d, %v", n, err)
	}
	if n, err := f.Append(make([]byte, 41)); !errors.Is(err, sim.ErrNoSpace) || n != 0 {
		t.Fatalf("append past capacity: %d, %v", n, err)
	}
	r.mustRead("f", strings.Repeat("a", 60)) // nothing written
	r.writeAt(f, 0, "bb")                    // overwriting needs no space
	g := r.create("g")
	r.writeAt(g, 0, strings.Repeat("c", 40))
	if r.disk.UsedBytes() != 100 {
		t.Fatalf("used %d, want 100", r.disk.UsedBytes())
	}
	if _, err := g.Append([]byte("x")); !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("append to a full disk: %v", err)
	}
	if err := f.Truncate(61); !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("growing truncate on a full disk: %v", err)
	}
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	// A removed file's space returns once no handle holds it.
	if err := r.fs.Remove("f"); err != nil {
		t.Fatal(err)
	}
	if r.disk.UsedBytes() != 50 {
		t.Fatalf("used %d with the removed file still open, want 50", r.disk.UsedBytes())
	}
	f.Close()
	if r.disk.UsedBytes() != 40 {
		t.Fatalf("used %d after closing the removed file, want 40", r.disk.UsedBytes())
	}
	r.writeAt(g, 40, strings.Repeat("d", 50))
	// A fill fault, then healed, then back to the configured capacity.
	r.disk.SetCapacity(r.disk.UsedBytes())
	if _, err := g.Append([]byte("x")); !errors.Is(err, sim.ErrNoSpace) {
		t.Fatalf("append to a filled disk: %v", err)
	}
	r.disk.SetCapacity(200)
	if _, err := g.Append(make([]byte, 100)); err != nil {
		t.Fatalf("append after the capacity grew: %v", err)
	}
	r.disk.SetCapacity(0)
	if _, err := g.Append([]byte("x")); !errors.Is(err, sim.ErrNoSpace) || r.disk.UsedBytes() != 190 {
		t.Fatalf("append over the configured capacity: %v, used %d", err, r.disk.UsedBytes())
	}
}

func TestReadErrors(t *testing.T) {
	r := newRig(t, 7, testConfig(DropUnsynced))
	f := r.create("f")
	r.writeAt(f, 0, "data")
	buf := make([]byte, 4)
	r.disk.SetReadErrorRate(1)
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("read with error rate 1: %v", err)
	}
	r.disk.SetReadErrorRate(0.25)
	failed := 0
	for range 4000 {
		if _, err := f.ReadAt(buf, 0); errors.Is(err, sim.ErrIO) {
			failed++
		} else if err != nil || string(buf) != "data" {
			t.Fatalf("read: %q, %v", buf, err)
		}
	}
	if failed < 900 || failed > 1100 {
		t.Fatalf("%d of 4000 reads failed at rate 0.25", failed)
	}
	r.disk.SetReadErrorRate(0)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read with error rate 0: %v", err)
	}
}

func TestMetaErrorsFailNamespaceChangesAndChangeNothing(t *testing.T) {
	r := newRig(t, 7, testConfig(DropUnsynced))
	r.writeAt(r.create("old"), 0, "data")
	if err := r.fs.MkdirAll("d"); err != nil {
		t.Fatal(err)
	}
	f := r.create("d/f")
	r.writeAt(f, 0, "0123456789")
	r.disk.SetMetaErrorRate(1)
	steps := map[string]func() error{
		"create":     func() error { _, err := r.fs.Create("new"); return err },
		"recreate":   func() error { _, err := r.fs.Create("old"); return err },
		"remove":     func() error { return r.fs.Remove("old") },
		"remove all": func() error { return r.fs.RemoveAll("d") },
		"rename":     func() error { return r.fs.Rename("old", "moved") },
		"mkdir":      func() error { return r.fs.MkdirAll("e/f") },
		"truncate":   func() error { return f.Truncate(3) },
	}
	for _, name := range slices.Sorted(maps.Keys(steps)) {
		if err := steps[name](); !errors.Is(err, sim.ErrIO) {
			t.Fatalf("%s at rate 1: %v, want an I/O error", name, err)
		}
	}
	r.mustRead("old", "data")
	r.mustRead("d/f", "0123456789")
	for _, gone := range []string{"new", "moved", "e"} {
		if _, err := r.fs.Stat(gone); !errors.Is(err, sim.ErrNotExist) {
			t.Fatalf("%s after its failed creation: %v", gone, err)
		}
	}
	if err := r.fs.MkdirAll("d"); err != nil {
		t.Fatalf("mkdir of an existing directory changes nothing, so cannot fail: %v", err)
	}
	r.disk.SetMetaErrorRate(0)
	if err := r.fs.Rename("old", "moved"); err != nil {
		t.Fatalf("rename once healed: %v", err)
	}
	if err := f.Truncate(3); err != nil {
		t.Fatalf("truncate once healed: %v", err)
	}
	r.mustRead("moved", "data")
	r.mustRead("d/f", "012")
}

func TestMetaErrorsWriteAPrefix(t *testing.T) {
	r := newRig(t, 7, testConfig(DropUnsynced))
	f := r.create("f")
	r.writeAt(f, 0, "head-")
	r.disk.SetMetaErrorRate(1)
	lengths := map[int]bool{}
	for range 200 {
		size, _ := f.Size()
		n, err := f.Append([]byte("0123456789"))
		if !errors.Is(err, sim.ErrIO) || n < 0 || n >= 10 {
			t.Fatalf("append at rate 1: %d bytes, %v; want a short count and an I/O error", n, err)
		}
		lengths[n] = true
		got, _ := r.read("f")
		if want := got[:size] + "0123456789"[:n]; got != want {
			t.Fatalf("after a short append of %d: %q, want %q", n, got, want)
		}
	}
	if len(lengths) < 8 {
		t.Fatalf("short writes wrote only %d distinct lengths of 0..9", len(lengths))
	}
	if n, err := f.WriteAt([]byte("HEAD"), 0); !errors.Is(err, sim.ErrIO) || n >= 4 {
		t.Fatalf("write at at rate 1: %d, %v", n, err)
	}
	r.disk.SetMetaErrorRate(0)
	size, _ := f.Size()
	if n, err := f.Append([]byte("tail")); n != 4 || err != nil {
		t.Fatalf("append once healed: %d, %v", n, err)
	}
	if got, _ := r.read("f"); got[size:] != "tail" {
		t.Fatalf("healed append wrote %q", got[size:])
	}
}

func TestMetaErrorsAtARateAreDrawnFromTheSeed(t *testing.T) {
	outcomes := func(seed uint64) (string, uint64) {
		r := newRig(t, seed, testConfig(DropUnsynced))
		r.disk.SetMetaErrorRate(0.25)
		var b strings.Builder
		failed := 0
		for i := range 400 {
			_, err := r.fs.Create(fmt.Sprintf("f%d", i))
			if errors.Is(err, sim.ErrIO) {
				failed++
				b.WriteByte('x')
			} else if err != nil {
				t.Fatal(err)
			} else {
				b.WriteByte('.')
			}
		}
		if failed < 70 || failed > 130 {
			t.Fatalf("%d of 400 creates failed at rate 0.25", failed)
		}
		return b.String(), r.loop.Trace().Hash()
	}
	a, hashA := outcomes(3)
	b, hashB := outcomes(3)
	c, _ := outcomes(4)
	if a != b || hashA != hashB {
		t.Fatalf("the same seed failed different creates:\n%s\n%s", a, b)
	}
	if a == c {
		t.Fatalf("two seeds failed the same creates")
	}
}

func TestReadAtFollowsReaderAt(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	r.writeAt(f, 0, "0123456789")
	buf := make([]byte, 4)
	if n, err := f.ReadAt(buf, 8); n != 2 || err != io.EOF || string(buf[:2]) != "89" {
		t.Fatalf("short read: %d, %v, %q", n, err, buf[:n])
	}
	if n, err := f.ReadAt(buf, 10); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d, %v", n, err)
	}
	if _, err := f.ReadAt(buf, -1); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("read at -1: %v", err)
	}
	if _, err := f.WriteAt(buf, -1); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("write at -1: %v", err)
	}
	// A hole reads as zeros.
	r.writeAt(f, 40, "z")
	r.mustRead("f", "0123456789"+strings.Repeat("\x00", 30)+"z")
}

func TestCorruptFlipsExactlyWhatItReports(t *testing.T) {
	cfg := testConfig(DropUnsynced)
	cfg.SectorBytes = 64
	r := newRig(t, 3, cfg)
	src := rand.New(rand.NewPCG(1, 2))
	content := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(src.Uint32())
		}
		return string(b)
	}
	names := []string{"a", "b", "c"}
	for i, name := range names {
		f := r.create(name)
		r.writeAt(f, 0, content(300))
		if i < 2 {
			if err := r.sync(f); err != nil {
				t.Fatal(err)
			}
		}
		if i == 1 {
			r.writeAt(f, 100, content(50)) // dirty on top of durable
			r.writeAt(f, 300, content(60)) // beyond the durable size
		}
		f.Close()
	}
	r.create("empty").Close()
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	snapshot := func() (cur, dur map[string][]byte) {
		cur, dur = make(map[string][]byte), make(map[string][]byte)
		for _, name := range names {
			ino := r.disk.cur.lookup(name).ino
			cur[name], dur[name] = ino.cur.bytes(ino.sectorBytes), ino.dur.bytes(ino.sectorBytes)
		}
		return cur, dur
	}
	curBefore, durBefore := snapshot()
	flips := r.disk.Corrupt(40)
	if len(flips) != 40 || !slices.IsSorted(flips) {
		t.Fatalf("flips %q", flips)
	}
	curAfter, durAfter := snapshot()
	type spot struct {
		name string
		off  int
	}
	reported := make(map[spot]byte)
	for _, flip := range flips {
		var name string
		var off, bit int
		if _, err := fmt.Sscanf(strings.Replace(flip, "@", " ", 1), "%s %d bit %d", &name, &off, &bit); err != nil {
			t.Fatalf("flip %q: %v", flip, err)
		}
		reported[spot{name, off}] = 1 << bit
	}
	for _, name := range names {
		for i := range curBefore[name] {
			mask := reported[spot{name, i}]
			if curAfter[name][i]^curBefore[name][i] != mask {
				t.Fatalf("%s@%d: cached byte %#x -> %#x, reported mask %#x", name, i, curBefore[name][i], curAfter[name][i], mask)
			}
			if i < len(durBefore[name]) && durAfter[name][i]^durBefore[name][i] != mask {
				t.Fatalf("%s@%d: durable byte %#x -> %#x, reported mask %#x", name, i, durBefore[name][i], durAfter[name][i], mask)
			}
		}
	}
	if err := r.disk.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	// The durable flips survive a crash that keeps only durable data.
	r.powerLoss()
	for _, name := range names {
		got, _ := r.read(name)
		if !bytes.Equal([]byte(got), durAfter[name]) {
			t.Fatalf("%s after the crash is not the corrupted durable content", name)
		}
	}
}

func TestWritebackMakesOldDataDurable(t *testing.T) {
	cfg := testConfig(DropUnsynced)
	cfg.WritebackAge = 30 * time.Second
	// Too young: the data is lost (the name may survive, as any
	// uncommitted operation may).
	r := newRig(t, 1, cfg)
	f := r.create("f")
	r.writeAt(f, 0, "young")
	r.run(20 * time.Second)
	if r.disk.DirtyBytes() != 16 || r.disk.UncommittedOps() != 1 {
		t.Fatalf("after 20s: %d dirty bytes, %d uncommitted operations", r.disk.DirtyBytes(), r.disk.UncommittedOps())
	}
	r.powerLoss()
	if got, _ := r.read("f"); got != "" {
		t.Fatalf("f holds %q after a crash 20s after the write", got)
	}

	// Old enough: written back by the flusher tick at 30s exactly (ticks
	// fall every 5s), not a moment before.
	r = newRig(t, 1, cfg)
	f = r.create("f")
	r.writeAt(f, 0, "old")
	r.run(30*time.Second - 1)
	if r.disk.DirtyBytes() == 0 || r.disk.UncommittedOps() == 0 {
		t.Fatalf("written back before 30s")
	}
	r.run(1)
	if r.disk.DirtyBytes() != 0 || r.disk.UncommittedOps() != 0 {
		t.Fatalf("at 30s: %d dirty bytes, %d uncommitted operations", r.disk.DirtyBytes(), r.disk.UncommittedOps())
	}
	r.run(6 * time.Second)
	if r.loop.Pending() != 0 {
		t.Fatalf("%d events pending on a clean disk: the flusher should stop", r.loop.Pending())
	}
	r.writeAt(f, 3, " and new") // dirtied at 36s, expires at 66s
	r.run(24 * time.Second)
	r.powerLoss()
	r.mustRead("f", "old")

	// An in-flight sync that writeback overtakes must not bring back the
	// older content it captured when it completes.
	r = newRig(t, 1, cfg)
	f = r.create("f")
	r.writeAt(f, 0, "one")
	r.disk.SetSlowFactor(1e6) // ~100 s per sync
	var got error
	called := false
	f.Sync(func(err error) { got, called = err, true })
	r.writeAt(f, 0, "two")
	r.await(&called)
	if got != nil || r.loop.Now() < 40*time.Second {
		t.Fatalf("slow sync: %v at %v", got, r.loop.Now())
	}
	ino := r.disk.cur.lookup("f").ino
	if durable := ino.dur.bytes(ino.sectorBytes); string(durable) != "two" {
		t.Fatalf("the late sync made %q durable over the written-back %q", durable, "two")
	}
	if err := r.disk.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	r.powerLoss()
	r.mustRead("f", "two")
}

func TestInFlightSyncLostOnPowerLossKeptOnProcessKill(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run("kill="+strconv.FormatBool(kill), func(t *testing.T) {
			r := newRig(t, 1, testConfig(DropUnsynced))
			f := r.create("f")
			if err := r.syncDir(""); err != nil {
				t.Fatal(err)
			}
			r.writeAt(f, 0, "payload")
			called := false
			f.Sync(func(error) { called = true })
			if kill {
				r.kill()
				r.run(time.Second) // the device finishes the sync
			}
			r.powerLoss() // for !kill: before the sync's 100µs are up
			r.run(time.Second)
			if called {
				t.Fatalf("the callback of a crashed process ran")
			}
			got, _ := r.read("f")
			if kill && got != "payload" {
				t.Fatalf("after a kill the sync still completes: f holds %q", got)
			}
			if !kill && got != "" {
				t.Fatalf("after a power loss the sync in flight is lost: f holds %q", got)
			}
		})
	}
	// A process kill alone loses nothing, synced or not.
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	r.writeAt(f, 0, "unsynced")
	r.kill()
	if _, err := f.Size(); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("handle after a kill: %v", err)
	}
	r.mustRead("f", "unsynced")
}

func TestCrashKeepsOrDropsNames(t *testing.T) {
	outcomes := make(map[string]int)
	for seed := range uint64(300) {
		r := newRig(t, seed, testConfig(KeepUnsynced))
		if err := r.fs.MkdirAll("d"); err != nil {
			t.Fatal(err)
		}
		r.create("d/kept").Close()
		r.create("d/renamed").Close()
		r.create("d/removed").Close()
		if err := r.syncDir("d"); err != nil {
			t.Fatal(err)
		}
		if err := r.fs.Rename("d/renamed", "d/target"); err != nil {
			t.Fatal(err)
		}
		if err := r.fs.Remove("d/removed"); err != nil {
			t.Fatal(err)
		}
		r.create("d/created").Close()
		r.powerLoss()
		names, err := r.fs.List("d")
		if err != nil {
			t.Fatal(err)
		}
		has := func(name string) bool { return slices.Contains(names, name) }
		if !has("kept") {
			t.Fatalf("seed %d: a committed name was lost: %q", seed, names)
		}
		if has("renamed") == has("target") {
			t.Fatalf("seed %d: rename not atomic: %q", seed, names)
		}
		// The journal is a prefix: a later operation survives only with
		// every earlier one.
		if has("created") && (has("removed") || has("renamed")) || !has("removed") && has("renamed") {
			t.Fatalf("seed %d: not a journal prefix: %q", seed, names)
		}
		outcomes[strings.Join(names, ",")]++
	}
	// All four prefixes of the three operations happen.
	if len(outcomes) != 4 {
		t.Fatalf("outcomes %v, want the four journal prefixes", outcomes)
	}
}

func TestCrashModesReachTheirWholeRange(t *testing.T) {
	// Tearing mixes old and new sectors, and a prefix lands strictly
	// between the durable and the current size, for some seeds.
	old := strings.Repeat("o", 16*8)
	newer := strings.Repeat("N", 16*8) + strings.Repeat("+", 16*8)
	mixed, between := false, false
	for seed := range uint64(50) {
		for _, mode := range []CrashMode{TearSectors, KeepPrefix} {
			r := newRig(t, seed, testConfig(mode))
			f := r.create("f")
			r.writeAt(f, 0, old)
			if err := r.sync(f); err != nil {
				t.Fatal(err)
			}
			if err := r.syncDir(""); err != nil {
				t.Fatal(err)
			}
			r.writeAt(f, 0, newer)
			report := r.powerLoss()
			got, _ := r.read("f")
			if got != newer && len(report) != 1 {
				t.Fatalf("a lossy crash reported %q", report)
			}
			switch mode {
			case TearSectors:
				if n := len(got); n == len(old) && strings.Contains(got, "o") && strings.Contains(got, "N") {
					mixed = true
				}
			case KeepPrefix:
				if len(got) > len(old) && len(got) < len(newer) {
					between = true
					if got[:len(old)] != old || strings.Trim(got[len(old):], "+") != "" {
						t.Fatalf("keep-prefix left %q", got)
					}
				}
			}
		}
	}
	if !mixed || !between {
		t.Fatalf("tear mixed sectors: %v; prefix between sizes: %v", mixed, between)
	}
}

func TestPowerLossReport(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, 0, strings.Repeat("x", 40))
	r.create("g").Close()
	report := r.powerLoss()
	want := []string{
		"f: drop-unsynced: size 40 -> 0 (durable 0), 0 of 3 dirty sectors kept",
	}
	// g's create may or may not have survived, by the seed.
	if _, ok := r.read("g"); !ok {
		want = append(want, "g: name lost (uncommitted create or rename)")
	}
	if !slices.Equal(report, want) {
		t.Fatalf("report %q, want %q", report, want)
	}
}

func TestPaths(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	for _, name := range []string{"../x", "/x", "a//b", "a/../b", "./a", "a/", "..", "a/.."} {
		if _, err := r.fs.Create(name); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("create %q: %v, want ErrInvalidPath", name, err)
		}
	}
	if _, err := r.fs.Create(""); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("create of the root: %v", err)
	}
	if _, err := r.fs.Create("no/such/dir"); !errors.Is(err, sim.ErrNotExist) {
		t.Errorf("create in a missing directory: %v", err)
	}
	if err := r.fs.MkdirAll("a/b"); err != nil {
		t.Fatal(err)
	}
	r.create("a/b/f").Close()
	r.create("a/z").Close()
	r.create("a/c").Close()
	if names, err := r.fs.List("a"); err != nil || !slices.Equal(names, []string{"b", "c", "z"}) {
		t.Fatalf("list a: %q, %v", names, err)
	}
	if info, err := r.fs.Stat("a/b"); err != nil || !info.IsDir || info.Name != "b" {
		t.Fatalf("stat a/b: %+v, %v", info, err)
	}
	if info, err := r.fs.Stat("."); err != nil || !info.IsDir {
		t.Fatalf("stat .: %+v, %v", info, err)
	}
	if _, err := r.fs.Open("a"); !errors.Is(err, ErrIsDir) {
		t.Fatalf("open a directory: %v", err)
	}
	if _, err := r.fs.List("a/c"); !errors.Is(err, ErrNotDir) {
		t.Fatalf("list a file: %v", err)
	}
	if err := r.fs.MkdirAll("a/c/d"); !errors.Is(err, ErrNotDir) {
		t.Fatalf("mkdir below a file: %v", err)
	}
	if err := r.fs.Remove("a"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("remove a non-empty directory: %v", err)
	}
	if err := r.fs.Rename("a", "a/b/x"); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("rename a directory inside itself: %v", err)
	}
	if err := r.fs.Remove("nope"); !errors.Is(err, sim.ErrNotExist) {
		t.Fatalf("remove a missing file: %v", err)
	}
	if err := r.fs.RemoveAll("nope"); err != nil {
		t.Fatalf("remove all of a missing path: %v", err)
	}
	if err := r.fs.RemoveAll("a"); err != nil {
		t.Fatal(err)
	}
	if names, _ := r.fs.List(""); len(names) != 0 {
		t.Fatalf("after remove all: %q", names)
	}
}

func TestStaleHandlesAndFileSystemAreClosed(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	oldFS := r.fs
	f := r.create("f")
	r.kill()
	if _, err := oldFS.Open("f"); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("open through the old file system: %v", err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("write through the old handle: %v", err)
	}
	if err := f.Close(); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("close of the old handle: %v", err)
	}
	var got error
	called := false
	oldFS.SyncDir("", func(err error) { got, called = err, true })
	r.await(&called)
	if !errors.Is(got, sim.ErrClosed) {
		t.Fatalf("directory sync through the old file system: %v", got)
	}
	g := r.create("g")
	r.powerLoss()
	if _, err := g.Size(); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("handle after a power loss: %v", err)
	}
}

func TestBounds(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	f := r.create("f")
	if _, err := f.WriteAt([]byte("x"), FileBytesMax); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("write past the size bound: %v", err)
	}
	if err := f.Truncate(FileBytesMax + 1); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("truncate past the size bound: %v", err)
	}
	// A sparse file may be huge; only its written sectors take memory.
	if err := f.Truncate(FileBytesMax); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, FileBytesMax-3, "end")
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	for range OpenHandlesMax - 1 {
		if _, err := r.fs.Open("f"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.fs.Open("f"); !errors.Is(err, ErrTooManyOpen) {
		t.Fatalf("open past the handle bound: %v", err)
	}
	r.kill()
	if _, err := r.fs.Open("f"); err != nil {
		t.Fatalf("open after the handles were closed: %v", err)
	}
}

func TestFullJournalCommits(t *testing.T) {
	r := newRig(t, 1, testConfig(DropUnsynced))
	for i := range JournalOpsMax + 1 {
		if err := r.fs.MkdirAll("d" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.disk.UncommittedOps(); got != 1 {
		t.Fatalf("%d uncommitted operations, want 1 after a forced commit", got)
	}
	r.powerLoss()
	names, _ := r.fs.List("")
	if len(names) < JournalOpsMax {
		t.Fatalf("%d directories after the crash, want at least %d", len(names), JournalOpsMax)
	}
}

func TestTraceNotesWrites(t *testing.T) {
	run := func(data string) (uint64, []sched.Record) {
		r := newRig(t, 1, testConfig(DropUnsynced))
		r.loop.Trace().Record()
		f := r.create("f")
		r.writeAt(f, 4096, data)
		if err := f.Truncate(3); err != nil {
			t.Fatal(err)
		}
		recs, _ := r.loop.Trace().Records()
		return r.loop.Trace().Hash(), recs
	}
	hash, recs := run("abc")
	var labels []string
	for _, rec := range recs {
		if rec.Kind == sched.KindWrite {
			labels = append(labels, rec.Label)
		}
	}
	want := []string{"create f", "write f@4096+3", "truncate f to 3"}
	if !slices.Equal(labels, want) {
		t.Fatalf("write notes %q, want %q", labels, want)
	}
	if other, _ := run("abd"); other == hash {
		t.Fatalf("writing different bytes left the same trace hash")
	}
}

// scenario runs a fixed script of writes, syncs and crashes on a disk
// seeded with seed and returns the final image and the trace hash.
func scenario(t *testing.T, seed uint64) (map[string]string, uint64, []string) {
	cfg := DefaultConfig()
	cfg.SectorBytes = 512
	cfg.WritebackAge = 2 * time.Second
	r := newRig(t, seed, cfg)
	content := rand.New(rand.NewPCG(42, 0))
	var reports []string
	for round := range 6 {
		if err := r.fs.MkdirAll("p/" + strconv.Itoa(round%3)); err != nil {
			t.Fatal(err)
		}
		var files []sim.File
		for i := range 4 {
			f, err := r.fs.Create(fmt.Sprintf("p/%d/%d.log", round%3, i))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		for step := range 200 {
			f := files[content.IntN(len(files))]
			data := make([]byte, 1+content.IntN(900))
			for i := range data {
				data[i] = byte(content.Uint32())
			}
			if _, err := f.Append(data); err != nil {
				t.Fatal(err)
			}
			switch step % 25 {
			case 7:
				f.Sync(func(error) {})
			case 13:
				r.fs.SyncDir("p", func(error) {})
			}
			r.run(time.Duration(content.IntN(50)) * time.Millisecond)
		}
		if round == 3 {
			r.disk.Corrupt(3)
		}
		reports = append(reports, r.powerLoss()...)
	}
	image := make(map[string]string)
	for _, dir := range []string{"p/0", "p/1", "p/2"} {
		names, _ := r.fs.List(dir)
		for _, name := range names {
			image[dir+"/"+name], _ = r.read(dir + "/" + name)
		}
	}
	return image, r.loop.Trace().Hash(), reports
}

func TestDeterminism(t *testing.T) {
	image1, hash1, report1 := scenario(t, 5)
	image2, hash2, report2 := scenario(t, 5)
	if hash1 != hash2 || !slices.Equal(report1, report2) || fmt.Sprint(image1) != fmt.Sprint(image2) {
		t.Fatalf("the same seed diverged: hash %#x vs %#x", hash1, hash2)
	}
	if len(report1) == 0 {
		t.Fatalf("the scenario lost nothing in its crashes; it tests little")
	}
	image3, hash3, _ := scenario(t, 6)
	if hash3 == hash1 || fmt.Sprint(image3) == fmt.Sprint(image1) {
		t.Fatalf("another seed gave the same run")
	}
}

func TestCrashModeNames(t *testing.T) {
	for _, mode := range AllCrashModes() {
		got, err := ParseCrashMode(mode.String())
		if err != nil || got != mode {
			t.Fatalf("parse %q: %v, %v", mode, got, err)
		}
	}
	if _, err := ParseCrashMode("lose-everything"); err == nil {
		t.Fatal("parsed an unknown mode")
	}
	cfg := Config{CrashModes: []CrashMode{KeepPrefix, TearSectors}}
	text, err := json.Marshal(cfg)
	if err != nil || !strings.Contains(string(text), `"crash_modes":["keep-prefix","tear-sectors"]`) {
		t.Fatalf("config as JSON: %s, %v", text, err)
	}
	var back Config
	if err := json.Unmarshal(text, &back); err != nil || !slices.Equal(back.CrashModes, cfg.CrashModes) {
		t.Fatalf("config from JSON: %+v, %v", back, err)
	}
}

// linuxConfig is testConfig with Linux's rules for failed syncs.
func linuxConfig(mode CrashMode) Config {
	cfg := testConfig(mode)
	cfg.SyncFailure = SyncFailureLinux
	return cfg
}

// TestLinuxFailedSyncKeepsPagesItNeverWrites: under SyncFailureLinux a
// failed sync leaves the page cache showing the data, reports the error
// once, and the next sync succeeds without writing it: a power loss then
// finds the platter's old bytes (zeros past the old size), even where
// the crash keeps every unsynced page.
func TestLinuxFailedSyncKeepsPagesItNeverWrites(t *testing.T) {
	for _, mode := range AllCrashModes() {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRig(t, 1, linuxConfig(mode))
			f := r.create("f")
			r.writeAt(f, 0, "hello")
			if err := r.sync(f); err != nil {
				t.Fatal(err)
			}
			if err := r.syncDir(""); err != nil {
				t.Fatal(err)
			}
			r.writeAt(f, 0, "HELLO world")
			r.disk.FailSyncs(1)
			if err := r.sync(f); !errors.Is(err, sim.ErrIO) {
				t.Fatalf("failing sync: %v, want ErrIO", err)
			}
			r.mustRead("f", "HELLO world") // the page cache keeps it
			if r.disk.DirtyBytes() != 0 {
				t.Fatalf("%d dirty bytes after the failed sync: its pages are clean", r.disk.DirtyBytes())
			}
			if err := r.sync(f); err != nil {
				t.Fatalf("the sync after the failure: %v, want success (the error is reported once)", err)
			}
			r.mustRead("f", "HELLO world")
			if err := r.disk.checkInvariants(); err != nil {
				t.Fatal(err)
			}
			r.powerLoss()
			// The successful sync made the size durable; the lost sector
			// holds what the platter had.
			r.mustRead("f", "hello\x00\x00\x00\x00\x00\x00")
		})
	}
}

// TestLinuxRewriteMakesLostPagesDurable: writing the bytes again makes
// the pages dirty, and the next sync writes them.
func TestLinuxRewriteMakesLostPagesDurable(t *testing.T) {
	r := newRig(t, 2, linuxConfig(KeepUnsynced))
	f := r.create("f")
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, 0, "first sector....second sector...")
	r.disk.FailSyncs(1)
	if err := r.sync(f); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("failing sync: %v", err)
	}
	r.writeAt(f, 0, "first sector....") // only the first sector again
	if err := r.sync(f); err != nil {
		t.Fatal(err)
	}
	r.powerLoss()
	r.mustRead("f", "first sector....\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
}

// TestLinuxLostPagesOutliveKillsNotEvictions: a process kill keeps the
// lying page cache (a new process reads the data back); DropCaches and
// a power loss show the platter. Background writeback never saves them.
func TestLinuxLostPagesOutliveKillsNotEvictions(t *testing.T) {
	cfg := linuxConfig(KeepUnsynced)
	cfg.WritebackAge = time.Second
	r := newRig(t, 3, cfg)
	f := r.create("f")
	r.writeAt(f, 0, "durable.........")
	if err := r.sync(f); err != nil {
		t.Fatal(err)
	}
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, 0, "LOST")
	r.disk.FailSyncs(1)
	if err := r.sync(f); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("failing sync: %v", err)
	}
	r.kill()
	r.run(10 * time.Second) // writeback rounds come and go
	r.mustRead("f", "LOSTble.........")
	if n := r.disk.DropCaches(); n != 1 {
		t.Fatalf("DropCaches evicted %d sectors, want 1", n)
	}
	r.mustRead("f", "durable.........")

	g, err := r.fs.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	r.writeAt(g, 0, "LOST")
	r.disk.FailSyncs(1)
	if err := r.sync(g); !errors.Is(err, sim.ErrIO) {
		t.Fatalf("failing sync: %v", err)
	}
	r.run(10 * time.Second)
	if report := r.powerLoss(); len(report) != 1 || !strings.Contains(report[0], "0 of 1 dirty sectors kept") {
		t.Fatalf("power loss report %q, want the lost sector", report)
	}
	r.mustRead("f", "durable.........")
}

// TestLinuxSyncWaitingOnAFailedOneCoversNothingOfIt: a sync called while
// a failing one is in flight succeeds, and does not write the pages the
// failed writeback lost; data written between the calls it does write.
func TestLinuxSyncWaitingOnAFailedOneCoversNothingOfIt(t *testing.T) {
	r := newRig(t, 4, linuxConfig(DropUnsynced))
	f := r.create("f")
	if err := r.syncDir(""); err != nil {
		t.Fatal(err)
	}
	r.writeAt(f, 0, "lost............")
	r.disk.FailSyncs(1)
	results := make([]error, 2)
	calls := 0
	f.Sync(func(err error) { results[0] = err; calls++ })
	r.writeAt(f, 16, "kept............")
	f.Sync(func(err error) { results[1] = err; calls++ })
	r.run(time.Second)
	if calls != 2 || !errors.Is(results[0], sim.ErrIO) || results[1] != nil {
		t.Fatalf("sync results %v, want ErrIO then success", results)
	}
	r.powerLoss()
	r.mustRead("f", strings.Repeat("\x00", 16)+"kept............")
}

func TestSyncFailureModeNames(t *testing.T) {
	for _, m := range []SyncFailureMode{SyncFailureDrops, SyncFailureLinux} {
		text, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back SyncFailureMode
		if err := back.UnmarshalText(text); err != nil || back != m {
			t.Fatalf("%v: round trip gives %v, %v", m, back, err)
		}
	}
	if _, err := ParseSyncFailureMode("ext3"); err == nil || !strings.Contains(err.Error(), "ext3") {
		t.Fatalf("parsing an unknown mode: %v", err)
	}
}

// TestCorruptFileFlipsOnlyThatFile: bit flips aimed at one file land in
// it alone, and a missing or empty file gets none.
func TestCorruptFileFlipsOnlyThatFile(t *testing.T) {
	r := newRig(t, 5, testConfig(DropUnsynced))
	r.writeDurable("a", strings.Repeat("x", 200))
	r.writeDurable("b", strings.Repeat("x", 200))
	r.create("empty").Close()
	r.mustFlipOnlyIn(r.disk.CorruptFile("b", 5), 5, "b")
	r.mustRead("a", strings.Repeat("x", 200))
	if flips := r.disk.CorruptFile("empty", 1); len(flips) != 0 {
		t.Fatalf("flips in an empty file: %q", flips)
	}
	if flips := r.disk.CorruptFile("missing", 1); len(flips) != 0 {
		t.Fatalf("flips in a missing file: %q", flips)
	}
}

// TestFlipGuardSparesWhatItRefuses: a guard sees each drawn spot with the
// file's bytes as they are, spared spots are never flipped, and a guard
// that spares nothing leaves the draws exactly as without one.
func TestFlipGuardSparesWhatItRefuses(t *testing.T) {
	write := func(r *rig) {
		r.writeDurable("keep", strings.Repeat("k", 300))
		r.writeDurable("rot", strings.Repeat("r", 300))
	}
	plain := newRig(t, 9, testConfig(DropUnsynced))
	write(plain)
	want := plain.disk.Corrupt(6)

	open := newRig(t, 9, testConfig(DropUnsynced))
	write(open)
	asked := 0
	open.disk.SetFlipGuard(func(FlipSpot) bool { asked++; return false })
	if got := open.disk.Corrupt(6); !slices.Equal(got, want) || asked != len(want) {
		t.Fatalf("a guard that spares nothing: flips %q (asked %d times), want %q", got, asked, want)
	}

	guarded := newRig(t, 9, testConfig(DropUnsynced))
	write(guarded)
	guarded.disk.SetFlipGuard(func(s FlipSpot) bool {
		b := make([]byte, 1)
		if s.Read(b, s.Offset) != 1 || s.SizeBytes != 300 || s.Read(b, 300) != 0 {
			t.Fatalf("spot %s@%d: cannot read its byte, or reads past the end (size %d)", s.Name, s.Offset, s.SizeBytes)
		}
		return b[0] == 'k' // the file "keep" holds only k
	})
	guarded.mustFlipOnlyIn(guarded.disk.Corrupt(6), 6, "rot")
	guarded.mustRead("keep", strings.Repeat("k", 300))
	guarded.disk.SetFlipGuard(func(FlipSpot) bool { return true })
	if flips := guarded.disk.Corrupt(3); len(flips) != 0 {
		t.Fatalf("a guard that spares everything: flips %q", flips)
	}
}
