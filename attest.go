package modelreg

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// EvaluationPredicate is modelreg's evaluation result predicate
// (predicateType https://modelreg.dev/evaluation/v1).
type EvaluationPredicate struct {
	// Metrics are named numbers, e.g. {"accuracy": 0.93, "f1": 0.91}.
	Metrics map[string]float64 `json:"metrics"`
	// Dataset is the evaluation dataset as REPO@DIGEST, if given.
	Dataset string `json:"dataset,omitempty"`
	// Evaluator names who or what ran the evaluation.
	Evaluator string `json:"evaluator,omitempty"`
	// EvaluatedAt is when, RFC 3339 UTC.
	EvaluatedAt string `json:"evaluatedAt"`
}

// ApprovalPredicate is a release owner's approval of one digest
// (predicateType https://modelreg.dev/approval/v1).
type ApprovalPredicate struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Alias limits the approval to one alias; "" approves for any.
	Alias string `json:"alias,omitempty"`
	// Approver names the person; the key proves it.
	Approver   string `json:"approver"`
	Comment    string `json:"comment,omitempty"`
	ApprovedAt string `json:"approvedAt"`
}

// AttestResult says what Attest or Approve attached.
type AttestResult struct {
	Reference     string          `json:"reference"`
	Digest        string          `json:"digest"`
	PredicateType string          `json:"predicateType"`
	KeyID         string          `json:"keyId"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Attest signs an in-toto statement about the digest refStr names, with
// predicate (a JSON object) of predicateType, with the cosign key at
// keyPath, and stores it as cosign v3 attest does (a Sigstore bundle in an
// OCI 1.1 referrer; the sha256-<hex>.att tag with Options.LegacyTags), so
// `cosign verify-attestation` accepts it.
func (c *Client) Attest(ctx context.Context, refStr, keyPath string, password []byte, predicateType string, predicate []byte) (*AttestResult, error) {
	var obj map[string]any
	if err := json.Unmarshal(predicate, &obj); err != nil {
		return nil, fmt.Errorf("%w: the predicate must be a JSON object: %v", errdef.ErrInvalidInput, err)
	}
	key, err := signing.LoadPrivateKey(keyPath, password)
	if err != nil {
		return nil, err
	}
	ref, pinned, _, err := c.resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	if err := signing.Attest(ctx, ref.Name(), pinned.Digest, key, predicateType, predicate, c.signingOptions(ref)); err != nil {
		return nil, fmt.Errorf("attesting %s: %w", pinned, err)
	}
	return &AttestResult{Reference: pinned.String(), Digest: pinned.Digest.String(), PredicateType: predicateType, KeyID: key.ID, Predicate: predicate}, nil
}

// NewEvaluation builds an evaluation predicate; dataset (optional) is
// resolved to REPO@DIGEST.
func (c *Client) NewEvaluation(ctx context.Context, metrics map[string]float64, dataset, evaluator string) ([]byte, error) {
	if len(metrics) == 0 {
		return nil, fmt.Errorf("%w: an evaluation needs at least one --metric NAME=NUMBER", errdef.ErrInvalidInput)
	}
	p := EvaluationPredicate{Metrics: metrics, Evaluator: evaluator, EvaluatedAt: time.Now().UTC().Format(time.RFC3339)}
	if dataset != "" {
		r, err := c.resolveLineage(ctx, "--eval-dataset", dataset)
		if err != nil {
			return nil, err
		}
		p.Dataset = r.String()
	}
	return json.Marshal(p)
}

// ApproveOptions describe an approval.
type ApproveOptions struct {
	// Alias limits the approval to one alias; empty approves for any.
	Alias string
	// Approver names the person (default: who runs the command).
	Approver string
	Comment  string
}

// Approve records a signed approval of the digest refStr names
// (predicate https://modelreg.dev/approval/v1). Policies count approvals
// by distinct keys.
func (c *Client) Approve(ctx context.Context, refStr, keyPath string, password []byte, opts ApproveOptions) (*AttestResult, error) {
	if opts.Alias != "" {
		if err := oci.ValidateAlias(opts.Alias); err != nil {
			return nil, err
		}
	}
	ref, pinned, _, err := c.resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	if opts.Approver == "" {
		opts.Approver = actor()
	}
	p, err := json.Marshal(ApprovalPredicate{
		Repository: ref.Name(), Digest: pinned.Digest.String(), Alias: opts.Alias,
		Approver: opts.Approver, Comment: opts.Comment, ApprovedAt: time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return nil, err
	}
	return c.Attest(ctx, pinned.String(), keyPath, password, mediatypes.PredicateApproval, p)
}
