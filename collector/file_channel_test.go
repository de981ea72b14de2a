package collector

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/simdisk"
	"github.com/sluice-sim/sluice/sim/world"
)

func testFileChannelConfig() FileChannelConfig {
	cfg := DefaultFileChannelConfig("fc")
	cfg.Capacity, cfg.TransactionCapacity = 10000, 8
	cfg.CheckpointInterval = 700 * time.Millisecond
	cfg.MaxFileSize = 1024
	return cfg
}

// withDataDirs gives cfg n data directories, each a log of its own.
func withDataDirs(cfg FileChannelConfig, n int) FileChannelConfig {
	cfg.DataDirs = DataDirsUnder("fc", n)
	return cfg
}

func openTestChannel(t interface{ Fatalf(string, ...any) }, r *rig, cfg FileChannelConfig) *FileChannel {
	ch, err := tryOpenTestChannel(r, cfg)
	if err != nil {
		t.Fatalf("open file channel: %v (log:\n%s)", err, r.log)
	}
	return ch
}

// tryOpenTestChannel opens the channel, letting simulated time run until
// it is ready or failed.
func tryOpenTestChannel(r *rig, cfg FileChannelConfig) (*FileChannel, error) {
	var ch *FileChannel
	openErr := errors.New("not ready after 5 s")
	done := false
	OpenFileChannel("c1", r.env, cfg, func(f *FileChannel, err error) { ch, openErr, done = f, err, true })
	for i := 0; i < 100 && !done; i++ {
		r.settle()
	}
	return ch, openErr
}

// fTxn is a transaction of the file channel model: committing ones await
// their sync.
type fTxn struct {
	tx         *Txn
	puts       []string
	takes      []mEvent
	committing bool
	ids        []uint64
	result     error
	finished   bool
}

// fileModelRun checks the file channel against a queue model through
// process kills, power losses and restarts on the simulated disk. Each
// event's model id is its commit order; bodies are unique.
type fileModelRun struct {
	t        *rapid.T
	r        *rig
	cfg      FileChannelConfig
	ch       *FileChannel
	avail    []mEvent
	open     []*fTxn
	nextBody int
	nextID   uint64
	idOf     map[string]uint64
	problems []string
	// failArmed says syncs may fail until the next settle: commits may
	// then fail, and a failed sync throws away what it covered.
	failArmed bool
	// takesAtRisk are the events of take-only commits answered since
	// the last settle: the channel answers those before their sync, so
	// a power loss may bring them back (at least once), never a kill.
	// takesAtRiskSyncFailed says a sync failed since some were answered:
	// their record may be gone, so any crash before the next checkpoint
	// may bring them back.
	takesAtRisk           []mEvent
	takesAtRiskSyncFailed bool
}

// failSync makes the disk's next sync fail: the commits it covers must
// fail, and their events must not come back after a restart.
func (m *fileModelRun) failSync(t *rapid.T) {
	m.r.w.Node(rigNode).Disk().FailSyncs(1)
	m.failArmed = true
}

// modelRounds is how many times the model tests run rapid's default number
// of checks, each from its own seed (a round takes a fraction of a second);
// -short runs one. Longer runs: -rapid.checks=20000.
func modelRounds() int {
	if testing.Short() {
		return 1
	}
	return 20
}

func TestFileChannelModel(t *testing.T) {
	for _, dirs := range []int{1, 3} {
		t.Run(fmt.Sprintf("dataDirs=%d", dirs), func(t *testing.T) {
			for i := 0; i < modelRounds(); i++ {
				rapid.Check(t, func(rt *rapid.T) { fileModelCheck(rt, dirs) })
			}
		})
	}
}

func fileModelCheck(rt *rapid.T, dataDirs int) {
	{
		r := newRig(rapid.Uint64().Draw(rt, "seed"))
		cfg := withDataDirs(testFileChannelConfig(), dataDirs)
		m := &fileModelRun{t: rt, r: r, cfg: cfg, nextID: 1, idOf: map[string]uint64{}}
		m.ch = openTestChannel(rt, r, cfg)
		rt.Repeat(map[string]func(*rapid.T){
			"begin":      m.begin,
			"put":        m.put,
			"take":       m.take,
			"commit":     m.commit,
			"churn":      m.churn,
			"rollback":   m.rollback,
			"settle":     func(*rapid.T) { m.settle() },
			"checkpoint": m.checkpoint,
			"failSync":   m.failSync,
			"kill":       func(t *rapid.T) { m.crash(t, false) },
			"powerLoss":  func(t *rapid.T) { m.crash(t, true) },
			"":           m.check,
		})
	}
}

