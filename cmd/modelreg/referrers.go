package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/modelreg/modelreg"
)

// printReferrers prints one line per signature or attestation: kind,
// format, key ID, time and whether it verified.
func printReferrers(w io.Writer, refs []modelreg.TrustReferrer) error {
	if len(refs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "Signatures and attestations:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tFORMAT\tKEY ID\tCREATED\tVERIFIED")
	for _, r := range refs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%v\n", r.Kind, r.Format, orDash(r.KeyID), orDash(r.Created), r.Verified)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
