package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/ui"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the embedded OCI registry (olareg) on this machine",
		Description: "A registry for trying modelreg and for tests: OCI distribution-spec 1.1 with the\n" +
			"referrers API and tag deletion, data kept under --root across restarts.\n" +
			"It has no authentication: keep it on 127.0.0.1.\n\n" +
			"With --ui the dashboard of `modelreg ui` runs beside it (--ui-addr) over every repository it\n" +
			"holds, a model pushed later included (within 10 s).\n\n" +
			"Examples:\n  modelreg serve --addr 127.0.0.1:5000 --root ./registry-data\n" +
			"  modelreg serve --ui --ui-addr 127.0.0.1:8080 --key release.pub --policy policy.yaml",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", Usage: "`HOST:PORT` to listen on (port 0 picks a free port)"},
			&cli.StringFlag{Name: "root", Usage: "`DIR` holding the registry data (default: the user's data folder, modelreg/registry)"},
			&cli.StringFlag{Name: "automations", Usage: "run the watcher of modelreg watch in this process with the automations `FILE`, woken by every manifest the registry accepts"},
			&cli.StringFlag{Name: "state", Usage: "`DIR` of the watch state (with --automations; default as for watch)"},
			&cli.BoolFlag{Name: "ui", Usage: "serve the dashboard of modelreg ui beside the registry, over every repository it holds"},
			&cli.StringFlag{Name: "ui-addr", Value: "127.0.0.1:8080", Usage: "`HOST:PORT` of the dashboard (with --ui; port 0 picks a free port, printed on stderr)"},
			&cli.StringSliceFlag{Name: "key", Usage: "public key `FILE` the dashboard trusts for signatures, evaluations, approvals and records (with --ui; repeatable)"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` whose promoter keys verify promotion records on the dashboard (with --ui)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			root := c.String("root")
			if root == "" {
				root = defaultRegistryRoot()
			}
			reg, err := oci.NewEmbeddedRegistry(c.String("addr"), root)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "modelreg: registry listening on %s, data in %s\n", reg.Addr, root)
			g, ctx := errgroup.WithContext(c.Context)
			if c.String("automations") != "" {
				w, err := newWatcher(c, "text")
				if err != nil {
					reg.Close()
					return err
				}
				reg.Wrap(w.ServeHook)
				g.Go(func() error { return w.Run(ctx) })
			}
			if c.Bool("ui") {
				cl, err := clientWith(c, modelreg.Options{ReadCache: ui.DefaultReadCache})
				if err != nil {
					reg.Close()
					return err
				}
				srv, err := ui.New(cl, ui.Options{ListRepositories: reg.Repositories, Keys: c.StringSlice("key"), Policy: c.String("policy")})
				if err != nil {
					reg.Close()
					return err
				}
				g.Go(func() error {
					err := serveDashboard(ctx, c.App.ErrWriter, srv, c.String("ui-addr"))
					if err != nil {
						reg.Close() // the registry alone is not what was asked for
					}
					return err
				})
			}
			g.Go(func() error { return reg.Serve(ctx) })
			return g.Wait()
		},
	}
}

// defaultRegistryRoot is $XDG_DATA_HOME/modelreg/registry or
// ~/.local/share/modelreg/registry.
func defaultRegistryRoot() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "modelreg", "registry")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "modelreg-registry"
	}
	return filepath.Join(home, ".local", "share", "modelreg", "registry")
}