func (m *fileModelRun) pickOpen(t *rapid.T) *fTxn {
	var open []*fTxn
	for _, x := range m.open {
		if !x.committing {
			open = append(open, x)
		}
	}
	if len(open) == 0 {
		t.Skip("no open transaction")
	}
	return rapid.SampledFrom(open).Draw(t, "txn")
}

func (m *fileModelRun) begin(t *rapid.T) {
	if len(m.open) >= 4 {
		t.Skip("enough transactions")
	}
	m.open = append(m.open, &fTxn{tx: m.ch.Begin()})
}

func (m *fileModelRun) put(t *rapid.T) { m.putInto(t, m.pickOpen(t)) }

func (m *fileModelRun) putInto(t *rapid.T, x *fTxn) {
	if len(x.puts) >= m.cfg.TransactionCapacity {
		t.Skip("transaction full")
	}
	m.nextBody++
	body := fmt.Sprintf("e%d-%s", m.nextBody, strings.Repeat("x", rapid.IntRange(0, 100).Draw(t, "pad")))
	if err := x.tx.Put(Event{Body: []byte(body), Headers: map[string]string{"n": fmt.Sprint(m.nextBody)}}); err != nil {
		t.Fatalf("put: %v", err)
	}
	x.puts = append(x.puts, body)
}

func (m *fileModelRun) take(t *rapid.T) { m.takeInto(t, m.pickOpen(t)) }

func (m *fileModelRun) takeInto(t *rapid.T, x *fTxn) {
	if len(x.takes) >= m.cfg.TransactionCapacity {
		t.Skip("transaction full")
	}
	e, ok, err := x.tx.Take()
	if err != nil {
		t.Fatalf("take: %v", err)
	}
	if len(m.avail) == 0 {
		if ok {
			t.Fatalf("took %q from a channel the model says is empty", e.Body)
		}
		return
	}
	if !ok || string(e.Body) != m.avail[0].body {
		t.Fatalf("took %q (ok %v), want %q", e.Body, ok, m.avail[0].body)
	}
	if e.Headers["n"] == "" {
		t.Fatalf("event %q lost its headers", e.Body)
	}
	x.takes = append(x.takes, m.avail[0])
	m.avail = m.avail[1:]
}

// commit starts a commit; it completes at the next settle.
func (m *fileModelRun) commit(t *rapid.T) { m.commitTxn(m.pickOpen(t)) }

func (m *fileModelRun) commitTxn(x *fTxn) {
	x.committing = true
	for _, body := range x.puts {
		x.ids = append(x.ids, m.nextID)
		m.idOf[body] = m.nextID
		m.nextID++
	}
	x.tx.Commit(func(err error) { x.result, x.finished = err, true })
}

// churn commits a transaction of puts, settles, and commits a take of as
// many of the oldest events, left in flight: with several data directories
// the take's record often lands in a log that replay reads before its
// put's, which the random walk alone reaches rarely.
func (m *fileModelRun) churn(t *rapid.T) {
	if len(m.open) >= 3 {
		t.Skip("enough transactions")
	}
	puts := &fTxn{tx: m.ch.Begin()}
	m.open = append(m.open, puts)
	n := rapid.IntRange(1, m.cfg.TransactionCapacity).Draw(t, "churn")
	for range n {
		m.putInto(t, puts)
	}
	m.commitTxn(puts)
	m.settle()
	takes := &fTxn{tx: m.ch.Begin()}
	m.open = append(m.open, takes)
	for i := 0; i < n && len(m.avail) > 0; i++ {
		m.takeInto(t, takes)
	}
	m.commitTxn(takes)
}

func (m *fileModelRun) rollback(t *rapid.T) {
	x := m.pickOpen(t)
	x.tx.Rollback()
	m.returnTakes(x.takes)
	m.open = slices.DeleteFunc(m.open, func(o *fTxn) bool { return o == x })
}

func (m *fileModelRun) returnTakes(takes []mEvent) {
	m.avail = append(m.avail, takes...)
	slices.SortFunc(m.avail, func(a, b mEvent) int { return int(a.id) - int(b.id) })
}

// settle lets every commit's sync complete; each must succeed, in order.
// Answered takes are durable after it, unless a sync may have failed.
func (m *fileModelRun) settle() {
	m.r.settle()
	m.reap(true)
	if m.failArmed && len(m.takesAtRisk) > 0 {
		m.takesAtRiskSyncFailed = true
	}
	if !m.takesAtRiskSyncFailed {
		m.takesAtRisk = nil
	}
	m.r.w.Node(rigNode).Disk().FailSyncs(0)
	m.failArmed = false
}

