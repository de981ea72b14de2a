package collector

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

func openSpillable(t interface{ Fatalf(string, ...any) }, r *rig, cfg SpillableChannelConfig) *SpillableChannel {
	var ch *SpillableChannel
	var openErr error
	done := false
	OpenSpillableChannel("c1", r.env, cfg, func(s *SpillableChannel, err error) { ch, openErr, done = s, err, true })
	for i := 0; i < 100 && !done; i++ {
		r.settle()
	}
	if openErr != nil || ch == nil {
		t.Fatalf("open spillable channel: %v (log:\n%s)", openErr, r.log)
	}
	return ch
}

// spillModel checks a spillable channel against a queue model: batches
// put and taken (committed or rolled back) one at a time, and crashes
// (kills and power losses) after which exactly the events that had
// overflowed to disk are left, in commit order (and, after a power loss,
// any of the events taken since the last sync returned: a take is
// answered before its sync, at least once).
type spillModel struct {
	r     *rig
	cfg   SpillableChannelConfig
	ch    *SpillableChannel
	queue []string
	next  int
	// takenUnsynced are the events taken since the simulation last ran
	// long enough for every sync to return.
	takenUnsynced []string
}

func TestSpillableChannelModel(t *testing.T) {
	for i := 0; i < modelRounds(); i++ {
		rapid.Check(t, func(rt *rapid.T) {
			r := newRig(rapid.Uint64().Draw(rt, "seed"))
			cfg := SpillableChannelConfig{
				MemoryCapacity:      rapid.IntRange(0, 6).Draw(rt, "memoryCapacity"),
				OverflowCapacity:    rapid.IntRange(0, 12).Draw(rt, "overflowCapacity"),
				TransactionCapacity: rapid.IntRange(1, 4).Draw(rt, "transactionCapacity"),
				Overflow:            withDataDirs(testFileChannelConfig(), rapid.IntRange(1, 3).Draw(rt, "dataDirs")),
			}
			if cfg.MemoryCapacity+cfg.OverflowCapacity < cfg.TransactionCapacity {
				rt.Skip("capacity below transactionCapacity")
			}
			m := &spillModel{r: r, cfg: cfg, ch: openSpillable(rt, r, cfg)}
			rt.Repeat(map[string]func(*rapid.T){
				"put":   m.put,
				"take":  m.take,
				"crash": m.crash,
				"":      m.check,
			})
		})
	}
}

func (m *spillModel) commit(t *rapid.T, tx *Txn) error {
	var result error
	done := false
	tx.Commit(func(err error) { result, done = err, true })
	for i := 0; i < 100 && !done; i++ {
		m.r.settle()
		m.takenUnsynced = nil
	}
	if !done {
		t.Fatalf("commit never completed")
	}
	return result
}

func (m *spillModel) put(t *rapid.T) {
	n := rapid.IntRange(1, m.cfg.TransactionCapacity).Draw(t, "puts")
	tx := m.ch.Begin()
	var bodies []string
	for i := 0; i < n; i++ {
		m.next++
		bodies = append(bodies, fmt.Sprintf("e%d", m.next))
		if err := tx.Put(Event{Body: []byte(bodies[i])}); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	err := m.commit(t, tx)
	fits := len(m.queue)+n <= m.cfg.MemoryCapacity+m.cfg.OverflowCapacity
	switch {
	case fits && err != nil:
		t.Fatalf("commit of %d into %d/%d failed: %v", n, len(m.queue), m.cfg.MemoryCapacity+m.cfg.OverflowCapacity, err)
	case !fits && err == nil:
		t.Fatalf("commit of %d into %d/%d succeeded", n, len(m.queue), m.cfg.MemoryCapacity+m.cfg.OverflowCapacity)
	case err == nil:
		m.queue = append(m.queue, bodies...)
	}
}

func (m *spillModel) take(t *rapid.T) {
	n := rapid.IntRange(1, m.cfg.TransactionCapacity).Draw(t, "takes")
	tx := m.ch.Begin()
	var got []string
	for i := 0; i < n; i++ {
		e, ok, err := tx.Take()
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		if !ok {
			break
		}
		got = append(got, string(e.Body))
	}
	want := m.queue[:min(n, len(m.queue))]
	if !slices.Equal(got, want) {
		t.Fatalf("took %v, model front %v", got, want)
	}
	if rapid.Bool().Draw(t, "rollback") {
		tx.Rollback()
		return
	}
	if err := m.commit(t, tx); err != nil {
		t.Fatalf("commit of takes: %v", err)
	}
	m.queue = m.queue[len(got):]
	m.takenUnsynced = append(m.takenUnsynced, got...)
}

func (m *spillModel) crash(t *rapid.T) {
	power := rapid.Bool().Draw(t, "power")
	var survivors []string
	for _, it := range m.ch.queue.snapshot() {
		if m.ch.overflow != nil {
			if _, ok := m.ch.overflow.live[it.id]; ok {
				survivors = append(survivors, string(it.ev.Body))
			}
		}
	}
	if got := m.ch.queue.len() - len(survivors); got != m.ch.MemorySize() {
		t.Fatalf("%d queued events are in memory, the channel counts %d", got, m.ch.MemorySize())
	}
	m.r.crash(power)
	m.ch = openSpillable(t, m.r, m.cfg)
	m.queue = survivors
	if power {
		m.queue = m.withTakenBack(t, survivors)
	}
	m.takenUnsynced = nil
	m.check(t)
}

// withTakenBack is survivors with the events of takenUnsynced the
// channel brought back after a power loss, after checking that it holds
// nothing else and all in commit order (bodies count up in commit order).
func (m *spillModel) withTakenBack(t *rapid.T, survivors []string) []string {
	var got []string
	for _, it := range m.ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	var rest []string
	for i, body := range got {
		if i > 0 && bodyNumber(body) <= bodyNumber(got[i-1]) {
			t.Fatalf("after a power loss %s comes after %s, out of commit order", body, got[i-1])
		}
		if !slices.Contains(m.takenUnsynced, body) {
			rest = append(rest, body)
		}
	}
	if !slices.Equal(rest, survivors) {
		t.Fatalf("after a power loss the channel holds %v, want %v and perhaps some of %v", got, survivors, m.takenUnsynced)
	}
	return got
}

func bodyNumber(body string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(body, "e"))
	if err != nil {
		panic(fmt.Sprintf("model body %q", body))
	}
	return n
}

