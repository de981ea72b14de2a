package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// Activity is one thing a client works at, as the client reports it: a
// producer's sends, a consumer's reading of one partition.
type Activity struct {
	// Name names the client and what it works on, e.g. "p1's consumer
	// sluice-consumer-0 on jepsen-2".
	Name string
	// Mark grows (or at least changes) whenever the activity makes
	// progress: records acknowledged, offsets read past what was read.
	Mark int64
	// Waiting: the activity has work it has not done. An idle activity is
	// never stuck.
	Waiting bool
	// Attempts counts what the activity tried since its last progress
	// (resets, retries, failed requests); a client spinning in a loop
	// piles them up faster than simulated time passes.
	Attempts int
	// Describe says what the activity did since its last progress; the
	// watchdog calls it only for an activity it judges stuck.
	Describe func() string
}

// Watched is a cluster whose clients report their progress.
type Watched interface {
	Progress() []Activity
}

// watchdog fails a run in which, after the faults healed, some activity
// has work and makes no progress for stallMax of simulated time, or over
// attemptsMax attempts. It judges what the clients report while the run
// goes on, and stops the run, so that a client stuck in a loop is named
// as such instead of running out the clock or the machine.
type watchdog struct {
	stallMax    time.Duration
	attemptsMax int
	// healedAt is when the faults healed: waits before it are the faults'
	// doing and do not count.
	healedAt time.Duration
	last     map[string]watched
	// spare is the map before last, cleared and filled by the next
	// observation: the watchdog looks every 10 ms of simulated time.
	spare map[string]watched
	// lastActs are the activities of the last observation.
	lastActs []Activity
	// longest is the longest wait after healedAt seen so far.
	longest     time.Duration
	longestName string
	// attemptsMost is the most attempts without progress after healedAt.
	attemptsMost int
	// stuck are the activities found stuck, the earliest since
	// stuckSince; the run stopped at stuckAt.
	stuck      []stuckActivity
	stuckSince time.Duration
	stuckAt    time.Duration
}

// watched is an activity's mark, when it last progressed or was idle, and
// its attempts then (or when the faults healed, if later).
type watched struct {
	mark         int64
	since        time.Duration
	attemptsBase int
	baseAt       time.Duration
}

type stuckActivity struct {
	name     string
	since    time.Duration
	attempts int
	stuck    string
}

func newWatchdog(b Budget, healedAt time.Duration) *watchdog {
	return &watchdog{stallMax: b.StallMax, attemptsMax: b.StallAttemptsMax, healedAt: healedAt, last: map[string]watched{}}
}

// observe takes the activities' reports at now and reports whether some
// activity is stuck. Activities no longer reported (a restarted client's
// old self) are forgotten.
func (d *watchdog) observe(now time.Duration, acts []Activity) bool {
	next := d.spare
	if next == nil {
		next = make(map[string]watched, len(acts))
	}
	clear(next)
	earliest := now
	for _, a := range acts {
		w, seen := d.last[a.Name]
		switch {
		case !seen || w.mark != a.Mark || !a.Waiting:
			w = watched{mark: a.Mark, since: now, attemptsBase: a.Attempts, baseAt: now}
		case a.Attempts < w.attemptsBase:
			// The client counts afresh (a producer's oldest send gave up
			// and the next is the oldest): still no progress.
			w.attemptsBase, w.baseAt = a.Attempts, now
		case w.baseAt < d.healedAt && now >= d.healedAt:
			// Attempts during the faults are the faults' doing.
			w.attemptsBase, w.baseAt = a.Attempts, now
		}
		next[a.Name] = w
		if now < d.healedAt {
			continue
		}
		from := max(w.since, d.healedAt)
		waited, attempts := now-from, a.Attempts-w.attemptsBase
		if waited > d.longest {
			d.longest, d.longestName = waited, a.Name
		}
		d.attemptsMost = max(d.attemptsMost, attempts)
		if waited >= d.stallMax || (d.attemptsMax > 0 && attempts >= d.attemptsMax) {
			d.stuck = append(d.stuck, stuckActivity{name: a.Name, since: from, attempts: attempts, stuck: a.Describe()})
			earliest = min(earliest, from)
		}
	}
	d.spare, d.last, d.lastActs = d.last, next, acts
	if len(d.stuck) > 0 {
		d.stuckSince, d.stuckAt = earliest, now
		return true
	}
	return false
}

// suspect names the activity, among those with work at the last
// observation, with the most attempts and then the longest wait without
// progress, faults or not: what a budget verdict points at, since a
// client spinning in a loop can spend a budget before the watchdog judges
// it. "" when none had work.
func (d *watchdog) suspect(now time.Duration) string {
	var best *Activity
	var bestWait time.Duration
	bestAttempts := -1
	for i := range d.lastActs {
		a := &d.lastActs[i]
		w := d.last[a.Name]
		if !a.Waiting {
			continue
		}
		attempts, waited := a.Attempts-w.attemptsBase, now-w.since
		if attempts > bestAttempts || (attempts == bestAttempts && waited > bestWait) {
			best, bestAttempts, bestWait = a, attempts, waited
		}
	}
	if best == nil {
		return ""
	}
	return fmt.Sprintf("%s, no progress for %v over %d attempts: %s", best.Name, bestWait.Round(time.Millisecond), bestAttempts, best.Describe())
}

// stuckShownMax bounds the stuck activities a verdict names.
const stuckShownMax = 3

// check is the watchdog's verdict.
func (d *watchdog) check() Check {
	c := Check{Name: "progress", OK: len(d.stuck) == 0}
	if c.OK {
		c.Detail = fmt.Sprintf("after the faults healed at %.1fs every client with work made progress within %v", d.healedAt.Seconds(), d.stallMax)
		if d.attemptsMax > 0 {
			c.Detail += fmt.Sprintf(" and %d attempts (most: %d)", d.attemptsMax, d.attemptsMost)
		}
		if d.longestName != "" {
			c.Detail += fmt.Sprintf(" (longest wait %v: %s)", d.longest.Round(time.Millisecond), d.longestName)
		}
		return c
	}
	var named []string
	for i, a := range d.stuck {
		if i == stuckShownMax {
			named = append(named, fmt.Sprintf("and %d more", len(d.stuck)-stuckShownMax))
			break
		}
		named = append(named, fmt.Sprintf("%s, stuck since %.3fs over %d attempts: %s", a.name, a.since.Seconds(), a.attempts, a.stuck))
	}
	limits := d.stallMax.String()
	if d.attemptsMax > 0 {
		limits += fmt.Sprintf(" or %d attempts", d.attemptsMax)
	}
	c.Detail = fmt.Sprintf("no progress for %v (%.3fs to %.3fs; limit %s), run stopped: %s",
		(d.stuckAt - d.stuckSince).Round(time.Millisecond), d.stuckSince.Seconds(), d.stuckAt.Seconds(),
		limits, strings.Join(named, " | "))
	return c
}

// healTime is when a run's faults have healed: the end of the run phase,
// or the schedule's last action if a schedule read from a file acts later.
func healTime(run time.Duration, s faults.Schedule) time.Duration {
	healed := run
	for _, a := range s.Actions {
		healed = max(healed, time.Duration(a.At))
	}
	return healed
}
