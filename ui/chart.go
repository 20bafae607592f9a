package ui

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart geometry, in SVG user units (pixels at 100 % zoom).
const (
	chartWidth  = 760
	chartHeight = 260
	chartLeft   = 60 // room for the value ticks
	chartRight  = 20
	chartTop    = 16
	chartBottom = 44 // room for the version labels
	chartTicks  = 5
)

// Chart is the model page's chart of one verified evaluation metric
// across the versions of the page, oldest on the left. It is drawn by the
// server as inline SVG: no JavaScript.
type Chart struct {
	// Metric is the metric drawn; Metrics the ones to choose from
	// (?metric=NAME).
	Metric  string   `json:"metric"`
	Metrics []string `json:"metrics"`
	// Points are the versions that have the metric, oldest first.
	Points []ChartPoint `json:"points"`
	// Ticks are the value axis labels, bottom to top.
	Ticks  []ChartTick `json:"-"`
	Width  int         `json:"-"`
	Height int         `json:"-"`
	// Line is the polyline through the points ("x,y x,y …").
	Line string `json:"-"`
	// Plot area edges.
	X0, X1, Y0, Y1 float64 `json:"-"`
}

// ChartPoint is one version's value of the metric.
type ChartPoint struct {
	Version string  `json:"version"`
	Value   float64 `json:"value"`
	// Label is Value as shown (4 significant digits).
	Label string  `json:"label"`
	X     float64 `json:"-"`
	Y     float64 `json:"-"`
}

// ChartTick is one labelled value on the vertical axis.
type ChartTick struct {
	Y     float64
	Label string
}

// buildChart draws metric over rows (newest first, as on the page); the
// first metric when metric is "" or unknown. Nil when no row has a metric.
func buildChart(rows []VersionRow, metrics []string, metric string) *Chart {
	if len(metrics) == 0 {
		return nil
	}
	if !slices.Contains(metrics, metric) {
		metric = metrics[0]
	}
	c := &Chart{Metric: metric, Metrics: metrics, Points: []ChartPoint{}, Width: chartWidth, Height: chartHeight,
		X0: chartLeft, X1: chartWidth - chartRight, Y0: chartHeight - chartBottom, Y1: chartTop}
	for i := len(rows) - 1; i >= 0; i-- {
		// A value that is not finite cannot be placed on the axis (and
		// JSON cannot carry it): it is left out.
		if v, ok := rows[i].Metrics[metric]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			c.Points = append(c.Points, ChartPoint{Version: rows[i].Version, Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
		}
	}
	if len(c.Points) == 0 {
		return c
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range c.Points {
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	// The axis is computed on quarter values, so that a range near
	// ±MaxFloat64 (hi-lo, or the padding) does not overflow to Inf.
	lo, hi = lo/4, hi/4
	pad := (hi - lo) * 0.1
	if pad == 0 { // one point, or all equal: a band around the value
		pad = math.Max(math.Abs(hi)*0.05, 0.0025)
	}
	lo, hi = lo-pad, hi+pad
	y := func(v float64) float64 { return c.Y0 - (v/4-lo)/(hi-lo)*(c.Y0-c.Y1) }
	step := (c.X1 - c.X0) / float64(max(len(c.Points)-1, 1))
	var line []string
	for i := range c.Points {
		p := &c.Points[i]
		p.X = c.X0 + step*float64(i)
		if len(c.Points) == 1 {
			p.X = (c.X0 + c.X1) / 2
		}
		p.Y = y(p.Value)
		line = append(line, fmt.Sprintf("%.1f,%.1f", p.X, p.Y))
	}
	c.Line = strings.Join(line, " ")
	for i := 0; i < chartTicks; i++ {
		h := lo + (hi-lo)*(float64(i)/float64(chartTicks-1)) // a quarter value
		v := math.Max(-math.MaxFloat64, math.Min(h*4, math.MaxFloat64))
		c.Ticks = append(c.Ticks, ChartTick{Y: c.Y0 - (h-lo)/(hi-lo)*(c.Y0-c.Y1), Label: strconv.FormatFloat(v, 'g', 3, 64)})
	}
	return c
}
