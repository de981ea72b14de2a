// Package scenario runs seeded fault scenarios: a cluster shape, a
// workload and a fault schedule in a simulated world, judged by checks at
// the end. A seed reproduces a run exactly; a run's schedule can be saved,
// edited and replayed.
package scenario

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// Definition describes a scenario.
type Definition struct {
	Name    string
	Summary string
	// Bugs are the planted bugs this scenario can switch on.
	Bugs []faults.Bug
	// Params are the scenario's own knobs.
	Params []Param
	// Run is how long the workload runs under faults; Drain is how long it
	// goes on after every fault has healed, before the checks.
	Run, Drain time.Duration
	// Budget bounds each run: events, memory, and how long clients may
	// make no progress once the faults heal.
	Budget Budget
	// Configure adjusts the world's configuration (disk, network) before
	// the world is made; nil leaves the defaults.
	Configure func(cfg *world.Config, o Options)
	// Build adds the scenario's nodes to the world.
	Build func(w *world.World, o Options) Cluster
}

// Param is a scenario knob, set with --param name=value.
type Param struct {
	Name    string
	Default string
	// Values lists the accepted values; empty, and without Check, any.
	Values []string
	// Check, if set, judges a value Values does not list: nil accepts
	// it, an error says why not.
	Check func(value string) error
	Help  string
}

// Cluster is a built scenario.
type Cluster interface {
	// Profile says which nodes generated faults target and which kinds of
	// faults they draw; the runner sets its Start and End.
	Profile() faults.Profile
	// Finish runs after the drain and returns the checks of the run and
	// its counters. It may run the world further (a last crash and
	// recovery to see what survived).
	Finish(w *world.World) ([]Check, map[string]int64)
}

// Historian is a cluster whose clients recorded a history.
type Historian interface {
	History() history.History
}

// Judged is a cluster that judged its history with the checkers; reports
// show what they found (anomalies, porcupine's pages).
type Judged interface {
	CheckReport() checkers.Report
}

// Options are what a run is asked to do.
type Options struct {
	Seed uint64
	Bugs faults.Bugs
	// Schedule replaces the schedule the seed would generate.
	Schedule *faults.Schedule
	// Run and Drain override the definition's when non-zero.
	Run, Drain time.Duration
	// Params are the knobs' values by name; unset knobs take defaults.
	Params map[string]string
	// Log receives the processes' log lines.
	Log io.Writer
	// RecordTrace keeps every trace entry, to name a divergence.
	RecordTrace bool
	// EventsMax bounds the run; zero means no bound.
	EventsMax uint64
	// Swarm draws the seed's own fault mix (which kinds, how often, how
	// long) for the generated schedule; see faults.Profile.Swarm.
	Swarm bool
	// Profile, when set, replaces parts of the scenario's fault profile
	// for the generated schedule (a scenario file's "faults.profile").
	Profile *faults.ProfileSpec
	// EpisodesSkipped names, by their order from 0, the fault episodes a
	// scenario plants itself (a crash of whichever broker leads, a
	// coordinator's death) that this run leaves out: what shrinking cuts
	// of faults that are not schedule data.
	EpisodesSkipped []int
	// Judging, when set, is called once the world has run to the end of
	// the drain, before the scenario's end-of-run audits and checks: a
	// caller that times runs can then tell simulating from judging. It
	// decides nothing in the run.
	Judging func()
}

// skipsEpisode reports whether the run leaves out planted episode i.
func (o Options) skipsEpisode(i int) bool {
	for _, s := range o.EpisodesSkipped {
		if s == i {
			return true
		}
	}
	return false
}

// Param returns the value of a knob.
func (o Options) Param(name string) string { return o.Params[name] }

