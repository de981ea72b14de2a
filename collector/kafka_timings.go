package collector

import (
	"time"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
)

// kafkaTimings times a group member's fetches and offset commits for
// Flume's Kafka counters, from the history operations the member records
// (it is the member's history.Recorder): a poll's invocation starts a
// fetch, which ends when the poll's records are handed on (fetched); a
// commit's invocation starts a commit, which its outcome ends. Commits
// may overlap (a kafka channel's take commits beside the member's own):
// the timer counts the time at least one is in flight.
type kafkaTimings struct {
	env         sim.Env
	pollStart   time.Duration
	polling     bool
	commitStart time.Duration
	commits     int
	// commitTotal is where commit times add up.
	commitTotal *time.Duration
}

// Add notes the operations that start and end what it times.
func (k *kafkaTimings) Add(op history.Op) int {
	now := k.env.Clock.Mono()
	switch {
	case op.F == history.Poll && op.Type == history.Invoke:
		k.pollStart, k.polling = now, true
	case op.F == history.Commit && op.Type == history.Invoke:
		if k.commits == 0 {
			k.commitStart = now
		}
		k.commits++
	case op.F == history.Commit && k.commits > 0:
		k.commits--
		if k.commits == 0 {
			*k.commitTotal += now - k.commitStart
		}
	}
	return 0
}

// fetched ends the poll in progress and returns how long it took.
func (k *kafkaTimings) fetched() time.Duration {
	if !k.polling {
		return 0
	}
	k.polling = false
	return k.env.Clock.Mono() - k.pollStart
}
