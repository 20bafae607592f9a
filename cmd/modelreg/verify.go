package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg/errdef"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify that a model version's digest is signed by a key",
		ArgsUsage: "REF",
		Description: "Resolves REF once and checks cosign signatures bound to that digest; a signature made\n" +
			"for another digest never counts. Exit 3 when no key has a valid signature.\n\n" +
			"Example:\n  modelreg verify localhost:5000/team/sentiment:production --key release.pub",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringSliceFlag{Name: "key", Required: true, Usage: "public key `FILE` (repeatable: any one suffices)"},
		},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "REF")
			if err != nil {
				return err
			}
			res, err := cl.Verify(c.Context, c.Args().Get(0), c.StringSlice("key"))
			if err != nil {
				if asJSON && res != nil && errors.Is(err, errdef.ErrDenied) {
					return jsonFailure{err: err,
						result: map[string]any{"reference": res.Reference, "digest": res.Digest, "verified": false, "signers": res.Signers, "referrers": res.Referrers},
						rules:  signatureRules("no valid signature by " + strings.Join(c.StringSlice("key"), ", ") + " for " + res.Digest)}
				}
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, map[string]any{"reference": res.Reference, "digest": res.Digest, "verified": true, "signers": res.Signers, "keyIds": res.KeyIDs, "referrers": res.Referrers})
			}
			fmt.Fprintf(c.App.Writer, "Verified %s\n  signed by: %s\n", res.Reference, strings.Join(res.Signers, ", "))
			return printReferrers(c.App.Writer, res.Referrers)
		},
	}
}
