package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/internal/size"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what changed between two model versions: files, annotations, config and metrics",
		ArgsUsage: "FROM_REF TO_REF",
		Description: "Files are matched by path and compared by digest; metrics come from evaluations that --key\n" +
			"verifies (without --key they are not compared). Exit code 0 whether or not they differ.\n\n" +
			"Example:\n  modelreg diff localhost:5000/team/sentiment:v7 localhost:5000/team/sentiment:v8 --key eval.pub",
		Flags: []cli.Flag{outputFlag,
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE` that verifies evaluations (repeatable)"}},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "FROM_REF", "TO_REF")
			if err != nil {
				return err
			}
			d, err := cl.Diff(c.Context, c.Args().Get(0), c.Args().Get(1), modelreg.DiffOptions{Keys: c.StringSlice("key")})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, d)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "--- %s (%s)\n+++ %s (%s)\n", d.From, d.FromDigest, d.To, d.ToDigest)
			if d.Same {
				fmt.Fprintln(w, "Same digest: nothing differs.")
				return nil
			}
			fmt.Fprintf(w, "Files: %d added, %d removed, %d changed, %d unchanged\n", len(d.Added), len(d.Removed), len(d.Changed), d.Unchanged)
			for _, f := range d.Added {
				fmt.Fprintf(w, "  + %s (%s)\n", f.Path, size.Format(f.Size))
			}
			for _, f := range d.Removed {
				fmt.Fprintf(w, "  - %s (%s)\n", f.Path, size.Format(f.Size))
			}
			for _, f := range d.Changed {
				fmt.Fprintf(w, "  ~ %s (%s → %s)\n", f.Path, size.Format(f.From.Size), size.Format(f.To.Size))
			}
			for _, s := range []struct {
				title string
				vs    []modelreg.ValueChange
			}{{"Annotations", d.Annotations}, {"Config", d.Config}} {
				if len(s.vs) > 0 {
					fmt.Fprintf(w, "%s:\n", s.title)
				}
				for _, v := range s.vs {
					fmt.Fprintf(w, "  ~ %s: %s → %s\n", v.Key, orDash(v.From), orDash(v.To))
				}
			}
			if len(d.Metrics) > 0 {
				fmt.Fprintln(w, "Metrics:")
			}
			for _, m := range d.Metrics {
				fmt.Fprintf(w, "  ~ %s: %s → %s\n", m.Name, metricText(m.From), metricText(m.To))
			}
			return nil
		},
	}
}

func metricText(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
