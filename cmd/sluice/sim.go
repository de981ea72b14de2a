package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

func newSimCommand() *cobra.Command {
	sim := &cobra.Command{
		Use:   "sim",
		Short: "Run seeded fault scenarios in the simulated world",
		Example: `  sluice sim list
  sluice sim run --scenario counter --seed 42
  sluice sim replay sluice-failures/counter-seed42.json`,
	}
	sim.PersistentPreRun = func(*cobra.Command, []string) { tuneGCForSimulation() }
	sim.AddCommand(newSimRunCommand(), newSimReplayCommand(), newSimShrinkCommand(), newSimSwarmCommand(),
		newSimMergeCommand(), newSimSwarmWorkerCommand(), newSimMutateCommand(), newSimListCommand(), newSimBugsCommand(), newSimHuntCommand(),
		newSimCompareChannelsCommand())
	requireSubcommand(sim)
	return sim
}

// runFlags are the flags of sim run.
type runFlags struct {
	scenario         string
	scenarioFile     string
	seed             uint64
	seeds            int
	bugs             []string
	params           []string
	faultsFile       string
	saveFaults       string
	run, drain       time.Duration
	eventsMax        uint64
	swarm            bool
	shrink           bool
	saveRun          string
	checkDeterminism bool
	jsonOut          bool
	verbose          bool
	logFile          string
	cpuProfile       string
	failuresDir      string
	historyFile      string
	reportDir        string
	// replayOf is the saved run a replay runs again.
	replayOf   *savedRun
	replayFile string
}

const checkDeterminismHelp = "run each seed twice and compare trace hashes; on a difference, name the first divergent event"

func newSimRunCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a scenario for one seed or a range of seeds",
		Long: `Run a scenario in the simulated world: build its cluster, generate a fault
schedule from the seed (or read one with --faults), run the workload, heal,
drain, and judge the run with the scenario's checks.

Exit status: 0 when every check held (and, with --check-determinism, both
runs of every seed gave the same trace), 1 when one did not, 2 on bad usage.
A failing seed's run is written to --failures-dir as a file that
'sluice sim replay' runs again, and the 'reproduce:' line it prints names
every option that decided the run (scenario, seed, bugs, parameters, run
and drain lengths, event bound, fault schedule file), so that either gives
the same trace hash.

Every run has budgets: events (--events-max, by default the scenario's per
simulated second), an estimate of the memory it holds, and a watchdog that,
once the faults heal, stops a run whose clients have work and make no
progress. The 'budget' and 'progress' checks name what ran out or what is
stuck, how much it used and when.

A fault-schedule action that finds nothing to act on (a kill of a node that
is already down) or falls after the run ends is reported as a warning that
names the entry.`,
		Example: `  sluice sim run --scenario counter --seed 7
  sluice sim run --seed 1 --seeds 200 --check-determinism
  sluice sim run --seed 7 --bug ack-before-sync --json
  sluice sim run --seed 7 --faults my-schedule.json --verbose
  sluice sim run --scenario leader-crash --param linger.ms=100 --param partitioner=sticky`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", "counter", "scenario to run (see 'sluice sim list')")
	fl.StringVar(&f.scenarioFile, "scenario-file", "", "YAML or JSON file of a run: scenario, params, bugs, lengths, fault profile or schedule (flags given too win)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the run (the first seed with --seeds)")
	fl.IntVar(&f.seeds, "seeds", 1, "number of consecutive seeds to run")
	fl.StringSliceVar(&f.bugs, "bug", nil, "planted bug to switch on (repeatable; see 'sluice sim bugs')")
	fl.StringArrayVar(&f.params, "param", nil, "scenario parameter name=value (repeatable)")
	fl.StringVar(&f.faultsFile, "faults", "", "JSON fault schedule to use instead of the generated one")
	fl.StringVar(&f.saveFaults, "save-faults", "", "write the fault schedule used to this file")
	fl.DurationVar(&f.run, "run", 0, "how long the workload runs under faults (default: the scenario's)")
	fl.DurationVar(&f.drain, "drain", 0, "how long the workload runs after the faults heal (default: the scenario's)")
	fl.Uint64Var(&f.eventsMax, "events-max", 0, "event budget: a run that reaches it stops and fails its budget check (0: the scenario's budget for the run's length)")
	fl.BoolVar(&f.swarm, "swarm", false, "let the seed draw its own fault mix (which kinds, how often, how long), as 'sim swarm' does")
	fl.BoolVar(&f.shrink, "shrink", false, "shrink a failing seed's run to the smallest that fails the same checks (see 'sluice sim shrink')")
	fl.StringVar(&f.saveRun, "save-run", "", "write the run, passing or not, to this file for 'sluice sim replay' (with --seeds, the last seed's)")
	fl.BoolVar(&f.checkDeterminism, "check-determinism", false, checkDeterminismHelp)
	fl.BoolVar(&f.jsonOut, "json", false, "print results as JSON lines")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list the faults the world applied")
	fl.StringVar(&f.logFile, "log", "", "write every process's log lines to this file ('-' for standard error)")
	fl.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the runs to this file (for go tool pprof)")
	fl.StringVar(&f.failuresDir, "failures-dir", "sluice-failures", "where a failing seed's run is written for replay")
	fl.StringVar(&f.historyFile, "history", "", "write the clients' history (JSON lines, for 'sluice check') to this file")
	fl.StringVar(&f.reportDir, "report", "", "write a report (HTML page, latency table, PNG/SVG charts) of the run into this directory")
	return cmd
}

