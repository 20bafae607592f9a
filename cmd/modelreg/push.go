package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/internal/size"
	"github.com/modelreg/modelreg/oci"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push a model folder as a new model version",
		ArgsUsage: "REF DIR",
		Description: "Packs every file of DIR as one layer of a CNCF ModelPack v1 artifact and pushes it.\n" +
			"Without a version tag in REF the next free vN is allocated and latest moves to it;\n" +
			"pushing identical files and metadata again reports the existing version.\n" +
			"Every file is pushed, dot-files included, except .git, .cache/huggingface and what\n" +
			".modelregignore (gitignore syntax) excludes; links leaving DIR and files that look like\n" +
			"credentials are refused, each named, before anything is uploaded.\n\n" +
			"Example:\n  modelreg push localhost:5000/team/sentiment ./model --alias candidate \\\n" +
			"    --dataset localhost:5000/data/reviews:v2 --source https://git.example.com/ml/sentiment --revision $(git rev-parse HEAD)",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringSliceFlag{Name: "alias", Usage: "also point this alias at the version (repeatable)"},
			&cli.StringSliceFlag{Name: "dataset", Usage: "dataset `REF` the model was trained on, resolved to its digest (repeatable)"},
			&cli.StringFlag{Name: "parent", Usage: "base model `REF`, resolved to its digest"},
			&cli.StringFlag{Name: "run-id", Usage: "training run ID"},
			&cli.StringFlag{Name: "run-url", Usage: "training run URL"},
			&cli.StringFlag{Name: "source", Usage: "source repository URL (org.opencontainers.image.source)"},
			&cli.StringFlag{Name: "revision", Usage: "source commit (org.opencontainers.image.revision)"},
			&cli.StringSliceFlag{Name: "annotation", Aliases: []string{"a"}, Usage: "manifest annotation `KEY=VALUE` (repeatable)"},
			&cli.IntFlag{Name: "concurrency", Value: oci.DefaultConcurrency, Usage: "files uploaded at once"},
			&cli.BoolFlag{Name: "follow-external-links", Usage: "push the files that symbolic links leaving DIR point at (refused by default)"},
			&cli.BoolFlag{Name: "allow-credentials", Usage: "push files that look like credentials (.env, .netrc, private keys, docker auths; refused by default)"},
			&cli.BoolFlag{Name: "no-links", Usage: "write no lineage link referrers into the dataset and parent repositories (`modelreg lineage backfill` writes them later)"},
			&cli.StringFlag{Name: "key", Usage: "cosign private key `FILE` that signs the lineage links (password from COSIGN_PASSWORD)"},
			&cli.StringFlag{Name: "chunk-size", EnvVars: []string{"MODELREG_CHUNK_SIZE"}, Usage: "upload files in chunks of at most `SIZE` (e.g. 64MiB), for a registry or proxy that limits request bodies (default: the rest of a file in one chunk)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "REF", "DIR"); err != nil {
				return err
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			ann := map[string]string{}
			for _, kv := range c.StringSlice("annotation") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--annotation %q: want KEY=VALUE", kv)}
				}
				ann[k] = v
			}
			var chunk int64
			if s := c.String("chunk-size"); s != "" {
				if chunk, err = size.Parse(s); err != nil {
					return usageError{fmt.Errorf("--chunk-size (or MODELREG_CHUNK_SIZE): %w", err)}
				}
			}
			var linkPassword []byte
			if c.String("key") != "" {
				if linkPassword, err = password(); err != nil {
					return err
				}
			}
			cl, err := client(c)
			if err != nil {
				return err
			}
			ctx, bars := withProgress(c, asJSON, "push")
			res, err := cl.Push(ctx, c.Args().Get(0), c.Args().Get(1), modelreg.PushOptions{
				Aliases:     c.StringSlice("alias"),
				Datasets:    c.StringSlice("dataset"),
				Parent:      c.String("parent"),
				RunID:       c.String("run-id"),
				RunURL:      c.String("run-url"),
				Source:      c.String("source"),
				Revision:    c.String("revision"),
				Annotations: ann,

				FollowExternalLinks: c.Bool("follow-external-links"),
				AllowCredentials:    c.Bool("allow-credentials"),
				ChunkSize:           chunk,
				NoLinks:             c.Bool("no-links"),
				LinkKeyPath:         c.String("key"),
				LinkKeyPassword:     linkPassword,
			})
			if bars != nil {
				bars.Wait()
			}
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			for _, l := range res.Links {
				if l.Status == modelreg.LinkFailed {
					fmt.Fprintf(c.App.ErrWriter, "warning: the lineage link was not written into the repository of %s %s: %s; the version is pushed, and `%s` writes the link later\n",
						l.Relation, l.Subject, l.Error, l.Backfill)
				}
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			w := c.App.Writer
			if res.Created {
				fmt.Fprintf(w, "Pushed %s:%s\n", res.Repository, res.Version)
			} else {
				fmt.Fprintf(w, "Unchanged: %s:%s already holds these files and metadata\n", res.Repository, res.Version)
			}
			fmt.Fprintf(w, "  digest: %s\n  tags:   %s\n", res.Digest, strings.Join(res.Tags, ", "))
			fmt.Fprintf(w, "  files:  %d (%d uploaded, %d already in the registry, %s sent)\n",
				len(res.Files), res.BlobsUploaded, res.BlobsSkipped, size.Format(res.BytesUploaded))
			if res.BlobsDeduplicated > 0 {
				fmt.Fprintf(w, "          %d with the bytes of another file, sent once\n", res.BlobsDeduplicated)
			}
			if len(res.Links) > 0 {
				n := map[string]int{}
				for _, l := range res.Links {
					n[l.Status]++
				}
				fmt.Fprintf(w, "  lineage links: %d written, %d present, %d failed\n", n[modelreg.LinkWritten], n[modelreg.LinkPresent], n[modelreg.LinkFailed])
			}
			fmt.Fprintf(w, "  skipped: %d\n", res.SkippedCount)
			for _, s := range res.Skipped {
				fmt.Fprintf(w, "    %s (%s)\n", s.Path, s.Reason)
			}
			return nil
		},
	}
}

// withProgress returns the command's context, carrying progress bars
// drawn on stderr (named label) when stderr is a terminal and the output
// is not JSON; the bars are nil otherwise. Wait on them before printing.
func withProgress(c *cli.Context, asJSON bool, label string) (context.Context, *oci.TerminalProgress) {
	f, ok := c.App.ErrWriter.(*os.File)
	if asJSON || !ok || !term.IsTerminal(int(f.Fd())) {
		return c.Context, nil
	}
	bars := oci.NewTerminalProgress(f, label)
	return oci.WithProgress(c.Context, bars), bars
}
