package scenario

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

// The channel comparison, a named use of sluice: the flume-pipeline
// scenario run once per channel type over the same seeds, each seed's
// fault schedule (agent kills, power losses, disk and network faults)
// drawn once and replayed against every channel, so that what differs
// between the rows is the channel alone.

// ChannelCompareOptions say what to compare.
type ChannelCompareOptions struct {
	// Seed is the first seed; Seeds how many consecutive ones.
	Seed  uint64
	Seeds int
	// Channels are flume-pipeline's channel values, in the rows' order.
	Channels []string
	// Params are further flume-pipeline knobs (hop, source, broker); not
	// channel.
	Params map[string]string
	Bugs   faults.Bugs
	// Run and Drain override the scenario's when non-zero.
	Run, Drain time.Duration
	// Progress, if not nil, is told of each run as it ends.
	Progress func(channel string, r Result)
}

// ChannelCompareSeedsMax bounds the seeds of one comparison.
const ChannelCompareSeedsMax = 10000

// ChannelOutcome is one channel's row: totals over the seeds.
type ChannelOutcome struct {
	Channel string `json:"channel"`
	Seeds   int    `json:"seeds"`
	// Acked counts lines acknowledged to their senders, Lost those of
	// them never delivered, SeedsLosing the seeds that lost any.
	Acked       int64 `json:"acked"`
	Lost        int64 `json:"lost"`
	SeedsLosing int   `json:"seeds_losing"`
	// UnackedLost counts lines sent, never acknowledged and never
	// delivered: a sender was not told they were taken, so losing them
	// breaks no promise, but it is what a source that acknowledges
	// nothing (syslog) loses, and what a crash cost senders that retry.
	UnackedLost int64 `json:"unacked_lost"`
	// Duplicated counts lines delivered more than once; Reordered lines
	// delivered ahead of one acknowledged before them.
	Duplicated int64 `json:"duplicated"`
	Reordered  int64 `json:"reordered"`
	// AckedPerSec is acknowledged lines per simulated second while the
	// senders offered them.
	AckedPerSec float64 `json:"acked_per_sec"`
	// Latency percentiles from a line's send to its acknowledgement, in
	// milliseconds: each seed's (HdrHistogram), then the median over the
	// seeds.
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyP999Ms float64 `json:"latency_p999_ms"`
	// FailedChecks counts, by check, the seeds that failed it.
	FailedChecks map[string]int `json:"failed_checks,omitempty"`
	// TraceHashes are the runs' trace hashes, by seed order.
	TraceHashes []string `json:"trace_hashes"`
}

// CompareChannels runs the comparison.
func CompareChannels(o ChannelCompareOptions) ([]ChannelOutcome, error) {
	d, err := Lookup("flume-pipeline")
	if err != nil {
		return nil, err
	}
	if err := o.validate(d); err != nil {
		return nil, err
	}
	rows := make([]ChannelOutcome, len(o.Channels))
	latencies := make([][3][]float64, len(o.Channels))
	offeredSecs := 0.0
	for i := 0; i < o.Seeds; i++ {
		seed := o.Seed + uint64(i)
		var schedule *faults.Schedule
		for ci, channel := range o.Channels {
			opts := Options{Seed: seed, Bugs: o.Bugs, Run: o.Run, Drain: o.Drain, Schedule: schedule,
				Params: map[string]string{"channel": channel}}
			for k, v := range o.Params {
				opts.Params[k] = v
			}
			res, err := Run(d, opts)
			if err != nil {
				return nil, fmt.Errorf("seed %d, %s channel: %w", seed, channel, err)
			}
			if schedule == nil {
				// The first channel's schedule is every other's.
				s := res.Schedule
				schedule = &s
			}
			if ci == 0 {
				// Senders offer lines until halfway through the drain.
				offeredSecs += (time.Duration(res.Run) + time.Duration(res.Drain)/2).Seconds()
			}
			rows[ci].add(channel, res)
			for q, stat := range ackLatencyQuantiles {
				if us, ok := res.Stats[stat.stat]; ok {
					latencies[ci][q] = append(latencies[ci][q], float64(us)/1000)
				}
			}
			if o.Progress != nil {
				o.Progress(channel, res)
			}
		}
	}
	for i := range rows {
		rows[i].AckedPerSec = float64(rows[i].Acked) / offeredSecs
		rows[i].LatencyP50Ms = medianOf(latencies[i][0])
		rows[i].LatencyP99Ms = medianOf(latencies[i][1])
		rows[i].LatencyP999Ms = medianOf(latencies[i][2])
	}
	return rows, nil
}

func (o ChannelCompareOptions) validate(d Definition) error {
	if o.Seeds < 1 || o.Seeds > ChannelCompareSeedsMax {
		return fmt.Errorf("seeds %d: want 1..%d", o.Seeds, ChannelCompareSeedsMax)
	}
	if len(o.Channels) == 0 {
		return fmt.Errorf("no channels to compare")
	}
	if _, ok := o.Params["channel"]; ok {
		return fmt.Errorf("param channel: the comparison sets it; name the channels to compare instead")
	}
	seen := map[string]bool{}
	for _, ch := range o.Channels {
		if seen[ch] {
			return fmt.Errorf("channel %q named twice", ch)
		}
		seen[ch] = true
		params := map[string]string{"channel": ch}
		for k, v := range o.Params {
			params[k] = v
		}
		if err := d.Validate(Options{Params: params}); err != nil {
			return err
		}
	}
	return nil
}

func (r *ChannelOutcome) add(channel string, res Result) {
	r.Channel = channel
	r.Seeds++
	r.Acked += res.Stats["lines_acked"]
	r.Lost += res.Stats["lost"]
	if res.Stats["lost"] > 0 {
		r.SeedsLosing++
	}
	r.UnackedLost += res.Stats["unacked_lost"]
	r.Duplicated += res.Stats["duplicated"]
	r.Reordered += res.Stats["reordered"]
	r.TraceHashes = append(r.TraceHashes, res.TraceHash)
	for _, c := range res.Failed() {
		if r.FailedChecks == nil {
			r.FailedChecks = map[string]int{}
		}
		r.FailedChecks[c.Name]++
	}
}

// FailedChecksText lists the failed checks as "name ×seeds", sorted.
func (r ChannelOutcome) FailedChecksText() string {
	names := make([]string, 0, len(r.FailedChecks))
	for name := range r.FailedChecks {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s ×%d", name, r.FailedChecks[name])
	}
	return strings.Join(parts, ", ")
}

func medianOf(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
