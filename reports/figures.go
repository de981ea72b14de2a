package reports

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sluice-sim/sluice/checkers/history"
)

// Chart names, which are also their file names.
const (
	ChartThroughput  = "throughput"
	ChartSendLatency = "send-latency"
	ChartPercentiles = "latency-percentiles"
)

// ChartTimeline is the chart a run without a client history gets.
const ChartTimeline = "fault-timeline"

// Charts lists the report's figures: throughput and send latency over
// run time with the faults marked, and the latency percentile curves. A
// run whose clients kept no history (the counter scenario's) gets the
// fault timeline alone rather than empty charts.
func (r Report) Charts() []Chart {
	if !r.HasHistory() {
		return []Chart{{Name: ChartTimeline, Title: "Faults over run time", build: r.timelineFigure}}
	}
	return []Chart{
		{Name: ChartThroughput, Title: "Throughput over run time", build: r.throughputFigure},
		{Name: ChartSendLatency, Title: "Send latency over run time", build: r.sendLatencyFigure},
		{Name: ChartPercentiles, Title: "Latency by percentile", build: r.percentileFigure},
	}
}

// runLabel names the run in chart titles, so a PNG on its own says what
// it shows.
func (r Report) runLabel() string {
	return fmt.Sprintf("%s, seed %d", r.Run.Scenario, r.Run.Seed)
}

// HasHistory reports whether the run's clients recorded operations.
func (r Report) HasHistory() bool { return r.HistoryOps > 0 }

// timeEnd is where the time charts' axis ends, in seconds: the run's end,
// even when the clients stopped earlier, so that an axis never stops short
// of the run without saying why.
func (r Report) timeEnd() float64 {
	end := max(r.Series.End(), r.Run.SimTime)
	if n := len(r.Events); n > 0 {
		end = max(end, r.Events[n-1].At)
	}
	if end <= 0 {
		return 1
	}
	return end.Seconds()
}

// dataWidthEstimate is the data area's width on a chart, less the
// vertical axis, tick labels and margins: close enough to size the fault
// label band.
const dataWidthEstimate = chartWidth - vg.Inch

// timePlot starts a chart over run time: the fault spans shaded behind
// whatever is added next.
func (r Report) timePlot(title, yLabel string) *plot.Plot {
	p := newPlot(title+" — "+r.runLabel(), r.timeAxisLabel(), yLabel)
	p.X.Min, p.X.Max = 0, r.timeEnd()
	p.X.Tick.Marker = linearTicks{parts: 20}
	p.Add(faultShading{spans: r.spans(p.X.Max)})
	return p
}

// timeAxisLabel names the run's phases under the time axis, so that a
// chart whose data stops early says where the faults ended and the drain
// ran.
func (r Report) timeAxisLabel() string {
	if r.Run.FaultsEnd <= 0 || r.Run.SimTime <= r.Run.FaultsEnd {
		return "run time (s)"
	}
	return fmt.Sprintf("run time (s): faults until %v, then the clients drain until %v",
		r.Run.FaultsEnd, r.Run.SimTime)
}

// timelineFigure is the fault timeline on its own, for runs whose clients
// kept no history.
func (r Report) timelineFigure() (figure, error) {
	p := r.timePlot("Faults", "")
	p.HideY()
	p.Y.Min, p.Y.Max = 0, 1
	var f figure
	f.legend = r.finishTimePlot(p)
	f.plot = p
	return f, nil
}

func (r Report) spans(endSeconds float64) []faultSpan {
	return faultSpans(r.Events, time.Duration(endSeconds*float64(time.Second)))
}

// finishTimePlot adds the fault lines and labels over the data and
// returns the legend entries for the faults the chart shows.
func (r Report) finishTimePlot(p *plot.Plot) []legendEntry {
	p.Add(newFaultMarks(r.Events, r.spans(p.X.Max), p.X.Min, p.X.Max, dataWidthEstimate))
	var entries []legendEntry
	var spanPresent [spanKinds]bool
	for _, s := range r.spans(p.X.Max) {
		spanPresent[s.kind] = true
	}
	for k := range spanKinds {
		if spanPresent[k] {
			entries = append(entries, legendEntry{name: spanKindNames[k], thumb: spanThumb{kind: k}})
		}
	}
	var kindPresent [EventRecovery + 1]bool
	for _, e := range r.Events {
		kindPresent[e.Kind] = true
	}
	for _, k := range []EventKind{EventFault, EventRecovery, EventOther} {
		if kindPresent[k] {
			entries = append(entries, legendEntry{name: k.String() + " event", thumb: eventThumb{kind: k}})
		}
	}
	return entries
}

