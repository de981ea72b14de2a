package checkers

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/checkers/history"
)

// chooser makes the simulator's choices: rapid's draws in property tests
// (so failures shrink), a seeded PCG in benchmarks.
type chooser interface {
	// intn returns a choice in [0, n).
	intn(n int) int
}

type rapidChooser struct{ t *rapid.T }

func (c rapidChooser) intn(n int) int { return rapid.IntRange(0, n-1).Draw(c.t, "choice") }

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }

// simConfig shapes a simulated run.
type simConfig struct {
	partitions  int
	producers   int
	consumers   int
	steps       int
	inflightMax int // per producer
	batchMax    int // records per partition per poll
	// landAnyOrder lets a producer's sends to a partition land in any
	// order, as a non-idempotent producer's retries may.
	landAnyOrder bool
}

// simSend is a send in the simulated log's world.
type simSend struct {
	value     string
	tp        int32
	proc      int
	landed    bool
	offset    int64
	completed bool
	infoDone  bool
}

type simConsumer struct {
	proc     int
	busy     bool
	f        history.F
	assigned []int32
	pos      map[int32]int64
}

// logSim is a correct partitioned log with asynchronous producers and
// sequential consumers; it records a history every checker must accept.
//
// A send lands (is appended) some time after its invoke and is
// acknowledged after it lands; one producer's sends to a partition land in
// invoke order, as with an idempotent producer (unless landAnyOrder), but
// complete in any order.
// A send may fail only before it lands and then never lands; an info send
// may land later or never. A poll reads at its completion, from each
// assigned partition's position onwards; an info poll consumes records it
// does not report; an assign moves positions anywhere. The run ends with a
// drain: a fresh consumer reads every partition from offset 0 to its end.
type logSim struct {
	c        chooser
	cfg      simConfig
	rec      history.Log
	now      int64
	logs     [][]string
	nextVal  int
	inflight []*simSend   // not yet completed
	queues   [][]*simSend // per producer*partitions+tp: not landed, may land, invoke order
	cons     []*simConsumer
}

func simulate(c chooser, cfg simConfig) history.History {
	s := &logSim{c: c, cfg: cfg, logs: make([][]string, cfg.partitions),
		queues: make([][]*simSend, cfg.producers*cfg.partitions)}
	s.rec.Now = func() int64 { s.now += 1000; return s.now }
	for i := range cfg.consumers {
		s.cons = append(s.cons, &simConsumer{proc: 100 + i, pos: map[int32]int64{}})
	}
	for range cfg.steps {
		s.step()
	}
	s.finish()
	return s.rec.Ops
}

func (s *logSim) tp(p int32) history.TopicPartition {
	return history.TopicPartition{Topic: topic, Partition: p}
}

func (s *logSim) queue(proc int, tp int32) *[]*simSend {
	return &s.queues[proc*s.cfg.partitions+int(tp)]
}

func (s *logSim) step() {
	// Weights make acknowledgements commoner than failures, as in a run
	// with faults now and then.
	type action struct {
		weight int
		do     func()
	}
	var acts []action
	perProc := make([]int, s.cfg.producers)
	var landed, unlanded, infoUnlanded []*simSend
	for _, x := range s.inflight {
		perProc[x.proc]++
	}
	for _, x := range s.inflight {
		if x.landed {
			landed = append(landed, x)
		} else {
			unlanded = append(unlanded, x)
		}
	}
	for _, q := range s.queues {
		for _, x := range q {
			if x.infoDone {
				infoUnlanded = append(infoUnlanded, x)
			}
		}
	}
	var heads []*simSend
	for _, q := range s.queues {
		switch {
		case s.cfg.landAnyOrder:
			heads = append(heads, q...)
		case len(q) > 0:
			heads = append(heads, q[0])
		}
	}
	var idle, busy []*simConsumer
	for _, c := range s.cons {
		if c.busy {
			busy = append(busy, c)
		} else {
			idle = append(idle, c)
		}
	}
	var free []int
	for p, n := range perProc {
		if n < s.cfg.inflightMax {
			free = append(free, p)
		}
	}
	pick := func(n int) int { return s.c.intn(n) }
	if len(free) > 0 {
		acts = append(acts, action{4, func() { s.invokeSend(free[pick(len(free))]) }})
	}
	if len(heads) > 0 {
		acts = append(acts, action{4, func() { s.land(heads[pick(len(heads))]) }})
	}
	if len(landed) > 0 {
		acts = append(acts, action{4, func() { s.complete(landed[pick(len(landed))], history.OK) }})
	}
	if len(unlanded) > 0 {
		acts = append(acts, action{1, func() { s.complete(unlanded[pick(len(unlanded))], history.Fail) }})
	}
	if len(s.inflight) > 0 {
		acts = append(acts, action{1, func() { s.complete(s.inflight[pick(len(s.inflight))], history.Info) }})
	}
	if len(infoUnlanded) > 0 {
		acts = append(acts, action{1, func() { s.abandon(infoUnlanded[pick(len(infoUnlanded))]) }})
	}
	if len(idle) > 0 {
		acts = append(acts, action{3, func() { s.consumerInvoke(idle[pick(len(idle))]) }})
	}
	if len(busy) > 0 {
		acts = append(acts, action{3, func() { s.consumerComplete(busy[pick(len(busy))], pick(8)) }})
	}
	total := 0
	for _, a := range acts {
		total += a.weight
	}
	choice := pick(total)
	for _, a := range acts {
		if choice < a.weight {
			a.do()
			return
		}
		choice -= a.weight
	}
}

