// Command modelreg is a model registry on any OCI registry: push model
// versions with lineage, move aliases under a signed policy gate, and pull
// with verification at deploy time. Run `modelreg --help`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/internal/version"
	"github.com/modelreg/modelreg/oci"
)

// Exit codes (DESIGN.md "Command line").
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitDenied = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func newApp(stdout, stderr io.Writer) *cli.App {
	onUsage := func(c *cli.Context, err error, _ bool) error { return usageError{err} }
	app := &cli.App{
		Name:  "modelreg",
		Usage: "a model registry on any OCI registry",
		Description: "Model versions are OCI artifacts (CNCF ModelPack, one layer per file) with lineage;\n" +
			"aliases such as staging and production are tags; cosign signatures and a\n" +
			"policy gate decide what may be promoted and deployed.\n\n" +
			"References are HOST[:PORT]/REPO[:TAG|@DIGEST]; a bare repository means :latest.\n" +
			"Credentials come from the docker config (modelreg login); loopback registries use plain HTTP.\n" +
			"Exit codes: 0 success, 1 error, 2 usage, 3 denied (verification or policy).",
		Version:                version.Get().Version,
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: false,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "plain-http", Usage: "use plain HTTP for every registry (loopback registries do unless --plain-http=false is given)", EnvVars: []string{"MODELREG_PLAIN_HTTP"}},
			&cli.StringFlag{Name: "ca-file", Usage: "trust the CA certificates of this PEM `FILE` for registries, besides the system roots and certs.d/HOST/*.crt", EnvVars: []string{"MODELREG_CA_FILE"}},
			&cli.BoolFlag{Name: "insecure", Usage: "do not verify registry TLS certificates (warned about on stderr)", EnvVars: []string{"MODELREG_INSECURE"}},
			&cli.StringSliceFlag{Name: "mirror", Usage: "fetch manifests and blobs by digest from this mirror first, `HOST[/PATH]` or ORIGIN=HOST[/PATH] (repeatable, tried in order; also the [[registry.mirror]] entries of registries.conf)", EnvVars: []string{"MODELREG_MIRRORS"}},
			&cli.BoolFlag{Name: "legacy-tags", Usage: "write signatures, attestations and records to cosign v2's .sig/.att tags instead of bundle referrers (like cosign --new-bundle-format=false)", EnvVars: []string{"MODELREG_LEGACY_TAGS"}},
		},
		Commands: []*cli.Command{
			serveCommand(),
			pushCommand(),
			pullCommand(),
			versionsCommand(),
			inspectCommand(),
			aliasCommand(),
			keygenCommand(),
			signCommand(),
			verifyCommand(),
			attestCommand(),
			approveCommand(),
			policyCommand(),
			promoteCommand(),
			rollbackCommand(),
			historyCommand(),
			loginCommand(),
			logoutCommand(),
			versionCommand(),
			watchCommand(),
			uiCommand(),
			diffCommand(),
			searchCommand(),
			lineageCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsage,
	}
	// Shell completion (completion.go) asks the binary for the next words.
	app.EnableBashCompletion = true
	app.Commands = append(app.Commands, completionCommand())
	// A bad flag of any command is a one-line error on stderr (exit 2),
	// not the command's help on stdout.
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = onUsage
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	// --version prints what `modelreg version` does; no -v shorthand,
	// which users of other CLIs read as "verbose".
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit"}
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
	return app
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	unknown := ""
	app.CommandNotFound = func(c *cli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err == nil && unknown != "" {
		err = usageError{fmt.Errorf("unknown command %q", unknown)}
	}
	if err != nil && isUsage(err) {
		err = usageError{err}
	}
	if err == nil {
		return exitOK
	}
	if wantsJSON(args) {
		code, exit := classify(err)
		_ = printError(stdout, err, code, exit) // the text on stderr follows in any case
	}
	var ue usageError
	var de deniedReport
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "modelreg: %v\nRun 'modelreg --help' or 'modelreg COMMAND --help' for usage.\n", ue.err)
		return exitUsage
	case errors.As(err, &de):
		fmt.Fprintf(stderr, "modelreg: %v\n", de.err)
		return exitDenied
	case errors.Is(err, errdef.ErrDenied):
		fmt.Fprintf(stderr, "modelreg: %v\n", err)
		return exitDenied
	default:
		fmt.Fprintf(stderr, "modelreg: %v\n", err)
		return exitError
	}
}

