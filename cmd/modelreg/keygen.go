package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "write a cosign key pair PREFIX.key and PREFIX.pub",
		Description: "The private key is encrypted with COSIGN_PASSWORD, in cosign's format, so cosign can use it too.\n\n" +
			"Example:\n  COSIGN_PASSWORD=... modelreg keygen --prefix release",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "prefix", Value: "cosign", Usage: "file name prefix"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			pw, err := password()
			if err != nil {
				return err
			}
			key, pub, err := modelreg.Keygen(c.String("prefix"), pw)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, map[string]string{"privateKey": key, "publicKey": pub})
			}
			fmt.Fprintf(c.App.Writer, "Wrote private key %s and public key %s\n", key, pub)
			return nil
		},
	}
}
