// Package signing holds keys, cosign signatures and in-toto attestations
// of model versions, in the legacy tag format of cosign v2 (tags
// sha256-<hex>.sig and sha256-<hex>.att next to the signed manifest; see
// cosign's specs/SIGNATURE_SPEC.md). What it writes verifies with the
// cosign v2.6.5 CLI (`cosign verify --key K --insecure-ignore-tlog=true`,
// `cosign verify-attestation --key K --insecure-ignore-tlog=true --type
// URI`), and it verifies what `cosign sign|attest --key K
// --tlog-upload=false` writes.
//
// Everything is offline apart from the registry: no Rekor, Fulcio, CT log,
// TSA or TUF is ever contacted. Verification always binds the signed claim
// to the digest being verified (cosign's claim verifiers), never to a tag.
// Key passwords are passed in by the caller; the package reads no
// environment variables of its own.
package signing