func runSim(cmd *cobra.Command, f runFlags) error {
	file, err := applyScenarioFile(cmd, &f)
	if err != nil {
		return err
	}
	def, err := scenario.Lookup(f.scenario)
	if err != nil {
		return usageError("%v", err)
	}
	if f.seeds < 1 {
		return usageError("--seeds must be at least 1")
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	if file != nil {
		opts.Profile = file.Profile
		if opts.Schedule == nil {
			opts.Schedule = file.Schedule
		}
	}
	logOut, closeLog, err := openLog(f.logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	opts.Log = logOut
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	out := cmd.OutOrStdout()
	status := newStatusLine(cmd.ErrOrStderr())
	failed := 0
	for i := 0; i < f.seeds; i++ {
		opts.Seed = f.seed + uint64(i)
		ok, err := runOneSeed(out, def, opts, f)
		if err != nil {
			return err
		}
		if !ok {
			failed++
		}
		if f.seeds > 1 && !f.jsonOut {
			status.show(fmt.Sprintf("%d/%d seeds, %d failed", i+1, f.seeds, failed), i+1 == f.seeds)
		}
	}
	if f.seeds > 1 && !f.jsonOut {
		status.done()
		fmt.Fprintf(out, "%d seeds: %d passed, %d failed\n", f.seeds, f.seeds-failed, failed)
	}
	if failed > 0 {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("%d seeds failed", failed)}
	}
	return nil
}

func (f runFlags) options() (scenario.Options, error) {
	bugs, err := faults.ParseBugs(f.bugs)
	if err != nil {
		return scenario.Options{}, usageError("--bug: %v", err)
	}
	params, err := parseParams(f.params)
	if err != nil {
		return scenario.Options{}, err
	}
	if f.run < 0 {
		return scenario.Options{}, usageError("--run %v: want a positive duration such as 30s", f.run)
	}
	if f.drain < 0 {
		return scenario.Options{}, usageError("--drain %v: want a positive duration such as 5s", f.drain)
	}
	opts := scenario.Options{Bugs: bugs, Params: params, Run: f.run, Drain: f.drain, EventsMax: f.eventsMax, Swarm: f.swarm}
	if f.faultsFile != "" {
		data, err := os.ReadFile(f.faultsFile)
		if err != nil {
			return opts, usageError("--faults: %v", err)
		}
		s, err := faults.Parse(data, nil)
		if err != nil {
			return opts, usageError("--faults %s: %v", f.faultsFile, err)
		}
		opts.Schedule = &s
	}
	return opts, nil
}

// parseParams reads --param name=value flags.
func parseParams(flags []string) (map[string]string, error) {
	params := map[string]string{}
	for _, p := range flags {
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usageError("--param %q: want name=value", p)
		}
		params[name] = value
	}
	return params, nil
}

