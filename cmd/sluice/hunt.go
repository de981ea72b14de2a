package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

// A hunt proves, for every planted bug and every scenario that plants it,
// the chain a user walks after a failure: a swarm finds the bug within a
// bounded number of seeds, the reproduce line the swarm printed gives the
// same trace hash and the same failed checks, and shrinking cuts the
// failing schedule to one that still fails the same way and replays.

// huntDeterminismBugs are the planted bugs whose failure is a run that
// differs from itself: every check may pass, so a hunt runs each seed
// twice and compares trace hashes instead.
var huntDeterminismBugs = map[faults.Bug]bool{faults.BugMapOrder: true}

// huntBugParams are the scenario knobs a planted bug needs to be reachable
// at all: its code path runs only with that source, topology or fault
// kind. A hunt sets them where the scenario has the knob and --param did
// not name it, and shows them beside the scenario.
var huntBugParams = map[faults.Bug]map[string]string{
	faults.BugSkipCRC:                     {"faults": "corrupt"},   // bit flips
	faults.BugTrustPageCache:              {"faults": "fsyncgate"}, // failed fsyncs, then power loss
	faults.BugTaildirPositionBeforeCommit: {"source": "taildir"},
	faults.BugTakeRollbackReorders:        {"hop": "on"}, // a failing avro sink rolls takes back
	faults.BugKafkaSourceCommitBeforePut:  {"source": "kafka"},
}

// pairParams are the parameters a pair's seeds run with: --param, then
// what the bug needs where the scenario has that knob.
func pairParams(def scenario.Definition, bug faults.Bug, given map[string]string) map[string]string {
	params := map[string]string{}
	for name, value := range huntBugParams[bug] {
		if slices.ContainsFunc(def.Params, func(p scenario.Param) bool { return p.Name == name }) {
			params[name] = value
		}
	}
	for name, value := range given {
		params[name] = value
	}
	return params
}

// huntAnomalyCharsMax bounds the anomaly text a table cell shows; --json
// keeps every check's whole detail.
const huntAnomalyCharsMax = 60

type huntFlags struct {
	bugs           []string
	scenarios      string
	params         []string
	seed           uint64
	seeds          int
	parallel       int
	shrinkTriesMax int
	shrinkTime     time.Duration
	seedTimeout    time.Duration
	dir            string
	jsonOut        bool
}

