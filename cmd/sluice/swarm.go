package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

// A swarm runs many seeds of one or more scenarios, each seed with its own
// fault mix (scenario.Options.Swarm), on worker processes: each worker is
// this binary's hidden "sim swarm-worker", fed one job per line on its
// standard input and answering one record per line, so a crash or a memory
// blow-up of one seed takes down one worker, not the swarm.

// swarmSpec is what a swarm runs; shards of one swarm share it but for
// Shard.
type swarmSpec struct {
	Scenarios []string `json:"scenarios"`
	FirstSeed uint64   `json:"first_seed"`
	// Seeds is how many seeds of each scenario.
	Seeds     int           `json:"seeds"`
	Run       time.Duration `json:"run_ns,omitempty"`
	Drain     time.Duration `json:"drain_ns,omitempty"`
	EventsMax uint64        `json:"events_max,omitempty"`
	// Bugs are planted in every seed; Params set every seed's knobs.
	Bugs   []string          `json:"bugs,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// Sample is how many seeds of each scenario run twice to check
	// determinism.
	Sample int   `json:"determinism_sample,omitempty"`
	Shard  shard `json:"shard"`
}

// shard is a deterministic share of a swarm: seed index j of every
// scenario belongs to shard (j mod Of)+1.
type shard struct {
	Index int `json:"index"`
	Of    int `json:"of"`
}

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Of) }

func parseShard(text string) (shard, error) {
	i, n, ok := strings.Cut(text, "/")
	index, err1 := strconv.Atoi(i)
	of, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || of < 1 || index < 1 || index > of {
		return shard{}, fmt.Errorf("%q: want i/n with 1 <= i <= n, such as 2/4", text)
	}
	return shard{Index: index, Of: of}, nil
}

// swarmJob is one seed for a worker.
type swarmJob struct {
	Scenario    string `json:"scenario"`
	Seed        uint64 `json:"seed"`
	Determinism bool   `json:"determinism,omitempty"`
}

// jobs lists the spec's share of seeds, seed by seed with every scenario
// at each: scenarios differ in cost by tens of times, so taking them in
// turn keeps the progress line's rate and ETA true from the start.
func (spec swarmSpec) jobs() []swarmJob {
	var jobs []swarmJob
	for j := 0; j < spec.Seeds; j++ {
		if j%spec.Shard.Of != spec.Shard.Index-1 {
			continue
		}
		for _, name := range spec.Scenarios {
			jobs = append(jobs, swarmJob{Scenario: name, Seed: spec.FirstSeed + uint64(j), Determinism: spec.sampled(j)})
		}
	}
	return jobs
}

// sampled reports whether seed index j is in the determinism sample: K
// indices spread evenly over the whole range, whatever the shard.
func (spec swarmSpec) sampled(j int) bool {
	if spec.Sample <= 0 {
		return false
	}
	k := min(spec.Sample, spec.Seeds)
	for i := 0; i < k; i++ {
		if i*spec.Seeds/k == j {
			return true
		}
	}
	return false
}

// swarmRecord is one seed's outcome.
type swarmRecord struct {
	Scenario      string           `json:"scenario"`
	Seed          uint64           `json:"seed"`
	OK            bool             `json:"ok"`
	Failed        []scenario.Check `json:"failed,omitempty"`
	TraceHash     string           `json:"trace_hash,omitempty"`
	Events        uint64           `json:"events"`
	SimTime       time.Duration    `json:"sim_time_ns"`
	WallTime      time.Duration    `json:"wall_time_ns"`
	FaultsFired   map[string]int   `json:"faults_fired,omitempty"`
	Probes        sim.ProbeCounts  `json:"probes,omitempty"`
	Deterministic *bool            `json:"deterministic,omitempty"`
	Reproduce     string           `json:"reproduce,omitempty"`
	SavedTo       string           `json:"saved_to,omitempty"`
	// Error is set when the seed could not run (the worker died).
	Error string `json:"error,omitempty"`
}

type swarmFlags struct {
	scenarios   string
	seed        uint64
	seeds       int
	parallel    int
	shard       string
	out         string
	sample      int
	determinism bool
	run, drain  time.Duration
	eventsMax   uint64
	bugs        []string
	params      []string
	maxFailures int
	seedTimeout time.Duration
	reportDir   string
	failuresDir string
	jsonOut     bool
}

func newSimSwarmCommand() *cobra.Command {
	var f swarmFlags
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Run many seeds, each with its own fault mix, on parallel worker processes",
		Long: `Run seeds FIRST..FIRST+N-1 of each scenario, each seed drawing its own fault
mix (which fault kinds are on, how often and how long: swarm testing), on
--parallel worker processes. It shows progress with rate, ETA and failures,
then a summary per scenario (seeds, passed, failed, events/s, time
dilation, seeds per core-hour), the fault kinds that fired and in how many
seeds, one line per failure with the command that reproduces it, and
'N seeds: P passed, F failed'.

--shard i/n runs a deterministic share of the seeds, so that any batch
system can spread one swarm over machines; --out keeps the share's records
and 'sluice sim merge' joins the shards into the summary the whole swarm
prints. Ctrl-C or SIGTERM stops handing out seeds: the seeds in flight
finish, and --out and the summary hold what ran (a second one stops at
once). Exit status: 0 when every seed passed, 1 when one failed or a signal
left seeds not run, 2 on bad usage.`,
		Example: `  sluice sim swarm --scenario all --seeds 1000 --parallel 2
  sluice sim swarm --scenario single-broker --seeds 500 --check-determinism --sample 20
  sluice sim swarm --scenario all --seeds 10000 --shard 3/4 --out shard3.jsonl
  sluice sim merge shard1.jsonl shard2.jsonl shard3.jsonl shard4.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSwarm(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenarios, "scenario", "all", "scenarios to run, comma-separated, or 'all'")
	fl.Uint64Var(&f.seed, "seed", 1, "first seed")
	fl.IntVar(&f.seeds, "seeds", 100, "seeds of each scenario")
	fl.IntVar(&f.parallel, "parallel", 2, "worker processes")
	fl.StringVar(&f.shard, "shard", "1/1", "run share i of n of the seeds")
	fl.StringVar(&f.out, "out", "", "write the swarm's records (JSON lines) to this file, for 'sluice sim merge'")
	fl.BoolVar(&f.determinism, "check-determinism", false, "run a sample of seeds twice and compare trace hashes")
	fl.IntVar(&f.sample, "sample", 10, "with --check-determinism: how many seeds of each scenario run twice")
	fl.DurationVar(&f.run, "run", 0, "how long each workload runs under faults (default: the scenario's)")
	fl.DurationVar(&f.drain, "drain", 0, "how long each workload runs after the faults heal (default: the scenario's)")
	fl.Uint64Var(&f.eventsMax, "events-max", 0, "event budget of each run: a run that reaches it stops and fails its budget check (0: the scenario's budget)")
	fl.StringSliceVar(&f.bugs, "bug", nil, "planted bug to switch on in every seed (repeatable; see 'sluice sim bugs')")
	fl.StringArrayVar(&f.params, "param", nil, "scenario parameter name=value for every seed (repeatable; every scenario run must have it)")
	fl.StringVar(&f.failuresDir, "failures-dir", "sluice-failures", "where failing seeds' runs are written for replay")
	fl.IntVar(&f.maxFailures, "max-failures", 0, "stop starting seeds after this many failed (0: run them all)")
	fl.DurationVar(&f.seedTimeout, "seed-timeout", 10*time.Minute, "wall time one seed may take before its worker is killed and the seed failed (0: no limit)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the summary as JSON")
	fl.StringVar(&f.reportDir, "report", "", "write the swarm's page (swarm.html) and coverage chart into this directory")
	return cmd
}

