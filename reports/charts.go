package reports

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart sizes: wide enough that a 100 ms window of a minute's run is
// still a visible step, tall enough for the fault labels above the data.
const (
	chartWidth  = 11 * vg.Inch
	chartHeight = 6 * vg.Inch
	// chartDPI makes a PNG of 1320 × 720 pixels.
	chartDPI = 120
)

// chartMargin keeps text off the image's edges.
var chartMargin = vg.Points(8)

// Chart is one figure of a report, drawn on demand as PNG or SVG. The same
// inputs draw the same bytes.
type Chart struct {
	// Name is the chart's file name without extension: "throughput".
	Name string
	// Title says what the chart shows.
	Title string
	build func() (figure, error)
}

// figure is a built chart: the plot and the legend drawn under it.
type figure struct {
	plot   *plot.Plot
	legend []legendEntry
}

// legendEntry is one item of a chart's legend.
type legendEntry struct {
	name  string
	thumb plot.Thumbnailer
}

// WritePNG draws the chart as a PNG image.
func (c Chart) WritePNG(w io.Writer) error {
	canvas := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))}
	if err := c.draw(draw.New(canvas)); err != nil {
		return err
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("chart %s: write png: %w", c.Name, err)
	}
	return nil
}

// WriteSVG draws the chart as an SVG image. Fonts are named, not
// embedded: the image stays small and any sans-serif face reads well.
func (c Chart) WriteSVG(w io.Writer) error {
	canvas := vgsvg.New(chartWidth, chartHeight)
	if err := c.draw(draw.New(canvas)); err != nil {
		return err
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("chart %s: write svg: %w", c.Name, err)
	}
	return nil
}

// draw lays the chart out: the plot above, its legend in rows below it
// (a legend inside the plot would cover data or fault labels).
func (c Chart) draw(dc draw.Canvas) error {
	f, err := c.build()
	if err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	dc.FillPolygon(color.White, rectangle(dc.Rectangle))
	dc = draw.Crop(dc, chartMargin, -chartMargin, chartMargin, -chartMargin)
	// The legend starts under the data area's left edge, which depends
	// only on the vertical axis's width, not on the plot's height.
	left := f.plot.DataCanvas(dc).Min.X
	lines := layoutLegend(f.legend, dc.Max.X-left)
	legendHeight := vg.Length(len(lines)) * legendRowHeight
	f.plot.Draw(draw.Crop(dc, 0, 0, legendHeight, 0))
	for row, line := range lines {
		y := dc.Min.Y + legendHeight - vg.Length(row+1)*legendRowHeight
		drawLegendRow(dc, line, left, y)
	}
	return nil
}

func rectangle(r vg.Rectangle) []vg.Point {
	return []vg.Point{{X: r.Min.X, Y: r.Min.Y}, {X: r.Max.X, Y: r.Min.Y}, {X: r.Max.X, Y: r.Max.Y}, {X: r.Min.X, Y: r.Max.Y}}
}

// Legend layout.
var (
	legendTextStyle = text.Style{Font: font.From(sansFont, 11), Handler: plot.DefaultTextHandler, YAlign: text.YCenter}
	legendRowHeight = vg.Points(18)
	legendThumbSize = vg.Point{X: vg.Points(22), Y: vg.Points(10)}
	legendThumbGap  = vg.Points(5)
	legendEntryGap  = vg.Points(18)
)

// legendRowsMax bounds the legend; entries past it are not drawn.
const legendRowsMax = 4

func legendEntryWidth(e legendEntry) vg.Length {
	return legendThumbSize.X + legendThumbGap + legendTextStyle.Width(e.name)
}

// layoutLegend breaks entries into rows no wider than width.
func layoutLegend(entries []legendEntry, width vg.Length) [][]legendEntry {
	var rows [][]legendEntry
	var used vg.Length
	for _, e := range entries {
		w := legendEntryWidth(e)
		if n := len(rows); n > 0 && used+legendEntryGap+w <= width {
			rows[n-1] = append(rows[n-1], e)
			used += legendEntryGap + w
			continue
		}
		if len(rows) == legendRowsMax {
			break
		}
		rows = append(rows, []legendEntry{e})
		used = w
	}
	return rows
}

// drawLegendRow draws one row of entries from x, on a row whose bottom is
// at y.
func drawLegendRow(c draw.Canvas, entries []legendEntry, x, y vg.Length) {
	mid := y + legendRowHeight/2
	for _, e := range entries {
		thumb := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: mid - legendThumbSize.Y/2},
			Max: vg.Point{X: x + legendThumbSize.X, Y: mid + legendThumbSize.Y/2},
		}}
		e.thumb.Thumbnail(&thumb)
		c.FillText(legendTextStyle, vg.Point{X: x + legendThumbSize.X + legendThumbGap, Y: mid}, e.name)
		x += legendEntryWidth(e) + legendEntryGap
	}
}

