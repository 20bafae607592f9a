package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "evaluate a promotion policy without changing anything",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "show each rule of the policy for an alias, passed or failed and why",
			ArgsUsage: "REF",
			Description: "--output json prints the evidence document and the decision, so OPA or Conftest can reuse\n" +
				"the evidence. Exit 3 when the decision is a refusal.\n\n" +
				"Example:\n  modelreg policy check localhost:5000/team/sentiment:v3 --policy policy.yaml --to production",
			Flags: []cli.Flag{
				outputFlag,
				&cli.StringFlag{Name: "policy", Required: true, Usage: "promotion policy `FILE`"},
				&cli.StringFlag{Name: "to", Usage: "the `ALIAS` whose rules to check (default: the tag of REF)"},
			},
			Action: func(c *cli.Context) error {
				cl, asJSON, err := prepare(c, "REF")
				if err != nil {
					return err
				}
				ev, dec, err := cl.CheckPolicy(c.Context, c.Args().Get(0), c.String("to"), c.String("policy"))
				if err != nil {
					return err
				}
				doc := map[string]any{"evidence": ev, "decision": dec}
				if err := dec.Error(); err != nil && asJSON {
					return jsonFailure{err: deniedReport{err}, result: doc, rules: dec.Failures()}
				}
				if asJSON {
					if err := printJSON(c.App.Writer, doc); err != nil {
						return err
					}
				} else {
					verdict := "allowed"
					if !dec.Allowed {
						verdict = "refused"
					}
					fmt.Fprintf(c.App.Writer, "Promotion of %s to %s would be %s (policy %s)\n", ev.Reference, dec.Alias, verdict, dec.PolicyDigest)
					printRules(c.App.Writer, dec)
				}
				if err := dec.Error(); err != nil {
					return deniedReport{err}
				}
				return nil
			},
		}},
	}
}
