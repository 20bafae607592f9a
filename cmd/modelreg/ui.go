package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		Description: "Pages: / (models, with a search box: /?q=WORDS), /model (versions, a metric chart: &metric=),\n" +
			"/version (model card, files, lineage, signatures, approvals, records), /history, /compare;\n" +
			"the same data as JSON under /api/. No page needs JavaScript.\n" +
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
			return serveDashboard(c.Context, c.App.ErrWriter, srv, c.String("addr"))
		},
	}
}

// serveDashboard listens on addr, prints "modelreg: dashboard at
// http://ADDR/" on stderr (tests and scripts read the port from it) and
// serves srv until ctx ends.
func serveDashboard(ctx context.Context, stderr io.Writer, srv http.Handler, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dashboard address %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "modelreg: dashboard at http://%s/\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
