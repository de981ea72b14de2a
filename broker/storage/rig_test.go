package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// testClock is a node's clock over the loop: wall time starts at a fixed
// epoch and never jumps, monotonic time is the loop's.
type testClock struct {
	loop  *sched.Loop
	node  *sched.Node
	epoch time.Time
}

func (c *testClock) Now() time.Time      { return c.epoch.Add(c.loop.Now()) }
func (c *testClock) Mono() time.Duration { return c.loop.Now() }
func (c *testClock) AfterFunc(d time.Duration, f func()) sim.Timer {
	t := &testTimer{f: f}
	c.loop.After(d, c.node, sched.KindTimer, 0, t.fire)
	return t
}

type testTimer struct {
	f              func()
	stopped, fired bool
}

func (t *testTimer) fire() {
	if !t.stopped {
		t.fired = true
		t.f()
	}
}

func (t *testTimer) Stop() bool {
	if t.fired || t.stopped {
		return false
	}
	t.stopped = true
	return true
}

// failer is what the rig needs of a test: testing.TB or *rapid.T.
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// rig is one node with a simulated disk, driven by hand.
type rig struct {
	t     failer
	loop  *sched.Loop
	node  *sched.Node
	disk  *simdisk.Disk
	clock *testClock
	fs    sim.FS
	lines []string
}

const testDir = "orders-0"

func testDiskConfig() simdisk.Config {
	return simdisk.Config{
		SectorBytes: 512,
		SyncLatency: sched.Latency{Base: 100 * time.Microsecond, Jitter: 50 * time.Microsecond},
	}
}

func newRig(t failer, seed uint64, cfg simdisk.Config) *rig {
	loop := sched.New()
	node := loop.AddNode("n1")
	node.Boot()
	d := simdisk.New(loop, node, sched.NewRand(seed, "disk/n1", 0), cfg)
	return &rig{t: t, loop: loop, node: node, disk: d, fs: d.FS(),
		clock: &testClock{loop: loop, node: node, epoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}
}

func (r *rig) logf(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// settle runs the loop long enough for syncs in flight to complete.
func (r *rig) settle() { r.advance(50 * time.Millisecond) }

// advance moves simulated time forward, running what falls due.
func (r *rig) advance(d time.Duration) { r.loop.Run(sched.Limits{Until: r.loop.Now() + d}) }

// crash ends the node's process (and with power, the machine) and boots it
// again with a fresh view of the disk.
func (r *rig) crash(power bool) {
	if power {
		for _, line := range r.disk.PowerLoss() {
			r.logf("power loss: %s", line)
		}
	} else {
		r.disk.ProcessKill()
	}
	r.node.Crash()
	r.node.Boot()
	r.fs = r.disk.FS()
}

func (r *rig) open(cfg Config, recoveryPoint int64) (*Log, RecoveryReport) {
	r.t.Helper()
	l, report, err := Open(r.fs, r.clock, testDir, cfg, recoveryPoint, r.logf)
	if err != nil {
		r.t.Fatalf("open: %v", err)
	}
	// Appends wait until what recovery found is durable.
	r.settle()
	return l, report
}

// flush flushes and waits for it.
func (r *rig) flush(l *Log) error {
	r.t.Helper()
	var got error
	done := false
	l.Flush(func(err error) { got, done = err, true })
	r.settle()
	if !done {
		r.t.Fatal("flush did not complete")
	}
	return got
}

// records builds n records with the given key prefix.
func testRecords(n int, tag string, ts int64) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		out[i] = record.Record{Offset: int64(i), Timestamp: ts, Key: []byte(fmt.Sprintf("k%d", i%3)), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	return out
}

func testBatch(t testing.TB, records []record.Record) record.Batch {
	t.Helper()
	b, err := record.NewBuilder().Build(records)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func producerBatch(t testing.TB, pid int64, epoch int16, seq int32, n int, tag string) record.Batch {
	t.Helper()
	bl := record.NewBuilder()
	bl.ProducerID, bl.ProducerEpoch, bl.BaseSequence = pid, epoch, seq
	b, err := bl.Build(testRecords(n, tag, 1000))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAppend(t testing.TB, l *Log, b record.Batch, epoch int32) AppendResult {
	t.Helper()
	res, err := l.Append(b, epoch)
	if err != nil {
		t.Fatalf("append %s: %v", b, err)
	}
	return res
}

// readAll reads the log from its start and returns the values in order.
func readAll(t testing.TB, l *Log) []string {
	t.Helper()
	var values []string
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if res.Batches == 0 {
			// The rest of this segment holds nothing (a gap): try the
			// next offset.
			off++
			continue
		}
		batches, err := record.Split(res.Data, 1<<20)
		if err != nil {
			t.Fatalf("split read at %d: %v", off, err)
		}
		for _, b := range batches {
			recs, err := b.Records()
			if err != nil {
				t.Fatalf("records of %s: %v", b, err)
			}
			for _, r := range recs {
				values = append(values, string(r.Value))
			}
		}
		off = res.NextOffset
	}
	return values
}

// segmentPosition finds the file position of the batch holding offset.
func segmentPosition(t testing.TB, l *Log, offset int64) (string, int64, int) {
	t.Helper()
	s := l.segments[l.segmentFor(offset)]
	for pos := int64(0); pos < s.sizeBytes; {
		h, err := s.header(pos)
		if err != nil {
			t.Fatalf("header at %d: %v", pos, err)
		}
		if h.last >= offset {
			return s.name, pos, h.size
		}
		pos += int64(h.size)
	}
	t.Fatalf("offset %d not found", offset)
	return "", 0, 0
}

// flipByte flips a bit of a file's byte in place, as bit rot would.
func (r *rig) flipByte(name string, pos int64) {
	r.t.Helper()
	f, err := r.fs.Open(name)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, pos); err != nil {
		r.t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, pos); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) fileBytes(name string) []byte {
	r.t.Helper()
	f, err := r.fs.Open(name)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	data, err := readWhole(f, 1<<30)
	if err != nil {
		r.t.Fatal(err)
	}
	return data
}

func (r *rig) exists(name string) bool {
	_, err := r.fs.Stat(name)
	return err == nil
}

func (r *rig) linesContaining(s string) int {
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fileWrappingFS hands out the files its FS creates and opens through
// wrap: the base of the test file systems that watch or fail operations on
// open files.
type fileWrappingFS struct {
	sim.FS
	wrap func(sim.File) sim.File
}

func (w *fileWrappingFS) Create(name string) (sim.File, error) {
	f, err := w.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return w.wrap(f), nil
}

func (w *fileWrappingFS) Open(name string) (sim.File, error) {
	f, err := w.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return w.wrap(f), nil
}
