package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

func versionsCommand() *cli.Command {
	return &cli.Command{
		Name:        "versions",
		Usage:       "list the versions of a model with their aliases",
		ArgsUsage:   "REPO",
		Description: "Example:\n  modelreg versions localhost:5000/team/sentiment",
		Flags:       []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "REPO")
			if err != nil {
				return err
			}
			res, err := cl.Versions(c.Context, c.Args().Get(0))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tDIGEST\tALIASES")
			for _, v := range res.Versions {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Version, v.Digest, strings.Join(v.Aliases, ", "))
			}
			return tw.Flush()
		},
	}
}