func (m *spillModel) check(t *rapid.T) {
	var got []string
	for _, it := range m.ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	if !slices.Equal(got, m.queue) {
		t.Fatalf("channel holds %v, model %v", got, m.queue)
	}
	if m.ch.MemorySize() > m.cfg.MemoryCapacity {
		t.Fatalf("%d events in memory, memoryCapacity %d", m.ch.MemorySize(), m.cfg.MemoryCapacity)
	}
}

// TestSpillableChannelConfigured runs a SPILLABLEMEMORY channel from a
// Flume configuration behind a sink that cannot deliver: 100 events stay
// in memory, the other 400 spill to disk, and after a crash exactly those
// 400 are left, in order, before
// what the restarted source puts again.
func TestSpillableChannelConfigured(t *testing.T) {
	text := `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = seq
a.sources.r1.totalEvents = 500
a.sources.r1.batchSize = 50
a.sources.r1.channels = c1
a.channels.c1.type = SPILLABLEMEMORY
a.channels.c1.memoryCapacity = 100
a.channels.c1.overflowCapacity = 1000
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
` + stuckSink
	aw := newAgentWorld(t, 1, text, "a")
	aw.run(2 * time.Second)
	ch := aw.agent.Channel("c1").(*SpillableChannel)
	if ch.Size() != 500 || ch.MemorySize() != 100 {
		t.Fatalf("channel holds %d, %d in memory", ch.Size(), ch.MemorySize())
	}
	if m := aw.agent.Metrics()["CHANNEL.c1"]; m["ChannelCapacity"] != "1100" || m["EventPutSuccessCount"] != "500" {
		t.Fatalf("counters %v", m)
	}
	if err := aw.w.Kill("collector"); err != nil {
		t.Fatal(err)
	}
	if err := aw.w.Restart("collector"); err != nil {
		t.Fatal(err)
	}
	aw.run(50 * time.Millisecond)
	ch = aw.agent.Channel("c1").(*SpillableChannel)
	var got []string
	for _, it := range ch.queue.snapshot() {
		got = append(got, string(it.ev.Body))
	}
	var want []string
	for i := 100; i < 500; i++ {
		want = append(want, fmt.Sprint(i))
	}
	// The restarted seq source puts 0..499 again after the survivors.
	if len(got) < 400 || strings.Join(got[:400], ",") != strings.Join(want, ",") {
		t.Fatalf("after the crash the channel holds %d events: %.300v", len(got), got)
	}
}

// TestSpillableChannelReportsReplayedTakes kills an agent whose sink took
// every event from a SPILLABLEMEMORY channel with no memory, so that each
// event went through the overflow: on restart the overflow's replay finds
// the puts and takes of all of them, and the agent reports those takes
// through OnCommit before any new commit, as it does a file channel's.
func TestSpillableChannelReportsReplayedTakes(t *testing.T) {
	text := `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = seq
a.sources.r1.totalEvents = 40
a.sources.r1.batchSize = 10
a.sources.r1.channels = c1
a.channels.c1.type = SPILLABLEMEMORY
a.channels.c1.memoryCapacity = 0
a.channels.c1.overflowCapacity = 100
a.channels.c1.transactionCapacity = 10
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
a.sinks.k1.type = null
a.sinks.k1.batchSize = 10
a.sinks.k1.channel = c1
`
	cfg, err := config.Parse(text, "a", nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var logBuf bytes.Buffer
	w := world.New(world.Config{Seed: 1, Log: &logBuf})
	type commit struct{ puts, takes []string }
	var commits []commit
	bodies := func(events []Event) []string {
		var out []string
		for _, e := range events {
			out = append(out, string(e.Body))
		}
		return out
	}
	w.AddNode("collector", func(env sim.Env) {
		onCommit := func(channel string, puts, takes []Event) {
			commits = append(commits, commit{bodies(puts), bodies(takes)})
		}
		Start(cfg, Options{OnCommit: onCommit, OnFatal: func(err error) { t.Errorf("agent: %v", err) }}, nil)(env)
	})
	w.Run(w.Now()+2*time.Second, 0)
	taken := 0
	for _, c := range commits {
		taken += len(c.takes)
	}
	if taken != 40 {
		t.Fatalf("the sink took %d of 40 events before the kill:\n%s", taken, logBuf.String())
	}
	if err := w.Kill("collector"); err != nil {
		t.Fatal(err)
	}
	commits = nil
	if err := w.Restart("collector"); err != nil {
		t.Fatal(err)
	}
	w.Run(w.Now()+100*time.Millisecond, 0)
	if len(commits) == 0 || len(commits[0].puts) != 0 || len(commits[0].takes) != 40 {
		t.Fatalf("after the restart the first commit reported is %+v, want the 40 replayed takes", commits[:min(len(commits), 1)])
	}
	if got := strings.Join(commits[0].takes, ","); !strings.HasPrefix(got, "0,1,2,") {
		t.Fatalf("replayed takes %s, want 0..39 in order", got)
	}
}
