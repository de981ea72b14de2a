package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

// progress shows a swarm's advance: seeds done, rate, ETA, failures.
type progress struct {
	status *statusLine
	total  int
	done   int
	failed int
	start  time.Time
}

func newProgress(out io.Writer, total int) *progress {
	return &progress{status: newStatusLine(out), total: total, start: time.Now()}
}

func (p *progress) record(r swarmRecord) {
	p.done++
	if !r.OK {
		p.failed++
	}
	elapsed := time.Since(p.start)
	rate := float64(p.done) / max(elapsed.Seconds(), 1e-9)
	eta := time.Duration(float64(p.total-p.done) / max(rate, 1e-9) * float64(time.Second))
	p.status.show(fmt.Sprintf("%d/%d seeds (%.0f%%), %.1f seeds/s, ETA %v, %d failed",
		p.done, p.total, 100*float64(p.done)/float64(max(p.total, 1)), rate, eta.Round(time.Second), p.failed),
		p.done == p.total)
}

func (p *progress) finish() { p.status.done() }

// swarmSummary is what a swarm prints, computed from its records alone,
// so a merge of shards prints what the whole swarm would.
type swarmSummary struct {
	Scenarios []scenarioSummary `json:"scenarios"`
	// FaultSeeds counts, per fault op, the seeds in which it acted.
	FaultSeeds map[string]int `json:"fault_seeds"`
	// FaultsNeverFired lists the ops the swarm's scenarios are known to
	// apply (scenario.FaultsActed) that no seed applied; FaultsNotDrawn the
	// other ops no seed applied, which none of them is known to draw.
	FaultsNeverFired []string `json:"faults_never_fired"`
	FaultsNotDrawn   []string `json:"faults_not_drawn,omitempty"`
	// ProbeSeeds counts, per probe, the seeds that hit it. ProbesNeverHit
	// lists the probes the swarm's scenarios are known to reach
	// (scenario.ProbesReached) that no seed hit: its weak spots.
	// ProbesNotReached lists the other declared probes no seed hit, which
	// no scenario of the swarm is known to reach.
	ProbeSeeds       map[string]int `json:"probe_seeds"`
	ProbesNeverHit   []string       `json:"probes_never_hit"`
	ProbesNotReached []string       `json:"probes_not_reached,omitempty"`
	Failures         []swarmRecord  `json:"failures,omitempty"`
	Seeds            int            `json:"seeds"`
	Passed           int            `json:"passed"`
	Failed           int            `json:"failed"`
	// Missing lists shards a merge did not get.
	Missing []string `json:"missing_shards,omitempty"`
	// NotRun counts the seeds left out after --max-failures failures, or
	// after a signal stopped the swarm (Interrupted).
	NotRun      int  `json:"not_run,omitempty"`
	Interrupted bool `json:"interrupted,omitempty"`
}

