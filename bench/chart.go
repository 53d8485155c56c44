package main

import (
	"fmt"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeChart draws the headline ratios (top) and, for the highest fixed
// rate, the latency distribution of both proxies per N (bottom).
func writeChart(path string, b *bench, rs []ratio) error {
	const width, height = 13 * vg.Inch, 12 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	dc := draw.New(img)

	top, err := ratioPlot(b, rs)
	if err != nil {
		return err
	}
	margin := vg.Points(12)
	top.Draw(draw.Crop(dc, margin, -margin, height*0.42, -margin))

	lat := latencyPlots(b)
	for i, p := range lat {
		left := width * vg.Length(i) / vg.Length(len(lat))
		right := -width * vg.Length(len(lat)-1-i) / vg.Length(len(lat))
		p.Draw(draw.Crop(dc, left+margin, right-margin, margin, -height*0.6))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ratioPlot(b *bench, rs []ratio) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "edgeproxy / HAProxy (median of rounds): below 1 is better for CPU, latency and memory, above 1 for rates"
	p.X.Label.Text = "ratio edgeproxy / HAProxy (log scale)"
	var labels []string
	perN := make([]plotter.Values, len(b.o.threads))
	for _, h := range b.headline() {
		def, _ := metricByKey(h.metric)
		have := false
		vals := make([]float64, len(b.o.threads))
		for i, n := range b.o.threads {
			if r, ok := findRatio(rs, h.scenario, n, h.vs, h.metric); ok {
				vals[i], have = r.Ratio, true
			}
		}
		if !have {
			continue
		}
		vs := ""
		if h.vs != hapSafe {
			vs = " (vs " + h.vs + ")"
		}
		labels = append(labels, fmt.Sprintf("%s %s%s", h.scenario, def.label, vs))
		for i := range perN {
			perN[i] = append(perN[i], vals[i])
		}
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("no ratios to draw")
	}
	// Horizontal bars read best with long labels; the first item on top.
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
		for k := range perN {
			perN[k][i], perN[k][j] = perN[k][j], perN[k][i]
		}
	}
	// Bars show log2(ratio): equal lengths for "twice as good" and "twice
	// as bad", left of the axis below 1 and right above 1.
	lo, hi := -1.0, 1.0
	for k := range perN {
		for i, v := range perN[k] {
			if v > 0 {
				perN[k][i] = math.Log2(v)
			}
			lo, hi = math.Min(lo, perN[k][i]), math.Max(hi, perN[k][i])
		}
	}
	barW := vg.Points(math.Max(4, 260/float64(len(labels)*len(perN))))
	for i, vals := range perN {
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, err
		}
		bars.Horizontal = true
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = barW * vg.Length(float64(i)-float64(len(perN)-1)/2)
		p.Add(bars)
		p.Legend.Add(fmt.Sprintf("N=%d (GOMAXPROCS / nbthread)", b.o.threads[i]), bars)
	}
	one, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.5}, {X: 0, Y: float64(len(labels)) - 0.5}})
	if err != nil {
		return nil, err
	}
	one.LineStyle.Width = vg.Points(1.5)
	p.Add(one)
	p.NominalY(labels...)
	p.X.Min, p.X.Max = math.Floor(lo), math.Ceil(hi)
	var ticks plot.ConstantTicks
	for e := p.X.Min; e <= p.X.Max; e++ {
		label := fmt.Sprintf("%g", math.Exp2(e))
		if e < 0 {
			label = fmt.Sprintf("1/%g", math.Exp2(-e))
		}
		ticks = append(ticks, plot.Tick{Value: e, Label: label})
	}
	p.X.Tick.Marker = ticks
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p, nil
}

// latencyPlots draws latency by percentile for the highest fixed rate.
func latencyPlots(b *bench) []*plot.Plot {
	if len(b.o.ratePercent) == 0 {
		return nil
	}
	pct := b.o.ratePercent[len(b.o.ratePercent)-1]
	scen := fmt.Sprintf("rate-%d", pct)
	var out []*plot.Plot
	for _, n := range b.o.threads {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("N=%d latency at %d%% of capacity (open loop, all rounds)", n, pct)
		p.X.Label.Text = "percentile"
		p.Y.Label.Text = "latency (ms, log)"
		p.X.Scale = plot.LogScale{}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Tick.Marker = plot.ConstantTicks{
			{Value: 2, Label: "50%"}, {Value: 10, Label: "90%"}, {Value: 100, Label: "99%"},
			{Value: 1000, Label: "99.9%"}, {Value: 10000, Label: "99.99%"},
		}
		drawn := false
		for i, name := range []string{edge, hapSafe} {
			h := b.hists[histKey(scen, n, name)]
			if h == nil || h.n == 0 {
				continue
			}
			var xy plotter.XYs
			for _, q := range curveQuantiles {
				if q <= 0 || q >= 1 || 1/(1-q) > float64(h.n) {
					continue
				}
				ms := float64(h.quantile(q)) / 1e6
				xy = append(xy, plotter.XY{X: 1 / (1 - q), Y: math.Max(ms, 1e-3)})
			}
			line, points, err := plotter.NewLinePoints(xy)
			if err != nil {
				continue
			}
			line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
			p.Add(line, points)
			p.Legend.Add(name, line)
			drawn = true
		}
		if drawn {
			p.Legend.Top = true
			p.Legend.Left = true
			p.Add(plotter.NewGrid())
			out = append(out, p)
		}
	}
	return out
}
