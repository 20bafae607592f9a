package policy

import (
	"encoding/json"
	"fmt"

	"github.com/modelreg/modelreg/errdef"
)

// Evidence is what is known and verified about one model version, gathered
// by the caller from the registry and judged by [Policy.Evaluate]. Every
// list holds verified facts only: the caller drops signatures,
// attestations, approvals and promotion records that do not verify against
// the policy's [Policy.Keys].
//
// Its JSON form (the tags below) is the document CEL conditions read and
// the one `modelreg policy check --output json` prints for OPA or Conftest
// users. Lists and maps are always present ([] and {}, never null).
type Evidence struct {
	// Repository is the model's repository, e.g. "registry.example.com/team/sentiment".
	Repository string `json:"repository"`
	// Reference is what the user named: a tag, a version or a digest.
	Reference string `json:"reference"`
	// Digest is the manifest digest every fact is bound to, "sha256:<hex>".
	Digest string `json:"digest"`
	// Alias is the alias being promoted to or verified. Evaluate sets it
	// to the alias it judges.
	Alias string `json:"alias"`
	// ArtifactType is the manifest's artifactType.
	ArtifactType string `json:"artifactType"`
	// Annotations are the manifest annotations.
	Annotations map[string]string `json:"annotations"`
	// Config is the ModelPack config blob, decoded from JSON.
	Config map[string]any `json:"config"`
	// Files are the version's files, one per layer.
	Files []File `json:"files"`
	// Signatures are the verified cosign signatures on Digest.
	Signatures []Signature `json:"signatures"`
	// Attestations are the verified in-toto attestations on Digest.
	Attestations []Attestation `json:"attestations"`
	// Approvals are the verified approvals of Digest.
	Approvals []Approval `json:"approvals"`
	// Aliases says which aliases point, or pointed, at Digest.
	Aliases AliasState `json:"aliases"`
}

// File is one file of a model version.
type File struct {
	// Path is the file's path relative to the model folder, with forward
	// slashes (the layer's org.cncf.model.filepath annotation).
	Path string `json:"path"`
	// Digest is the layer digest, "sha256:<hex>".
	Digest string `json:"digest"`
	// MediaType is the layer media type.
	MediaType string `json:"mediaType"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
}

// Signature is a verified signature on the version's digest.
type Signature struct {
	// KeyID is the ID of the key that verified it (see [Key.ID]).
	KeyID string `json:"keyId"`
}

// Attestation is a verified in-toto attestation about the version's digest.
type Attestation struct {
	// KeyID is the ID of the key that verified it (see [Key.ID]).
	KeyID string `json:"keyId"`
	// PredicateType is the statement's predicateType URI.
	PredicateType string `json:"predicateType"`
	// Predicate is the statement's predicate; any value that encodes to
	// JSON, typically a map[string]any decoded from it.
	Predicate any `json:"predicate"`
}

// Approval is a verified approval of the version's digest.
type Approval struct {
	// KeyID is the ID of the key that verified it (see [Key.ID]).
	KeyID string `json:"keyId"`
	// Approver is who approved, as the approval names them (for messages).
	Approver string `json:"approver"`
}

// AliasState says which aliases the version's digest holds.
type AliasState struct {
	// Current lists the aliases whose tag points at the digest now. A
	// tag is only a claim: anyone with push rights can move it.
	Current []string `json:"current"`
	// Held lists the aliases that, per valid promotion records, held the
	// digest now or before.
	Held []string `json:"held"`
}

// MarshalJSON encodes the evidence with every list and map present, so that
// conditions and external tools see [] and {} rather than null.
func (ev Evidence) MarshalJSON() ([]byte, error) {
	type plain Evidence // no MarshalJSON method: no recursion
	n := plain(ev)
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	if n.Config == nil {
		n.Config = map[string]any{}
	}
	if n.Files == nil {
		n.Files = []File{}
	}
	if n.Signatures == nil {
		n.Signatures = []Signature{}
	}
	if n.Attestations == nil {
		n.Attestations = []Attestation{}
	}
	if n.Approvals == nil {
		n.Approvals = []Approval{}
	}
	if n.Aliases.Current == nil {
		n.Aliases.Current = []string{}
	}
	if n.Aliases.Held == nil {
		n.Aliases.Held = []string{}
	}
	return json.Marshal(n)
}

// celVars returns the evidence as CEL variables: its JSON form decoded into
// map[string]any, so fields read exactly as in JSON and numbers are doubles.
func (ev Evidence) celVars() (map[string]any, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: evidence does not encode as JSON: %w", errdef.ErrInvalidInput, err)
	}
	var vars map[string]any
	if err := json.Unmarshal(data, &vars); err != nil {
		return nil, fmt.Errorf("%w: evidence does not decode from JSON: %w", errdef.ErrInvalidInput, err)
	}
	return vars, nil
}
