package scenario

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// Shrinking a failing run: find a smaller fault schedule and a shorter run
// under which the same checks still fail. A run is deterministic, so
// "still fails" is a plain function of the schedule and lengths, and delta
// debugging (Zeller's ddmin) over whole faults finds a schedule from which
// no single fault can be removed; each remaining fault is then shortened,
// and the run's lengths after it.

// ErrDoesNotFail is returned when the run to shrink passes.
var ErrDoesNotFail = errors.New("the run does not fail: nothing to shrink")

// Shrunk is the outcome of shrinking a run.
type Shrunk struct {
	// Check names the checks that fail in the original and in the shrunk
	// run.
	Check string
	// Original and Smallest are the runs before and after.
	Original, Smallest Result
	// Tries counts the runs made to shrink.
	Tries int
	// TriesExhausted is true when Shrink stopped at its bound rather than
	// at a run it could not reduce further.
	TriesExhausted bool
	// Stopped is true when the caller's Stop ended the shrink early.
	Stopped bool
}

// ShrinkLimits bound a shrink and say what failure it keeps.
type ShrinkLimits struct {
	// TriesMax bounds the runs made; each candidate is one run (two when
	// Determinism is set).
	TriesMax int
	// Stop, when set, is asked before each candidate run; true ends the
	// shrink with the smallest failing run so far. It lets a caller bound
	// the shrink's wall time, which this package does not read.
	Stop func() bool
	// Determinism shrinks a run whose failure is that two runs of it
	// give different trace hashes (a planted ordering bug passes every
	// check): a candidate is kept when its two runs differ and it fails
	// exactly the checks the original failed.
	Determinism bool
}

// shrinkRunLengthsMin bounds how short shrinking makes the run and drain.
const shrinkRunLengthsMin = 100 * time.Millisecond

// Shrink reduces a failing run of d with options o, making at most
// triesMax runs; progress, if set, hears of each smaller run found. A
// smaller run counts when it fails exactly the checks the original failed.
func Shrink(d Definition, o Options, triesMax int, progress func(Result)) (Shrunk, error) {
	return ShrinkWithin(d, o, ShrinkLimits{TriesMax: triesMax}, progress)
}

// ShrinkWithin is Shrink with limits: a bound on tries, a stop the caller
// decides, and the choice of a determinism failure.
func ShrinkWithin(d Definition, o Options, limits ShrinkLimits, progress func(Result)) (Shrunk, error) {
	s := &shrinker{d: d, o: o, allowed: map[string]bool{}, triesMax: limits.TriesMax, stop: limits.Stop,
		determinism: limits.Determinism, progress: progress}
	orig, diverged, err := s.run(o)
	if err != nil {
		return Shrunk{}, err
	}
	failed := orig.Failed()
	if len(failed) == 0 && !(s.determinism && diverged) {
		return Shrunk{}, ErrDoesNotFail
	}
	s.best = orig
	var names []string
	if s.determinism {
		names = append(names, "determinism")
	}
	for _, c := range failed {
		s.allowed[c.Name] = true
		names = append(names, c.Name)
	}
	s.check = strings.Join(names, ", ")
	s.o.Schedule = &orig.Schedule
	s.o.Run, s.o.Drain = time.Duration(orig.Run), time.Duration(orig.Drain)
	s.dropFaults(orig.Schedule)
	s.dropEpisodes(int(orig.Stats[plantedEpisodesStat]))
	s.shortenFaults()
	s.shortenRun()
	return Shrunk{Check: s.check, Original: orig, Smallest: s.best, Tries: s.tries,
		TriesExhausted: s.tries >= s.triesMax, Stopped: s.stopped}, nil
}

type shrinker struct {
	d     Definition
	o     Options // the smallest failing options so far
	check string  // the failed checks' names, for the summary
	// allowed are the checks the original run failed: a candidate must
	// fail exactly these.
	allowed  map[string]bool
	triesMax int
	tries    int
	stop     func() bool
	stopped  bool
	// determinism: the failure kept is two runs that differ.
	determinism bool
	best        Result
	progress    func(Result)
}

