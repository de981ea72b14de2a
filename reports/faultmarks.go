package reports

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Fault colours: a strong colour per span kind for its lane above the
// data, a light tint of it for the shading behind the data, dark shades
// for event lines and labels.
var (
	spanColors = [spanKinds]color.NRGBA{
		spanDown:    {R: 0xd6, G: 0x27, B: 0x28, A: 0xb0},
		spanPaused:  {R: 0x94, G: 0x67, B: 0xbd, A: 0xb0},
		spanNetwork: {R: 0x17, G: 0xbe, B: 0xcf, A: 0xb0},
		spanDisk:    {R: 0xbc, G: 0xbd, B: 0x22, A: 0xc0},
	}
	eventColors = map[EventKind]color.Color{
		EventFault:    color.NRGBA{R: 0xb2, G: 0x18, B: 0x2b, A: 0xff},
		EventRecovery: color.NRGBA{R: 0x1b, G: 0x78, B: 0x37, A: 0xff},
		EventOther:    color.NRGBA{R: 0x66, G: 0x66, B: 0x66, A: 0xff},
	}
	labelBackground = color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xd8}
)

// spanTint is the light version of a span kind's colour.
func spanTint(k spanKind) color.NRGBA {
	c := spanColors[k]
	c.A = 0x2c
	return c
}

// shaded says which spans are shaded behind the data as well as drawn in
// their lane: a node down or paused stops everything, and overlapping
// tints of every kind would blend into colours the legend does not show.
func shaded(k spanKind) bool { return k == spanDown || k == spanPaused }

// faultShading tints the data area behind the data while a node is down
// or paused.
type faultShading struct {
	spans []faultSpan
}

// Plot implements plot.Plotter.
func (f faultShading) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, s := range f.spans {
		if !shaded(s.kind) {
			continue
		}
		x0, x1 := spanXs(c, trX, s)
		c.FillPolygon(spanTint(s.kind), rectangle(vg.Rectangle{Min: vg.Point{X: x0, Y: c.Min.Y}, Max: vg.Point{X: x1, Y: c.Max.Y}}))
	}
}

// spanXs is where a span starts and ends on the canvas; a span too short
// to see still gets a sliver.
func spanXs(c draw.Canvas, trX func(float64) vg.Length, s faultSpan) (vg.Length, vg.Length) {
	x0 := max(trX(s.from.Seconds()), c.Min.X)
	x1 := min(trX(s.to.Seconds()), c.Max.X)
	if x1-x0 < vg.Points(1.5) {
		x1 = x0 + vg.Points(1.5)
	}
	return x0, x1
}

// spanThumb is a span kind's legend entry: its lane's bar, over its tint
// for a kind also shaded behind the data.
type spanThumb struct{ kind spanKind }

// Thumbnail implements plot.Thumbnailer.
func (t spanThumb) Thumbnail(c *draw.Canvas) {
	if shaded(t.kind) {
		c.FillPolygon(spanTint(t.kind), rectangle(c.Rectangle))
	}
	bar := c.Rectangle
	bar.Min.Y = bar.Max.Y - (bar.Max.Y-bar.Min.Y)*0.45
	c.FillPolygon(spanColors[t.kind], rectangle(bar))
}

// eventLineStyle draws an event's vertical line.
func eventLineStyle(k EventKind) draw.LineStyle {
	return draw.LineStyle{Color: eventColors[k], Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}}
}

// eventThumb is an event kind's legend entry: a short vertical line.
type eventThumb struct{ kind EventKind }

// Thumbnail implements plot.Thumbnailer.
func (t eventThumb) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(eventLineStyle(t.kind), x, c.Min.Y, x, c.Max.Y)
}

// Label layout above the data area.
const (
	labelRowsMax = 6
	labelFontPt  = 9
)

var (
	labelRowHeight = vg.Points(labelFontPt * 1.45)
	labelGap       = vg.Points(5)
	labelInset     = vg.Points(2)
)

// faultMarks draws, above the data area, a lane per kind of fault span
// (a bar while a node was down, the network cut, a disk faulty) and over
// the lanes a short label per world event, in rows so that close events
// do not print over each other; a dashed line runs from each label down
// through the data.
type faultMarks struct {
	events []WorldEvent
	spans  []faultSpan
	// lanes maps a span kind to its lane, -1 for a kind with no span.
	lanes    [spanKinds]int
	lanesLen int
	// rows is the height of the label band in rows, fixed before drawing
	// because the plot sizes its data area from GlyphBoxes.
	rows  int
	style text.Style
}

// Lane layout.
var (
	laneHeight = vg.Points(9)
	laneGap    = vg.Points(2)
	laneText   = text.Style{Font: font.From(sansFont, 7), Handler: plot.DefaultTextHandler, YAlign: text.YCenter, Color: color.White}
)

// newFaultMarks lays the labels out once against an estimate of the data
// area's width, to size the band; Plot lays them out again on the real one.
func newFaultMarks(events []WorldEvent, spans []faultSpan, xMin, xMax float64, dataWidthEstimate vg.Length) *faultMarks {
	f := &faultMarks{events: dedupeEvents(events), spans: spans}
	var present [spanKinds]bool
	for _, s := range spans {
		present[s.kind] = true
	}
	for k := range f.lanes {
		f.lanes[k] = -1
		if present[k] {
			f.lanes[k] = f.lanesLen
			f.lanesLen++
		}
	}
	f.style = text.Style{
		Font:    font.From(sansFont, labelFontPt),
		Handler: plot.DefaultTextHandler,
		YAlign:  text.YCenter,
	}
	xs := make([]vg.Length, len(f.events))
	for i, e := range f.events {
		xs[i] = dataWidthEstimate * vg.Length((e.At.Seconds()-xMin)/(xMax-xMin))
	}
	_, _, used := layoutLabels(xs, f.widths(), 0, dataWidthEstimate, labelRowsMax)
	f.rows = used
	return f
}

