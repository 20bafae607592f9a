package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg"
)

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "move an alias to a version when the promotion policy allows it",
		ArgsUsage: "REF",
		Description: "Every rule of the policy's section for ALIAS is checked against the digest REF names.\n" +
			"When all pass the alias moves; otherwise every failing rule is listed, nothing changes,\n" +
			"and the exit code is 3.\n\n" +
			"The move is recorded in a signed promotion record that `history` lists and that `pull --policy`\n" +
			"requires at deploy time.\n\n" +
			"Example:\n  modelreg promote localhost:5000/team/sentiment:v3 --to production --policy policy.yaml --key release.key",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "to", Required: true, Usage: "the `ALIAS` to move"},
			&cli.StringFlag{Name: "policy", Required: true, Usage: "promotion policy `FILE`"},
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` that signs the promotion record (password from COSIGN_PASSWORD)"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "REF"); err != nil {
				return err
			}
			return promoteAction(c, func(cl *modelreg.Client, opts modelreg.PromoteOptions) (*modelreg.PromoteResult, error) {
				return cl.Promote(c.Context, c.Args().Get(0), c.String("to"), opts)
			})
		},
	}
}

// promoteAction runs a promotion (promote or rollback) and prints the
// decision, also when it is a refusal.
func promoteAction(c *cli.Context, do func(*modelreg.Client, modelreg.PromoteOptions) (*modelreg.PromoteResult, error)) error {
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	pw, err := password()
	if err != nil {
		return err
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	res, err := do(cl, modelreg.PromoteOptions{Policy: c.String("policy"), Key: c.String("key"), Password: pw})
	if res != nil {
		switch {
		case asJSON && err != nil:
			// One document: the result with the error beside it.
			return jsonFailure{err: err, result: res, rules: res.Decision.Failures()}
		case asJSON:
			if perr := printJSON(c.App.Writer, res); perr != nil {
				return perr
			}
		default:
			printPromotion(c.App.Writer, res)
		}
	}
	return err
}

func printPromotion(w io.Writer, res *modelreg.PromoteResult) {
	if res.Warning != "" {
		fmt.Fprintf(w, "Warning: %s\n", res.Warning)
	}
	if res.Moved {
		prev := res.Previous
		if prev == "" {
			prev = "unset"
		}
		if res.TagPrevious != nil {
			// Say which "before" is which, so the warning and this line agree.
			tag := *res.TagPrevious
			if tag == "" {
				tag = "nothing (removed by hand)"
			}
			prev += " by the promotion records; the tag pointed at " + tag
		}
		fmt.Fprintf(w, "Promoted %s to %s (was %s)\n", res.Reference, res.Alias, prev)
	} else {
		fmt.Fprintf(w, "Refused to promote %s to %s; nothing changed\n", res.Reference, res.Alias)
	}
	printRules(w, res.Decision)
}

func printRules(w io.Writer, d modelreg.Decision) {
	for _, r := range d.Rules {
		mark := "pass"
		if !r.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, r.Rule, r.Reason)
	}
}