// run runs a candidate, twice when the failure is a determinism one, and
// reports whether the two runs' trace hashes differed.
func (s *shrinker) run(o Options) (Result, bool, error) {
	res, err := Run(s.d, o)
	if err != nil || !s.determinism {
		return res, false, err
	}
	quiet := o
	quiet.Log = nil
	again, err := Run(s.d, quiet)
	if err != nil {
		return res, false, err
	}
	return res, again.TraceHash != res.TraceHash, nil
}

// fails runs the candidate and keeps it if the same checks still fail.
func (s *shrinker) fails(o Options) bool {
	if s.tries >= s.triesMax || s.stopped {
		return false
	}
	if s.stop != nil && s.stop() {
		s.stopped = true
		return false
	}
	s.tries++
	res, diverged, err := s.run(o)
	if err != nil || (s.determinism && !diverged) {
		return false
	}
	// The same failure: exactly the checks the original failed. A
	// smaller run that breaks something else, or less, answers another
	// question.
	failed := res.Failed()
	if len(failed) != len(s.allowed) {
		return false
	}
	for _, c := range failed {
		if !s.allowed[c.Name] {
			return false
		}
	}
	s.o, s.best = o, res
	if s.progress != nil {
		s.progress(res)
	}
	return true
}

// withSchedule is the current options with another schedule.
func (s *shrinker) withSchedule(sched faults.Schedule) Options {
	o := s.o
	o.Schedule = &sched
	return o
}

// dropFaults is ddmin over the schedule's faults.
func (s *shrinker) dropFaults(full faults.Schedule) {
	if s.fails(s.withSchedule(faults.Schedule{Actions: []faults.Action{}})) {
		return
	}
	ddmin(full.Units(), func(us []faults.Unit) bool { return s.fails(s.withSchedule(full.Keep(us))) }, s.more)
}

// plantedEpisodesStat counts the episodes a scenario planted itself (see
// Options.EpisodesSkipped).
const plantedEpisodesStat = "planted_episodes"

// dropEpisodes is ddmin over the episodes the scenario plants itself,
// n of them in the original run: a kept set runs with every other
// episode skipped.
func (s *shrinker) dropEpisodes(n int) {
	var units []int
	for i := range n {
		if !s.o.skipsEpisode(i) {
			units = append(units, i)
		}
	}
	if len(units) == 0 {
		return
	}
	keep := func(kept []int) bool {
		o := s.o
		o.EpisodesSkipped = episodesExcept(n, kept)
		return s.fails(o)
	}
	if keep(nil) {
		return
	}
	ddmin(units, keep, s.more)
}

// episodesExcept lists the episodes 0..n-1 not in kept.
func episodesExcept(n int, kept []int) []int {
	skipped := []int{}
	for i, k := 0, 0; i < n; i++ {
		if k < len(kept) && kept[k] == i {
			k++
			continue
		}
		skipped = append(skipped, i)
	}
	return skipped
}

// more reports whether the shrink may make more runs.
func (s *shrinker) more() bool { return s.tries < s.triesMax && !s.stopped }

