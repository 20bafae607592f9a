package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func aliasCommand() *cli.Command {
	return &cli.Command{
		Name:  "alias",
		Usage: "set, remove or list aliases (mutable tags such as staging)",
		Description: "Aliases set here are not checked against a policy; use promote for protected aliases.\n\n" +
			"Examples:\n  modelreg alias set localhost:5000/team/sentiment:v3 candidate\n" +
			"  modelreg alias rm localhost:5000/team/sentiment candidate\n  modelreg alias ls localhost:5000/team/sentiment",
		Subcommands: []*cli.Command{
			{
				Name: "set", Usage: "point ALIAS at the version REF names", ArgsUsage: "REF ALIAS",
				Description: "An alias with promotion records (one `promote` moved) is refused unless --force is given:\n" +
					"`pull --policy` refuses it at a digest its newest record does not name, until it is promoted there.",
				Flags: []cli.Flag{outputFlag,
					&cli.BoolFlag{Name: "force", Usage: "move an alias that has promotion records anyway (deploys with pull --policy will refuse it)"},
				},
				Action: func(c *cli.Context) error {
					cl, asJSON, err := prepare(c, "REF", "ALIAS")
					if err != nil {
						return err
					}
					res, err := cl.SetAlias(c.Context, c.Args().Get(0), c.Args().Get(1), modelreg.SetAliasOptions{Force: c.Bool("force")})
					if err != nil {
						return err
					}
					if res.Warning != "" {
						fmt.Fprintf(c.App.ErrWriter, "modelreg: warning: %s\n", res.Warning)
					}
					if asJSON {
						return printJSON(c.App.Writer, res)
					}
					fmt.Fprintf(c.App.Writer, "Alias %s now points at %s\n", res.Alias, res.Digest)
					return nil
				},
			},
			{
				Name: "rm", Usage: "remove ALIAS from REPO", ArgsUsage: "REPO ALIAS",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					cl, asJSON, err := prepare(c, "REPO", "ALIAS")
					if err != nil {
						return err
					}
					if err := cl.RemoveAlias(c.Context, c.Args().Get(0), c.Args().Get(1)); err != nil {
						return err
					}
					if asJSON {
						return printJSON(c.App.Writer, map[string]any{"alias": c.Args().Get(1), "removed": true})
					}
					fmt.Fprintf(c.App.Writer, "Removed alias %s\n", c.Args().Get(1))
					return nil
				},
			},
			{
				Name: "ls", Usage: "list the aliases of REPO", ArgsUsage: "REPO",
				Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					cl, asJSON, err := prepare(c, "REPO")
					if err != nil {
						return err
					}
					res, err := cl.Aliases(c.Context, c.Args().Get(0))
					if err != nil {
						return err
					}
					if asJSON {
						return printJSON(c.App.Writer, res)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ALIAS\tVERSION\tDIGEST")
					for _, a := range res.Aliases {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Alias, a.Version, a.Digest)
					}
					return tw.Flush()
				},
			},
		},
	}
}