// dedupeEvents drops an event with the same time and label as the one
// before it: a second "heal" at the same instant says nothing new.
func dedupeEvents(events []WorldEvent) []WorldEvent {
	var out []WorldEvent
	for _, e := range events {
		if n := len(out); n > 0 && out[n-1].At == e.At && out[n-1].Label() == e.Label() {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (f *faultMarks) widths() []vg.Length {
	ws := make([]vg.Length, len(f.events))
	for i, e := range f.events {
		ws[i] = f.style.Width(e.Label())
	}
	return ws
}

// lanesHeight is the height of the span lanes over the data area.
func (f *faultMarks) lanesHeight() vg.Length {
	if f.lanesLen == 0 {
		return 0
	}
	return vg.Points(3) + vg.Length(f.lanesLen)*(laneHeight+laneGap)
}

// bandHeight is the room the lanes and labels take over the data area.
func (f *faultMarks) bandHeight() vg.Length {
	if f.rows == 0 {
		return f.lanesHeight()
	}
	return f.lanesHeight() + vg.Length(f.rows)*labelRowHeight + vg.Points(4)
}

// GlyphBoxes implements plot.GlyphBoxer: one box over the top edge of the
// data area makes the plot leave room for the label band.
func (f *faultMarks) GlyphBoxes(*plot.Plot) []plot.GlyphBox {
	return []plot.GlyphBox{{X: 0, Y: 1, Rectangle: vg.Rectangle{Max: vg.Point{Y: f.bandHeight()}}}}
}

// Plot implements plot.Plotter.
func (f *faultMarks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	f.plotLanes(c, trX)
	if len(f.events) == 0 {
		return
	}
	xs := make([]vg.Length, len(f.events))
	for i, e := range f.events {
		xs[i] = trX(e.At.Seconds())
	}
	widths := f.widths()
	rows, lefts, _ := layoutLabels(xs, widths, c.Min.X, c.Max.X, f.rows)
	labelsBottom := c.Max.Y + f.lanesHeight()
	rowY := func(r int) vg.Length {
		return labelsBottom + vg.Points(2) + (vg.Length(r)+0.5)*labelRowHeight
	}
	// Lines first, labels over them: a line running up to a higher row
	// passes behind the labels below it.
	for i, e := range f.events {
		if xs[i] < c.Min.X || xs[i] > c.Max.X {
			continue
		}
		c.StrokeLine2(eventLineStyle(e.Kind), xs[i], c.Min.Y, xs[i], rowY(rows[i]))
	}
	for i, e := range f.events {
		if xs[i] < c.Min.X || xs[i] > c.Max.X {
			continue
		}
		y := rowY(rows[i])
		half := labelRowHeight / 2
		c.FillPolygon(labelBackground, []vg.Point{
			{X: lefts[i] - 1, Y: y - half}, {X: lefts[i] + widths[i] + 1, Y: y - half},
			{X: lefts[i] + widths[i] + 1, Y: y + half}, {X: lefts[i] - 1, Y: y + half},
		})
		sty := f.style
		sty.Color = eventColors[e.Kind]
		c.FillText(sty, vg.Point{X: lefts[i], Y: y}, e.Label())
	}
}

// plotLanes draws each span as a bar in its kind's lane, the node's name
// inside when it fits.
func (f *faultMarks) plotLanes(c draw.Canvas, trX func(float64) vg.Length) {
	for _, s := range f.spans {
		x0, x1 := spanXs(c, trX, s)
		y0 := c.Max.Y + vg.Points(3) + vg.Length(f.lanesLen-1-f.lanes[s.kind])*(laneHeight+laneGap)
		c.FillPolygon(spanColors[s.kind], rectangle(vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y0 + laneHeight}}))
		if s.node != "" && laneText.Width(s.node)+vg.Points(4) <= x1-x0 {
			c.FillText(laneText, vg.Point{X: x0 + vg.Points(2), Y: y0 + laneHeight/2}, s.node)
		}
	}
}

// layoutLabels places labels of the given widths at xs (in time order)
// into rows: a label starts just right of its x, or ends just left of it
// when it would run past maxX, and takes the lowest row where it overlaps
// nothing. With every row taken it goes where it overlaps least. It
// returns each label's row and left edge, and how many rows were used.
func layoutLabels(xs, widths []vg.Length, minX, maxX vg.Length, rowsMax int) (rows []int, lefts []vg.Length, used int) {
	if rowsMax < 1 {
		rowsMax = 1
	}
	rowEnds := make([]vg.Length, rowsMax)
	for r := range rowEnds {
		rowEnds[r] = vg.Length(math.Inf(-1))
	}
	rows = make([]int, len(xs))
	lefts = make([]vg.Length, len(xs))
	for i, x := range xs {
		left := x + labelInset
		if left+widths[i] > maxX && x-labelInset-widths[i] >= minX {
			left = x - labelInset - widths[i]
		}
		row := -1
		for r := range rowEnds {
			if rowEnds[r]+labelGap <= left {
				row = r
				break
			}
		}
		if row < 0 {
			row = 0
			for r := range rowEnds {
				if rowEnds[r] < rowEnds[row] {
					row = r
				}
			}
		}
		rows[i], lefts[i] = row, left
		rowEnds[row] = left + widths[i]
		used = max(used, row+1)
	}
	return rows, lefts, used
}
