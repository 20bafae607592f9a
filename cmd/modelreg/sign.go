package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign a model version's digest with a cosign key (offline, no transparency log)",
		ArgsUsage: "REF",
		Description: "The signature is stored as cosign v3 stores it (a Sigstore bundle in an OCI 1.1 referrer of the digest;\n" +
			"with --legacy-tags, cosign v2's sha256-<hex>.sig tag), so `cosign verify --key K --insecure-ignore-tlog` accepts it.\n\n" +
			"Example:\n  COSIGN_PASSWORD=... modelreg sign localhost:5000/team/sentiment:v3 --key release.key",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` (password from COSIGN_PASSWORD)"},
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
			res, err := cl.Sign(c.Context, c.Args().Get(0), c.String("key"), pw)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "Signed %s with key %s\n", res.Reference, res.KeyID)
			return nil
		},
	}
}