// reap moves finished commits into the model; with all set, every commit
// must have finished.
func (m *fileModelRun) reap(all bool) {
	for _, x := range slices.Clone(m.open) {
		if !x.committing || (!all && !x.finished) {
			continue
		}
		if !x.finished || (x.result != nil && !m.failArmed) {
			m.t.Fatalf("commit of %v not acknowledged after settling: finished %v, %v", x.puts, x.finished, x.result)
		}
		m.open = slices.DeleteFunc(m.open, func(o *fTxn) bool { return o == x })
		if x.result != nil {
			m.returnTakes(x.takes)
			continue
		}
		if len(x.puts) == 0 {
			m.takesAtRisk = append(m.takesAtRisk, x.takes...)
		}
		var puts []mEvent
		for i, body := range x.puts {
			puts = append(puts, mEvent{id: x.ids[i], body: body})
		}
		m.returnTakes(puts) // keeps commit order
	}
}

func (m *fileModelRun) checkpoint(t *rapid.T) {
	m.settle()
	var got error = errors.New("not called")
	m.ch.Checkpoint(func(err error) { got = err })
	m.r.settle()
	if got != nil {
		t.Fatalf("checkpoint: %v", got)
	}
	// The checkpoint leaves out every event taken, durable or not.
	m.takesAtRisk, m.takesAtRiskSyncFailed = nil, false
}

// crash kills the process or cuts the power, restarts, replays, and
// checks what came back: every acknowledged event still live, in order;
// of the commits in flight, a kill keeps all (their records were in the
// page cache) and a power loss any of them; of the takes answered before
// their sync returned, a power loss may bring any back; nothing else.
func (m *fileModelRun) crash(t *rapid.T, power bool) {
	m.reap(false)
	m.r.w.Node(rigNode).Disk().FailSyncs(0)
	var mustHave, mayHave []mEvent
	mustHave = append(mustHave, m.avail...)
	for _, x := range m.open {
		switch {
		case !x.committing:
			mustHave = append(mustHave, x.takes...)
		default:
			for i, body := range x.puts {
				mayHave = append(mayHave, mEvent{id: x.ids[i], body: body})
			}
			// A take in flight may or may not have become durable.
			mayHave = append(mayHave, x.takes...)
		}
	}
	if power || m.failArmed || m.takesAtRiskSyncFailed {
		mayHave = append(mayHave, m.takesAtRisk...)
	}
	m.takesAtRisk, m.takesAtRiskSyncFailed = nil, false
	m.r.crash(power)
	m.ch = openTestChannel(t, m.r, m.cfg)
	if !power {
		// A kill damages nothing: only what an earlier power loss tore
		// may still be reported.
		for _, p := range m.ch.Problems {
			if !slices.Contains(m.problems, p) {
				t.Fatalf("replay after a kill found new damage: %s", p)
			}
		}
	}
	m.problems = m.ch.Problems
	var got []mEvent
	for _, it := range m.ch.queue.snapshot() {
		body := string(it.ev.Body)
		got = append(got, mEvent{id: m.idOf[body], body: body})
	}
	for i := 1; i < len(got); i++ {
		if got[i].id <= got[i-1].id {
			t.Fatalf("after restart %s comes after %s, out of commit order", got[i].body, got[i-1].body)
		}
	}
	allowed := map[string]bool{}
	for _, e := range append(slices.Clone(mustHave), mayHave...) {
		allowed[e.body] = true
	}
	present := map[string]bool{}
	for _, e := range got {
		if !allowed[e.body] {
			t.Fatalf("after restart the channel holds %s, which was never committed or already taken", e.body)
		}
		present[e.body] = true
	}
	for _, e := range mustHave {
		if !present[e.body] {
			t.Fatalf("acknowledged event %s lost after restart (power loss %v); holds %v", e.body, power, got)
		}
	}
	if !power && !m.failArmed {
		for _, x := range m.open {
			if !x.committing {
				continue
			}
			for _, body := range x.puts {
				if !present[body] {
					t.Fatalf("event %s of a commit in flight lost by a kill, though its record was in the page cache", body)
				}
			}
		}
	}
	m.avail, m.open, m.failArmed = got, nil, false
}

func (m *fileModelRun) check(t *rapid.T) {
	var got []string
	for _, it := range m.ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	var want []string
	for _, e := range m.avail {
		want = append(want, e.body)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("channel holds %v, model %v", got, want)
	}
}

// TestFileChannelCorruptRecordIsReportedNotDelivered flips one bit in a
// committed record: after a restart the damage is reported, the record's
// events are not delivered, and the records before it are. With one data
// directory the record after it in the same file is lost with it (nothing
// after a bad record can be framed); with three it lies in another log and
// is delivered.
func TestFileChannelCorruptRecordIsReportedNotDelivered(t *testing.T) {
	for _, tc := range []struct {
		dataDirs int
		want     []string
	}{{1, []string{"event-0"}}, {3, []string{"event-0", "event-2"}}} {
		t.Run(fmt.Sprintf("dataDirs=%d", tc.dataDirs), func(t *testing.T) {
			corruptRecordIsReportedNotDelivered(t, tc.dataDirs, tc.want)
		})
	}
}