// Check is one judgement on a run.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Recipe is everything that decides a run's trace, defaults resolved: what
// a reproduction names. An option that changes a run belongs here (the
// schedule travels beside it, being too large for a command line).
type Recipe struct {
	Scenario string            `json:"scenario"`
	Seed     uint64            `json:"seed"`
	Bugs     []string          `json:"bugs,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	// Run, Drain and EventsMax are named even when they are the
	// scenario's defaults, so that a reproduction holds whatever the
	// defaults become.
	Run       faults.Duration `json:"run"`
	Drain     faults.Duration `json:"drain"`
	EventsMax uint64          `json:"events_max,omitempty"`
	// Swarm is whether the seed drew its own fault mix.
	Swarm bool `json:"swarm,omitempty"`
	// Profile is the fault profile a scenario file set, if any.
	Profile *faults.ProfileSpec `json:"profile,omitempty"`
	// EpisodesSkipped are the planted episodes the run left out.
	EpisodesSkipped []int `json:"episodes_skipped,omitempty"`
}

// Options are the options that run the recipe again, with schedule.
func (r Recipe) Options(schedule *faults.Schedule) (Definition, Options, error) {
	def, err := Lookup(r.Scenario)
	if err != nil {
		return def, Options{}, err
	}
	bugs, err := faults.ParseBugs(r.Bugs)
	if err != nil {
		return def, Options{}, err
	}
	return def, Options{
		Seed: r.Seed, Bugs: bugs, Params: r.Params, Schedule: schedule,
		Run: time.Duration(r.Run), Drain: time.Duration(r.Drain), EventsMax: r.EventsMax,
		Swarm: r.Swarm, Profile: r.Profile, EpisodesSkipped: r.EpisodesSkipped,
	}, nil
}

// Result is the outcome of a run.
type Result struct {
	Recipe
	// FaultsApplied counts the schedule's actions that acted on the world;
	// FaultWarnings name those that did not (nothing to act on, or due
	// after the run ended).
	FaultsApplied int      `json:"faults_applied"`
	FaultWarnings []string `json:"fault_warnings,omitempty"`
	// FaultsFired counts the actions that acted, by op.
	FaultsFired map[string]int `json:"faults_fired,omitempty"`
	// Probes counts the rare paths the run took (see sim.DeclareProbe).
	Probes    sim.ProbeCounts  `json:"probes,omitempty"`
	SimTime   time.Duration    `json:"sim_time_ns"`
	Events    uint64           `json:"events"`
	TraceHash string           `json:"trace_hash"`
	Checks    []Check          `json:"checks"`
	Stats     map[string]int64 `json:"stats,omitempty"`
	Schedule  faults.Schedule  `json:"schedule"`
	// WorldEvents is what the world did: faults and what they cost.
	WorldEvents []string `json:"world_events,omitempty"`
	// History is what the clients recorded, if they kept one.
	History history.History `json:"-"`
	// CheckReport is the checkers' full report on History, if they ran.
	CheckReport *checkers.Report `json:"-"`

	records []sched.Record
}

// OK reports whether every check held.
func (r Result) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed lists the checks that did not hold.
func (r Result) Failed() []Check {
	var failed []Check
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	return failed
}

// StatNames lists the counters' names, sorted.
func (r Result) StatNames() []string {
	names := make([]string, 0, len(r.Stats))
	for k := range r.Stats {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

var registry = map[string]Definition{}

// Register makes a scenario known by name.
func Register(d Definition) {
	if _, dup := registry[d.Name]; dup {
		panic("scenario: " + d.Name + " registered twice")
	}
	registry[d.Name] = d
}

// Lookup finds a scenario by name; the error lists the known ones.
func Lookup(name string) (Definition, error) {
	d, ok := registry[name]
	if !ok {
		return Definition{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return d, nil
}

// Names lists the registered scenarios, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate rejects options the scenario cannot run: unknown parameters or
// values, bugs it does not plant, negative lengths.
func (d Definition) Validate(o Options) error {
	_, err := d.resolve(o)
	return err
}

// resolve fills defaults and rejects unknown knobs, values and bugs.
func (d Definition) resolve(o Options) (Options, error) {
	if o.Run < 0 || o.Drain < 0 {
		return o, fmt.Errorf("scenario %s: negative run (%v) or drain (%v)", d.Name, o.Run, o.Drain)
	}
	if o.Profile != nil {
		if err := o.Profile.Validate(); err != nil {
			return o, fmt.Errorf("scenario %s: fault profile: %w", d.Name, err)
		}
	}
	if o.Run == 0 {
		o.Run = d.Run
	}
	if o.Drain == 0 {
		o.Drain = d.Drain
	}
	params := map[string]string{}
	for _, p := range d.Params {
		params[p.Name] = p.Default
	}
	for _, name := range sortedKeys(o.Params) {
		value := o.Params[name]
		i := slices.IndexFunc(d.Params, func(p Param) bool { return p.Name == name })
		if i < 0 {
			return o, fmt.Errorf("scenario %s has no parameter %q", d.Name, name)
		}
		if err := d.Params[i].accepts(value); err != nil {
			return o, fmt.Errorf("scenario %s: parameter %s=%q: %w", d.Name, name, value, err)
		}
		params[name] = value
	}
	o.Params = params
	for _, b := range o.Bugs.Names() {
		if !slices.Contains(d.Bugs, faults.Bug(b)) {
			return o, fmt.Errorf("scenario %s does not plant bug %q", d.Name, b)
		}
	}
	return o, nil
}

// accepts rejects a value the parameter does not take: one Values does
// not list and Check, where there is one, refuses.
func (p Param) accepts(value string) error {
	switch {
	case slices.Contains(p.Values, value):
		return nil
	case p.Check != nil:
		return p.Check(value)
	case len(p.Values) > 0:
		return fmt.Errorf("want one of %s", strings.Join(p.Values, ", "))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
