package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/internal/size"
	"github.com/modelreg/modelreg/oci"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull the files of a model version into a folder, verifying first",
		ArgsUsage: "[REF DIR]",
		Description: "Resolves REF once and pulls by digest. With --key or --policy the digest is verified\n" +
			"before a byte is written (exit 3 when it fails). Files land in a temporary folder (beside\n" +
			"DIR, or inside it when it exists) and are renamed into place only when all are complete;\n" +
			"files DIR already holds are not downloaded again.\n\n" +
			"Init-container mode: with no arguments, REF and DIR come from MODELREG_REF and MODELREG_DEST,\n" +
			"and --key, --policy and --include default to MODELREG_KEYS, MODELREG_POLICY and MODELREG_INCLUDE\n" +
			"(comma-separated); flags given on the command line win.\n\n" +
			"Example:\n  modelreg pull registry.example.com/team/sentiment:production /models --key release.pub --policy policy.yaml",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringSliceFlag{Name: "include", EnvVars: []string{"MODELREG_INCLUDE"}, Usage: "only files matching `GLOB` (** spans folders; a pattern without '/' also matches base names; repeatable)"},
			&cli.StringSliceFlag{Name: "key", EnvVars: []string{"MODELREG_KEYS"}, Usage: "public key `FILE`: require a valid signature by one of the keys (repeatable)"},
			&cli.StringFlag{Name: "policy", EnvVars: []string{"MODELREG_POLICY"}, Usage: "policy `FILE`: require the rules of the alias in REF to pass"},
			&cli.IntFlag{Name: "concurrency", Value: oci.DefaultConcurrency, Usage: "files downloaded at once"},
		},
		Action: func(c *cli.Context) error {
			ref, dir, err := pullArgs(c)
			if err != nil {
				return err
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			cl, err := client(c)
			if err != nil {
				return err
			}
			ctx, bars := withProgress(c, asJSON, "pull")
			res, err := cl.Pull(ctx, ref, dir, modelreg.PullOptions{
				Include: nonEmpty(c.StringSlice("include")),
				Keys:    nonEmpty(c.StringSlice("key")),
				Policy:  c.String("policy"),
			})
			if bars != nil {
				bars.Wait()
			}
			if err != nil {
				if asJSON && res != nil && errors.Is(err, errdef.ErrDenied) {
					res.Denied = true
					f := jsonFailure{err: err, result: res}
					if v := res.Verification; v != nil && v.Decision != nil {
						f.rules = v.Decision.Failures()
					} else {
						f.rules = signatureRules("no valid signature by " + strings.Join(c.StringSlice("key"), ", ") + " for " + res.Digest)
					}
					return f
				}
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			w := c.App.Writer
			got := 0
			for _, f := range res.Files {
				if f.Downloaded {
					got++
				}
			}
			if v := res.Verification; v != nil {
				if len(v.Signers) > 0 {
					fmt.Fprintf(w, "Verified signature by %s\n", strings.Join(v.Signers, ", "))
				}
				if v.Decision != nil {
					fmt.Fprintf(w, "Policy allows %q for this digest\n", v.Decision.Alias)
				}
			}
			fmt.Fprintf(w, "Pulled %s@%s into %s\n  files: %d (%d downloaded, %d already there, %s)\n",
				res.Reference, res.Digest, res.Directory, len(res.Files), got, len(res.Files)-got, size.Format(res.BytesDownloaded))
			return nil
		},
	}
}

// pullArgs returns REF and DIR: the two arguments, or with none (an init
// container's command line) MODELREG_REF and MODELREG_DEST.
func pullArgs(c *cli.Context) (ref, dir string, err error) {
	if c.NArg() > 0 {
		if err := exactArgs(c, "REF", "DIR"); err != nil {
			return "", "", err
		}
		return c.Args().Get(0), c.Args().Get(1), nil
	}
	ref, dir = os.Getenv("MODELREG_REF"), os.Getenv("MODELREG_DEST")
	var missing []string
	if ref == "" {
		missing = append(missing, "MODELREG_REF (the model reference, e.g. registry.example.com/team/sentiment:production)")
	}
	if dir == "" {
		missing = append(missing, "MODELREG_DEST (the folder to pull into, e.g. /models)")
	}
	if len(missing) > 0 {
		return "", "", usageError{fmt.Errorf("pull takes REF DIR, or with no arguments the environment variables %s; not set: %s",
			"MODELREG_REF and MODELREG_DEST", strings.Join(missing, ", "))}
	}
	return ref, dir, nil
}

// nonEmpty drops the empty entries a trailing comma in MODELREG_KEYS or
// MODELREG_INCLUDE leaves.
func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