// applyScenarioFile reads --scenario-file and takes from it every setting
// whose flag was not given; the file's profile and schedule are returned
// for the run's options.
func applyScenarioFile(cmd *cobra.Command, f *runFlags) (*scenario.File, error) {
	if f.scenarioFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(f.scenarioFile)
	if err != nil {
		return nil, usageError("--scenario-file: %v", err)
	}
	file, err := scenario.ParseFile(data)
	if err != nil {
		return nil, usageError("--scenario-file %s: %v", f.scenarioFile, err)
	}
	given := cmd.Flags().Changed
	if !given("scenario") {
		f.scenario = file.Scenario
	}
	if file.Set["seed"] && !given("seed") {
		f.seed = file.Seed
	}
	if file.Set["bugs"] && !given("bug") {
		f.bugs = file.Bugs
	}
	if file.Set["run"] && !given("run") {
		f.run = time.Duration(file.Run)
	}
	if file.Set["drain"] && !given("drain") {
		f.drain = time.Duration(file.Drain)
	}
	if file.Set["events_max"] && !given("events-max") {
		f.eventsMax = file.EventsMax
	}
	if file.Set["swarm"] && !given("swarm") {
		f.swarm = file.Swarm
	}
	// The file's parameters come first, so that a --param of the same
	// name given too wins.
	var params []string
	for _, name := range sortedParamNames(file.Params) {
		params = append(params, name+"="+file.Params[name])
	}
	f.params = append(params, f.params...)
	return &file, nil
}

func openLog(name string) (io.Writer, func(), error) {
	switch name {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stderr, func() {}, nil
	}
	file, err := os.Create(name)
	if err != nil {
		return nil, nil, usageError("--log: %v", err)
	}
	return file, func() { file.Close() }, nil
}

// runOneSeed runs one seed, prints its outcome, saves it if it failed, and
// reports whether it passed.
func runOneSeed(out io.Writer, def scenario.Definition, opts scenario.Options, f runFlags) (bool, error) {
	start := time.Now()
	var simulated time.Duration
	if !f.checkDeterminism {
		opts.Judging = func() { simulated = time.Since(start) }
	}
	var res scenario.Result
	var det *scenario.Determinism
	var err error
	if f.checkDeterminism {
		var d scenario.Determinism
		res, d, err = scenario.RunTwice(def, opts)
		det = &d
	} else {
		res, err = scenario.Run(def, opts)
	}
	if err != nil {
		return false, usageError("%v", err)
	}
	wall := time.Since(start)
	if f.checkDeterminism {
		wall /= 2
	}
	if f.historyFile != "" {
		if err := writeHistory(f.historyFile, res.History); err != nil {
			return false, err
		}
	}
	if f.saveFaults != "" {
		if err := os.WriteFile(f.saveFaults, res.Schedule.Marshal(), 0o644); err != nil {
			return false, fmt.Errorf("--save-faults: %w", err)
		}
	}
	if f.saveRun != "" {
		if err := saveRun(f.saveRun, res); err != nil {
			return false, fmt.Errorf("--save-run: %w", err)
		}
	}
	ok := res.OK() && (det == nil || det.Same())
	summary := newRunSummary(res, det, wall, f.faultsFile, f.scenarioFile)
	summary.noteSimulated(simulated)
	if f.replayOf != nil {
		summary.noteReplay(*f.replayOf, f.replayFile)
		ok = ok && summary.Reproduced != nil && *summary.Reproduced
	}
	switch {
	case !ok && f.replayOf != nil:
		summary.SavedTo = f.replayFile // already saved: a replay overwrites nothing
	case !ok:
		summary.SavedTo = failurePath(f.failuresDir, res)
		if err := saveRun(summary.SavedTo, res); err != nil {
			return false, err
		}
	}
	if f.reportDir != "" {
		dir := f.reportDir
		if f.seeds > 1 {
			dir = filepath.Join(dir, fmt.Sprintf("seed%d", res.Seed))
		}
		summary.Report = filepath.Join(dir, reports.HTMLName)
		if err := writeReport(dir, summary); err != nil {
			return false, err
		}
	}
	if err := printRunSummary(out, summary, f, ok); err != nil {
		return ok, err
	}
	if f.shrink && !res.OK() {
		opts.Schedule = &res.Schedule
		if err := shrinkAndSave(out, def, opts, shrinkTriesMax, shrunkPath(summary.SavedTo)); err != nil {
			return ok, err
		}
	}
	return ok, nil
}

