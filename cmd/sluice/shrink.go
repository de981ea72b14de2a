package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/workloads/scenario"
)

// shrinkTriesMax bounds the runs one shrink makes by default.
const shrinkTriesMax = 400

func newSimShrinkCommand() *cobra.Command {
	var triesMax int
	var out string
	cmd := &cobra.Command{
		Use:   "shrink FILE",
		Short: "Reduce a failing run to the smallest fault schedule and run under which the same checks fail",
		Long: `Read a saved failing run (a file in sluice-failures/, or one --save-run
wrote), and look for a smaller one that fails exactly the same checks: whole faults
(an action with the one that undoes it) are removed by delta debugging, then
each remaining fault is shortened, then the run and the drain. Every
candidate is a full deterministic run, so the result replays exactly.

The smallest run is written next to FILE as NAME-shrunk.json (or to --out),
ready for 'sluice sim replay'. Exit status: 0 when a failing run was
written, 1 when FILE's run does not fail, 2 on bad usage.`,
		Example: `  sluice sim shrink sluice-failures/single-broker-seed2.json
  sluice sim replay sluice-failures/single-broker-seed2-shrunk.json --verbose`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			saved, err := loadRun(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			def, opts, err := saved.Options(&saved.Schedule)
			if err != nil {
				return usageError("%s: %v", args[0], err)
			}
			if out == "" {
				out = shrunkPath(args[0])
			}
			return shrinkAndSave(cmd.OutOrStdout(), def, opts, triesMax, out)
		},
	}
	cmd.Flags().IntVar(&triesMax, "tries-max", shrinkTriesMax, "at most this many runs")
	cmd.Flags().StringVar(&out, "out", "", "where to write the smallest run (default: FILE with -shrunk before .json)")
	return cmd
}

func shrunkPath(saved string) string {
	return strings.TrimSuffix(saved, ".json") + "-shrunk.json"
}

// shrinkAndSave shrinks a failing run, prints what it did and writes the
// smallest run for replay.
func shrinkAndSave(out io.Writer, def scenario.Definition, opts scenario.Options, triesMax int, file string) error {
	if triesMax < 1 {
		return usageError("--tries-max must be at least 1")
	}
	opts.Log = nil
	fmt.Fprintf(out, "shrinking %s seed %d ...\n", def.Name, opts.Seed)
	sh, err := scenario.Shrink(def, opts, triesMax, func(r scenario.Result) {
		fmt.Fprintf(out, "  %d actions (%v of faults%s), run %v + drain %v: still fails\n",
			len(r.Schedule.Actions), r.Schedule.FaultTime(), r.EpisodeNote(), r.Run, r.Drain)
	})
	if errors.Is(err, scenario.ErrDoesNotFail) {
		fmt.Fprintf(out, "%v\n", err)
		return &exitError{code: exitCheckFailed, err: err}
	}
	if err != nil {
		return usageError("%v", err)
	}
	if err := saveRun(file, sh.Smallest); err != nil {
		return err
	}
	fmt.Fprintf(out, "shrunk:    %s\n", sh.Summary())
	if sh.TriesExhausted {
		fmt.Fprintf(out, "note:      stopped after %d runs (--tries-max); a smaller run may exist\n", sh.Tries)
	}
	fmt.Fprintf(out, "replay:    sluice sim replay %s\n", shellQuote(file))
	return nil
}