func (s *logSim) invokeSend(proc int) {
	x := &simSend{value: fmt.Sprintf("v%d", s.nextVal), tp: int32(s.c.intn(s.cfg.partitions)), proc: proc, offset: -1}
	s.nextVal++
	s.inflight = append(s.inflight, x)
	q := s.queue(proc, x.tp)
	*q = append(*q, x)
	r := history.Record{Topic: topic, Partition: x.tp, Value: x.value, Offset: -1}
	s.rec.Add(history.Op{Process: proc, Type: history.Invoke, F: history.Send, Record: &r})
}

func (s *logSim) removeFromQueue(x *simSend) {
	q := s.queue(x.proc, x.tp)
	i := slices.Index(*q, x)
	if i < 0 {
		panic("send not queued")
	}
	*q = slices.Delete(*q, i, i+1)
}

func (s *logSim) land(x *simSend) {
	s.removeFromQueue(x)
	x.landed = true
	x.offset = int64(len(s.logs[x.tp]))
	s.logs[x.tp] = append(s.logs[x.tp], x.value)
}

func (s *logSim) abandon(x *simSend) { s.removeFromQueue(x) }

func (s *logSim) complete(x *simSend, t history.Type) {
	s.inflight = slices.DeleteFunc(s.inflight, func(y *simSend) bool { return y == x })
	x.completed = true
	r := history.Record{Topic: topic, Partition: x.tp, Value: x.value, Offset: -1}
	switch t {
	case history.OK:
		r.Offset = x.offset
	case history.Fail:
		s.removeFromQueue(x)
	case history.Info:
		x.infoDone = !x.landed
	}
	s.rec.Add(history.Op{Process: x.proc, Type: t, F: history.Send, Record: &r})
}

func (s *logSim) consumerInvoke(c *simConsumer) {
	c.busy = true
	c.f = history.Poll
	if s.c.intn(6) == 0 {
		c.f = history.Assign
	}
	s.rec.Add(history.Op{Process: c.proc, Type: history.Invoke, F: c.f})
}

// consumerComplete completes c's op: how 0-5 ok, 6 info, 7 fail.
func (s *logSim) consumerComplete(c *simConsumer, how int) {
	c.busy = false
	t := history.OK
	switch how {
	case 6:
		t = history.Info
	case 7:
		t = history.Fail
	}
	if c.f == history.Assign {
		var assign []history.TopicPartition
		if t == history.OK || (t == history.Info && s.c.intn(2) == 0) {
			c.assigned = c.assigned[:0]
			clear(c.pos)
			for p := range int32(s.cfg.partitions) {
				if s.c.intn(2) == 0 {
					c.assigned = append(c.assigned, p)
					c.pos[p] = int64(s.c.intn(len(s.logs[p]) + 1))
					assign = append(assign, s.tp(p))
				}
			}
		}
		s.rec.Add(history.Op{Process: c.proc, Type: t, F: history.Assign, Assign: assign})
		return
	}
	var records []history.Record
	if t != history.Fail {
		for _, p := range c.assigned {
			available := int64(len(s.logs[p])) - c.pos[p]
			n := min(available, int64(s.c.intn(s.cfg.batchMax+1)))
			if t == history.OK {
				for o := c.pos[p]; o < c.pos[p]+n; o++ {
					records = append(records, history.Record{Topic: topic, Partition: p, Value: s.logs[p][o], Offset: o})
				}
			}
			c.pos[p] += n
		}
	}
	if t != history.OK {
		records = nil
	}
	s.rec.Add(history.Op{Process: c.proc, Type: t, F: history.Poll, Records: records})
}

// finish ends every op the history can still end, then drains.
func (s *logSim) finish() {
	for _, c := range s.cons {
		if c.busy {
			s.consumerComplete(c, 0)
		}
	}
	for i := range s.queues {
		for len(s.queues[i]) > 0 {
			if x := s.queues[i][0]; s.c.intn(4) == 0 {
				s.abandon(x) // an info send that never lands, or a pending one
			} else {
				s.land(x)
			}
		}
	}
	for _, x := range slices.Clone(s.inflight) {
		switch {
		case !x.landed:
			// Abandoned: never completes, never lands.
		case s.c.intn(4) == 0:
			// Landed, never completes: a pending send the drain reads.
		default:
			s.complete(x, history.OK)
		}
	}
	drain := 999
	var all []history.TopicPartition
	for p := range int32(s.cfg.partitions) {
		all = append(all, s.tp(p))
	}
	s.rec.Add(history.Op{Process: drain, Type: history.Invoke, F: history.Assign, Assign: all})
	s.rec.Add(history.Op{Process: drain, Type: history.OK, F: history.Assign, Assign: all})
	pos := make([]int64, s.cfg.partitions)
	for {
		var records []history.Record
		for p := range s.cfg.partitions {
			end := min(int64(len(s.logs[p])), pos[p]+int64(max(s.cfg.batchMax, 1)))
			for o := pos[p]; o < end; o++ {
				records = append(records, history.Record{Topic: topic, Partition: int32(p), Value: s.logs[p][o], Offset: o})
			}
			pos[p] = end
		}
		if len(records) == 0 {
			return
		}
		s.rec.Add(history.Op{Process: drain, Type: history.Invoke, F: history.Poll})
		s.rec.Add(history.Op{Process: drain, Type: history.OK, F: history.Poll, Records: records})
	}
}
