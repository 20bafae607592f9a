package ui

import (
	"strings"
	"testing"

	"github.com/modelreg/modelreg"
)

// A hostile README keeps its text but loses every way to run script.
func TestCardDropsRawHTMLAndScriptLinks(t *testing.T) {
	md := "---\nlicense: mit\n---\n# Sentiment\n\n- fast\n- small\n\n<script>alert('x')</script>\n\n" +
		"<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1)) <a href=\"javascript:alert(2)\">a</a>\n"
	c, err := renderCard(&modelreg.ModelCard{Path: "README.md", Markdown: []byte(md)})
	if err != nil {
		t.Fatal(err)
	}
	h := string(c.HTML)
	for _, want := range []string{"<h1>Sentiment</h1>", "<li>fast</li>", ">click</a>"} {
		if !strings.Contains(h, want) {
			t.Errorf("card lacks %q:\n%s", want, h)
		}
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "<img"} {
		if strings.Contains(strings.ToLower(h), bad) {
			t.Errorf("card keeps %q:\n%s", bad, h)
		}
	}
	if c.FrontMatter != "license: mit\n" {
		t.Errorf("front matter %q, want the YAML block", c.FrontMatter)
	}
}

func TestChartPointsOldestFirst(t *testing.T) {
	rows := []VersionRow{
		{Version: "v3", Metrics: map[string]float64{"accuracy": 0.95}},
		{Version: "v2", Metrics: map[string]float64{"accuracy": 0.91, "f1": 0.87}},
		{Version: "v1", Metrics: map[string]float64{}},
	}
	c := buildChart(rows, []string{"accuracy", "f1"}, "nope")
	if c.Metric != "accuracy" || len(c.Points) != 2 || c.Points[0].Version != "v2" || c.Points[1].Version != "v3" {
		t.Fatalf("chart %+v, want accuracy at v2 then v3", c)
	}
	if !(c.Points[1].Y < c.Points[0].Y) || c.Points[0].X >= c.Points[1].X {
		t.Errorf("0.95 is not drawn above and right of 0.91: %+v", c.Points)
	}
	if c := buildChart(rows, []string{"accuracy", "f1"}, "f1"); len(c.Points) != 1 || c.Points[0].Label != "0.87" {
		t.Errorf("f1 chart %+v, want one point 0.87", c.Points)
	}
	if buildChart(rows, nil, "") != nil {
		t.Errorf("a chart without metrics")
	}
}