func newSimHuntCommand() *cobra.Command {
	var f huntFlags
	cmd := &cobra.Command{
		Use:   "hunt",
		Short: "Find every planted bug with a bounded swarm, reproduce it from its printed line, and shrink it",
		Long: `For each planted bug and each scenario that plants it (narrow with --bug and
--scenario), run a swarm of at most --seeds seeds with the bug on, each seed
drawing its own fault mix, stopping at the first seed the bug is to blame
for: each failing seed's printed reproduce line runs again with the bug off,
and a seed that fails the same checks that way (its faults alone broke it:
damage no replica can repair, say) is passed over, up to 20 of them; when
none is the bug's, the first failing seed stands. Then:

  - run the seed's reproduce line again and check that it gives the same
    trace hash and fails the same checks;
  - shrink the saved failing run (at most --shrink-tries runs and
    --shrink-time of wall time) and check that the smallest run fails the
    same checks and that 'sim replay' of it gives its trace hash.

A bug whose failure is a run that differs from itself (map-order) passes
every check: its seeds run twice and the hunt looks for differing trace
hashes; its reproduce line must diverge again (a hash that changes from run
to run cannot be compared), and its shrink keeps runs that still diverge.

The table shows per pair the seed found, the seeds run, the checks that
failed and the first anomaly, those the seed fails without the bug, whether
the line reproduced the run, the
fault schedule's actions and the run lengths before and after shrinking,
and the wall time. Failing and shrunk runs are kept in --dir/BUG/.
Progress goes to standard error. Exit status: 0 when every pair was found,
reproduced and shrunk, 1 otherwise, 2 on bad usage.`,
		Example: `  sluice sim hunt --parallel 2
  sluice sim hunt --scenario counter --bug dedupe-off
  sluice sim hunt --scenario flume-pipeline --bug taildir-position-before-commit --param source=taildir
  sluice sim hunt --bug ack-before-isr --seeds 100 --json > hunt.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHunt(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.bugs, "bug", nil, "planted bugs to hunt, comma-separated or repeated (default: every bug some scenario plants)")
	fl.StringVar(&f.scenarios, "scenario", "", "scenarios to hunt in, comma-separated (default: every scenario)")
	fl.StringArrayVar(&f.params, "param", nil, "scenario parameter name=value for every seed (repeatable; every scenario hunted must have it)")
	fl.Uint64Var(&f.seed, "seed", 1, "first seed of each swarm")
	fl.IntVar(&f.seeds, "seeds", 500, "at most this many seeds per bug and scenario")
	fl.IntVar(&f.parallel, "parallel", 2, "worker processes of each swarm")
	fl.IntVar(&f.shrinkTriesMax, "shrink-tries", 200, "at most this many runs to shrink each failure")
	fl.DurationVar(&f.shrinkTime, "shrink-time", 2*time.Minute, "at most this much wall time to shrink each failure")
	fl.DurationVar(&f.seedTimeout, "seed-timeout", 10*time.Minute, "wall time one seed may take before its worker is killed")
	fl.StringVar(&f.dir, "dir", "sluice-hunt", "where failing and shrunk runs are written, one directory per bug")
	fl.BoolVar(&f.jsonOut, "json", false, "print the results as JSON")
	return cmd
}

// huntPair is one planted bug in one scenario that plants it.
type huntPair struct {
	Bug      faults.Bug
	Scenario string
}

// huntResult is what the hunt learnt of one pair.
type huntResult struct {
	Bug      string `json:"bug"`
	Scenario string `json:"scenario"`
	// Params are the knobs the pair's seeds ran with (name=value).
	Params []string `json:"params,omitempty"`
	// Determinism is set for a bug found by running each seed twice.
	Determinism bool `json:"determinism,omitempty"`
	Found       bool `json:"found"`
	// FirstSeed is the failing seed the hunt settled on: the lowest that
	// fails a check it passes with the bug off, or else the lowest
	// failing seed. Every seed below it ran.
	FirstSeed uint64 `json:"first_seed,omitempty"`
	// PassedOver are lower seeds that failed exactly as they do with the
	// bug off (their faults alone broke them): the hunt went on past them.
	PassedOver []uint64 `json:"passed_over,omitempty"`
	SeedsRun   int      `json:"seeds_run"`
	// Failed are the checks the first failing seed failed.
	Failed    []scenario.Check `json:"failed,omitempty"`
	TraceHash string           `json:"trace_hash,omitempty"`
	Reproduce string           `json:"reproduce,omitempty"`
	SavedTo   string           `json:"saved_to,omitempty"`
	// Reproduced says whether the reproduce line failed the same checks
	// with the same trace hash (for a determinism bug: diverged again).
	Reproduced    bool   `json:"reproduced"`
	ReproduceNote string `json:"reproduce_note,omitempty"`
	// WithoutBug are the checks the same line fails with the bug off
	// (with "determinism" when its two runs diverge): what the seed fails
	// anyway, which the bug is not to blame for. ControlNote says why the
	// control could not run.
	WithoutBug  []string      `json:"without_bug"`
	ControlNote string        `json:"control_note,omitempty"`
	Shrink      *huntShrink   `json:"shrink,omitempty"`
	WallTime    time.Duration `json:"wall_time_ns"`
	// Error says why a step could not run.
	Error string `json:"error,omitempty"`
}

// huntShrink is a shrink's before and after.
type huntShrink struct {
	File          string          `json:"file"`
	ActionsBefore int             `json:"actions_before"`
	ActionsAfter  int             `json:"actions_after"`
	FaultsBefore  int             `json:"faults_before"`
	FaultsAfter   int             `json:"faults_after"`
	RunBefore     faults.Duration `json:"run_before"`
	RunAfter      faults.Duration `json:"run_after"`
	DrainBefore   faults.Duration `json:"drain_before"`
	DrainAfter    faults.Duration `json:"drain_after"`
	// PlantedBefore and PlantedAfter count the fault episodes a
	// scenario plants itself and the run acted on (the cluster
	// scenarios' leader and coordinator crashes, single-broker's
	// fsyncgate episodes), which are not schedule actions: shrinking
	// skips them (Options.EpisodesSkipped) and shortens the run.
	PlantedBefore *int64 `json:"planted_faults_before,omitempty"`
	PlantedAfter  *int64 `json:"planted_faults_after,omitempty"`
	Tries         int    `json:"tries"`
	// Bounded is set when --shrink-tries or --shrink-time ended the
	// shrink: a smaller run may exist.
	Bounded bool `json:"bounded,omitempty"`
	// Replayed says whether 'sim replay' of the shrunk file failed the
	// same checks with its trace hash (for a determinism bug: diverged).
	Replayed   bool   `json:"replayed"`
	ReplayNote string `json:"replay_note,omitempty"`
}

// blamed reports whether the seed fails a check (or diverges) that it
// does not fail with the bug off: the bug, not the seed's faults, broke it.
func (r huntResult) blamed() bool {
	return r.Found && r.ControlNote == "" && bugBlamed(r.Failed, r.WithoutBug, r.Determinism)
}

// bugBlamed reports whether a seed that failed the checks failed (and
// diverged, for a determinism bug) fails one that it does not fail with
// the bug off, withoutBug.
func bugBlamed(failed []scenario.Check, withoutBug []string, determinism bool) bool {
	if determinism && !slices.Contains(withoutBug, "determinism") {
		return true
	}
	for _, c := range failed {
		if !slices.Contains(withoutBug, c.Name) {
			return true
		}
	}
	return false
}

// proven reports whether the pair's whole chain held.
func (r huntResult) proven() bool {
	return r.Found && r.Reproduced && r.Shrink != nil && r.Shrink.Replayed
}

// huntReport is the whole hunt.
type huntReport struct {
	Pairs []huntResult `json:"pairs"`
	// SeedsMax is the swarm bound of each pair.
	SeedsMax int `json:"seeds_max"`
	Found    int `json:"found"`
	Proven   int `json:"proven"`
	// Blamed counts the pairs whose seed fails a check it passes with the
	// bug off.
	Blamed int `json:"blamed"`
	// Cut counts the pairs whose shrink removed fault actions or planted
	// faults.
	Cut int `json:"cut"`
	// Unplanted are known bugs no scenario plants: no hunt can find them.
	Unplanted []string      `json:"unplanted,omitempty"`
	WallTime  time.Duration `json:"wall_time_ns"`
}

func runHunt(cmd *cobra.Command, f huntFlags) error {
	pairs, unplanted, err := f.pairs()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start workers: %w", err)
	}
	start := time.Now()
	report := huntReport{SeedsMax: f.seeds, Unplanted: unplanted}
	stderr := cmd.ErrOrStderr()
	for i, p := range pairs {
		fmt.Fprintf(stderr, "[%d/%d] %s in %s: up to %d seeds\n", i+1, len(pairs), p.Bug, p.Scenario, f.seeds)
		r := huntOne(self, p, f, stderr)
		fmt.Fprintf(stderr, "[%d/%d] %s\n", i+1, len(pairs), r.oneLine())
		report.Pairs = append(report.Pairs, r)
		if r.Found {
			report.Found++
		}
		if r.proven() {
			report.Proven++
		}
		if r.blamed() {
			report.Blamed++
		}
		if r.Shrink != nil && r.Shrink.cut() {
			report.Cut++
		}
	}
	report.WallTime = time.Since(start)
	if err := printHunt(cmd.OutOrStdout(), report, f.jsonOut); err != nil {
		return err
	}
	if report.Proven < len(report.Pairs) {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("%d of %d pairs not proven", len(report.Pairs)-report.Proven, len(report.Pairs))}
	}
	return nil
}

// pairs lists the (bug, scenario) pairs the flags select, bug by bug, and
// the known bugs that no scenario plants.
func (f huntFlags) pairs() ([]huntPair, []string, error) {
	if f.seeds < 1 {
		return nil, nil, usageError("--seeds must be at least 1")
	}
	if f.parallel < 1 {
		return nil, nil, usageError("--parallel must be at least 1")
	}
	if f.shrinkTriesMax < 1 || f.shrinkTime <= 0 {
		return nil, nil, usageError("--shrink-tries and --shrink-time must be positive")
	}
	params, err := parseParams(f.params)
	if err != nil {
		return nil, nil, err
	}
	scenarios := scenario.Names()
	if f.scenarios != "" {
		scenarios = nil
		for _, name := range strings.Split(f.scenarios, ",") {
			if _, err := scenario.Lookup(name); err != nil {
				return nil, nil, usageError("--scenario: %v", err)
			}
			scenarios = append(scenarios, name)
		}
	}
	var bugs []faults.Bug
	for _, b := range faults.KnownBugs() {
		bugs = append(bugs, b.Name)
	}
	if len(f.bugs) > 0 {
		set, err := faults.ParseBugs(f.bugs)
		if err != nil {
			return nil, nil, usageError("--bug: %v", err)
		}
		bugs = bugs[:0]
		for _, name := range set.Names() {
			bugs = append(bugs, faults.Bug(name))
		}
	}
	var pairs []huntPair
	var unplanted []string
	for _, bug := range bugs {
		planted := false
		for _, name := range scenarios {
			def, _ := scenario.Lookup(name)
			if slices.Contains(def.Bugs, bug) {
				if err := def.Validate(scenario.Options{Params: params}); err != nil {
					return nil, nil, usageError("--param: %v", err)
				}
				pairs = append(pairs, huntPair{Bug: bug, Scenario: name})
				planted = true
			}
		}
		switch {
		case !planted && len(f.bugs) > 0 && f.scenarios == "":
			return nil, nil, usageError("--bug %s: no scenario plants it (see 'sluice sim list')", bug)
		case !planted && len(f.bugs) > 0:
			return nil, nil, usageError("--bug %s: no scenario of %s plants it (see 'sluice sim list')", bug, f.scenarios)
		case !planted && f.scenarios == "":
			unplanted = append(unplanted, string(bug))
		}
	}
	if len(pairs) == 0 {
		return nil, nil, usageError("no scenario of %s plants a bug", strings.Join(scenarios, ", "))
	}
	return pairs, unplanted, nil
}

// huntOne hunts one pair: swarm, reproduce, shrink.
func huntOne(self string, p huntPair, f huntFlags, progressOut io.Writer) (r huntResult) {
	start := time.Now()
	r = huntResult{Bug: string(p.Bug), Scenario: p.Scenario, Determinism: huntDeterminismBugs[p.Bug]}
	defer func() { r.WallTime = time.Since(start) }()
	given, err := parseParams(f.params)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	def, _ := scenario.Lookup(p.Scenario)
	params := pairParams(def, p.Bug, given)
	for _, name := range sortedParamNames(params) {
		r.Params = append(r.Params, name+"="+params[name])
	}
	rec, err := huntFirstBlamed(self, p, params, f, &r, progressOut)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if rec == nil {
		return r
	}
	if rec.Error != "" {
		r.FirstSeed = rec.Seed
		r.Error = fmt.Sprintf("seed %d could not run: %s", rec.Seed, rec.Error)
		return r
	}
	r.Found, r.FirstSeed, r.Failed, r.TraceHash = true, rec.Seed, rec.Failed, rec.TraceHash
	r.Reproduce, r.SavedTo = rec.Reproduce, rec.SavedTo
	r.Reproduced, r.ReproduceNote = huntReproduce(*rec, r.Determinism, filepath.Join(f.dir, string(p.Bug), "reproduced"))
	shrunk, err := huntShrinkRun(rec.SavedTo, r.Determinism, f, progressOut)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Shrink = shrunk
	return r
}

// huntPassOversMax bounds the failing seeds a hunt passes over because
// they fail without the bug too: each costs a control run.
const huntPassOversMax = 20

// huntFirstBlamed runs the pair's swarm until a seed fails a check it
// passes with the bug off, running each failing seed's reproduce line
// without the bug (the control) and going on past those that fail the
// same way. It sets r's seeds run, control and seeds passed over, and
// returns the seed's record; when every failing seed within the bound
// fails without the bug too, the first of them (a finding the bug is not
// to blame for, as the table then shows), and nil when no seed failed.
func huntFirstBlamed(self string, p huntPair, params map[string]string, f huntFlags, r *huntResult, progressOut io.Writer) (*swarmRecord, error) {
	var first *swarmRecord
	var firstWithoutBug []string
	sf := f
	for range huntPassOversMax + 1 {
		rec, seedsRun, err := huntSwarm(self, p, params, sf, r.Determinism, progressOut)
		if err != nil || rec == nil || rec.Error != "" {
			r.SeedsRun += seedsRun
			if rec == nil && first != nil {
				break
			}
			return rec, err
		}
		withoutBug, note := huntControl(*rec, string(p.Bug), filepath.Join(f.dir, string(p.Bug), "control"))
		if note != "" || bugBlamed(rec.Failed, withoutBug, r.Determinism) {
			r.SeedsRun += seedsRun
			r.WithoutBug, r.ControlNote = withoutBug, note
			return rec, nil
		}
		fmt.Fprintf(progressOut, "  seed %d fails [%s] without the bug too: passed over\n", rec.Seed, strings.Join(withoutBug, ", "))
		if first == nil {
			first, firstWithoutBug = rec, withoutBug
		}
		r.PassedOver = append(r.PassedOver, rec.Seed)
		ran := int(rec.Seed-sf.seed) + 1 // every seed below it ran; those in flight run again
		r.SeedsRun += ran
		sf.seed, sf.seeds = rec.Seed+1, sf.seeds-ran
		if sf.seeds <= 0 {
			break
		}
	}
	// No failing seed within the bound is the bug's alone: report the
	// first, with what it fails without the bug.
	r.WithoutBug = firstWithoutBug
	return first, nil
}

// huntSwarm runs the pair's swarm until its first failure and returns the
// lowest failing seed's record (nil when every seed passed) and how many
// seeds ran. Seeds are handed out in order and those in flight finish, so
// every seed below the first failure ran.
func huntSwarm(self string, p huntPair, params map[string]string, f huntFlags, determinism bool, progressOut io.Writer) (*swarmRecord, int, error) {
	def, _ := scenario.Lookup(p.Scenario)
	spec := swarmSpec{Scenarios: []string{p.Scenario}, FirstSeed: f.seed, Seeds: f.seeds,
		Bugs: []string{string(p.Bug)}, Params: params, Shard: shard{Index: 1, Of: 1}}
	if determinism {
		spec.Sample = f.seeds // every seed runs twice
	}
	if err := def.Validate(scenario.Options{Bugs: faults.Bugs{p.Bug: true}, Params: params}); err != nil {
		return nil, 0, err
	}
	sf := swarmFlags{parallel: f.parallel, maxFailures: 1, seedTimeout: f.seedTimeout,
		failuresDir: filepath.Join(f.dir, string(p.Bug))}
	jobs := spec.jobs()
	progress := newProgress(progressOut, len(jobs))
	records, err := runWorkers(self, spec, sf, jobs, progress.record, nil, nil)
	progress.finish()
	if err != nil {
		return nil, 0, err
	}
	for i := range records {
		if !records[i].OK {
			return &records[i], len(records), nil
		}
	}
	return nil, len(records), nil
}

// huntRunOutput is the part of 'sim run --json' and 'sim replay --json'
// output a hunt compares.
type huntRunOutput struct {
	TraceHash     string           `json:"trace_hash"`
	Checks        []scenario.Check `json:"checks"`
	Deterministic *bool            `json:"deterministic"`
	Reproduced    *bool            `json:"reproduced"`
}

func (o huntRunOutput) failedNames() []string {
	var names []string
	for _, c := range o.Checks {
		if !c.OK {
			names = append(names, c.Name)
		}
	}
	return names
}

// huntReproduce runs the swarm's printed reproduce line, as printed, in
// this process and compares it with the seed's record.
func huntReproduce(rec swarmRecord, determinism bool, failuresDir string) (bool, string) {
	args, err := splitCommandLine(rec.Reproduce)
	if err != nil || len(args) < 2 || args[0] != "sluice" {
		return false, fmt.Sprintf("the reproduce line %q is not a sluice command: %v", rec.Reproduce, err)
	}
	out, err := runInProcess(append(args[1:], "--json", "--failures-dir", failuresDir))
	if err != nil {
		return false, err.Error()
	}
	want, got := checkNames(rec.Failed), out.failedNames()
	if determinism {
		if out.Deterministic == nil || *out.Deterministic {
			return false, "the reproduce line's two runs gave the same trace hash: the divergence did not recur"
		}
		if !slices.Equal(want, got) {
			return false, fmt.Sprintf("the reproduce line failed checks %v, the seed %v", got, want)
		}
		return true, "the line's two runs diverged again (a determinism bug's hash differs from run to run)"
	}
	if out.TraceHash != rec.TraceHash {
		return false, fmt.Sprintf("the reproduce line gave trace hash %s, the seed %s", out.TraceHash, rec.TraceHash)
	}
	if !slices.Equal(want, got) {
		return false, fmt.Sprintf("the reproduce line failed checks %v, the seed %v", got, want)
	}
	return true, ""
}

// huntControl runs the reproduce line with the bug off: a seed that fails
// a check without the bug too (damage no replica can repair, say) is not
// the bug's doing for that check.
func huntControl(rec swarmRecord, bug, failuresDir string) ([]string, string) {
	args, err := splitCommandLine(rec.Reproduce)
	if err != nil || len(args) < 2 {
		return nil, fmt.Sprintf("the reproduce line %q: %v", rec.Reproduce, err)
	}
	var control []string
	for i := 1; i < len(args); i++ {
		if args[i] == "--bug" && i+1 < len(args) && args[i+1] == bug {
			i++
			continue
		}
		control = append(control, args[i])
	}
	out, err := runInProcess(append(control, "--json", "--failures-dir", failuresDir))
	if err != nil {
		return nil, err.Error()
	}
	failed := out.failedNames()
	if out.Deterministic != nil && !*out.Deterministic {
		failed = append([]string{"determinism"}, failed...)
	}
	return failed, ""
}

// runInProcess runs a sluice command line (without "sluice") in this
// process and decodes its --json output.
func runInProcess(args []string) (huntRunOutput, error) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.Execute()
	var ee *exitError
	if err != nil && !(errors.As(err, &ee) && ee.code == exitCheckFailed) {
		return huntRunOutput{}, fmt.Errorf("sluice %s: %w", strings.Join(args, " "), err)
	}
	var o huntRunOutput
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		return o, fmt.Errorf("sluice %s: output not JSON: %w", strings.Join(args, " "), err)
	}
	return o, nil
}

// huntShrinkRun shrinks a saved failing run within the flags' bounds,
// saves the smallest run next to it and replays that.
func huntShrinkRun(savedFile string, determinism bool, f huntFlags, progressOut io.Writer) (*huntShrink, error) {
	saved, err := loadRun(savedFile)
	if err != nil {
		return nil, fmt.Errorf("shrink: %w", err)
	}
	def, opts, err := saved.Options(&saved.Schedule)
	if err != nil {
		return nil, fmt.Errorf("shrink %s: %w", savedFile, err)
	}
	deadline := time.Now().Add(f.shrinkTime)
	status := newStatusLine(progressOut)
	limits := scenario.ShrinkLimits{TriesMax: f.shrinkTriesMax, Determinism: determinism,
		Stop: func() bool { return time.Now().After(deadline) }}
	sh, err := scenario.ShrinkWithin(def, opts, limits, func(r scenario.Result) {
		status.show(fmt.Sprintf("  shrinking: %d actions, run %v + drain %v still fail", len(r.Schedule.Actions), r.Run, r.Drain), false)
	})
	status.done()
	if err != nil {
		return nil, fmt.Errorf("shrink %s: %w", savedFile, err)
	}
	s := &huntShrink{
		File:          shrunkPath(savedFile),
		ActionsBefore: len(sh.Original.Schedule.Actions), ActionsAfter: len(sh.Smallest.Schedule.Actions),
		FaultsBefore: len(sh.Original.Schedule.Units()), FaultsAfter: len(sh.Smallest.Schedule.Units()),
		RunBefore: sh.Original.Run, RunAfter: sh.Smallest.Run,
		DrainBefore: sh.Original.Drain, DrainAfter: sh.Smallest.Drain,
		Tries: sh.Tries, Bounded: sh.TriesExhausted || sh.Stopped,
	}
	if before, ok := sh.Original.EpisodesActed(); ok {
		after, _ := sh.Smallest.EpisodesActed()
		s.PlantedBefore, s.PlantedAfter = &before, &after
	}
	if err := saveRun(s.File, sh.Smallest); err != nil {
		return s, err
	}
	s.Replayed, s.ReplayNote = huntReplay(s.File, checkNames(sh.Smallest.Failed()), determinism)
	return s, nil
}

// huntReplay replays a shrunk run in this process: it must give its saved
// trace hash and fail the checks it failed (for a determinism bug: its
// two runs must diverge).
func huntReplay(file string, failed []string, determinism bool) (bool, string) {
	args := []string{"sim", "replay", file, "--json"}
	if determinism {
		args = append(args, "--check-determinism")
	}
	out, err := runInProcess(args)
	if err != nil {
		return false, err.Error()
	}
	if !slices.Equal(out.failedNames(), failed) {
		return false, fmt.Sprintf("the replay failed checks %v, the shrunk run %v", out.failedNames(), failed)
	}
	if determinism {
		if out.Deterministic == nil || *out.Deterministic {
			return false, "the shrunk run's two runs gave the same trace hash"
		}
		return true, ""
	}
	if out.Reproduced == nil || !*out.Reproduced {
		return false, "the replay gave another trace hash than the shrunk run"
	}
	return true, ""
}

func checkNames(checks []scenario.Check) []string {
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
	}
	return names
}

// splitCommandLine splits a command line as a POSIX shell would for the
// quoting reproduceCommand uses: blanks separate words, single quotes
// keep their text, a backslash keeps the next character.
func splitCommandLine(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, c := range line {
		switch {
		case escaped:
			word.WriteRune(c)
			escaped = false
		case quoted && c == '\'':
			quoted = false
		case quoted:
			word.WriteRune(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\':
			escaped, inWord = true, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	if quoted || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// oneLine is a pair's outcome for the progress output.
func (r huntResult) oneLine() string {
	switch {
	case r.Error != "" && !r.Found:
		return fmt.Sprintf("%s in %s: %s (%d seeds, %v)", r.Bug, r.Scenario, r.Error, r.SeedsRun, r.WallTime.Round(time.Second))
	case !r.Found:
		return fmt.Sprintf("%s in %s: NOT FOUND in %d seeds (%v)", r.Bug, r.Scenario, r.SeedsRun, r.WallTime.Round(time.Second))
	}
	line := fmt.Sprintf("%s in %s: seed %d fails %s; without the bug fails [%s]; reproduced %s", r.Bug, r.Scenario, r.FirstSeed,
		r.failedText(), strings.Join(r.WithoutBug, ", "), yesNo(r.Reproduced))
	if r.Shrink != nil {
		line += fmt.Sprintf("; actions %s; replayed %s", r.Shrink.actionsText(), yesNo(r.Shrink.Replayed))
	}
	return line + fmt.Sprintf(" (%v)", r.WallTime.Round(time.Second))
}

func (r huntResult) failedText() string {
	names := checkNames(r.Failed)
	if r.Determinism {
		names = append([]string{"determinism"}, names...)
	}
	return strings.Join(names, ", ")
}

// anomaly is the first failed check's detail, cut for a table cell.
func (r huntResult) anomaly() string {
	if len(r.Failed) == 0 {
		if r.Determinism && r.Found {
			return "two runs of the seed diverge"
		}
		return ""
	}
	detail := strings.Join(strings.Fields(r.Failed[0].Detail), " ")
	if len(detail) > huntAnomalyCharsMax {
		detail = detail[:huntAnomalyCharsMax-3] + "..."
	}
	return detail
}

// cut reports whether shrinking removed fault actions or planted faults.
func (s *huntShrink) cut() bool {
	return s.ActionsAfter < s.ActionsBefore || (s.PlantedBefore != nil && *s.PlantedAfter < *s.PlantedBefore)
}

func (s *huntShrink) actionsText() string {
	text := fmt.Sprintf("%d->%d", s.ActionsBefore, s.ActionsAfter)
	if s.PlantedBefore != nil && *s.PlantedBefore > 0 {
		text += fmt.Sprintf(", planted %d->%d", *s.PlantedBefore, *s.PlantedAfter)
	}
	if s.Bounded {
		text += " (bounded)"
	}
	return text
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func printHunt(out io.Writer, report huntReport, jsonOut bool) error {
	if jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	header := []string{"bug", "scenario", "first seed", "seeds run", "failed checks", "anomaly", "without bug", "same hash", "actions", "run+drain", "wall"}
	var rows [][]string
	for _, r := range report.Pairs {
		rows = append(rows, r.row())
	}
	if err := reports.WriteTable(out, header, rows); err != nil {
		return err
	}
	for _, r := range report.Pairs {
		switch {
		case r.Error != "":
			fmt.Fprintf(out, "%s in %s: %s\n", r.Bug, r.Scenario, r.Error)
		case r.Found && !r.Reproduced:
			fmt.Fprintf(out, "%s in %s: not reproduced: %s\n", r.Bug, r.Scenario, r.ReproduceNote)
		case r.Shrink != nil && !r.Shrink.Replayed:
			fmt.Fprintf(out, "%s in %s: shrunk run did not replay: %s\n", r.Bug, r.Scenario, r.Shrink.ReplayNote)
		}
	}
	if len(report.Unplanted) > 0 {
		fmt.Fprintf(out, "planted by no scenario, so no hunt can find them: %s\n", strings.Join(report.Unplanted, ", "))
	}
	fmt.Fprintf(out, "%d of %d bug×scenario pairs found within %d seeds; %d fail a check the seed passes without the bug; %d reproduced, shrunk and replayed; %d with fewer faults after shrinking (%v)\n",
		report.Found, len(report.Pairs), report.SeedsMax, report.Blamed, report.Proven, report.Cut, report.WallTime.Round(time.Second))
	return nil
}

func (r huntResult) row() []string {
	row := []string{r.Bug, strings.Join(append([]string{r.Scenario}, r.Params...), " "), "-", fmt.Sprint(r.SeedsRun), "-", "-", "-", "-", "-", "-", r.WallTime.Round(time.Second).String()}
	if !r.Found {
		row[4] = "NOT FOUND"
		if r.Error != "" {
			row[4] = "ERROR"
		}
		return row
	}
	row[2], row[4], row[5] = fmt.Sprint(r.FirstSeed), r.failedText(), r.anomaly()
	switch {
	case r.ControlNote != "":
		row[6] = "?"
	case len(r.WithoutBug) == 0:
		row[6] = "passes"
	default:
		row[6] = "fails " + strings.Join(r.WithoutBug, ", ")
	}
	row[7] = yesNo(r.Reproduced)
	if r.Determinism && r.Reproduced {
		row[7] = "diverges again"
	}
	if s := r.Shrink; s != nil {
		row[8] = s.actionsText()
		row[9] = fmt.Sprintf("%v+%v -> %v+%v", time.Duration(s.RunBefore), time.Duration(s.DrainBefore),
			time.Duration(s.RunAfter), time.Duration(s.DrainAfter))
		if !s.Replayed {
			row[8] += " NO REPLAY"
		}
	}
	return row
}
