package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg/internal/version"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and Go version of this binary",
		Description: "The same as `modelreg --version`, with -o json for scripts.\n\n" +
			"Example:\n  modelreg version -o json",
		Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("version takes no arguments; got %q", c.Args().First())}
			}
			asJSON, err := jsonOutput(c)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, version.Get())
			}
			printVersion(c.App.Writer)
			return nil
		},
	}
}

// printVersion writes the human version report of `version` and --version.
func printVersion(w io.Writer) {
	v := version.Get()
	commit := v.Commit
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(w, "modelreg %s\n  commit: %s\n  go:     %s\n  platform: %s\n", v.Version, commit, v.GoVersion, v.Platform)
}