func (f swarmFlags) spec() (swarmSpec, error) {
	spec := swarmSpec{FirstSeed: f.seed, Seeds: f.seeds, Run: f.run, Drain: f.drain, EventsMax: f.eventsMax, Bugs: f.bugs}
	if f.scenarios == "all" {
		spec.Scenarios = scenario.Names()
	} else {
		for _, name := range strings.Split(f.scenarios, ",") {
			if _, err := scenario.Lookup(name); err != nil {
				return spec, usageError("--scenario: %v", err)
			}
			spec.Scenarios = append(spec.Scenarios, name)
		}
	}
	if f.seeds < 1 {
		return spec, usageError("--seeds must be at least 1")
	}
	bugs, err := faults.ParseBugs(f.bugs)
	if err != nil {
		return spec, usageError("--bug: %v", err)
	}
	if spec.Params, err = parseParams(f.params); err != nil {
		return spec, err
	}
	for _, name := range spec.Scenarios {
		def, _ := scenario.Lookup(name)
		if err := def.Validate(scenario.Options{Params: spec.Params, Bugs: bugs}); err != nil {
			return spec, usageError("%v", err)
		}
	}
	if f.parallel < 1 {
		return spec, usageError("--parallel must be at least 1")
	}
	if f.run < 0 || f.drain < 0 {
		return spec, usageError("--run and --drain want positive durations")
	}
	if spec.Shard, err = parseShard(f.shard); err != nil {
		return spec, usageError("--shard %v", err)
	}
	if f.determinism {
		if f.sample < 1 {
			return spec, usageError("--sample must be at least 1")
		}
		spec.Sample = f.sample
	}
	return spec, nil
}

