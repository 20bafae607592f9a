package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/modelreg/modelreg/oci"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the embedded OCI registry (olareg) on this machine",
		Description: "A registry for trying modelreg and for tests: OCI distribution-spec 1.1 with the\n" +
			"referrers API and tag deletion, data kept under --root across restarts.\n" +
			"It has no authentication: keep it on 127.0.0.1.\n\n" +
			"Example:\n  modelreg serve --addr 127.0.0.1:5000 --root ./registry-data",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:5000", Usage: "`HOST:PORT` to listen on (port 0 picks a free port)"},
			&cli.StringFlag{Name: "root", Usage: "`DIR` holding the registry data (default: the user's data folder, modelreg/registry)"},
			&cli.StringFlag{Name: "automations", Usage: "run the watcher of modelreg watch in this process with the automations `FILE`, woken by every manifest the registry accepts"},
			&cli.StringFlag{Name: "state", Usage: "`DIR` of the watch state (with --automations; default as for watch)"},
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
			if c.String("automations") == "" {
				return reg.Serve(c.Context)
			}
			w, err := newWatcher(c, "text")
			if err != nil {
				reg.Close()
				return err
			}
			reg.Wrap(w.ServeHook)
			g, ctx := errgroup.WithContext(c.Context)
			g.Go(func() error { return reg.Serve(ctx) })
			g.Go(func() error { return w.Run(ctx) })
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