// isUsage recognises urfave/cli's own errors about the command line.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"Required flag", "Required flags", "flag provided but not defined", "invalid value", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// usageError marks wrong arguments or flags (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// deniedReport carries an error already explained on stdout (exit 3).
type deniedReport struct{ err error }

func (d deniedReport) Error() string { return d.err.Error() }

// exactArgs checks the number of positional arguments.
func exactArgs(c *cli.Context, names ...string) error {
	if c.NArg() != len(names) {
		return usageError{fmt.Errorf("%s takes %d argument(s): %s; got %d", c.Command.HelpName, len(names), strings.Join(names, " "), c.NArg())}
	}
	return nil
}

// prepare checks the positional arguments and --output, and builds the
// client: the start of most commands.
func prepare(c *cli.Context, names ...string) (*modelreg.Client, bool, error) {
	if err := exactArgs(c, names...); err != nil {
		return nil, false, err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return nil, false, err
	}
	cl, err := client(c)
	return cl, asJSON, err
}

// outputFlag is the --output flag every command has.
var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "output format: text or json (one JSON document on stdout)"}

// jsonOutput reports whether --output json was asked for, refusing other
// values than text and json.
func jsonOutput(c *cli.Context) (bool, error) {
	switch o := c.String("output"); o {
	case "json":
		return true, nil
	case "text", "":
		return false, nil
	default:
		return false, usageError{fmt.Errorf("--output %q: want text or json", o)}
	}
}

// printJSON writes v as one indented JSON document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// client builds the Go API client from global flags.
func client(c *cli.Context) (*modelreg.Client, error) {
	return clientWith(c, modelreg.Options{})
}

// clientWith is client over opts, for commands that set more of them.
func clientWith(c *cli.Context, opts modelreg.Options) (*modelreg.Client, error) {
	opts.PlainHTTP = c.Bool("plain-http")
	opts.LoopbackTLS = c.IsSet("plain-http") && !c.Bool("plain-http")
	opts.TLS = oci.TLSOptions{CAFile: c.String("ca-file"), Insecure: c.Bool("insecure")}
	opts.Mirror = oci.MirrorOptions{Mirrors: c.StringSlice("mirror")}
	opts.LegacyTags = c.Bool("legacy-tags")
	if c.IsSet("concurrency") {
		opts.Concurrency = c.Int("concurrency")
	}
	return modelreg.New(opts)
}

// password returns COSIGN_PASSWORD, as cosign does. An unset variable is an
// error that says what to do, since modelreg never prompts in CI.
func password() ([]byte, error) {
	p, ok := os.LookupEnv("COSIGN_PASSWORD")
	if !ok {
		return nil, fmt.Errorf("%w: set COSIGN_PASSWORD to the key's password (it may be empty)", errdef.ErrInvalidInput)
	}
	return []byte(p), nil
}

// reorderArgs moves the flags of a command that stand after its positional
// arguments in front of them, so `modelreg push REF DIR --alias x` works as
// with oras, crane and cosign (urfave/cli v2 stops at the first argument).
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == completeFlag {
		return args // urfave/cli completes only when its flag comes last, with no "--"
	}
	out := []string{args[0]}
	i := 1
	global := map[string]bool{}
	globalValue := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			global[n] = true
			globalValue[n] = !isBool
		}
	}
	// Global flags before the command, with their values.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		a := args[i]
		out = append(out, a)
		i++
		if name := strings.TrimLeft(a, "-"); globalValue[name] && i < len(args) {
			out = append(out, args[i])
			i++
		}
	}
	moveAt := len(out) // global flags after the command go here
	cmds := app.Commands
	var cmd *cli.Command
	for i < len(args) {
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(args[i]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd = next
		out = append(out, args[i])
		i++
		cmds = cmd.Subcommands
	}
	if cmd == nil {
		return append(out, args[i:]...)
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && global[name] && !takesValue[name] {
			// A global flag after the command (e.g. push --plain-http):
			// urfave/cli only reads it before, so move it there, with
			// its value (--ca-file FILE).
			moved := []string{a}
			if globalValue[name] && !strings.Contains(a, "=") && i+1 < len(args) {
				moved = append(moved, args[i+1])
				i++
			}
			// In the order given: the order of --mirror flags counts.
			out = append(out[:moveAt], append(moved, out[moveAt:]...)...)
			moveAt += len(moved)
			continue
		}
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
