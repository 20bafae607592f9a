package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/ui"
)

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:      "ui",
		Usage:     "serve a read-only dashboard of models, versions, aliases, lineage and audit history",
		ArgsUsage: "REPO...",
		Description: "Pages: / (models), /model, /version, /history; the same data as JSON under /api/.\n" +
			"Signatures, evaluations and promotion records count only when --key or --policy verifies them;\n" +
			"an alias no verified record explains is shown as hand-moved. Use --addr 127.0.0.1:0 for a free port\n" +
			"(the address is printed on stderr).\n\n" +
			"Example:\n  modelreg ui --addr 127.0.0.1:8080 --policy policy.yaml localhost:5000/team/sentiment",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "`HOST:PORT` to listen on"},
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE` trusted for signatures, evaluations and promotion records (repeatable)"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` whose promoter keys verify promotion records"},
			&cli.DurationFlag{Name: "refresh", Value: ui.DefaultRefresh, Usage: "how long tag lists and signatures are cached (promotion records: until a tag moves); manifests and configs are cached by digest"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usageError{fmt.Errorf("ui takes REPO... (one or more HOST/REPO); got none")}
			}
			cl, err := clientWith(c, modelreg.Options{ReadCache: ui.DefaultReadCache})
			if err != nil {
				return err
			}
			srv, err := ui.New(cl, ui.Options{Repositories: c.Args().Slice(), Keys: c.StringSlice("key"), Policy: c.String("policy"), Refresh: c.Duration("refresh")})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return fmt.Errorf("--addr %s: %w", c.String("addr"), err)
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(c.App.ErrWriter, "modelreg: dashboard at http://%s/\n", ln.Addr())
			go func() {
				<-c.Context.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(ctx)
			}()
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
}
