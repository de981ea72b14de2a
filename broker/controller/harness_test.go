package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/world"
)

// quorum is a simulated world of three controllers watched by an Oracle:
// no index may be applied with two different entries, no term may have two
// leaders, no controller may find its log damaged.
type quorum struct {
	t      testing.TB
	w      *world.World
	names  []string
	ctrls  map[string]*Controller
	oracle *Oracle
	// violations are the oracle's, as of the last look.
	violations []string
	proposed   int
	// snapshotsInstalled counts snapshots a controller took from its leader.
	snapshotsInstalled map[string]int
	// committedAfterFaults counts entries first committed after the last
	// fault, for tests that check the quorum came back.
	committedAfterFaults int
}

func controllerNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ctl%d", i+1)
	}
	return names
}

func newQuorum(t testing.TB, seed uint64, bugs faults.Bugs, tune func(*Config)) *quorum {
	t.Helper()
	q := &quorum{t: t, w: world.New(world.Config{Seed: seed}), names: controllerNames(3),
		ctrls: map[string]*Controller{}, snapshotsInstalled: map[string]int{}}
	q.oracle = NewOracle(q.w.Now)
	var voters []Voter
	for i, name := range q.names {
		voters = append(voters, Voter{ID: uint64(i + 1), Addr: name + ":9093"})
	}
	for i, name := range q.names {
		cfg := DefaultConfig(uint64(i+1), voters, ":9093")
		cfg.Bugs = bugs
		if tune != nil {
			tune(&cfg)
		}
		cfg.OnApply = func(index, term uint64, data []byte) { q.oracle.Applied(name, index, term, data) }
		cfg.OnLead = func(term uint64) { q.oracle.Led(term, cfg.ID) }
		q.w.AddNode(name, Process(cfg, func(c *Controller) {
			q.ctrls[name] = c
			c.onSnapshotInstalled = func() { q.snapshotsInstalled[name]++ }
		}))
	}
	return q
}

// live returns the named controller if its node runs it.
func (q *quorum) live(name string) *Controller {
	c := q.ctrls[name]
	if c == nil || !q.w.Node(name).Up() || c.stopped {
		return nil
	}
	return c
}

// active returns the name of the controller that serves, or "".
func (q *quorum) active() string {
	for _, name := range q.names {
		if c := q.live(name); c != nil && c.Active() {
			return name
		}
	}
	return ""
}

// proposeEvery proposes a noop record at the active controller every
// interval until the end, as a client would write.
func (q *quorum) proposeEvery(interval, until time.Duration) {
	q.w.At(q.w.Now()+interval, func() {
		if name := q.active(); name != "" {
			q.proposed++
			q.ctrls[name].propose(metadata.Record{Kind: metadata.KindNoop, Payload: fmt.Appendf(nil, "w%d", q.proposed)})
		}
		if q.w.Now()+interval < until {
			q.proposeEvery(interval, until)
		}
	})
}

// run runs the world until simulated time until, in steps, stopping at
// the first violation: a quorum that lost a committed entry may livelock
// (a follower that committed what the leader never had rejects every
// append), and there is nothing more to learn from it.
func (q *quorum) run(until time.Duration) {
	const step = 100 * time.Millisecond
	for q.w.Now() < until && len(q.violations) == 0 {
		q.w.Run(min(q.w.Now()+step, until), 0)
		q.noteLostLogs()
	}
}

// noteLostLogs has the oracle count controllers that raft found with a
// damaged log, and takes the oracle's violations.
func (q *quorum) noteLostLogs() {
	for _, name := range q.names {
		q.oracle.NoteLostLog(name, q.ctrls[name])
	}
	q.violations = q.oracle.Violations()
}

// check fails the test on any violation.
func (q *quorum) check() {
	q.t.Helper()
	q.noteLostLogs()
	if len(q.violations) > 0 {
		q.t.Fatalf("%d violations, first: %s", len(q.violations), q.violations[0])
	}
}

// caughtUp checks that every controller has applied the same index.
func (q *quorum) caughtUp() {
	q.t.Helper()
	var applied []uint64
	for _, name := range q.names {
		c := q.live(name)
		if c == nil {
			q.t.Fatalf("%s is not running", name)
		}
		applied = append(applied, c.Status().Applied)
	}
	if slices.Min(applied) != slices.Max(applied) || applied[0] < 2 {
		q.t.Fatalf("controllers applied %v: not caught up", applied)
	}
}

func (q *quorum) leaderName() string {
	for _, name := range q.names {
		if c := q.live(name); c != nil && c.Status().Leader {
			return name
		}
	}
	return ""
}

// progressed checks that the quorum committed entries after the faults.
func (q *quorum) progressed() {
	q.t.Helper()
	if q.committedAfterFaults < 100 {
		q.t.Fatalf("only %d entries committed after the last fault", q.committedAfterFaults)
	}
}