// windowCentres are the x positions of the series' windows, in seconds.
func (r Report) windowCentres() []float64 {
	xs := make([]float64, len(r.Series.Windows))
	for i, w := range r.Series.Windows {
		xs[i] = (w.Start + r.Series.Width/2).Seconds()
	}
	return xs
}

func (r Report) throughputFigure() (figure, error) {
	p := r.timePlot(fmt.Sprintf("Throughput per %v window", r.Series.Width), "records per second")
	p.Y.Tick.Marker = linearTicks{parts: 8}
	n := len(r.Series.Windows)
	xs := r.windowCentres()
	acked, polled, lost := make([]float64, n), make([]float64, n), make([]float64, n)
	all := make([]bool, n)
	anyLost := false
	for i, w := range r.Series.Windows {
		acked[i] = r.Series.Rate(w.SendsAcked)
		polled[i] = r.Series.Rate(w.RecordsPolled)
		lost[i] = r.Series.Rate(w.SendsFailed + w.SendsUnknown)
		anyLost = anyLost || lost[i] > 0
		all[i] = true
	}
	type series struct {
		name  string
		color color.Color
		ys    []float64
	}
	plotted := []series{{"sends acknowledged", colorBlue, acked}, {"records polled", colorOrange, polled}}
	if anyLost {
		plotted = append(plotted, series{"sends failed or unknown", colorVermil, lost})
	}
	columns := make([][]float64, len(plotted))
	for i, s := range plotted {
		columns[i] = s.ys
	}
	// Adding a line stretches the axis over its data: fix the range after.
	top := robustTop(columns)
	var f figure
	var offScale offScaleMarks
	for _, s := range plotted {
		e, err := addSegments(p, s.name, lineStyle(s.color, 1.3), xs, s.ys, all)
		if err != nil {
			return figure{}, err
		}
		f.legend = append(f.legend, e)
		offScale.add(xs, s.ys, top, s.color)
	}
	p.Y.Min, p.Y.Max = 0, top
	f.legend = append(f.legend, r.finishTimePlot(p)...)
	p.Add(&offScale) // over the fault lines, so they do not cross its labels
	f.plot = p
	return f, nil
}

// robustTop is the top of a rate axis: the largest value, unless a few
// windows tower over the rest (a final catch-up poll returning everything
// at once), in which case the axis fits the rest and those windows are
// marked off scale. Here a few is under 1% of the windows.
func robustTop(columns [][]float64) float64 {
	var all []float64
	for _, c := range columns {
		all = append(all, c...)
	}
	if len(all) == 0 {
		return 1
	}
	slices.Sort(all)
	highest := all[len(all)-1]
	typical := all[(len(all)-1)*99/100]
	top := highest * 1.05
	if highest > 2*typical && typical > 0 {
		top = typical * 1.3
	}
	if top <= 0 {
		return 1
	}
	return top
}

// offScalePoint is a value above the axis's top.
type offScalePoint struct {
	x, value float64
	color    color.Color
}

// offScaleMarks marks values above the top of the axis: a triangle at the
// top edge and the value beside it, so clipping never hides a number.
type offScaleMarks struct {
	points []offScalePoint
}

// add notes the values of one series above top; a run of adjacent windows
// gets one mark, at its highest value.
func (m *offScaleMarks) add(xs, ys []float64, top float64, c color.Color) {
	inRun := false
	for i, y := range ys {
		if y <= top {
			inRun = false
			continue
		}
		if n := len(m.points); inRun && y > m.points[n-1].value {
			m.points[n-1].x, m.points[n-1].value = xs[i], y
		} else if !inRun {
			m.points = append(m.points, offScalePoint{x: xs[i], value: y, color: c})
		}
		inRun = true
	}
}

