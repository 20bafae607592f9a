package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "find models by name and by the annotations of their latest version",
		ArgsUsage: "QUERY",
		Description: "Every whitespace-separated word of QUERY must appear, in any case, in the model's name\n" +
			"(HOST/REPO) or in a manifest annotation of its latest version (description, source, licences,\n" +
			"lineage, --annotation values); \"\" lists every model.\n\n" +
			"The repositories come from the registry's catalog (/v2/_catalog) with --registry. Registries\n" +
			"without one, or refusing it (olareg, GHCR, Docker Hub), need the repositories named: --repo\n" +
			"(repeatable) or MODELREG_SEARCH_REPOS (comma-separated); with a catalog they are not needed.\n\n" +
			"Examples:\n  modelreg search sentiment --registry localhost:5000\n" +
			"  modelreg search \"apache-2.0 reviews\" --repo ghcr.io/team/sentiment --repo ghcr.io/team/ner -o json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "registry", Usage: "`HOST[:PORT]` whose catalog lists the repositories to search"},
			&cli.StringSliceFlag{Name: "repo", Usage: "search this `HOST/REPO` (repeatable); used when there is no --registry or it has no catalog", EnvVars: []string{"MODELREG_SEARCH_REPOS"}},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "QUERY")
			if err != nil {
				return err
			}
			if c.String("registry") == "" && len(c.StringSlice("repo")) == 0 {
				return usageError{fmt.Errorf("search needs --registry HOST (its catalog) or --repo HOST/REPO (repeatable, or MODELREG_SEARCH_REPOS)")}
			}
			res, err := cl.Search(c.Context, c.Args().Get(0), modelreg.SearchOptions{Registry: c.String("registry"), Repositories: c.StringSlice("repo")})
			if err != nil {
				return err
			}
			for _, f := range res.Failures {
				fmt.Fprintf(c.App.ErrWriter, "modelreg: warning: %s not searched: %s\n", f.Repository, f.Error)
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			if len(res.Hits) == 0 {
				fmt.Fprintf(c.App.ErrWriter, "modelreg: no model of the %d searched (%s) matches %q\n", res.Searched, res.Source, res.Query)
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tLATEST\tMATCHED")
			for _, h := range res.Hits {
				var m []string
				for _, x := range h.Matches {
					m = append(m, x.Field+"="+clip(x.Value, 60))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Repository, h.Version, strings.Join(m, "; "))
			}
			return tw.Flush()
		},
	}
}

// clip shortens s to n runes with an ellipsis, for one table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