func runSwarm(cmd *cobra.Command, f swarmFlags) error {
	spec, err := f.spec()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start workers: %w", err)
	}
	jobs := spec.jobs()
	progress := newProgress(cmd.ErrOrStderr(), len(jobs))
	// A first Ctrl-C or SIGTERM stops handing out seeds: the seeds in
	// flight finish, and what ran is written and summed up as usual. A
	// second one ends the swarm at once.
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	interrupted := false
	stopping := func() {
		interrupted = true
		signal.Stop(interrupt)
		fmt.Fprintln(cmd.ErrOrStderr(), "sluice: stopping: the seeds in flight finish, then the summary of what ran (again to stop at once)")
	}
	records, err := runWorkers(self, spec, f, jobs, progress.record, interrupt, stopping)
	signal.Stop(interrupt)
	progress.finish()
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := writeSwarmFile(f.out, spec, records); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	return printSwarm(cmd.OutOrStdout(), spec, records, len(jobs)-len(records), interrupted, f.jsonOut, f.reportDir)
}

// runWorkers runs the jobs on f.parallel workers and returns the records
// in job order. A signal on interrupted (nil: none comes) stops handing
// out jobs, as --max-failures does, after telling stopping.
func runWorkers(self string, spec swarmSpec, f swarmFlags, jobs []swarmJob, done func(swarmRecord),
	interrupted <-chan os.Signal, stopping func()) ([]swarmRecord, error) {
	type result struct {
		index  int
		record swarmRecord
	}
	work := make(chan int)
	results := make(chan result)
	args := workerArgs(spec, f)
	stop := make(chan struct{}) // closed after --max-failures failures
	var wg sync.WaitGroup
	for w := 0; w < min(f.parallel, max(len(jobs), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var worker *swarmWorker
			defer func() { worker.close() }()
			for i := range work {
				if worker == nil {
					worker = startWorker(self, args)
				}
				rec, err := worker.run(jobs[i], f.seedTimeout)
				if err != nil {
					rec = swarmRecord{Scenario: jobs[i].Scenario, Seed: jobs[i].Seed, Error: err.Error()}
					worker.close()
					worker = nil // the next job starts a fresh worker
				}
				results <- result{i, rec}
			}
		}()
	}
	go func() {
	dispatch:
		for i := range jobs {
			// A select picks at random among ready cases: look at stop
			// first, or a failure would not stop the next seeds from
			// being handed to a waiting worker.
			select {
			case <-stop:
				break dispatch
			default:
			}
			select {
			case work <- i:
			case <-stop:
				break dispatch
			}
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	records := make([]swarmRecord, len(jobs))
	ran := make([]bool, len(jobs))
	failed, stopped := 0, false
	stopOnce := func() {
		if !stopped {
			stopped = true
			close(stop)
		}
	}
	for collecting := true; collecting; {
		select {
		case <-interrupted:
			stopping()
			interrupted = nil // a nil channel never fires again
			stopOnce()
		case r, ok := <-results:
			if !ok {
				collecting = false
				break
			}
			records[r.index], ran[r.index] = r.record, true
			done(r.record)
			if !r.record.OK {
				failed++
				if failed == f.maxFailures {
					stopOnce()
				}
			}
		}
	}
	var kept []swarmRecord // the seeds that ran, in job order
	for i, r := range records {
		if ran[i] {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// workerArgs is the command line of a worker process: what every seed of
// the swarm shares.
func workerArgs(spec swarmSpec, f swarmFlags) []string {
	args := []string{"sim", "swarm-worker", "--failures-dir", f.failuresDir,
		"--run", spec.Run.String(), "--drain", spec.Drain.String(), "--events-max", fmt.Sprint(spec.EventsMax)}
	for _, b := range spec.Bugs {
		args = append(args, "--bug", b)
	}
	for _, name := range sortedParamNames(spec.Params) {
		args = append(args, "--param", name+"="+spec.Params[name])
	}
	return args
}

// swarmWorker is one worker process.
type swarmWorker struct {
	cmd    *exec.Cmd
	stderr *headWriter
	stdin  io.WriteCloser
	stdout *bufio.Reader
	err    error
}

func startWorker(self string, args []string) *swarmWorker {
	w := &swarmWorker{cmd: exec.Command(self, args...), stderr: &headWriter{max: workerStderrBytesMax}}
	w.cmd.Stderr = w.stderr
	// A process group of its own: a Ctrl-C at the terminal reaches the
	// swarm, which lets the worker finish its seed, not the worker.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := w.cmd.StdinPipe()
	if err != nil {
		w.err = err
		return w
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		w.err = err
		return w
	}
	w.stdin, w.stdout = stdin, bufio.NewReaderSize(stdout, 1<<20)
	w.err = w.cmd.Start()
	return w
}

// run hands the worker one job and waits for its record, at most timeout
// (zero: no limit); a worker past it is killed.
func (w *swarmWorker) run(job swarmJob, timeout time.Duration) (swarmRecord, error) {
	if w.err != nil {
		return swarmRecord{}, fmt.Errorf("start worker: %w", w.err)
	}
	line, _ := json.Marshal(job)
	if _, err := w.stdin.Write(append(line, '\n')); err != nil {
		return swarmRecord{}, fmt.Errorf("worker: %w", err)
	}
	type reply struct {
		line []byte
		err  error
	}
	replies := make(chan reply, 1)
	go func() {
		line, err := w.stdout.ReadBytes('\n')
		replies <- reply{line, err}
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	var r reply
	select {
	case r = <-replies:
	case <-expired:
		w.cmd.Process.Kill()
		<-replies
		w.wait()
		return swarmRecord{}, fmt.Errorf("the seed ran past --seed-timeout %v of wall time; its worker was killed", timeout)
	}
	answer, err := r.line, r.err
	if err != nil {
		exit := w.wait()
		return swarmRecord{}, fmt.Errorf("worker exited while running the seed (%v): %s", exit, w.stderr.String())
	}
	var rec swarmRecord
	if err := json.Unmarshal(answer, &rec); err != nil {
		return swarmRecord{}, fmt.Errorf("worker answered %q: %w", answer, err)
	}
	return rec, nil
}

func (w *swarmWorker) wait() error {
	if w.stdin != nil {
		w.stdin.Close()
	}
	return w.cmd.Wait()
}

func (w *swarmWorker) close() {
	if w == nil || w.err != nil {
		return
	}
	w.wait()
}

// newSimSwarmWorkerCommand is the hidden worker a swarm starts: it reads
// jobs, one JSON object per line, and answers each with its record.
func newSimSwarmWorkerCommand() *cobra.Command {
	var f swarmFlags
	cmd := &cobra.Command{
		Use:    "swarm-worker",
		Short:  "Run swarm jobs read from standard input (started by 'sluice sim swarm')",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := bufio.NewScanner(cmd.InOrStdin())
			out := cmd.OutOrStdout()
			for in.Scan() {
				var job swarmJob
				if err := json.Unmarshal(in.Bytes(), &job); err != nil {
					return usageError("job %q: %v", in.Text(), err)
				}
				line, _ := json.Marshal(runSwarmJob(job, f))
				if _, err := out.Write(append(line, '\n')); err != nil {
					return err
				}
			}
			return in.Err()
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.run, "run", 0, "run length")
	fl.DurationVar(&f.drain, "drain", 0, "drain length")
	fl.Uint64Var(&f.eventsMax, "events-max", 0, "event bound")
	fl.StringSliceVar(&f.bugs, "bug", nil, "planted bugs")
	fl.StringArrayVar(&f.params, "param", nil, "scenario parameters")
	fl.StringVar(&f.failuresDir, "failures-dir", "sluice-failures", "where failing runs are written")
	return cmd
}

func runSwarmJob(job swarmJob, f swarmFlags) swarmRecord {
	rec := swarmRecord{Scenario: job.Scenario, Seed: job.Seed}
	def, err := scenario.Lookup(job.Scenario)
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	bugs, err := faults.ParseBugs(f.bugs)
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	params, err := parseParams(f.params)
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	opts := scenario.Options{Seed: job.Seed, Bugs: bugs, Params: params, Run: f.run, Drain: f.drain, EventsMax: f.eventsMax, Swarm: true}
	start := time.Now()
	var res scenario.Result
	if job.Determinism {
		var det scenario.Determinism
		res, det, err = scenario.RunTwice(def, opts)
		same := det.Same()
		rec.Deterministic = &same
	} else {
		res, err = scenario.Run(def, opts)
	}
	rec.WallTime = time.Since(start)
	if job.Determinism {
		rec.WallTime /= 2
	}
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	rec.OK = res.OK() && (rec.Deterministic == nil || *rec.Deterministic)
	rec.Failed, rec.TraceHash, rec.Events, rec.SimTime = res.Failed(), res.TraceHash, res.Events, res.SimTime
	rec.FaultsFired, rec.Probes = res.FaultsFired, res.Probes
	rec.Reproduce = reproduceCommand(res.Recipe, "", "", job.Determinism)
	if !rec.OK {
		rec.SavedTo = failurePath(f.failuresDir, res)
		if err := saveRun(rec.SavedTo, res); err != nil {
			rec.Error = err.Error()
		}
	}
	return rec
}

// workerStderrBytesMax is how much of a dead worker's last words a record
// keeps: the start, where a panic's message is.
const workerStderrBytesMax = 2048

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (h *headWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String is the first paragraph written: a panic's message without its
// goroutine dump.
func (h *headWriter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	text := strings.TrimSpace(string(h.buf))
	if i := strings.Index(text, "\n\n"); i >= 0 {
		text = text[:i]
	}
	return text
}
