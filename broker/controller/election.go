package controller

import (
	"time"

	"github.com/sluice-sim/sluice/sim"
)

// raft draws its election timeouts from crypto/rand, which no seed
// reaches. So raft's own election clock is set out of reach
// (electionTickUnreachable) and elections start here instead: a follower
// that has heard nothing from a leader for a timeout drawn from the node's
// seeded random stream campaigns. With raft's CheckQuorum off (its lease
// counts raft ticks, which never reach the unreachable timeout, so it
// would refuse every vote) the leader's hold on its quorum is checked here
// too: a leader that has not heard from a quorum within the election
// timeout stops serving requests, answering NOT_CONTROLLER, until it has.
const electionTickUnreachable = 1 << 30

// electionTimer fires a campaign when the leader has been silent too long.
type electionTimer struct {
	env sim.Env
	// timeoutMin is the shortest silence that starts an election; each
	// wait is drawn from [timeoutMin, 2*timeoutMin).
	timeoutMin time.Duration
	// lastLeaderContact is when a leader was last heard from (or the
	// timer began).
	lastLeaderContact time.Duration
	timer             sim.Timer
	campaign          func()
	// lastHeard is when each peer last sent anything, for the leader's
	// quorum check.
	lastHeard map[uint64]time.Duration
}

func newElectionTimer(env sim.Env, timeoutMin time.Duration, campaign func()) *electionTimer {
	e := &electionTimer{env: env, timeoutMin: timeoutMin, campaign: campaign,
		lastLeaderContact: env.Clock.Mono(), lastHeard: map[uint64]time.Duration{}}
	e.arm()
	return e
}

func (e *electionTimer) arm() {
	wait := e.timeoutMin + time.Duration(e.env.Rand.Int64N(int64(e.timeoutMin)))
	e.timer = e.env.Clock.AfterFunc(wait, e.fire)
}

func (e *electionTimer) fire() {
	if e.env.Clock.Mono()-e.lastLeaderContact >= e.timeoutMin {
		e.campaign()
		// A campaign that fails leaves no leader to hear from: the next
		// draw decides when to try again.
		e.lastLeaderContact = e.env.Clock.Mono()
	}
	e.arm()
}

// leaderHeard notes a message from the leader.
func (e *electionTimer) leaderHeard() { e.lastLeaderContact = e.env.Clock.Mono() }

// peerHeard notes a message from a peer.
func (e *electionTimer) peerHeard(id uint64) { e.lastHeard[id] = e.env.Clock.Mono() }

// quorumRecent reports whether, counting itself, a quorum of voters has
// been heard from within the election timeout.
func (e *electionTimer) quorumRecent(voters []Voter, self uint64, since time.Duration) bool {
	now := e.env.Clock.Mono()
	heard := 0
	for _, v := range voters {
		if v.ID == self {
			heard++
			continue
		}
		if at, ok := e.lastHeard[v.ID]; ok && at >= since && now-at < e.timeoutMin {
			heard++
		}
	}
	return heard > len(voters)/2
}

func (e *electionTimer) stop() {
	if e.timer != nil {
		e.timer.Stop()
	}
}
