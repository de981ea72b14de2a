package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

type compareChannelsFlags struct {
	seed      uint64
	seeds     int
	channels  string
	params    []string
	bugs      []string
	run       time.Duration
	drain     time.Duration
	jsonOut   bool
	reportDir string
}

func newSimCompareChannelsCommand() *cobra.Command {
	var f compareChannelsFlags
	cmd := &cobra.Command{
		Use:   "compare-channels [--seeds N] [--channels memory,file,spillable,kafka] [--report DIR]",
		Short: "Run the same seeded crashes against each channel type and compare losses, duplicates, throughput and latency",
		Long: `Run the flume-pipeline scenario (netcat clients -> agent -> Kafka sink ->
broker) once per channel type for each seed. A seed's fault schedule
(agent kills, power losses, disk and network faults) is drawn once and
replayed against every channel, so the rows differ by the channel alone.
The kafka channel keeps its events in a topic of the pipeline's simulated
broker, which the Kafka sink writes to as well.

Each row totals the seeds: lines acknowledged to their clients, those of
them lost (never delivered) and the seeds that lost any, lines sent but
never acknowledged that were lost too (UNACKED LOST: all that a syslog
source, which acknowledges nothing, can lose), lines delivered
more than once, lines delivered out of their client's order, acknowledged
lines per simulated second, and the percentiles of the time from a line's
send to its acknowledgement (per seed by HdrHistogram, then the median over
the seeds). --report DIR writes the rows as JSON and two charts, PNG and
SVG: events lost and duplicated, and latency, per channel.`,
		Example: `  sluice sim compare-channels --seeds 20
  sluice sim compare-channels --seed 7 --channels memory,file --report channel-report
  sluice sim compare-channels --seeds 50 --param hop=on --json
  sluice sim compare-channels --seeds 10 --param source=syslogtcp
  sluice sim compare-channels --seeds 20 --channels file,kafka --param broker=crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			return runCompareChannels(cmd.OutOrStdout(), cmd.ErrOrStderr(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.seed, "seed", 1, "first seed")
	fl.IntVar(&f.seeds, "seeds", 10, "number of consecutive seeds, each run once per channel")
	fl.StringVar(&f.channels, "channels", "memory,file,spillable,kafka", "channel types to compare, comma-separated: memory, file, spillable, kafka")
	fl.StringArrayVar(&f.params, "param", nil, "further flume-pipeline parameter name=value (hop, source, broker; repeatable)")
	fl.StringSliceVar(&f.bugs, "bug", nil, "planted bug to switch on in every run (repeatable; see 'sluice sim bugs')")
	fl.DurationVar(&f.run, "run", 0, "how long the workload runs under faults (default: the scenario's)")
	fl.DurationVar(&f.drain, "drain", 0, "how long the workload runs after the faults heal (default: the scenario's)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the rows as JSON")
	fl.StringVar(&f.reportDir, "report", "", "write the rows (JSON) and charts (PNG and SVG) into this directory")
	return cmd
}

func (f compareChannelsFlags) options() (scenario.ChannelCompareOptions, error) {
	bugs, err := faults.ParseBugs(f.bugs)
	if err != nil {
		return scenario.ChannelCompareOptions{}, usageError("--bug: %v", err)
	}
	params, err := parseParams(f.params)
	if err != nil {
		return scenario.ChannelCompareOptions{}, err
	}
	if _, ok := params["channel"]; ok {
		return scenario.ChannelCompareOptions{}, usageError("--param channel: name the channels with --channels")
	}
	if f.seeds < 1 || f.seeds > scenario.ChannelCompareSeedsMax {
		return scenario.ChannelCompareOptions{}, usageError("--seeds %d: want 1..%d", f.seeds, scenario.ChannelCompareSeedsMax)
	}
	if f.run < 0 || f.drain < 0 {
		return scenario.ChannelCompareOptions{}, usageError("--run %v, --drain %v: want positive durations such as 20s", f.run, f.drain)
	}
	var channels []string
	for _, part := range strings.Split(f.channels, ",") {
		part = strings.TrimSpace(part)
		switch part {
		case "memory", "file", "spillable", "kafka":
			channels = append(channels, part)
		default:
			return scenario.ChannelCompareOptions{}, usageError("--channels: %q is not a channel type (memory, file, spillable, kafka)", part)
		}
	}
	return scenario.ChannelCompareOptions{Seed: f.seed, Seeds: f.seeds, Channels: channels, Params: params,
		Bugs: bugs, Run: f.run, Drain: f.drain}, nil
}

func runCompareChannels(out, errOut io.Writer, f compareChannelsFlags, opts scenario.ChannelCompareOptions) error {
	runs, total := 0, opts.Seeds*len(opts.Channels)
	opts.Progress = func(channel string, r scenario.Result) {
		runs++
		if !f.jsonOut {
			fmt.Fprintf(errOut, "\r%d/%d runs (seed %d, %s channel)", runs, total, r.Seed, channel)
		}
	}
	rows, err := scenario.CompareChannels(opts)
	if !f.jsonOut {
		fmt.Fprintln(errOut)
	}
	if err != nil {
		return usageError("%v", err)
	}
	if f.reportDir != "" {
		if err := writeChannelCompareReport(f.reportDir, opts, rows); err != nil {
			return err
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if err := renderChannelCompareTable(out, rows); err != nil {
		return err
	}
	if f.reportDir != "" {
		fmt.Fprintf(out, "report: %s\n", f.reportDir)
	}
	return nil
}

func renderChannelCompareTable(out io.Writer, rows []scenario.ChannelOutcome) error {
	t := tablewriter.NewTable(out, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: tw.MakeAlign(13, tw.AlignRight).Set(0, tw.AlignLeft).Set(12, tw.AlignLeft)}))
	t.Header("CHANNEL", "SEEDS", "ACKED", "LOST", "SEEDS LOSING", "UNACKED LOST", "DUPLICATED", "REORDERED", "ACKED/S", "P50 MS", "P99 MS", "P99.9 MS", "FAILED CHECKS")
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, r := range rows {
		if err := t.Append(r.Channel, strconv.Itoa(r.Seeds), strconv.FormatInt(r.Acked, 10), strconv.FormatInt(r.Lost, 10),
			strconv.Itoa(r.SeedsLosing), strconv.FormatInt(r.UnackedLost, 10), strconv.FormatInt(r.Duplicated, 10), strconv.FormatInt(r.Reordered, 10),
			strconv.FormatFloat(r.AckedPerSec, 'f', 0, 64), ms(r.LatencyP50Ms), ms(r.LatencyP99Ms), ms(r.LatencyP999Ms),
			r.FailedChecksText()); err != nil {
			return fmt.Errorf("table row: %w", err)
		}
	}
	return t.Render()
}

// writeChannelCompareReport writes channel-compare.json and the charts.
func writeChannelCompareReport(dir string, opts scenario.ChannelCompareOptions, rows []scenario.ChannelOutcome) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rows: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "channel-compare.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	chartRows := make([]reports.ChannelCompareRow, len(rows))
	for i, r := range rows {
		chartRows[i] = reports.ChannelCompareRow{Channel: r.Channel, Acked: r.Acked, Lost: r.Lost, Duplicated: r.Duplicated,
			AckedPerSec: r.AckedPerSec, LatencyP50Ms: r.LatencyP50Ms, LatencyP99Ms: r.LatencyP99Ms, LatencyP999Ms: r.LatencyP999Ms}
	}
	subtitle := fmt.Sprintf("flume-pipeline, seeds %d-%d", opts.Seed, opts.Seed+uint64(opts.Seeds)-1)
	for _, c := range reports.ChannelCompareCharts(subtitle, chartRows) {
		for _, format := range []struct {
			ext   string
			write func(io.Writer) error
		}{{"png", c.WritePNG}, {"svg", c.WriteSVG}} {
			name := filepath.Join(dir, c.Name+"."+format.ext)
			file, err := os.Create(name)
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			if err := format.write(file); err != nil {
				file.Close()
				return fmt.Errorf("write %s: %w", name, err)
			}
			if err := file.Close(); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	return nil
}