type scenarioSummary struct {
	Name   string `json:"name"`
	Seeds  int    `json:"seeds"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
	// Rates are over the seeds' own wall time, one core each.
	EventsPerSec        float64 `json:"events_per_sec"`
	Dilation            float64 `json:"time_dilation"`
	SeedsPerCoreHour    float64 `json:"seeds_per_core_hour"`
	events              uint64
	simTime, wallTime   time.Duration
	deterministicSample int
}

func summarizeSwarm(spec swarmSpec, records []swarmRecord) swarmSummary {
	s := swarmSummary{FaultSeeds: map[string]int{}, ProbeSeeds: map[string]int{}}
	byName := map[string]*scenarioSummary{}
	for _, name := range spec.Scenarios {
		s.Scenarios = append(s.Scenarios, scenarioSummary{Name: name})
	}
	for i := range s.Scenarios {
		byName[s.Scenarios[i].Name] = &s.Scenarios[i]
	}
	sorted := slices.Clone(records)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Scenario != sorted[j].Scenario {
			return sorted[i].Scenario < sorted[j].Scenario
		}
		return sorted[i].Seed < sorted[j].Seed
	})
	for _, r := range sorted {
		sc := byName[r.Scenario]
		if sc == nil {
			continue
		}
		sc.Seeds++
		s.Seeds++
		if r.OK {
			sc.Passed++
			s.Passed++
		} else {
			sc.Failed++
			s.Failed++
			s.Failures = append(s.Failures, r)
		}
		sc.events += r.Events
		sc.simTime += r.SimTime
		sc.wallTime += r.WallTime
		for op, n := range r.FaultsFired {
			if n > 0 {
				s.FaultSeeds[op]++
			}
		}
		for probe, n := range r.Probes {
			if n > 0 {
				s.ProbeSeeds[probe]++
			}
		}
	}
	for i := range s.Scenarios {
		sc := &s.Scenarios[i]
		if secs := sc.wallTime.Seconds(); secs > 0 {
			sc.EventsPerSec = float64(sc.events) / secs
			sc.Dilation = sc.simTime.Seconds() / secs
			sc.SeedsPerCoreHour = float64(sc.Seeds) / (secs / 3600)
		}
	}
	acted := knownBy(spec.Scenarios, scenario.FaultsActed)
	for _, op := range faults.Ops() {
		switch {
		case s.FaultSeeds[string(op)] > 0:
		case acted[string(op)]:
			s.FaultsNeverFired = append(s.FaultsNeverFired, string(op))
		default:
			s.FaultsNotDrawn = append(s.FaultsNotDrawn, string(op))
		}
	}
	reached := knownBy(spec.Scenarios, scenario.ProbesReached)
	for _, p := range sim.DeclaredProbes() {
		switch {
		case s.ProbeSeeds[p.Name] > 0:
		case reached[p.Name]:
			s.ProbesNeverHit = append(s.ProbesNeverHit, p.Name)
		default:
			s.ProbesNotReached = append(s.ProbesNotReached, p.Name)
		}
	}
	return s
}

// knownBy is the set of names (fault ops, probes) that known gives for
// any of the scenarios.
func knownBy(scenarios []string, known func(scenario string) []string) map[string]bool {
	set := map[string]bool{}
	for _, name := range scenarios {
		for _, n := range known(name) {
			set[n] = true
		}
	}
	return set
}

func printSwarm(out io.Writer, spec swarmSpec, records []swarmRecord, notRun int, interrupted, jsonOut bool, reportDir string) error {
	s := summarizeSwarm(spec, records)
	s.NotRun, s.Interrupted = notRun, interrupted
	if reportDir != "" {
		if err := writeSwarmReport(reportDir, swarmTitle(spec), s); err != nil {
			return err
		}
		defer fmt.Fprintf(out, "report:    %s\n", filepath.Join(reportDir, reports.SwarmHTMLName))
	}
	return printSummary(out, s, jsonOut)
}

func swarmTitle(spec swarmSpec) string {
	return fmt.Sprintf("sluice swarm: %s, seeds %d to %d", strings.Join(spec.Scenarios, ", "),
		spec.FirstSeed, spec.FirstSeed+uint64(spec.Seeds)-1)
}

func printSummary(out io.Writer, s swarmSummary, jsonOut bool) error {
	if jsonOut {
		if err := json.NewEncoder(out).Encode(s); err != nil {
			return err
		}
	} else if err := s.writeText(out); err != nil {
		return err
	}
	if s.Failed > 0 || len(s.Missing) > 0 {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("%d seeds failed", s.Failed)}
	}
	if s.Interrupted && s.NotRun > 0 {
		return &exitError{code: exitCheckFailed, err: fmt.Errorf("stopped by a signal with %d seeds not run", s.NotRun)}
	}
	return nil
}

func (s swarmSummary) writeText(out io.Writer) error {
	rows := make([][]string, 0, len(s.Scenarios))
	for _, sc := range s.Scenarios {
		rows = append(rows, []string{sc.Name, fmt.Sprint(sc.Seeds), fmt.Sprint(sc.Passed), fmt.Sprint(sc.Failed),
			fmt.Sprintf("%.0f", sc.EventsPerSec), fmt.Sprintf("%.0fx", sc.Dilation), fmt.Sprintf("%.0f", sc.SeedsPerCoreHour)})
	}
	header := []string{"scenario", "seeds", "passed", "failed", "events/s", "time dilation", "seeds/core-hour"}
	if err := reports.WriteTable(out, header, rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "faults fired (seeds): %s\n", countsText(s.FaultSeeds))
	if len(s.FaultsNeverFired) > 0 {
		fmt.Fprintf(out, "faults never fired: %s\n", strings.Join(s.FaultsNeverFired, ", "))
	}
	if len(s.FaultsNotDrawn) > 0 {
		fmt.Fprintf(out, "faults these scenarios do not draw: %s\n", strings.Join(s.FaultsNotDrawn, ", "))
	}
	fmt.Fprintf(out, "probes hit (seeds): %s\n", countsText(s.ProbeSeeds))
	if len(s.ProbesNeverHit) > 0 {
		fmt.Fprintf(out, "probes never hit: %s\n", strings.Join(s.ProbesNeverHit, ", "))
	}
	if n := len(s.ProbesNotReached); n > 0 {
		fmt.Fprintf(out, "%d other probes no seed hit are not known to be reachable by these scenarios (--json lists them)\n", n)
	}
	for _, r := range s.Failures {
		fmt.Fprintf(out, "FAILED %s seed %d: %s\n", r.Scenario, r.Seed, failureText(r))
		if r.Reproduce != "" {
			fmt.Fprintf(out, "  reproduce: %s\n", r.Reproduce)
		}
		if r.SavedTo != "" {
			fmt.Fprintf(out, "  replay:    sluice sim replay %s\n", shellQuote(r.SavedTo))
		}
	}
	for _, m := range s.Missing {
		fmt.Fprintf(out, "MISSING shard %s: its seeds are not counted\n", m)
	}
	switch {
	case s.NotRun > 0 && s.Interrupted:
		fmt.Fprintf(out, "stopped by a signal: %d seeds not run\n", s.NotRun)
	case s.NotRun > 0:
		fmt.Fprintf(out, "stopped after %d failures (--max-failures): %d seeds not run\n", s.Failed, s.NotRun)
	}
	fmt.Fprintf(out, "%d seeds: %d passed, %d failed\n", s.Seeds, s.Passed, s.Failed)
	return nil
}

func failureText(r swarmRecord) string {
	if r.Error != "" {
		return r.Error
	}
	var parts []string
	for _, c := range r.Failed {
		parts = append(parts, c.Name)
	}
	if r.Deterministic != nil && !*r.Deterministic {
		parts = append(parts, "determinism (two runs gave different trace hashes)")
	}
	return strings.Join(parts, ", ")
}

// swarmFileHeader is the first line of a swarm's records file.
type swarmFileHeader struct {
	Swarm swarmSpec `json:"swarm"`
}

func writeSwarmFile(name string, spec swarmSpec, records []swarmRecord) error {
	return writeFile(name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		if err := enc.Encode(swarmFileHeader{Swarm: spec}); err != nil {
			return err
		}
		for _, r := range records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// swarmFileLineBytesMax bounds one line of a records file.
const swarmFileLineBytesMax = 16 << 20

func readSwarmFile(name string) (swarmSpec, []swarmRecord, error) {
	f, err := os.Open(name)
	if err != nil {
		return swarmSpec{}, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), swarmFileLineBytesMax)
	var header swarmFileHeader
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &header) != nil || len(header.Swarm.Scenarios) == 0 {
		return swarmSpec{}, nil, fmt.Errorf("%s: line 1: not a swarm records file (written by sluice sim swarm --out)", name)
	}
	var records []swarmRecord
	for line := 2; sc.Scan(); line++ {
		var r swarmRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return swarmSpec{}, nil, fmt.Errorf("%s: line %d: %s", name, line, faults.DescribeJSONError(sc.Bytes(), err))
		}
		records = append(records, r)
	}
	return header.Swarm, records, sc.Err()
}

func newSimMergeCommand() *cobra.Command {
	var jsonOut bool
	var reportDir string
	cmd := &cobra.Command{
		Use:   "merge FILE...",
		Short: "Join the shards of a swarm into the summary the whole swarm prints",
		Long: `Read the records files that 'sluice sim swarm --shard i/n --out FILE' wrote
and print the summary of the whole swarm, as one unsharded run prints it.
Every file must come from the same swarm (scenarios, seeds, lengths); a
shard given twice is refused and a shard missing is reported, and fails.`,
		Example: `  sluice sim swarm --seeds 1000 --shard 1/2 --out s1.jsonl
  sluice sim swarm --seeds 1000 --shard 2/2 --out s2.jsonl
  sluice sim merge s1.jsonl s2.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, records, missing, err := mergeSwarmFiles(args)
			if err != nil {
				return usageError("%v", err)
			}
			s := summarizeSwarm(spec, records)
			s.Missing = missing
			if reportDir != "" {
				if err := writeSwarmReport(reportDir, swarmTitle(spec), s); err != nil {
					return err
				}
				defer fmt.Fprintf(cmd.OutOrStdout(), "report:    %s\n", filepath.Join(reportDir, reports.SwarmHTMLName))
			}
			return printSummary(cmd.OutOrStdout(), s, jsonOut)
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	cmd.Flags().StringVar(&reportDir, "report", "", "write the swarm's page (swarm.html) and coverage chart into this directory")
	return cmd
}