func printRunSummary(out io.Writer, summary runSummary, f runFlags, ok bool) error {
	if f.jsonOut {
		return json.NewEncoder(out).Encode(summary)
	}
	if f.seeds > 1 && ok {
		return nil // a range prints only its failures
	}
	return summary.writeText(out, f.verbose)
}

// runSummary is what sim run prints for one seed.
type runSummary struct {
	scenario.Result
	WallTime     time.Duration `json:"wall_time_ns"`
	EventsPerSec float64       `json:"events_per_sec"`
	Dilation     float64       `json:"time_dilation"`
	// SeedsPerCoreHour is what a swarm of such runs costs: the
	// simulator runs on one core.
	SeedsPerCoreHour float64 `json:"seeds_per_core_hour"`
	// SimulatedTime is the part of WallTime spent running the world to
	// the end of the drain, before the end-of-run audits and checks, and
	// SimulatedDilation the time dilation of that part alone; both are
	// left out with --check-determinism, whose runs are timed together.
	SimulatedTime     time.Duration `json:"simulated_wall_time_ns,omitempty"`
	SimulatedDilation float64       `json:"simulated_time_dilation,omitempty"`
	Deterministic     *bool         `json:"deterministic,omitempty"`
	Divergence        string        `json:"divergence,omitempty"`
	Reproduce         string        `json:"reproduce"`
	SavedTo           string        `json:"saved_to,omitempty"`
	Report            string        `json:"report,omitempty"`
	// Reproduced says, for a replay, whether it gave the saved trace hash;
	// ReplayNote says why not, or that the versions differ.
	Reproduced *bool  `json:"reproduced,omitempty"`
	ReplayNote string `json:"replay_note,omitempty"`
}

func newRunSummary(res scenario.Result, det *scenario.Determinism, wall time.Duration, faultsFile, scenarioFile string) runSummary {
	s := runSummary{Result: res, WallTime: wall}
	if secs := wall.Seconds(); secs > 0 {
		s.EventsPerSec = float64(res.Events) / secs
		s.Dilation = res.SimTime.Seconds() / secs
		s.SeedsPerCoreHour = time.Hour.Seconds() / secs
	}
	if det != nil {
		same := det.Same()
		s.Deterministic = &same
		if det.Divergence != nil {
			s.Divergence = det.Divergence.String()
		}
	}
	s.Reproduce = reproduceCommand(res.Recipe, faultsFile, scenarioFile, det != nil)
	return s
}

// noteSimulated notes how much of the wall time the world took to run
// to the end of the drain (zero: not measured).
func (s *runSummary) noteSimulated(simulated time.Duration) {
	if simulated <= 0 || simulated > s.WallTime {
		return
	}
	s.SimulatedTime = simulated
	s.SimulatedDilation = s.SimTime.Seconds() / simulated.Seconds()
}

// noteReplay compares a replay with the run it replays.
func (s *runSummary) noteReplay(saved savedRun, file string) {
	same := s.TraceHash == saved.TraceHash || saved.TraceHash == ""
	s.Reproduced = &same
	s.Reproduce = "sluice sim replay " + shellQuote(file)
	switch {
	case saved.TraceHash == "":
		s.ReplayNote = "the saved run has no trace hash to compare with"
	case !same && saved.Version != version:
		s.ReplayNote = fmt.Sprintf("trace hash %s differs from the saved run's %s: it was saved by sluice %s, this is sluice %s", s.TraceHash, saved.TraceHash, saved.Version, version)
	case !same:
		s.ReplayNote = fmt.Sprintf("trace hash %s differs from the saved run's %s: the replay did not reproduce the run", s.TraceHash, saved.TraceHash)
	case saved.Version != version:
		s.ReplayNote = fmt.Sprintf("saved by sluice %s, replayed by sluice %s; the trace hash is the same", saved.Version, version)
	}
}

func sortedParamNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (s runSummary) writeText(out io.Writer, verbose bool) error {
	fmt.Fprintf(out, "scenario   %s, seed %d", s.Scenario, s.Seed)
	if len(s.Bugs) > 0 {
		fmt.Fprintf(out, ", planted bugs: %s", strings.Join(s.Bugs, ", "))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "sim time   %v   wall time %v   time dilation %.0fx\n",
		s.SimTime, s.WallTime.Round(time.Millisecond), s.Dilation)
	if s.SimulatedTime > 0 {
		fmt.Fprintf(out, "           simulating %v (dilation %.0fx), then audits and checks %v\n",
			s.SimulatedTime.Round(time.Millisecond), s.SimulatedDilation, (s.WallTime - s.SimulatedTime).Round(time.Millisecond))
	}
	fmt.Fprintf(out, "events     %d   (%.2fM events/s, %.0f seeds/core-hour)\n", s.Events, s.EventsPerSec/1e6, s.SeedsPerCoreHour)
	fmt.Fprintf(out, "trace hash %s\n", s.TraceHash)
	fmt.Fprintf(out, "faults     %d of %d actions applied\n", s.FaultsApplied, len(s.Schedule.Actions))
	for _, w := range s.FaultWarnings {
		fmt.Fprintf(out, "warning    %s\n", w)
	}
	if len(s.Probes) > 0 {
		fmt.Fprintf(out, "probes     %s\n", s.Probes)
	}
	if verbose {
		for _, e := range s.WorldEvents {
			fmt.Fprintf(out, "  %s\n", e)
		}
	}
	var rows [][]string
	for _, c := range s.checkLines() {
		rows = append(rows, []string{c.Name, okText(c.OK), c.Detail})
	}
	if err := reports.WriteTable(out, []string{"check", "result", "detail"}, rows); err != nil {
		return err
	}
	if len(s.Stats) > 0 {
		stats := make([][]string, 0, len(s.Stats))
		for _, name := range s.StatNames() {
			stats = append(stats, []string{name, fmt.Sprint(s.Stats[name])})
		}
		if err := reports.WriteTable(out, []string{"counter", "value"}, stats); err != nil {
			return err
		}
	}
	if s.Divergence != "" {
		fmt.Fprint(out, s.Divergence)
	}
	for _, c := range s.Failed() {
		fmt.Fprintf(out, "FAILED %s: %s\n", c.Name, c.Detail)
	}
	if s.ReplayNote != "" {
		fmt.Fprintf(out, "note:      %s\n", s.ReplayNote)
	}
	failed := s.SavedTo != "" || len(s.Failed()) > 0 || s.Divergence != ""
	if failed && s.Reproduced == nil { // a replay's own line is the replay below
		fmt.Fprintf(out, "reproduce: %s\n", s.Reproduce)
	}
	if s.SavedTo != "" {
		fmt.Fprintf(out, "replay:    sluice sim replay %s\n", shellQuote(s.SavedTo))
	}
	if s.Report != "" {
		fmt.Fprintf(out, "report:    %s\n", s.Report)
	}
	return nil
}