func corruptRecordIsReportedNotDelivered(t *testing.T, dataDirs int, want []string) {
	r := newRig(3)
	cfg := withDataDirs(testFileChannelConfig(), dataDirs)
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	var records []recordLoc
	for i := 0; i < 3; i++ {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(fmt.Sprintf("event-%d", i))})
		var commitErr error = errors.New("not called")
		tx.Commit(func(err error) { commitErr = err })
		r.settle()
		if commitErr != nil {
			t.Fatal(commitErr)
		}
		records = append(records, tx.loc)
	}
	r.crash(false)
	f, err := r.env.FS.Open(logFileName(cfg.DataDirs[records[1].log], records[1].file))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	pos := records[1].off + recordHeaderBytes + 10
	f.ReadAt(b, pos)
	b[0] ^= 0x04
	f.WriteAt(b, pos)
	f.Close()
	ch = openTestChannel(t, r, cfg)
	if len(ch.Problems) != 1 || !strings.Contains(ch.Problems[0], "checksum mismatch") {
		t.Fatalf("problems %v", ch.Problems)
	}
	var got []string
	for _, it := range ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the flip the channel holds %v, want %v", got, want)
	}
}

// TestFileChannelGroupCommit: commits that arrive while a sync is in
// flight share the next one.
func TestFileChannelGroupCommit(t *testing.T) {
	r := newRig(5)
	cfg := testFileChannelConfig()
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	syncs := 0
	ch.logs[0].file = &countingFile{File: ch.logs[0].file, syncs: &syncs}
	done := 0
	for i := 0; i < 50; i++ {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte("x")})
		tx.Commit(func(err error) {
			if err == nil {
				done++
			}
		})
	}
	r.settle()
	if done != 50 {
		t.Fatalf("%d of 50 commits acknowledged", done)
	}
	if syncs > 2 {
		t.Fatalf("50 concurrent commits took %d syncs; group commit shares them", syncs)
	}
}

// TestFileChannelSyncRoundsOverlap: a commit made while a group commit
// syncs begins a round of its own at once, up to syncRoundsInFlightMax,
// rather than waiting for that sync; commits still complete in the order
// they were made.
func TestFileChannelSyncRoundsOverlap(t *testing.T) {
	r := newRig(7)
	cfg := testFileChannelConfig()
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	const commits = 8
	var order []int
	peak := 0
	for i := 0; i < commits; i++ {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(fmt.Sprint(i))})
		tx.Commit(func(err error) {
			if err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
			order = append(order, i)
		})
		// Long enough for the round to begin, far shorter than a sync.
		r.advance(time.Microsecond)
		peak = max(peak, ch.syncing)
	}
	r.settle()
	if len(order) != commits || !slices.IsSorted(order) {
		t.Fatalf("commits completed in the order %v", order)
	}
	if peak < 2 || peak > syncRoundsInFlightMax {
		t.Fatalf("at most %d rounds synced at once; want 2..%d", peak, syncRoundsInFlightMax)
	}
}

// TestFileChannelFailedSyncFailsLaterRounds: when a round's sync fails,
// a later round's commit on the same file fails too though its own sync
// succeeded (on Linux a failed sync marks the dirty pages clean, so the
// next one finds nothing to write and succeeds), and writing moves to a
// new file where commits succeed again.
func TestFileChannelFailedSyncFailsLaterRounds(t *testing.T) {
	disk := simdisk.DefaultConfig()
	disk.SyncFailure = simdisk.SyncFailureLinux
	r := &rig{log: &bytes.Buffer{}}
	r.w = world.New(world.Config{Seed: 9, Log: r.log, Disk: disk})
	r.w.AddNode(rigNode, func(env sim.Env) { r.env = env; r.boots++ })
	r.advance(time.Millisecond)
	cfg := testFileChannelConfig()
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	results := map[string]error{}
	commit := func(body string) {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(body)})
		tx.Commit(func(err error) { results[body] = err })
	}
	r.w.Node(rigNode).Disk().FailSyncs(1)
	commit("a")
	r.advance(time.Microsecond)
	commit("b")
	r.advance(time.Microsecond)
	if ch.syncing != 2 {
		t.Fatalf("%d rounds syncing; the test needs a's and b's both in flight", ch.syncing)
	}
	file := ch.logs[0].fileID
	r.settle()
	if len(results) != 2 || results["a"] == nil || results["b"] == nil {
		t.Fatalf("after a failed sync: %v", results)
	}
	commit("c")
	r.settle()
	if results["c"] != nil || ch.logs[0].fileID == file {
		t.Fatalf("c: %v, still writing log file %d", results["c"], file)
	}
	if got := ch.queue.snapshot(); len(got) != 1 || string(got[0].ev.Body) != "c" {
		t.Fatalf("the channel holds %v, want only c", got)
	}
}

