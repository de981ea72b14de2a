package scenario

import (
	"fmt"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// faultsStart is when generated faults may begin: after the cluster had a
// moment to come up, so a run always shows some healthy traffic first.
const faultsStart = 500_000_000 // 0.5 s

// Run runs a scenario once.
func Run(d Definition, o Options) (Result, error) {
	o, err := d.resolve(o)
	if err != nil {
		return Result{}, err
	}
	o.EventsMax = d.Budget.eventsMax(o)
	cfg := world.Config{Seed: o.Seed, RecordTrace: o.RecordTrace, Log: o.Log}
	if d.Configure != nil {
		d.Configure(&cfg, o)
	}
	w := world.New(cfg)
	cluster := d.Build(w, o)
	schedule := o.Schedule
	if schedule == nil {
		p := cluster.Profile()
		if o.Profile != nil {
			p = o.Profile.Apply(p)
		}
		if o.Swarm {
			p = p.Swarm(sched.NewRand(o.Seed, "swarm", 0))
		}
		p.Start, p.End = faultsStart, o.Run
		s := faults.Generate(sched.NewRand(o.Seed, "faults", 0), p)
		schedule = &s
	}
	if s, ok := cluster.(interface{ noteSchedule(faults.Schedule) }); ok {
		s.noteSchedule(*schedule) // the availability check reads the faults
	}
	tally, err := schedule.Install(w)
	if err != nil {
		return Result{}, err
	}
	budgetChecks := runBudgeted(w, d, o, cluster, healTime(o.Run, *schedule))
	// Actions due after this point never ran; Finish may run the world
	// further, but not the schedule's time.
	tally.NoteUnreached(w.Now())
	if o.Judging != nil {
		o.Judging()
	}
	checks, stats := cluster.Finish(w)
	checks = append(checks, budgetChecks...)
	r := Result{
		Recipe: Recipe{
			Scenario: d.Name, Seed: o.Seed, Bugs: o.Bugs.Names(), Params: o.Params,
			Run: faults.Duration(o.Run), Drain: faults.Duration(o.Drain), EventsMax: o.EventsMax,
			Swarm: o.Swarm, Profile: o.Profile, EpisodesSkipped: o.EpisodesSkipped,
		},
		FaultsApplied: tally.Applied,
		FaultWarnings: tally.Warnings,
		FaultsFired:   firedByName(tally.Fired),
		Probes:        w.Probes(),
		SimTime:       w.Now(),
		Events:        w.Loop().Dispatched(),
		TraceHash:     fmt.Sprintf("%016x", w.TraceHash()),
		Checks:        checks,
		Stats:         stats,
		Schedule:      *schedule,
		WorldEvents:   w.Events(),
	}
	if h, ok := cluster.(Historian); ok {
		r.History = h.History()
	}
	if j, ok := cluster.(Judged); ok {
		report := j.CheckReport()
		r.CheckReport = &report
	}
	if o.RecordTrace {
		r.records, _ = w.Loop().Trace().Records()
	}
	return r, nil
}

// Determinism is the verdict of running one seed twice.
type Determinism struct {
	// Hashes are the two runs' trace hashes.
	Hashes [2]string
	// Divergence names the first event where the runs part, when the
	// hashes differ.
	Divergence *sched.Divergence
}

// Same reports whether the two runs gave the same trace hash.
func (d Determinism) Same() bool { return d.Hashes[0] == d.Hashes[1] }

// RunTwice runs a scenario twice with the same options and compares the
// trace hashes. Only when they differ are both runs repeated with every
// trace entry recorded, to name the first event where they part: keeping
// every entry of every run would cost more memory and time than the runs.
func RunTwice(d Definition, o Options) (Result, Determinism, error) {
	first, err := Run(d, o)
	if err != nil {
		return Result{}, Determinism{}, err
	}
	quiet := o
	quiet.Log = nil
	second, err := Run(d, quiet)
	if err != nil {
		return Result{}, Determinism{}, err
	}
	det := Determinism{Hashes: [2]string{first.TraceHash, second.TraceHash}}
	if det.Same() {
		return first, det, nil
	}
	quiet.RecordTrace = true
	a, err := Run(d, quiet)
	if err != nil {
		return Result{}, Determinism{}, err
	}
	b, err := Run(d, quiet)
	if err != nil {
		return Result{}, Determinism{}, err
	}
	div, diverged := sched.Diverge(a.records, b.records)
	if !diverged {
		// The recorded runs agreed entry for entry (or ran past what is
		// kept): the divergence is real but could not be named.
		div = sched.Divergence{Index: uint64(len(a.records)), Unavailable: true}
	}
	det.Divergence = &div
	return first, det, nil
}

func firedByName(fired map[faults.Op]int) map[string]int {
	named := make(map[string]int, len(fired))
	for op, n := range fired {
		named[string(op)] = n
	}
	return named
}
