package reports

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ChannelCompareRow is one channel type's outcome in a channel
// comparison: the same seeds and fault schedules run once per channel.
type ChannelCompareRow struct {
	Channel string
	// Acked counts the events acknowledged to their senders; Lost those
	// never delivered; Duplicated the events delivered more than once.
	Acked, Lost, Duplicated int64
	// AckedPerSec is the acknowledged events per simulated second.
	AckedPerSec float64
	// Latency percentiles of acknowledgements, in milliseconds.
	LatencyP50Ms, LatencyP99Ms, LatencyP999Ms float64
}

// ChannelCompareCharts draws a comparison: events lost and duplicated per
// channel, and the acknowledgement latency percentiles per channel. The
// subtitle says what ran (seeds, faults).
func ChannelCompareCharts(subtitle string, rows []ChannelCompareRow) []Chart {
	return []Chart{
		{Name: "channel-outcomes", Title: "Events lost and duplicated per channel",
			build: func() (figure, error) { return channelOutcomesFigure(subtitle, rows) }},
		{Name: "channel-latency", Title: "Acknowledgement latency per channel",
			build: func() (figure, error) { return channelLatencyFigure(subtitle, rows) }},
	}
}

// channelOutcomesFigure is grouped bars: lost and duplicated events for
// each channel, side by side.
func channelOutcomesFigure(subtitle string, rows []ChannelCompareRow) (figure, error) {
	p := newPlot("Events lost and duplicated per channel ("+subtitle+")", "channel", "events")
	names := make([]string, len(rows))
	lost := make(plotter.Values, len(rows))
	dup := make(plotter.Values, len(rows))
	top := 1.0
	for i, r := range rows {
		names[i] = fmt.Sprintf("%s (%d acknowledged)", r.Channel, r.Acked)
		lost[i], dup[i] = float64(r.Lost), float64(r.Duplicated)
		top = max(top, lost[i], dup[i])
	}
	width := vg.Points(36)
	// Side by side: the first series left of each name, the second right.
	legend, err := addBars(p, width, func(i int) vg.Length { return vg.Length(2*i-1) * width / 2 },
		barSeries{"lost (acknowledged, never delivered)", lost, colorVermil},
		barSeries{"duplicated (delivered more than once)", dup, colorBlue})
	if err != nil {
		return figure{}, fmt.Errorf("channel outcomes: %w", err)
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, top*1.1
	return figure{plot: p, legend: legend}, nil
}

// channelLatencyFigure is one line per channel through its p50, p99 and
// p99.9 acknowledgement latency, on a log axis.
func channelLatencyFigure(subtitle string, rows []ChannelCompareRow) (figure, error) {
	p := newPlot("Acknowledgement latency per channel ("+subtitle+")", "percentile", "milliseconds")
	palette := []color.Color{colorBlue, colorVermil, colorOrange, colorPurple}
	lo, hi := math.Inf(1), math.Inf(-1)
	var legend []legendEntry
	for i, r := range rows {
		ms := []float64{r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyP999Ms}
		pts := make(plotter.XYs, len(ms))
		for j, v := range ms {
			y := math.Log10(max(v, 0.001))
			pts[j] = plotter.XY{X: float64(j), Y: y}
			lo, hi = min(lo, y), max(hi, y)
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return figure{}, fmt.Errorf("channel latency %s: %w", r.Channel, err)
		}
		c := palette[i%len(palette)]
		line.LineStyle = lineStyle(c, 2)
		points.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		p.Add(line, points)
		legend = append(legend, legendEntry{name: r.Channel, thumb: line})
	}
	p.NominalX("p50", "p99", "p99.9")
	setLogY(p, lo, hi)
	return figure{plot: p, legend: legend}, nil
}