type countingFile struct {
	sim.File
	syncs *int
}

func (f *countingFile) Sync(done func(error)) { *f.syncs++; f.File.Sync(done) }

// TestFileChannelRemovesOldLogs: once a checkpoint is durable, log files
// holding nothing live are deleted.
func TestFileChannelRemovesOldLogs(t *testing.T) {
	r := newRig(9)
	cfg := testFileChannelConfig()
	cfg.CheckpointInterval = time.Hour
	ch := openTestChannel(t, r, cfg)
	for i := 0; i < 40; i++ {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(strings.Repeat("y", 200))})
		tx.Commit(func(error) {})
		r.settle()
		tx = ch.Begin()
		tx.Take()
		tx.Commit(func(error) {})
		r.settle()
	}
	before, _ := logFileIDs(r.env.FS, cfg.DataDirs[0])
	ch.Checkpoint(func(error) {})
	r.settle()
	after, _ := logFileIDs(r.env.FS, cfg.DataDirs[0])
	if len(before) < 5 || len(after) != 1 {
		t.Fatalf("log files before the checkpoint %v, after %v", before, after)
	}
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	if ch.Size() != 0 || len(ch.Problems) != 0 {
		t.Fatalf("after restart: %d events, problems %v", ch.Size(), ch.Problems)
	}
}

// TestFileChannelRefusesWhatItCannotRecord: a header name beyond the
// record format's 64 KiB fails the commit rather than being acknowledged
// and then refused by replay.
func TestFileChannelRefusesWhatItCannotRecord(t *testing.T) {
	r := newRig(13)
	ch := openTestChannel(t, r, testFileChannelConfig())
	tx := ch.Begin()
	tx.Put(Event{Headers: map[string]string{strings.Repeat("h", 70000): "v"}, Body: []byte("x")})
	var got error
	tx.Commit(func(err error) { got = err })
	r.settle()
	if got == nil || !strings.Contains(got.Error(), "header name of 70000 bytes") || ch.Size() != 0 {
		t.Fatalf("commit: %v, channel holds %d", got, ch.Size())
	}
}

// TestLogDecodersRejectGarbage: whatever bytes a damaged disk holds, the
// record and checkpoint decoders return an error or a value, never panic,
// and a record survives its own round trip.
func TestLogDecodersRejectGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		junk := rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "junk")
		decodeRecord(junk)
		decodeCheckpoint(junk)
		var puts []Event
		var ids []uint64
		for i, n := 0, rapid.IntRange(0, 5).Draw(t, "puts"); i < n; i++ {
			e := Event{Body: rapid.SliceOfN(rapid.Byte(), 0, 50).Draw(t, "body")}
			if rapid.Bool().Draw(t, "headers") {
				e.Headers = map[string]string{"k": rapid.String().Draw(t, "v")}
			}
			puts, ids = append(puts, e), append(ids, uint64(i+1))
		}
		takes := []item{{id: rapid.Uint64().Draw(t, "take")}}
		rec := encodeRecord(nil, ids, puts, takes)
		d, err := decodeRecord(rec[recordHeaderBytes:])
		if err != nil || len(d.puts) != len(puts) || d.takes[0] != takes[0].id {
			t.Fatalf("round trip: %v, %d puts", err, len(d.puts))
		}
		for i := range puts {
			if string(d.puts[i].Body) != string(puts[i].Body) || d.puts[i].Headers["k"] != puts[i].Headers["k"] {
				t.Fatalf("put %d came back as %+v, was %+v", i, d.puts[i], puts[i])
			}
		}
	})
}