// checkLines are the run's checks and, when they were made, the
// determinism and reproduction verdicts: what the terminal table and the
// report page both show.
func (s runSummary) checkLines() []reports.CheckLine {
	lines := make([]reports.CheckLine, 0, len(s.Checks)+2)
	for _, c := range s.Checks {
		lines = append(lines, reports.CheckLine{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	if s.Deterministic != nil {
		detail := "two runs of the seed gave the same trace hash"
		if !*s.Deterministic {
			detail = "the two runs' trace hashes differ; the divergent event is named below"
		}
		lines = append(lines, reports.CheckLine{Name: "determinism", OK: *s.Deterministic, Detail: detail})
	}
	if s.Reproduced != nil {
		detail := "same trace hash as the saved run"
		if !*s.Reproduced {
			detail = s.ReplayNote
		}
		lines = append(lines, reports.CheckLine{Name: "reproduction", OK: *s.Reproduced, Detail: detail})
	}
	return lines
}

// resultJSONName is the machine-readable result beside a report's page.
const resultJSONName = "result.json"

// writeReport writes the run's report files into dir, with the summary
// sim run --json prints as result.json.
func writeReport(dir string, s runSummary) error {
	res := s.Result
	run := reports.RunInfo{
		Scenario: res.Scenario, Seed: res.Seed, Params: res.Params, Bugs: res.Bugs,
		SimTime: res.SimTime, FaultsEnd: time.Duration(res.Run), Events: res.Events, TraceHash: res.TraceHash,
		Checks: s.checkLines(), Stats: res.Stats, WorldEvents: res.WorldEvents, CheckReport: res.CheckReport,
	}
	report, err := reports.NewReport(run, res.History, reports.Options{})
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	files := append(report.Files(), reports.File{Name: resultJSONName, Write: func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}})
	for _, file := range files {
		if err := writeFile(filepath.Join(dir, file.Name), file.Write); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

func writeHistory(name string, h history.History) error {
	if err := writeFile(name, func(w io.Writer) error { return history.Write(w, h) }); err != nil {
		return fmt.Errorf("--history: %w", err)
	}
	return nil
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func newSimReplayCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Run a saved run again: its scenario, seed, bugs, parameters and fault schedule",
		Example: `  sluice sim replay sluice-failures/counter-seed7.json
  sluice sim replay sluice-failures/counter-seed7.json --check-determinism --verbose`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return replaySim(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.checkDeterminism, "check-determinism", false, checkDeterminismHelp)
	fl.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list the faults the world applied")
	fl.StringVar(&f.logFile, "log", "", "write every process's log lines to this file ('-' for standard error)")
	fl.StringVar(&f.failuresDir, "failures-dir", "sluice-failures", "where a failing run is written")
	return cmd
}

func replaySim(cmd *cobra.Command, file string, f runFlags) error {
	saved, err := loadRun(file)
	if err != nil {
		return usageError("%v", err)
	}
	def, opts, err := saved.Options(&saved.Schedule)
	if err != nil {
		return usageError("%s: %v", file, err)
	}
	logOut, closeLog, err := openLog(f.logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	opts.Log = logOut
	f.seeds, f.replayOf, f.replayFile = 1, &saved, file
	ok, err := runOneSeed(cmd.OutOrStdout(), def, opts, f)
	if err != nil {
		return err
	}
	if !ok {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("replay failed")}
	}
	return nil
}

func newSimListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the scenarios, their parameters, the bugs they can plant and their budgets",
		Example: "  sluice sim list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows [][]string
			for _, name := range scenario.Names() {
				def, _ := scenario.Lookup(name)
				var params, bugs []string
				for _, p := range def.Params {
					params = append(params, fmt.Sprintf("%s=%s", p.Name, p.Default))
				}
				for _, b := range def.Bugs {
					bugs = append(bugs, string(b))
				}
				rows = append(rows, []string{name, def.Summary, strings.Join(params, " "), strings.Join(bugs, " "), def.Budget.String()})
			}
			return reports.WriteTable(cmd.OutOrStdout(), []string{"scenario", "summary", "parameters", "bugs", "budgets"}, rows)
		},
	}
}

func newSimBugsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "bugs",
		Short:   "List the planted bugs and the guarantee each breaks",
		Example: "  sluice sim bugs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows [][]string
			for _, b := range faults.KnownBugs() {
				rows = append(rows, []string{string(b.Name), b.Breaks})
			}
			return reports.WriteTable(cmd.OutOrStdout(), []string{"bug", "breaks"}, rows)
		},
	}
}

// simGCPercent is the garbage collector's target for simulations: a
// simulated world allocates fast and keeps little (a run's live heap is
// tens of MiB). When a seed allocated a dozen objects an event, Go's
// default of 100 spent about a quarter of the CPU collecting and 400 paid;
// with allocation cut since, a heap that large costs more in fresh pages
// (system time, cache misses) than the collections it saves, and 200 runs
// seeds fastest (sim run of single-broker and leader-crash seeds 1 to 5,
// alternating: 12% and 11% less wall time than 400, and less CPU than 100
// or 400). simMemoryLimitBytes makes it collect harder again should a run's
// heap grow toward it.
const (
	simGCPercent        = 200
	simMemoryLimitBytes = 4 << 30
)

// tuneGCForSimulation applies simGCPercent unless the user set GOGC or
// GOMEMLIMIT, which then win.
func tuneGCForSimulation() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(simGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(simMemoryLimitBytes)
	}
}

// startCPUProfile profiles the process into file until the returned stop
// is called; with no file it does nothing.
func startCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	out, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}
