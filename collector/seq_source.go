package collector

import (
	"strconv"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// SeqSource generates events whose bodies count up from 0, batchSize per
// transaction, until totalEvents, as Flume's sequence generator does. A
// refused batch is retried after a backoff with the same numbers, so the
// sequence has no gaps (and duplicates only where fan-out partly failed).
type SeqSource struct {
	name     string
	env      sim.Env
	proc     *channelProcessor
	batch    int
	total    int64
	next     int64
	backoff  time.Duration
	stopped  bool
	timer    sim.Timer
	counters SourceCounters
	// Done, when set, is called once totalEvents were accepted.
	Done func()
}

const (
	seqBackoffMin = 10 * time.Millisecond
	seqBackoffMax = time.Second
)

func newSeqSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *SeqSource {
	return &SeqSource{name: name, env: env, proc: proc, batch: int(c.BatchSize()), total: c.Int("totalEvents")}
}

// Name is the source's name.
func (s *SeqSource) Name() string { return s.name }

// Counters are the source's counters.
func (s *SeqSource) Counters() *SourceCounters { return &s.counters }

// Start begins generating.
func (s *SeqSource) Start() error {
	s.timer = s.env.Clock.AfterFunc(0, s.step)
	return nil
}

// Stop stops generating after the batch in flight.
func (s *SeqSource) Stop() {
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *SeqSource) step() {
	if s.stopped {
		return
	}
	if s.next >= s.total {
		if s.Done != nil {
			s.Done()
			s.Done = nil
		}
		return
	}
	n := int(min(int64(min(s.batch, s.proc.batchMax)), s.total-s.next))
	events := make([]Event, n)
	for i := range events {
		events[i].Body = strconv.AppendInt(nil, s.next+int64(i), 10)
	}
	s.counters.EventReceivedCount += int64(n)
	s.counters.AppendBatchReceivedCount++
	s.proc.process(events, func(err error) {
		if err != nil {
			s.counters.ChannelWriteFail++
			s.backoff = min(max(2*s.backoff, seqBackoffMin), seqBackoffMax)
			s.timer = s.env.Clock.AfterFunc(s.backoff, s.step)
			return
		}
		s.backoff = 0
		s.next += int64(n)
		s.counters.EventAcceptedCount += int64(n)
		s.counters.AppendBatchAcceptedCount++
		s.timer = s.env.Clock.AfterFunc(0, s.step)
	})
}