// TestFileChannelTakeAnsweredBeforeItsSync: a commit of takes alone is
// answered when its record is written, before any sync; the sync follows,
// after which a power loss does not bring the events back. A kill right
// after the answer does not either (the record is in the page cache); a
// power loss then may, and brings back nothing else.
func TestFileChannelTakeAnsweredBeforeItsSync(t *testing.T) {
	r := newRig(7)
	cfg := testFileChannelConfig()
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	put := func(bodies ...string) {
		tx := ch.Begin()
		for _, b := range bodies {
			tx.Put(Event{Body: []byte(b)})
		}
		var result error = errors.New("not answered")
		tx.Commit(func(err error) { result = err })
		r.settle()
		if result != nil {
			t.Fatalf("put %v: %v", bodies, result)
		}
	}
	take := func(n int) {
		tx := ch.Begin()
		for range n {
			if _, ok, err := tx.Take(); !ok || err != nil {
				t.Fatalf("take: %v %v", ok, err)
			}
		}
		var result error = errors.New("not answered")
		tx.Commit(func(err error) { result = err })
		if result != nil {
			t.Fatalf("take commit not answered at once: %v", result)
		}
	}
	holds := func() []string {
		var got []string
		for _, it := range ch.queue.snapshot() {
			got = append(got, string(it.ev.Body))
		}
		return got
	}
	put("a", "b", "c")
	syncs := 0
	ch.logs[0].file = &countingFile{File: ch.logs[0].file, syncs: &syncs}
	take(2)
	if syncs != 0 {
		t.Fatalf("%d syncs before the take commit was answered", syncs)
	}
	r.settle()
	if syncs == 0 {
		t.Fatalf("the take's record was never synced")
	}
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	if got := holds(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after its sync and a power loss the channel holds %v, want [c]", got)
	}
	take(1)
	r.crash(false)
	ch = openTestChannel(t, r, cfg)
	if got := holds(); len(got) != 0 {
		t.Fatalf("after a kill the channel holds %v, taken before it", got)
	}
	put("d")
	take(1)
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	if got := holds(); len(got) > 1 || (len(got) == 1 && got[0] != "d") {
		t.Fatalf("after a power loss before the take's sync the channel holds %v, want [] or [d]", got)
	}
}

// TestFileChannelReadErrorIsNotDamage: a read that fails while the channel
// replays its log is the disk's error, not a damaged record: the bytes are
// intact on the platter. An open under read errors replays again (and
// after openAttemptsMax tries fails, for the agent to start again); it
// never serves a channel that dropped the records after a failed read.
func TestFileChannelReadErrorIsNotDamage(t *testing.T) {
	r := newRig(21)
	cfg := testFileChannelConfig()
	cfg.CheckpointInterval = time.Hour
	ch := openTestChannel(t, r, cfg)
	const events = 60
	var want []string
	for i := range events {
		if i == events/2 {
			ch.Checkpoint(func(error) {})
			r.settle()
		}
		body := fmt.Sprintf("event-%02d", i)
		want = append(want, body)
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(body)})
		var commitErr error = errors.New("not called")
		tx.Commit(func(err error) { commitErr = err })
		r.settle()
		if commitErr != nil {
			t.Fatal(commitErr)
		}
	}
	opened, retried := 0, 0
	for attempt := range 10 {
		r.crash(false)
		r.log.Reset()
		r.w.Node(rigNode).Disk().SetReadErrorRate(0.01)
		got, openErr := tryOpenTestChannel(r, cfg)
		r.w.Node(rigNode).Disk().SetReadErrorRate(0)
		if strings.Contains(r.log.String(), "replaying again") {
			retried++
		}
		if openErr != nil {
			continue
		}
		opened++
		if body := channelBodies(got); !slices.Equal(body, want) {
			t.Fatalf("open %d under read errors served %d events (problems %v), want all %d",
				attempt, len(body), got.Problems, events)
		}
	}
	if opened == 0 || retried == 0 {
		t.Fatalf("of 10 opens under read errors %d served, %d replayed again", opened, retried)
	}
}

// channelBodies lists the bodies a channel holds, in order.
func channelBodies(ch *FileChannel) []string {
	var bodies []string
	for _, it := range ch.queue.snapshot() {
		bodies = append(bodies, string(it.ev.Body))
	}
	return bodies
}

// TestFileChannelDamagedCheckpointReplaysEveryLog: a bit flipped in the
// checkpoint is reported, and replaying every log file left finds the
// same events the checkpoint would have: log files are removed only below
// every event the last durable checkpoint held live.
func TestFileChannelDamagedCheckpointReplaysEveryLog(t *testing.T) {
	r := newRig(23)
	cfg := testFileChannelConfig()
	cfg.CheckpointInterval = time.Hour
	ch := openTestChannel(t, r, cfg)
	commit := func(tx *Txn) {
		var commitErr error = errors.New("not called")
		tx.Commit(func(err error) { commitErr = err })
		r.settle()
		if commitErr != nil {
			t.Fatal(commitErr)
		}
	}
	for round := range 3 {
		for i := range 20 {
			tx := ch.Begin()
			tx.Put(Event{Body: []byte(fmt.Sprintf("event-%d-%02d", round, i))})
			commit(tx)
		}
		tx := ch.Begin()
		for range 15 {
			tx.Take()
		}
		commit(tx)
		ch.Checkpoint(func(error) {})
		r.settle()
	}
	want := channelBodies(ch)
	if ids, _ := logFileIDs(r.env.FS, cfg.DataDirs[0]); len(want) == 0 || ids[0] == 1 {
		t.Fatalf("%d events live, log files %v: the test needs old logs removed", len(want), ids)
	}
	r.crash(false)
	if flips := r.w.Node(rigNode).Disk().CorruptFile(path.Join(cfg.CheckpointDir, checkpointName), 2); len(flips) != 2 {
		t.Fatalf("flips %v", flips)
	}
	ch = openTestChannel(t, r, cfg)
	if len(ch.Problems) != 1 || !strings.Contains(ch.Problems[0], "checkpoint damaged") {
		t.Fatalf("problems %v", ch.Problems)
	}
	if got := channelBodies(ch); !slices.Equal(got, want) {
		t.Fatalf("after the damaged checkpoint the channel holds %v, want %v", got, want)
	}
	if r.w.Probes()["collector/file-channel-checkpoint-damaged"] == 0 {
		t.Fatalf("probe not hit: %v", r.w.Probes())
	}
}