// Colors: a colour-blind-safe palette (Okabe and Ito) for the data, kept
// apart from the fault shading's tints.
var (
	colorBlue   = color.RGBA{R: 0x00, G: 0x72, B: 0xb2, A: 0xff}
	colorOrange = color.RGBA{R: 0xe6, G: 0x9f, B: 0x00, A: 0xff}
	colorPurple = color.RGBA{R: 0xcc, G: 0x79, B: 0xa7, A: 0xff}
	colorVermil = color.RGBA{R: 0xd5, G: 0x5e, B: 0x00, A: 0xff}
	colorGrid   = color.Gray{Y: 0xe6}
)

var sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot makes a plot in the report's house style.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansFont, 15)
	p.Title.Padding = vg.Points(10)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sansFont, 12)
		a.Tick.Label.Font = font.From(sansFont, 10.5)
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color = colorGrid
	grid.Horizontal.Color = colorGrid
	p.Add(grid)
	return p
}

// lineStyle is a solid data line.
func lineStyle(c color.Color, widthPt float64) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: vg.Points(widthPt)}
}

// addSegments draws a series with gaps: a point is absent where ok is
// false, and the line breaks there rather than pretending a value. A lone
// point is drawn as a dot. It returns the series' legend entry.
func addSegments(p *plot.Plot, name string, style draw.LineStyle, xs, ys []float64, ok []bool) (legendEntry, error) {
	if len(xs) != len(ys) || len(xs) != len(ok) {
		panic("reports: segment columns differ in length")
	}
	entry := legendEntry{name: name, thumb: &plotter.Line{LineStyle: style}}
	start := -1
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		pts := make(plotter.XYs, 0, end-start)
		for i := start; i < end; i++ {
			pts = append(pts, plotter.XY{X: xs[i], Y: ys[i]})
		}
		start = -1
		if len(pts) == 1 {
			s, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: style.Color, Radius: style.Width * 1.2, Shape: draw.CircleGlyph{}}
			p.Add(s)
			return nil
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		l.LineStyle = style
		p.Add(l)
		return nil
	}
	for i := range xs {
		if ok[i] && start < 0 {
			start = i
		}
		if !ok[i] {
			if err := flush(i); err != nil {
				return legendEntry{}, err
			}
		}
	}
	if err := flush(len(xs)); err != nil {
		return legendEntry{}, err
	}
	return entry, nil
}

// niceStep is the smallest of 1, 2 or 5 times a power of ten that cuts
// span into at most parts pieces.
func niceStep(span float64, parts int) float64 {
	if !(span > 0) {
		return 1
	}
	raw := span / float64(parts)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// linearTicks marks a linear axis every nice step, with a minor tick
// between: more labels than gonum's default, so a fault's time can be
// read off the axis.
type linearTicks struct{ parts int }

// Ticks implements plot.Ticker.
func (t linearTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep(hi-lo, t.parts)
	var ticks []plot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	// The step bounds the loop: at most parts labels, twice with minors.
	for i := 0; i <= 2*t.parts+2; i++ {
		v := first + float64(i)*step/2
		if v > hi+step*1e-9 {
			break
		}
		label := ""
		if i%2 == 0 {
			label = strconv.FormatFloat(roundTo(v, step), 'f', -1, 64)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// roundTo removes float noise below a step's precision (0.30000000000000004).
func roundTo(v, step float64) float64 {
	digits := max(0, -math.Floor(math.Log10(step))+1)
	scale := math.Pow(10, digits)
	return math.Round(v*scale) / scale
}

// logTicks marks an axis whose values are log10 of the quantity at 1, 2
// and 5 times each power of ten, labelled with the quantity, so a range
// narrower than a decade still has labels. (Plotting log10 on a linear
// axis sidesteps gonum's log scale, which misplaces the axis label.)
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi >= lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil
	}
	var ticks []plot.Tick
	first := math.Floor(lo)
	// A bound on decades: an axis over more than 40 is not a latency axis.
	for e := first; e <= math.Ceil(hi) && e < first+40; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := math.Log10(m) + e
			if v < lo-1e-9 || v > hi+1e-9 {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(m*math.Pow(10, e), 'f', -1, 64)})
		}
	}
	return ticks
}

// barSeries is one colour of bars and its legend's name.
type barSeries struct {
	name   string
	values plotter.Values
	color  color.Color
}

// addBars adds each series to p as bars of width, the i-th moved sideways
// by offset(i), and returns their legend entries.
func addBars(p *plot.Plot, width vg.Length, offset func(i int) vg.Length, series ...barSeries) ([]legendEntry, error) {
	legend := make([]legendEntry, 0, len(series))
	for i, s := range series {
		bars, err := plotter.NewBarChart(s.values, width)
		if err != nil {
			return nil, err
		}
		bars.Color, bars.LineStyle.Width, bars.Offset = s.color, 0, offset(i)
		p.Add(bars)
		legend = append(legend, legendEntry{name: s.name, thumb: bars})
	}
	return legend, nil
}
