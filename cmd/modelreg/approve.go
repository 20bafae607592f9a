package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func approveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "record a signed approval of a model version",
		ArgsUsage: "REF",
		Description: "A policy can require N approvals by distinct keys from a list (approvals: {keys: [...], min: N}).\n\n" +
			"Example:\n  modelreg approve localhost:5000/team/sentiment:v3 --key alice.key --for production --comment 'eval reviewed'",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "key", Required: true, Usage: "the approver's cosign private key `FILE` (password from COSIGN_PASSWORD)"},
			&cli.StringFlag{Name: "for", Usage: "approve for this `ALIAS` only (default: any alias)"},
			&cli.StringFlag{Name: "approver", Usage: "the approver's name (default: MODELREG_ACTOR or user@host)"},
			&cli.StringFlag{Name: "comment", Usage: "a note kept in the approval"},
		},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "REF")
			if err != nil {
				return err
			}
			pw, err := password()
			if err != nil {
				return err
			}
			res, err := cl.Approve(c.Context, c.Args().Get(0), c.String("key"), pw, modelreg.ApproveOptions{
				Alias: c.String("for"), Approver: c.String("approver"), Comment: c.String("comment"),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "Approved %s with key %s\n", res.Reference, res.KeyID)
			return nil
		},
	}
}
