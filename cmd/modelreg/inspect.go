package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/internal/size"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a model version: digest, lineage, config, files, signatures and attestations",
		ArgsUsage: "REF",
		Description: "Lists the signatures and attestations of the digest too (bundle referrers and cosign v2 tags);\n" +
			"with --key each says whether that key verified it.\n\n" +
			"Example:\n  modelreg inspect localhost:5000/team/sentiment:production --key release.pub",
		Flags: []cli.Flag{outputFlag,
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE` to verify the signatures and attestations with (repeatable)"}},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "REF")
			if err != nil {
				return err
			}
			in, err := cl.InspectWith(c.Context, c.Args().Get(0), modelreg.InspectOptions{Keys: c.StringSlice("key")})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, in)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "Reference:    %s\nDigest:       %s\nArtifactType: %s\nManifest:     %d bytes\n", in.Reference, in.Digest, in.ArtifactType, in.Size)
			if cfg, ok := in.Config["config"].(map[string]any); ok {
				for _, k := range []string{"format", "architecture", "paramSize", "precision", "quantization"} {
					if v, ok := cfg[k].(string); ok && v != "" {
						fmt.Fprintf(w, "%-13s %s\n", k+":", v)
					}
				}
			}
			if len(in.Annotations) > 0 {
				fmt.Fprintln(w, "Annotations:")
				keys := make([]string, 0, len(in.Annotations))
				for k := range in.Annotations {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "  %s=%s\n", k, in.Annotations[k])
				}
			}
			fmt.Fprintln(w, "Files:")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PATH\tSIZE\tMEDIA TYPE\tDIGEST")
			for _, f := range in.Files {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Path, size.Format(f.Size), f.MediaType, f.Digest)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return printReferrers(w, in.Referrers)
		},
	}
}