// ddmin is Zeller's delta debugging: it shrinks units, in order, to a set
// from which no single chunk can be removed while keep still holds, for as
// long as more allows.
func ddmin[T any](units []T, keep func([]T) bool, more func() bool) {
	n := 2
	for len(units) >= 2 && more() {
		chunks := splitUnits(units, n)
		reduced := false
		for _, c := range chunks {
			if keep(c) {
				units, n, reduced = c, 2, true
				break
			}
		}
		if !reduced && n > 2 {
			for i := range chunks {
				if rest := complementOf(chunks, i); keep(rest) {
					units, n, reduced = rest, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(units) {
				return
			}
			n = min(2*n, len(units))
		}
	}
}

func splitUnits[T any](units []T, n int) [][]T {
	chunks := make([][]T, 0, n)
	for i := 0; i < n; i++ {
		lo, hi := i*len(units)/n, (i+1)*len(units)/n
		if lo < hi {
			chunks = append(chunks, units[lo:hi])
		}
	}
	return chunks
}

func complementOf[T any](chunks [][]T, skip int) []T {
	var rest []T
	for i, c := range chunks {
		if i != skip {
			rest = append(rest, c...)
		}
	}
	return rest
}

// shortenHalvingsMax bounds how many times one fault's duration is halved.
const shortenHalvingsMax = 8

// shortenFaults moves each fault's recovery closer to its start, halving
// the gap while the same checks still fail.
func (s *shrinker) shortenFaults() {
	for u := 0; u < len(s.o.Schedule.Units()); u++ {
		for h := 0; h < shortenHalvingsMax; h++ {
			unit := s.o.Schedule.Units()[u]
			if len(unit) != 2 {
				break
			}
			sched := faults.Schedule{Actions: append([]faults.Action(nil), s.o.Schedule.Actions...)}
			from, to := sched.Actions[unit[0]].At, sched.Actions[unit[1]].At
			gap := (to - from) / 2
			if time.Duration(gap) < time.Millisecond {
				break
			}
			sched.Actions[unit[1]].At = from + gap
			sched.Sort()
			if !s.fails(s.withSchedule(sched)) {
				break
			}
		}
	}
}

// shortenRun halves the run and the drain while the same checks still fail,
// never cutting the run before its last fault action.
func (s *shrinker) shortenRun() {
	var last time.Duration
	for _, a := range s.o.Schedule.Actions {
		last = max(last, time.Duration(a.At))
	}
	for s.o.Run/2 >= max(last, shrinkRunLengthsMin) {
		o := s.o
		o.Run /= 2
		if !s.fails(o) {
			break
		}
	}
	// The run can end just after its last fault action.
	if justAfter := (last/shrinkRunLengthsMin + 1) * shrinkRunLengthsMin; justAfter < s.o.Run {
		o := s.o
		o.Run = justAfter
		s.fails(o)
	}
	for s.o.Drain/2 >= shrinkRunLengthsMin {
		o := s.o
		o.Drain /= 2
		if !s.fails(o) {
			break
		}
	}
}

// Summary says what shrinking did, for a terminal.
func (sh Shrunk) Summary() string {
	before, after := sh.Original, sh.Smallest
	return fmt.Sprintf("%d actions (%s%s), run %v + drain %v -> %d actions (%s%s), run %v + drain %v; %d runs; %s",
		len(before.Schedule.Actions), faultCount(before.Schedule), before.EpisodeNote(), before.Run, before.Drain,
		len(after.Schedule.Actions), faultCount(after.Schedule), after.EpisodeNote(), after.Run, after.Drain,
		sh.Tries, sh.Check+verbFails(sh.Check))
}

// EpisodeNote names the episodes a run's scenario planted and acted on,
// as ", N planted episodes", for scenarios that plant them.
func (r Result) EpisodeNote() string {
	n, planted := r.EpisodesActed()
	switch {
	case !planted:
		return ""
	case n == 1:
		return ", 1 planted episode"
	}
	return fmt.Sprintf(", %d planted episodes", n)
}

// EpisodesActed counts the episodes the scenario planted itself and the
// run did not skip; planted is false for a run that planted none (a
// scenario whose faults are all schedule data).
func (r Result) EpisodesActed() (n int64, planted bool) {
	begun := r.Stats[plantedEpisodesStat]
	if begun == 0 {
		return 0, false
	}
	n = begun
	for _, i := range r.EpisodesSkipped {
		if int64(i) < begun {
			n--
		}
	}
	return n, true
}

// verbFails agrees with a list of check names: " still fails" for one,
// " still fail" for several.
func verbFails(checks string) string {
	if strings.Contains(checks, ",") {
		return " still fail"
	}
	return " still fails"
}

func faultCount(s faults.Schedule) string {
	if n := len(s.Units()); n != 1 {
		return fmt.Sprintf("%d faults", n)
	}
	return "1 fault"
}
