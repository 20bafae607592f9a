package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func lineageCommand() *cli.Command {
	return &cli.Command{
		Name:      "lineage",
		Usage:     "show what a model version was built from, or (--downstream) what was built from it",
		ArgsUsage: "REF",
		Description: "Upstream (the default) follows the version's own lineage annotations: datasets and parent,\n" +
			"recursively, with each version's run and commit. --downstream lists the lineage link referrers\n" +
			"that push writes into a dataset's or parent's repository, and keeps a link only when the version it\n" +
			"names really names REF in its annotations (and, with --key, when the key signed the link); links\n" +
			"left out are listed on stderr and under \"dropped\" in -o json.\n" +
			"Output: text (a tree), json (nodes and edges), dot (Graphviz) or mermaid (a flowchart).\n\n" +
			"Examples:\n  modelreg lineage localhost:5000/team/sentiment:v3\n" +
			"  modelreg lineage localhost:5000/data/reviews:v2 --downstream --key ci.pub -o dot | dot -Tsvg > lineage.svg\n" +
			"  modelreg lineage backfill localhost:5000/team/sentiment --key ci.key",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "output format: text, json, dot or mermaid"},
			&cli.BoolFlag{Name: "downstream", Usage: "walk what was built from REF (link referrers) instead of what REF was built from"},
			&cli.IntFlag{Name: "depth", Usage: "at most `N` edges from REF (0: no limit)"},
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE`: downstream links count only when it signed them (repeatable)"},
		},
		Subcommands: []*cli.Command{backfillCommand()},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "REF"); err != nil {
				return err
			}
			format := c.String("output")
			switch format {
			case "text", "json", "dot", "mermaid":
			default:
				return usageError{fmt.Errorf("--output %q: want text, json, dot or mermaid", format)}
			}
			if c.Int("depth") < 0 {
				return usageError{fmt.Errorf("--depth %d: want 0 (no limit) or more", c.Int("depth"))}
			}
			cl, err := client(c)
			if err != nil {
				return err
			}
			g, err := cl.Lineage(c.Context, c.Args().Get(0), modelreg.LineageOptions{
				Downstream: c.Bool("downstream"), Depth: c.Int("depth"), Keys: c.StringSlice("key")})
			if err != nil {
				return err
			}
			for _, d := range g.Dropped {
				fmt.Fprintf(c.App.ErrWriter, "modelreg: dropped link %s of %s (%s): %s\n", d.Link, d.Subject, d.Downstream, d.Reason)
			}
			w := c.App.Writer
			switch format {
			case "json":
				return printJSON(w, g)
			case "dot":
				fmt.Fprint(w, g.DOT())
			case "mermaid":
				fmt.Fprint(w, g.Mermaid())
			default:
				fmt.Fprint(w, g.Text())
			}
			return nil
		},
	}
}

func backfillCommand() *cli.Command {
	return &cli.Command{
		Name:      "backfill",
		Usage:     "write the lineage links that versions of REPO lack (idempotent)",
		ArgsUsage: "REPO...",
		Description: "For every version (vN tag) of each REPO, writes a link referrer into the repository of each dataset\n" +
			"and parent it names, unless one is listed already. Run it after pushes made with --no-links, by an older\n" +
			"release, or whose links could not be written; a second run writes nothing.\n\n" +
			"Example:\n  COSIGN_PASSWORD=... modelreg lineage backfill localhost:5000/team/sentiment --key ci.key",
		Flags: []cli.Flag{outputFlag,
			&cli.StringFlag{Name: "key", Usage: "cosign private key `FILE` that signs each link (password from COSIGN_PASSWORD)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError{fmt.Errorf("%s takes at least one argument: REPO [REPO]", c.Command.HelpName)}
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			cl, err := client(c)
			if err != nil {
				return err
			}
			opts := modelreg.BackfillOptions{KeyPath: c.String("key")}
			if opts.KeyPath != "" {
				if opts.Password, err = password(); err != nil {
					return err
				}
			}
			res, err := cl.Backfill(c.Context, c.Args().Slice(), opts)
			if err != nil {
				return err
			}
			for _, l := range res.Links {
				if l.Status == modelreg.LinkFailed {
					fmt.Fprintf(c.App.ErrWriter, "modelreg: warning: link of %s not written into %s: %s\n", l.Downstream, l.Subject, l.Error)
				}
			}
			var failed error
			if res.Failed > 0 {
				failed = fmt.Errorf("%d lineage links could not be written (see the warnings; run backfill again with push rights on those repositories)", res.Failed)
			}
			if asJSON {
				if failed != nil {
					return jsonFailure{err: failed, result: res}
				}
				return printJSON(c.App.Writer, res)
			}
			w := c.App.Writer
			for _, l := range res.Links {
				fmt.Fprintf(w, "%-7s %s %s -> %s:%s\n", l.Status, l.Relation, l.Subject, l.Downstream, l.Version)
			}
			fmt.Fprintf(w, "%d versions read: %d links written, %d present, %d failed\n", res.Versions, res.Written, res.Present, res.Failed)
			return failed
		},
	}
}
