package main

import (
	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "promote the version that held an alias before, through the same policy",
		ArgsUsage: "REPO ALIAS",
		Description: "Reads the newest promotion record of ALIAS and promotes its previous digest, with a new record.\n\n" +
			"Example:\n  modelreg rollback localhost:5000/team/sentiment production --policy policy.yaml --key release.key",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "policy", Required: true, Usage: "promotion policy `FILE`"},
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` that signs the promotion record (password from COSIGN_PASSWORD)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "REPO", "ALIAS"); err != nil {
				return err
			}
			return promoteAction(c, func(cl *modelreg.Client, opts modelreg.PromoteOptions) (*modelreg.PromoteResult, error) {
				return cl.Rollback(c.Context, c.Args().Get(0), c.Args().Get(1), opts)
			})
		},
	}
}