// TestFileChannelTakeInAnotherLogReplays: with two data directories the
// logs are taken in turn, so the take of an event put in the second log
// lands in the first, which replay reads before the second. The put
// found after its take must stay taken, and be reported as taken.
func TestFileChannelTakeInAnotherLogReplays(t *testing.T) {
	for _, power := range []bool{false, true} {
		r := newRig(21)
		cfg := withDataDirs(testFileChannelConfig(), 2)
		cfg.CheckpointInterval = time.Hour
		ch := openTestChannel(t, r, cfg)
		commit := func(tx *Txn) {
			t.Helper()
			var commitErr error = errors.New("not called")
			tx.Commit(func(err error) { commitErr = err })
			r.settle()
			if commitErr != nil {
				t.Fatal(commitErr)
			}
		}
		put := func(body string) recordLoc {
			tx := ch.Begin()
			tx.Put(Event{Body: []byte(body)})
			commit(tx)
			return tx.loc
		}
		take := func(want string) recordLoc {
			tx := ch.Begin()
			e, ok, err := tx.Take()
			if !ok || err != nil || string(e.Body) != want {
				t.Fatalf("took %q (%v, %v), want %s", e.Body, ok, err, want)
			}
			commit(tx)
			return tx.loc
		}
		locs := []recordLoc{put("a"), put("b"), take("a"), put("c"), take("b")}
		for i, wantLog := range []uint32{0, 1, 0, 1, 0} {
			if locs[i].log != wantLog {
				t.Fatalf("record %d in log %d, want %d (records %v)", i, locs[i].log, wantLog, locs)
			}
		}
		r.crash(power)
		ch = openTestChannel(t, r, cfg)
		var got []string
		for _, it := range ch.queue.snapshot() {
			got = append(got, string(it.ev.Body))
		}
		if !slices.Equal(got, []string{"c"}) || len(ch.Problems) != 0 {
			t.Fatalf("power loss %v: after restart the channel holds %v (problems %v), want [c]", power, got, ch.Problems)
		}
		var taken []string
		for _, e := range ch.claimReplayedTakes() {
			taken = append(taken, string(e.Body))
		}
		slices.Sort(taken)
		if !slices.Equal(taken, []string{"a", "b"}) {
			t.Fatalf("replay reports taken %v, want [a b]", taken)
		}
		// A put after the restart must not reuse b's id, which only
		// the take in the first log names.
		put("d")
		r.crash(false)
		ch = openTestChannel(t, r, cfg)
		got = got[:0]
		for _, it := range ch.queue.snapshot() {
			got = append(got, string(it.ev.Body))
		}
		if !slices.Equal(got, []string{"c", "d"}) {
			t.Fatalf("after the second restart the channel holds %v, want [c d]", got)
		}
	}
}