// offScaleLabelsMax bounds the values written out; further points get
// only the triangle.
const offScaleLabelsMax = 8

// Plot implements plot.Plotter.
func (m *offScaleMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := text.Style{Font: font.From(sansFont, 9.5), Handler: plot.DefaultTextHandler, YAlign: text.YCenter}
	var taken [offScaleRows][]labelExtent
	labels := 0
	for _, pt := range m.points {
		x := trX(pt.x)
		y := c.Max.Y - vg.Points(5)
		glyph := draw.GlyphStyle{Color: pt.color, Radius: vg.Points(4), Shape: draw.PyramidGlyph{}}
		c.DrawGlyphNoClip(glyph, vg.Point{X: x, Y: y})
		if labels >= offScaleLabelsMax {
			continue
		}
		label := "off scale: " + formatRate(pt.value)
		width := sty.Width(label)
		// Right of the mark unless that runs off the chart.
		from := x + vg.Points(7)
		if from+width > c.Max.X {
			from = x - vg.Points(7) - width
		}
		extent := labelExtent{from: from - vg.Points(2), to: from + width + vg.Points(2)}
		row := freeRow(taken[:], extent)
		if row < 0 {
			continue // every row is taken here: the triangle alone marks it
		}
		taken[row] = append(taken[row], extent)
		labels++
		at := vg.Point{X: from, Y: y - vg.Points(12)*vg.Length(row+1)}
		// An opaque box keeps fault lines and curves from crossing the text.
		h := sty.Height(label)
		c.FillPolygon(color.White, []vg.Point{
			{X: extent.from, Y: at.Y - h/2}, {X: extent.to, Y: at.Y - h/2},
			{X: extent.to, Y: at.Y + h/2}, {X: extent.from, Y: at.Y + h/2},
		})
		sty.Color, sty.XAlign = pt.color, text.XLeft
		c.FillText(sty, at, label)
	}
}

// offScaleRows is how many rows of off-scale labels stack below the top
// before a label is left out.
const offScaleRows = 2

// labelExtent is the horizontal room a label takes.
type labelExtent struct{ from, to vg.Length }

// freeRow is the first row where extent overlaps no label, or -1.
func freeRow(rows [][]labelExtent, extent labelExtent) int {
	for r, taken := range rows {
		free := true
		for _, t := range taken {
			if extent.from < t.to && t.from < extent.to {
				free = false
				break
			}
		}
		if free {
			return r
		}
	}
	return -1
}

// formatRate prints a rate with thousands separators: "162,310/s".
func formatRate(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String() + "/s"
}

// log10ms turns a latency into log10 of milliseconds for a log axis,
// which cannot show zero: a sub-microsecond latency shows as 1 µs.
func log10ms(d time.Duration) float64 {
	return math.Log10(max(float64(d)/float64(time.Millisecond), 0.001))
}

// setLogY fits the y axis, which holds log10 values, to [lo, hi] with a
// margin; with no data it shows 1 to 10.
func setLogY(p *plot.Plot, lo, hi float64) {
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	p.Y.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = lo-0.15, hi+0.15
}

func (r Report) sendLatencyFigure() (figure, error) {
	p := r.timePlot(fmt.Sprintf("Send latency per %v window (ok sends)", r.Series.Width), "latency (ms, log scale)")
	n := len(r.Series.Windows)
	xs := r.windowCentres()
	p50, p99, some := make([]float64, n), make([]float64, n), make([]bool, n)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, w := range r.Series.Windows {
		if w.SendsAcked == 0 {
			continue
		}
		p50[i], p99[i], some[i] = log10ms(w.SendP50), log10ms(w.SendP99), true
		lo, hi = min(lo, p50[i]), max(hi, p99[i])
	}
	var f figure
	// p99 first so that p50 is drawn over it where they meet.
	for _, s := range []struct {
		name  string
		color color.Color
		ys    []float64
	}{{"p99", colorPurple, p99}, {"p50", colorBlue, p50}} {
		e, err := addSegments(p, s.name, lineStyle(s.color, 1.3), xs, s.ys, some)
		if err != nil {
			return figure{}, err
		}
		f.legend = append(f.legend, e)
	}
	slices.Reverse(f.legend)
	setLogY(p, lo, hi)
	f.legend = append(f.legend, legendEntry{name: "gap: no send acknowledged", thumb: gapThumb{}})
	f.legend = append(f.legend, r.finishTimePlot(p)...)
	f.plot = p
	return f, nil
}

