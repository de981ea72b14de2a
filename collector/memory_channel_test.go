package collector

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The queue model: committed events in commit order, open transactions
// with their puts and takes, and commits waiting for room in order.
type mEvent struct {
	id   uint64
	body string
}

type mTxn struct {
	tx       *Txn
	puts     []string
	takes    []mEvent
	waiting  bool
	deadline time.Duration
	// result is what the model expects done to report: "" until done,
	// "ok" or "full".
	want, got string
}

type memoryModelRun struct {
	t         *rapid.T
	r         *rig
	ch        *MemoryChannel
	cfg       MemoryChannelConfig
	avail     []mEvent
	open      []*mTxn
	waiting   []*mTxn
	nextID    uint64
	nextBody  int
	completed []*mTxn
}

func TestMemoryChannelModel(t *testing.T) {
	for i := 0; i < modelRounds(); i++ {
		rapid.Check(t, memoryModelCheck)
	}
}

func memoryModelCheck(rt *rapid.T) {
	{
		r := newRig(rapid.Uint64().Draw(rt, "seed"))
		cfg := DefaultMemoryChannelConfig()
		cfg.Capacity = rapid.IntRange(1, 8).Draw(rt, "capacity")
		cfg.TransactionCapacity = rapid.IntRange(1, cfg.Capacity).Draw(rt, "transactionCapacity")
		cfg.KeepAlive = time.Second
		m := &memoryModelRun{t: rt, r: r, cfg: cfg, ch: NewMemoryChannel("c1", r.env, cfg), nextID: 1}
		rt.Repeat(map[string]func(*rapid.T){
			"begin":    m.begin,
			"put":      m.put,
			"take":     m.take,
			"commit":   m.commit,
			"rollback": m.rollback,
			"wait":     m.wait,
			"":         m.check,
		})
	}
}

func (m *memoryModelRun) pickOpen(t *rapid.T) *mTxn {
	var open []*mTxn
	for _, x := range m.open {
		if !x.waiting {
			open = append(open, x)
		}
	}
	if len(open) == 0 {
		t.Skip("no open transaction")
	}
	return rapid.SampledFrom(open).Draw(t, "txn")
}

func (m *memoryModelRun) begin(t *rapid.T) {
	if len(m.open) >= 4 {
		t.Skip("enough transactions")
	}
	m.open = append(m.open, &mTxn{tx: m.ch.Begin()})
}