// TestFileChannelCheckpointNamesEveryLog: a checkpoint names a position in
// every log and old files are removed per directory; a restart from it
// finds the live events of every log, and a checkpoint naming more logs
// than dataDirs refuses to open.
func TestFileChannelCheckpointNamesEveryLog(t *testing.T) {
	r := newRig(23)
	cfg := withDataDirs(testFileChannelConfig(), 3)
	cfg.CheckpointInterval = time.Hour
	ch := openTestChannel(t, r, cfg)
	for i := 0; i < 60; i++ {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(fmt.Sprintf("%03d-%s", i, strings.Repeat("y", 200)))})
		tx.Commit(func(error) {})
		r.settle()
		if i%3 != 0 {
			continue
		}
		tx = ch.Begin()
		tx.Take()
		tx.Commit(func(error) {})
		r.settle()
	}
	var before, after [][]uint32
	for _, dir := range cfg.DataDirs {
		ids, _ := logFileIDs(r.env.FS, dir)
		before = append(before, ids)
	}
	ch.Checkpoint(func(error) {})
	r.settle()
	for _, dir := range cfg.DataDirs {
		ids, _ := logFileIDs(r.env.FS, dir)
		after = append(after, ids)
	}
	removed := 0
	for i := range before {
		removed += len(before[i]) - len(after[i])
	}
	if removed == 0 {
		t.Fatalf("no log file removed: before %v, after %v", before, after)
	}
	want := ch.queue.snapshot()
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	got := ch.queue.snapshot()
	if len(got) != len(want) || len(ch.Problems) != 0 {
		t.Fatalf("after restart %d events (problems %v), want %d", len(got), ch.Problems, len(want))
	}
	for i := range got {
		if !slices.Equal(got[i].ev.Body, want[i].ev.Body) {
			t.Fatalf("event %d after restart %q, want %q", i, got[i].ev.Body, want[i].ev.Body)
		}
	}
	r.crash(false)
	fewer := cfg
	fewer.DataDirs = cfg.DataDirs[:2]
	_, openErr := tryOpenTestChannel(r, fewer)
	if openErr == nil || !strings.Contains(openErr.Error(), "names 3 data directories, dataDirs 2") {
		t.Fatalf("open with a directory left out: %v", openErr)
	}
	reordered := cfg
	reordered.DataDirs = []string{cfg.DataDirs[1], cfg.DataDirs[0], cfg.DataDirs[2]}
	_, openErr = tryOpenTestChannel(r, reordered)
	if openErr == nil || !strings.Contains(openErr.Error(), "reordered or renamed") {
		t.Fatalf("open with the directories reordered: %v", openErr)
	}
}

// TestFileChannelAddsADataDirectory: a one-directory channel's version-1
// checkpoint opens with a second directory added after the first; the new
// log is replayed from its start, and a later restart finds both logs'
// events.
func TestFileChannelAddsADataDirectory(t *testing.T) {
	r := newRig(25)
	cfg := testFileChannelConfig()
	cfg.CheckpointInterval = time.Hour
	ch := openTestChannel(t, r, cfg)
	putOne := func(body string) {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(body)})
		tx.Commit(func(error) {})
		r.settle()
	}
	putOne("a")
	putOne("b")
	ch.Checkpoint(func(error) {})
	r.settle()
	putOne("c")
	r.crash(false)
	cfg.DataDirs = append(cfg.DataDirs, "fc/data-added")
	ch = openTestChannel(t, r, cfg)
	putOne("d")
	putOne("e")
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	var got []string
	for _, it := range ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) || len(ch.Problems) != 0 {
		t.Fatalf("after adding a directory the channel holds %v (problems %v)", got, ch.Problems)
	}
	if names, _ := r.env.FS.List("fc/data-added"); len(names) == 0 {
		t.Fatal("the added directory holds no log file")
	}
}

// TestFileChannelShortAppendThenFailedRollKeepsLaterCommits: an append
// cut short leaves bytes replay stops at; when the roll to the next file
// fails too, the following commit must not land after those bytes (it
// would be acknowledged, then dropped by replay), but roll first.
func TestFileChannelShortAppendThenFailedRollKeepsLaterCommits(t *testing.T) {
	r := newRig(31)
	cfg := testFileChannelConfig()
	cfg.CheckpointInterval = time.Hour
	cfg.MaxFileSize = 1 << 20
	ch := openTestChannel(t, r, cfg)
	disk := r.w.Node(rigNode).Disk()
	commit := func(body string) error {
		tx := ch.Begin()
		tx.Put(Event{Body: []byte(body)})
		var commitErr error = errors.New("not called")
		tx.Commit(func(err error) { commitErr = err })
		r.settle()
		return commitErr
	}
	if err := commit("before"); err != nil {
		t.Fatal(err)
	}
	lg := ch.logs[0]
	torn := false
	for i := 0; i < 20 && !torn; i++ {
		size := lg.fileSize
		disk.SetMetaErrorRate(1) // the append is cut short, the roll's create fails
		err := commit(fmt.Sprintf("refused-%d", i))
		disk.SetMetaErrorRate(0)
		if err == nil {
			t.Fatal("a commit whose append failed succeeded")
		}
		info, statErr := r.env.FS.Stat(logFileName(lg.dir, lg.fileID))
		torn = statErr == nil && info.Size > size
	}
	if !torn {
		t.Fatal("no short append left bytes in 20 tries")
	}
	if err := commit("after"); err != nil {
		t.Fatal(err)
	}
	r.crash(true)
	ch = openTestChannel(t, r, cfg)
	if got := channelBodies(ch); !slices.Equal(got, []string{"before", "after"}) {
		t.Fatalf("after restart the channel holds %v, want [before after] (problems %v)", got, ch.Problems)
	}
}