// mergeSwarmFiles reads shard files of one swarm and returns the swarm's
// spec (as one whole), the records, and the shards that are missing.
func mergeSwarmFiles(names []string) (swarmSpec, []swarmRecord, []string, error) {
	var whole swarmSpec
	var all []swarmRecord
	seen := map[int]string{}
	for i, name := range names {
		spec, records, err := readSwarmFile(name)
		if err != nil {
			return whole, nil, nil, err
		}
		shardOf := spec.Shard
		spec.Shard = shard{Index: 1, Of: 1}
		if i == 0 {
			whole = spec
			whole.Shard.Of = shardOf.Of
		} else if !sameSwarm(whole, spec, shardOf.Of) {
			return whole, nil, nil, fmt.Errorf("%s is a shard of another swarm than %s", name, names[0])
		}
		if prev, dup := seen[shardOf.Index]; dup {
			return whole, nil, nil, fmt.Errorf("%s and %s are both shard %s", prev, name, shardOf)
		}
		seen[shardOf.Index] = name
		all = append(all, records...)
	}
	var missing []string
	for i := 1; i <= whole.Shard.Of; i++ {
		if _, ok := seen[i]; !ok {
			missing = append(missing, shard{Index: i, Of: whole.Shard.Of}.String())
		}
	}
	whole.Shard = shard{Index: 1, Of: 1}
	return whole, all, missing, nil
}