func (m *memoryModelRun) put(t *rapid.T) {
	x := m.pickOpen(t)
	m.nextBody++
	body := fmt.Sprintf("e%05d", m.nextBody) // one width: bytes follow counts
	err := x.tx.Put(Event{Body: []byte(body)})
	if len(x.puts) >= m.cfg.TransactionCapacity {
		if !errors.Is(err, ErrTransactionFull) {
			t.Fatalf("put %d beyond transactionCapacity %d: %v", len(x.puts)+1, m.cfg.TransactionCapacity, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	x.puts = append(x.puts, body)
}

func (m *memoryModelRun) take(t *rapid.T) {
	x := m.pickOpen(t)
	e, ok, err := x.tx.Take()
	switch {
	case len(x.takes) >= m.cfg.TransactionCapacity:
		if !errors.Is(err, ErrTransactionFull) {
			t.Fatalf("take beyond transactionCapacity: %v", err)
		}
	case err != nil:
		t.Fatalf("take: %v", err)
	case len(m.avail) == 0:
		if ok {
			t.Fatalf("took %q from a channel the model says is empty", e.Body)
		}
	default:
		if !ok || string(e.Body) != m.avail[0].body {
			t.Fatalf("took %q (ok %v), want %q", e.Body, ok, m.avail[0].body)
		}
		x.takes = append(x.takes, m.avail[0])
		m.avail = m.avail[1:]
	}
}

func (m *memoryModelRun) occupied() int {
	n := len(m.avail)
	for _, x := range m.open {
		n += len(x.takes)
	}
	return n
}

func (m *memoryModelRun) fits(x *mTxn) bool {
	return m.occupied()-len(x.takes)+len(x.puts) <= m.cfg.Capacity
}

func (m *memoryModelRun) commit(t *rapid.T) {
	x := m.pickOpen(t)
	x.tx.Commit(func(err error) {
		switch {
		case err == nil:
			x.got = "ok"
		case errors.Is(err, ErrChannelFull):
			x.got = "full"
		default:
			x.got = err.Error()
		}
	})
	shrinks := len(x.puts) <= len(x.takes) // bodies are alike: bytes follow counts
	if (len(m.waiting) == 0 || shrinks) && m.fits(x) {
		m.apply(x)
	} else {
		x.waiting, x.deadline = true, m.r.w.Now()+m.cfg.KeepAlive
		m.waiting = append(m.waiting, x)
	}
}

func (m *memoryModelRun) apply(x *mTxn) {
	for _, body := range x.puts {
		m.avail = append(m.avail, mEvent{id: m.nextID, body: body})
		m.nextID++
	}
	x.want = "ok"
	m.close(x)
	m.wake()
}

func (m *memoryModelRun) close(x *mTxn) {
	x.waiting = false
	m.open = slices.DeleteFunc(m.open, func(o *mTxn) bool { return o == x })
	m.completed = append(m.completed, x)
}

func (m *memoryModelRun) wake() {
	for len(m.waiting) > 0 && m.fits(m.waiting[0]) {
		x := m.waiting[0]
		m.waiting = m.waiting[1:]
		m.apply(x)
	}
}

// returnTakes puts taken events back, keeping commit order.
func (m *memoryModelRun) returnTakes(takes []mEvent) {
	m.avail = append(m.avail, takes...)
	slices.SortFunc(m.avail, func(a, b mEvent) int { return int(a.id) - int(b.id) })
}

func (m *memoryModelRun) rollback(t *rapid.T) {
	x := m.pickOpen(t)
	x.tx.Rollback()
	m.returnTakes(x.takes)
	m.open = slices.DeleteFunc(m.open, func(o *mTxn) bool { return o == x })
}

// wait lets time pass: waiting commits past keep-alive fail, in order,
// each failure possibly making room for the next.
func (m *memoryModelRun) wait(t *rapid.T) {
	d := time.Duration(rapid.IntRange(1, 1500).Draw(t, "ms")) * time.Millisecond
	until := m.r.w.Now() + d
	m.r.advance(d)
	for len(m.waiting) > 0 && m.waiting[0].deadline <= until {
		x := m.waiting[0]
		m.waiting = m.waiting[1:]
		x.want = "full"
		m.returnTakes(x.takes)
		m.close(x)
		m.wake()
	}
}

func (m *memoryModelRun) check(t *rapid.T) {
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
	for _, x := range m.completed {
		if x.got != x.want {
			t.Fatalf("commit of puts %v takes %v reported %q, model says %q", x.puts, x.takes, x.got, x.want)
		}
	}
	for _, x := range m.open {
		if x.got != "" {
			t.Fatalf("commit of puts %v reported %q while the model has it waiting", x.puts, x.got)
		}
	}
	if m.ch.Size() != len(m.avail) {
		t.Fatalf("Size %d, model %d", m.ch.Size(), len(m.avail))
	}
	c := m.ch.Counters()
	if c.ChannelSize != int64(len(m.avail)) || c.ChannelCapacity != int64(m.cfg.Capacity) {
		t.Fatalf("counters %+v", c)
	}
}

func TestMemoryChannelByteCapacity(t *testing.T) {
	r := newRig(1)
	cfg := DefaultMemoryChannelConfig()
	cfg.ByteCapacity, cfg.ByteCapacityBufferPercentage, cfg.KeepAlive = 100, 20, time.Second
	ch := NewMemoryChannel("c1", r.env, cfg)
	tx := ch.Begin()
	for i := 0; i < 8; i++ {
		tx.Put(Event{Body: make([]byte, 10)})
	}
	var first error = errors.New("not called")
	tx.Commit(func(err error) { first = err })
	if first != nil {
		t.Fatalf("80 bytes into 100 less 20%%: %v", first)
	}
	tx = ch.Begin()
	tx.Put(Event{Body: make([]byte, 1)})
	var second error
	called := false
	tx.Commit(func(err error) { second, called = err, true })
	if called {
		t.Fatalf("a commit beyond byteCapacity completed at once: %v", second)
	}
	r.advance(2 * time.Second)
	if !errors.Is(second, ErrChannelFull) {
		t.Fatalf("after keep-alive: %v", second)
	}
	if c := ch.Counters(); c.EventPutSuccessCount != 8 || c.EventPutAttemptCount != 9 || c.ChannelSize != 8 {
		t.Fatalf("counters %+v", c)
	}
}

// TestTakeCommitDoesNotWaitBehindPuts: a full channel with a put waiting
// for room; a sink's take commit goes ahead at once (it is what makes the
// room) and the waiting put then completes.
func TestTakeCommitDoesNotWaitBehindPuts(t *testing.T) {
	r := newRig(1)
	cfg := DefaultMemoryChannelConfig()
	cfg.Capacity, cfg.TransactionCapacity = 2, 2
	ch := NewMemoryChannel("c1", r.env, cfg)
	fill := ch.Begin()
	fill.Put(Event{Body: []byte("a")})
	fill.Put(Event{Body: []byte("b")})
	fill.Commit(func(error) {})
	put := ch.Begin()
	put.Put(Event{Body: []byte("c")})
	var putErr error = errors.New("waiting")
	put.Commit(func(err error) { putErr = err })
	take := ch.Begin()
	take.Take()
	var takeErr error = errors.New("waiting")
	take.Commit(func(err error) { takeErr = err })
	if takeErr != nil || putErr != nil {
		t.Fatalf("take commit: %v; waiting put: %v", takeErr, putErr)
	}
	if ch.Size() != 2 {
		t.Fatalf("channel holds %d, want b and c", ch.Size())
	}
}
