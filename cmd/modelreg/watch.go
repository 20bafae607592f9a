package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/modelreg/modelreg/automation"
)

func watchCommand() *cli.Command {
	stateFlag := &cli.StringFlag{Name: "state", Usage: "`DIR` holding the watch state, deliveries.jsonl and dead-letter.jsonl (default: the user's state folder, modelreg/watch)"}
	return &cli.Command{
		Name:  "watch",
		Usage: "deliver webhooks, Slack and Teams messages and commands when versions arrive, aliases move and promotions happen",
		Description: "Polls the sources of --automations FILE (any registry) and, with --listen, takes distribution's\n" +
			"notifications (bearer token from $" + automation.TokenEnv + ") as a cue to read a repository at once.\n" +
			"The first start takes the registries as its baseline and fires nothing; state under --state\n" +
			"makes a restart repeat nothing but a delivery cut by the stop, and miss nothing.\n\n" +
			"Example:\n  modelreg watch --automations automations.yaml --state /var/lib/modelreg-watch --log-format json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "automations", Usage: "automations `FILE` (kind: Automations)"},
			&cli.StringFlag{Name: "listen", Usage: "`HOST:PORT` to take registry notifications on (POST, bearer token)"},
			stateFlag,
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format on stderr: text or json (one JSON object a line)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c); err != nil {
				return err
			}
			if c.String("automations") == "" {
				return usageError{fmt.Errorf("watch needs --automations FILE")}
			}
			w, log, err := newWatcherLog(c, c.String("log-format"))
			if err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(c.Context)
			if addr := c.String("listen"); addr != "" {
				g.Go(func() error {
					return w.ServeNotifications(ctx, addr, os.Getenv(automation.TokenEnv), func(a string) { log.Info("listening for notifications", "addr", a) })
				})
			}
			g.Go(func() error { return w.Run(ctx) })
			return g.Wait()
		},
		Subcommands: []*cli.Command{{
			Name:      "deliveries",
			Usage:     "list recent delivery attempts and their outcome",
			ArgsUsage: " ",
			Flags: []cli.Flag{stateFlag, outputFlag,
				&cli.IntFlag{Name: "limit", Value: 50, Usage: "show the last `N` attempts (0: all)"}},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c); err != nil {
					return err
				}
				asJSON, err := jsonOutput(c)
				if err != nil {
					return err
				}
				ds, err := automation.Deliveries(watchStateDir(c), c.Int("limit"))
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(c.App.Writer, ds)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tAUTOMATION\tTARGET\tEVENT\tID\tATTEMPT\tOUTCOME\tDETAIL")
				for _, d := range ds {
					detail := d.Error
					if detail == "" && d.Status != 0 {
						detail = fmt.Sprint(d.Status)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Time, d.Automation, d.Target, d.Type, d.ID, d.Attempt, d.Outcome, detail)
				}
				return tw.Flush()
			},
		}},
	}
}

// watchStateDir is --state, else $XDG_STATE_HOME/modelreg/watch or
// ~/.local/state/modelreg/watch.
func watchStateDir(c *cli.Context) string {
	if d := c.String("state"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "modelreg", "watch")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "modelreg-watch"
	}
	return filepath.Join(home, ".local", "state", "modelreg", "watch")
}

// newWatcher loads --automations and opens --state: the watcher of watch
// and of serve --automations.
func newWatcher(c *cli.Context, logFormat string) (*automation.Watcher, error) {
	w, _, err := newWatcherLog(c, logFormat)
	return w, err
}

func newWatcherLog(c *cli.Context, logFormat string) (*automation.Watcher, *slog.Logger, error) {
	var h slog.Handler
	switch logFormat {
	case "json":
		h = slog.NewJSONHandler(c.App.ErrWriter, nil)
	case "text":
		h = slog.NewTextHandler(c.App.ErrWriter, nil)
	default:
		return nil, nil, usageError{fmt.Errorf("--log-format %q: want text or json", logFormat)}
	}
	cfg, err := automation.Load(c.String("automations"))
	if err != nil {
		return nil, nil, err
	}
	cl, err := client(c)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(h)
	w, err := automation.New(automation.Options{Config: cfg, Client: cl, StateDir: watchStateDir(c), Logger: log})
	return w, log, err
}