func sameSwarm(whole, spec swarmSpec, of int) bool {
	a, b := whole, spec
	a.Shard, b.Shard = shard{}, shard{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && whole.Shard.Of == of
}

// countsText lists counts by name, sorted: "kill 3, pause 5"; "none" when
// empty.
func countsText(counts map[string]int) string {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, counts[name])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// swarmPage turns a summary into the swarm report's page.
func swarmPage(title string, s swarmSummary) reports.Swarm {
	page := reports.Swarm{Title: title, Closing: fmt.Sprintf("%d seeds: %d passed, %d failed", s.Seeds, s.Passed, s.Failed)}
	for _, sc := range s.Scenarios {
		page.Scenarios = append(page.Scenarios, reports.SwarmScenario{
			Name: sc.Name, Seeds: sc.Seeds, Passed: sc.Passed, Failed: sc.Failed,
			EventsPerSec: sc.EventsPerSec, Dilation: sc.Dilation, SeedsPerCoreHour: sc.SeedsPerCoreHour,
		})
	}
	for _, op := range faults.Ops() {
		page.Faults = append(page.Faults, reports.Count{Name: string(op), Seeds: s.FaultSeeds[string(op)],
			Weak: slices.Contains(s.FaultsNeverFired, string(op))})
	}
	for _, p := range sim.DeclaredProbes() {
		page.Probes = append(page.Probes, reports.Count{Name: p.Name, Help: p.Help, Seeds: s.ProbeSeeds[p.Name],
			Weak: slices.Contains(s.ProbesNeverHit, p.Name)})
	}
	for _, r := range s.Failures {
		page.Failures = append(page.Failures, reports.SwarmFailure{
			Scenario: r.Scenario, Seed: r.Seed, Why: failureText(r), Reproduce: r.Reproduce, Replay: r.SavedTo,
		})
	}
	return page
}

// writeSwarmReport writes the swarm's page and chart into dir.
func writeSwarmReport(dir, title string, s swarmSummary) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	for _, file := range swarmPage(title, s).Files() {
		if err := writeFile(filepath.Join(dir, file.Name), file.Write); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}
