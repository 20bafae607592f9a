package modelreg

import (
	"context"
	"encoding/json"

	"github.com/modelreg/modelreg/mediatypes"
)

// Approval is one verified approval attestation of a version (predicate
// type mediatypes.PredicateApproval, written by Approve).
type Approval struct {
	ApprovalPredicate
	// KeyID is "sha256:<hex>" of the trusted key that signed it: the key
	// proves who approved, Approver only names them.
	KeyID string `json:"keyId"`
}

// Approvals returns the approvals of the version refStr names that one of
// opts.Keys verifies and whose predicate names this digest in this
// repository (an approval copied from another repository does not count,
// as in a policy's approvals rule), in the order
// signing.VerifyAttestations finds them. With no keys the answer is
// empty. Errors are for bad references, key files and registry failures.
func (c *Client) Approvals(ctx context.Context, refStr string, opts InspectOptions) ([]Approval, error) {
	out := []Approval{}
	pinned, atts, err := c.trustedAttestations(ctx, refStr, opts, mediatypes.PredicateApproval, "approvals")
	for _, a := range atts {
		var ap Approval
		if err := json.Unmarshal(a.Predicate, &ap.ApprovalPredicate); err != nil {
			continue
		}
		if ap.Digest != pinned.Digest.String() || !sameRepository(ap.Repository, pinned) {
			continue
		}
		ap.KeyID = a.KeyID
		out = append(out, ap)
	}
	return out, err
}
