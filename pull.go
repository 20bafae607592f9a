package modelreg

import (
	"context"
	"fmt"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
)

// PullOptions select files and say what to verify before anything is
// written. The zero value pulls every file without verification.
type PullOptions struct {
	// Include keeps files matching any of these globs (see
	// oci.SelectFiles). Empty keeps all.
	Include []string
	// Keys are public key files: the version must carry a valid cosign
	// signature by at least one of them.
	Keys []string
	// Policy is a promotion policy file: when the reference's tag is an
	// alias the policy names, that alias's rules must pass on the digest.
	Policy string
}

// PullResult says what Pull wrote.
type PullResult struct {
	Reference       string           `json:"reference"`
	Digest          string           `json:"digest"`
	Directory       string           `json:"directory"`
	Files           []oci.PulledFile `json:"files"`
	BytesDownloaded int64            `json:"bytesDownloaded"`
	// Verification is what was checked before the pull, if anything.
	Verification *Verification `json:"verification,omitempty"`
	// Denied is true when verification refused the pull (nothing written).
	Denied bool `json:"denied,omitempty"`
}

// Verification records the checks made at deploy time.
type Verification struct {
	Signers  []string  `json:"signers,omitempty"`
	Decision *Decision `json:"decision,omitempty"`
}

// Pull writes the files of the version refStr names into dir.
//
// A tag is resolved once; everything after works on that digest. With Keys
// or Policy the digest is verified before a byte is written, and a failed
// check returns an error wrapping errdef.ErrDenied with dir untouched.
// Every blob is checked against its digest and size while streaming; paths
// that would leave dir are refused; files are written into a temporary
// folder (beside dir, or inside it when it exists) and renamed into place
// only when all are complete, so a failure leaves dir as it was; files dir
// already holds are not downloaded again.
func (c *Client) Pull(ctx context.Context, refStr, dir string, opts PullOptions) (*PullResult, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: pull needs a target folder", errdef.ErrInvalidInput)
	}
	ref, pinned, repo, err := c.resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	// The tag was resolved at the origin; the manifest and blobs, named
	// by digest and checked against it, may come from mirrors.
	mirrors, err := c.oci.Mirrors(ref)
	if err != nil {
		return nil, err
	}
	mv, mirrors, err := oci.FetchModelMirrored(ctx, mirrors, repo, ref, pinned.Digest, nil)
	if err != nil {
		return nil, err
	}
	pinned.Tag = ref.Tag // the alias the policy judges; the digest is what is pulled
	files, err := oci.SelectFiles(mv, opts.Include)
	if err != nil {
		return nil, err
	}
	res := &PullResult{Reference: ref.String(), Digest: pinned.Digest.String(), Directory: dir}
	if len(opts.Keys) > 0 || opts.Policy != "" {
		v, err := c.verifyForDeploy(ctx, pinned, mv, opts)
		res.Verification = v
		if err != nil {
			return res, err // the result says what was checked; nothing was written
		}
	}
	topts := c.transfer()
	topts.Mirrors = mirrors
	pr, err := oci.PullFiles(ctx, repo, files, dir, oci.PullOptions{
		TransferOptions: topts,
		// A verified pull hashes the files dir already holds rather than
		// trusting the per-user digest cache.
		VerifyExisting: res.Verification != nil,
	})
	if err != nil {
		return nil, fmt.Errorf("pull %s into %s: %w", pinned, dir, err)
	}
	res.Files, res.BytesDownloaded = pr.Files, pr.BytesDownloaded
	return res, nil
}

// verifyForDeploy checks signatures by opts.Keys and the policy's rules for
// the alias named by ref.Tag, on ref.Digest.
func (c *Client) verifyForDeploy(ctx context.Context, ref oci.Reference, mv *oci.ModelVersion, opts PullOptions) (*Verification, error) {
	v := &Verification{}
	if len(opts.Keys) > 0 {
		vr, err := c.verifyDigest(ctx, ref, opts.Keys)
		if vr != nil {
			v.Signers = vr.Signers
		}
		if err != nil {
			return v, err
		}
	}
	if opts.Policy != "" {
		d, err := c.checkProtectedAlias(ctx, ref, mv, opts.Policy)
		v.Decision = d
		if err != nil {
			return v, err
		}
	}
	return v, nil
}
