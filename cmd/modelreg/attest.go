package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

func attestCommand() *cli.Command {
	return &cli.Command{
		Name:      "attest",
		Usage:     "attach a signed in-toto attestation (e.g. evaluation results) to a model version",
		ArgsUsage: "REF",
		Description: "Stored as cosign v3 stores attestations (a Sigstore bundle referrer; --legacy-tags: tag sha256-<hex>.att), so `cosign verify-attestation` accepts it.\n" +
			"Give any predicate with --predicate-type and --predicate, or build modelreg's evaluation\n" +
			"predicate (" + mediatypes.PredicateEvaluation + ") with --metric.\n\n" +
			"Examples:\n  modelreg attest localhost:5000/team/sentiment:v3 --key eval.key --metric accuracy=0.93 --metric f1=0.91 \\\n" +
			"    --eval-dataset localhost:5000/data/reviews-test:v1 --evaluator ci-eval\n" +
			"  modelreg attest localhost:5000/team/sentiment:v3 --key k.key --predicate-type https://slsa.dev/provenance/v1 --predicate prov.json",
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` (password from COSIGN_PASSWORD)"},
			&cli.StringFlag{Name: "predicate-type", Usage: "predicate type `URI` (default with --metric: " + mediatypes.PredicateEvaluation + ")"},
			&cli.StringFlag{Name: "predicate", Usage: "predicate JSON `FILE` (a JSON object)"},
			&cli.StringSliceFlag{Name: "metric", Usage: "evaluation metric `NAME=NUMBER` (repeatable)"},
			&cli.StringFlag{Name: "eval-dataset", Usage: "evaluation dataset `REF`, resolved to its digest"},
			&cli.StringFlag{Name: "evaluator", Usage: "who or what ran the evaluation"},
		},
		Action: func(c *cli.Context) error {
			cl, asJSON, err := prepare(c, "REF")
			if err != nil {
				return err
			}
			pt, file := c.String("predicate-type"), c.String("predicate")
			var pred []byte
			switch {
			case file != "" && len(c.StringSlice("metric")) > 0:
				return usageError{fmt.Errorf("give either --predicate or --metric, not both")}
			case file != "":
				if pt == "" {
					return usageError{fmt.Errorf("--predicate needs --predicate-type")}
				}
				if pred, err = os.ReadFile(file); err != nil {
					return fmt.Errorf("%w: --predicate: %v", errdef.ErrInvalidInput, err)
				}
			default:
				metrics := map[string]float64{}
				for _, kv := range c.StringSlice("metric") {
					k, v, ok := strings.Cut(kv, "=")
					f, err := strconv.ParseFloat(v, 64)
					if !ok || k == "" || err != nil {
						return usageError{fmt.Errorf("--metric %q: want NAME=NUMBER, e.g. accuracy=0.93", kv)}
					}
					metrics[k] = f
				}
				if len(metrics) == 0 {
					return usageError{fmt.Errorf("give --predicate-type and --predicate FILE, or --metric NAME=NUMBER")}
				}
				if pt == "" {
					pt = mediatypes.PredicateEvaluation
				}
				if pred, err = cl.NewEvaluation(c.Context, metrics, c.String("eval-dataset"), c.String("evaluator")); err != nil {
					return err
				}
			}
			pw, err := password()
			if err != nil {
				return err
			}
			res, err := cl.Attest(c.Context, c.Args().Get(0), c.String("key"), pw, pt, pred)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "Attested %s\n  predicate type: %s\n  key:            %s\n", res.Reference, res.PredicateType, res.KeyID)
			return nil
		},
	}
}