// gapThumb explains a gap in a line: two stubs with nothing between.
type gapThumb struct{}

// Thumbnail implements plot.Thumbnailer.
func (gapThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	w := c.Max.X - c.Min.X
	sty := lineStyle(color.Gray{Y: 0x80}, 1.3)
	c.StrokeLine2(sty, c.Min.X, y, c.Min.X+w*0.25, y)
	c.StrokeLine2(sty, c.Max.X-w*0.25, y, c.Max.X, y)
}

// percentileX places quantile q on the percentile axis: each further nine
// (90%, 99%, 99.9%) is one unit right, so the tail gets the room.
func percentileX(q float64) float64 { return -math.Log10(1 - q) }

// percentileTicks labels the percentile axis.
type percentileTicks struct{}

// Ticks implements plot.Ticker.
func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := []plot.Tick{{Value: 0, Label: "0%"}, {Value: percentileX(0.5), Label: "50%"}}
	for nines := 1; nines <= 9 && float64(nines) <= hi+1e-9; nines++ {
		ticks = append(ticks, plot.Tick{Value: float64(nines), Label: ninesLabel(nines)})
	}
	return ticks
}

// ninesLabel names the percentile with that many nines: 90%, 99%, 99.9%.
func ninesLabel(nines int) string {
	switch nines {
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", nines-2) + "%"
}

// percentileSteps is how finely the percentile curve is sampled, per unit
// (per nine) of the axis.
const percentileSteps = 40

// percentileCurve samples o's latency (as log10 ms) at quantiles from 0
// to the last one its count resolves (1 − 1/count), then at the maximum.
func percentileCurve(o OpLatency) (xs, ys []float64) {
	h := o.Histogram
	if h == nil || h.TotalCount() == 0 {
		return nil, nil
	}
	xEnd := math.Log10(float64(h.TotalCount()))
	for i := 0; float64(i)/percentileSteps < xEnd; i++ {
		x := float64(i) / percentileSteps
		xs = append(xs, x)
		ys = append(ys, log10ms(time.Duration(h.ValueAtPercentile(100*(1-math.Pow(10, -x))))*time.Microsecond))
	}
	xs = append(xs, max(xEnd, 0.1))
	ys = append(ys, log10ms(time.Duration(h.Max())*time.Microsecond))
	return xs, ys
}

func (r Report) percentileFigure() (figure, error) {
	p := newPlot("Latency by percentile (ok operations) — "+r.runLabel(), "percentile (log scale of 1 / (1 − p))", "latency (ms, log scale)")
	p.X.Tick.Marker = percentileTicks{}
	p.X.Min = 0
	lo, hi := math.Inf(1), math.Inf(-1)
	styles := map[history.F]draw.LineStyle{history.Send: lineStyle(colorBlue, 1.6), history.Poll: lineStyle(colorOrange, 1.6)}
	var f figure
	for _, o := range r.Latencies.Kinds() {
		xs, ys := percentileCurve(o)
		if len(xs) == 0 {
			continue
		}
		ok := make([]bool, len(xs))
		for i := range ok {
			ok[i] = true
			lo, hi = min(lo, ys[i]), max(hi, ys[i])
		}
		p.X.Max = max(p.X.Max, xs[len(xs)-1])
		pc := o.Percentiles()
		name := fmt.Sprintf("%s: %d ok, p50 %s, p99 %s, max %s", o.F, o.OK,
			FormatLatency(pc.P50), FormatLatency(pc.P99), FormatLatency(pc.Max))
		e, err := addSegments(p, name, styles[o.F], xs, ys, ok)
		if err != nil {
			return figure{}, err
		}
		f.legend = append(f.legend, e)
	}
	p.X.Max = max(p.X.Max, 1) * 1.02
	setLogY(p, lo, hi)
	f.plot = p
	return f, nil
}
