package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show who moved each alias to which version and when, from signed promotion records",
		ArgsUsage: "REPO [ALIAS]",
		Description: "Records are verified with --key or with each alias's promoter keys from --policy; without\n" +
			"either they are listed unverified. A tag that no record explains is flagged.\n\n" +
			"Example:\n  modelreg history localhost:5000/team/sentiment production --policy policy.yaml",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE` trusted to sign promotion records (repeatable)"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` whose promoter keys verify records"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageError{fmt.Errorf("history takes REPO [ALIAS]; got %d arguments", c.NArg())}
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			cl, err := client(c)
			if err != nil {
				return err
			}
			h, err := cl.History(c.Context, c.Args().Get(0), c.Args().Get(1), modelreg.HistoryOptions{Keys: c.StringSlice("key"), Policy: c.String("policy")})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, h)
			}
			w := c.App.Writer
			if !h.Verified {
				fmt.Fprintln(w, "Records are NOT verified: give --policy or --key to check who signed them.")
			}
			for i, a := range h.Aliases {
				if i > 0 {
					fmt.Fprintln(w)
				}
				cur := "unset"
				if a.Current != "" {
					cur = versionOr(a.CurrentVersion, a.Current)
				}
				fmt.Fprintf(w, "%s (now %s)\n", a.Alias, cur)
				if h.Verified && a.Current != "" && !a.Explained {
					fmt.Fprintf(w, "  !  tag points at %s, which no verified promotion record explains (moved outside `modelreg promote`)\n", a.Current)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  SEQ\tVERSION\tPREVIOUS\tWHEN\tWHO\tSIGNED BY\tNOTE")
				for _, r := range a.Records {
					signer := r.KeyPath
					if !r.Verified {
						signer = "UNVERIFIED " + r.Signer
					}
					fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Sequence, versionOr(r.Version, r.Digest), versionOr(r.PreviousVersion, r.PreviousDigest), r.PromotedAt, r.Actor, signer, r.Reason)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func versionOr(v, d string) string {
	switch {
	case v != "":
		return v
	case d == "":
		return "-"
	case len(d) > 19:
		return d[:19]
	}
	return d
}
