package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/modelreg/modelreg/errdef"
)

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "check credentials against a registry and store them in the docker config",
		ArgsUsage: "HOST[:PORT]",
		Description: "As `docker login`: the registry must accept the credentials before they are stored, in the\n" +
			"credential helper the docker config names for the host (credHelpers), else its credsStore,\n" +
			"else the config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json). docker, oras,\n" +
			"cosign and modelreg all read them from there. Refused credentials exit 1 after one try.\n\n" +
			"Example:\n  echo \"$TOKEN\" | modelreg login --username ci --password-stdin registry.example.com",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user `NAME` (asked for on a terminal when missing)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password or token from stdin"},
		},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "HOST")
			if err != nil {
				return err
			}
			user, pw, err := loginSecret(c.String("username"), c.Bool("password-stdin"), os.Stdin, c.App.ErrWriter)
			if err != nil {
				return err
			}
			res, err := cl.Login(c.Context, c.Args().Get(0), user, pw)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			where := res.Config
			if res.Helper != "" {
				where = "credential helper docker-credential-" + res.Helper
			}
			fmt.Fprintf(c.App.Writer, "Login Succeeded: %s (credentials in %s)\n", res.Registry, where)
			return nil
		},
	}
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove a registry's credentials from the docker config",
		ArgsUsage: "HOST[:PORT]",
		Description: "As `docker logout`: the credentials go from the credential helper or the config file that\n" +
			"holds them; a registry without stored credentials is no error.\n\n" +
			"Example:\n  modelreg logout registry.example.com",
		Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "HOST")
			if err != nil {
				return err
			}
			res, err := cl.Logout(c.Context, c.Args().Get(0))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "Removed the credentials of %s\n", res.Registry)
			return nil
		},
	}
}

// loginSecret returns the user name and password: the password from stdin
// with --password-stdin (one line, its line end dropped, as docker
// does), else asked for on the terminal without echo. Without a terminal
// and without --password-stdin it is a usage error that says what to do,
// since a CI job must never hang on a prompt.
func loginSecret(user string, fromStdin bool, stdin *os.File, prompt io.Writer) (string, string, error) {
	tty := term.IsTerminal(int(stdin.Fd()))
	if user == "" {
		if !tty || fromStdin {
			return "", "", usageError{fmt.Errorf("login needs --username NAME when the password comes from stdin or stdin is not a terminal")}
		}
		fmt.Fprint(prompt, "Username: ")
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", "", fmt.Errorf("reading the user name: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return "", "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", "", fmt.Errorf("%w: --password-stdin: stdin held no password", errdef.ErrInvalidInput)
		}
		return user, pw, nil
	}
	if !tty {
		return "", "", usageError{fmt.Errorf("login: give the password on stdin with --password-stdin (stdin is not a terminal)")}
	}
	fmt.Fprint(prompt, "Password: ")
	b, err := term.ReadPassword(int(stdin.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", "", fmt.Errorf("reading the password: %w", err)
	}
	return user, string(b), nil
}
