package oci

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/modelreg/modelreg/mediatypes"
)

// Which failures another try can heal. A broken connection, a timeout, a
// stall, 408, 429 and 5xx come and go with the network and the registry's
// load; a certificate nobody trusts, a plain-HTTP registry asked for TLS,
// a host name that does not resolve, missing or refused credentials and
// other 4xx answers stay as they are however often they are asked (oras
// fails on them at once, and so does modelreg, with what to do).

// permanent reports whether err is a failure that no retry can heal, and
// the advice for the user that goes with it ("" if none).
func permanent(err error) (bool, string) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		dns       *net.DNSError
		resp      *errcode.ErrorResponse
	)
	switch {
	case errors.As(err, &unknownCA):
		return true, "the registry's certificate is signed by an authority this machine does not trust: add that CA to the system trust store (or point SSL_CERT_FILE at a PEM file holding it), or pass --plain-http if the registry speaks plain HTTP"
	case errors.As(err, &hostname):
		return true, "the registry's certificate is not issued for this host name: use the name in the certificate"
	case errors.As(err, &invalid):
		return true, "the registry's certificate is not valid (expired, or not for serving TLS): renew it on the registry"
	case errors.As(err, &verify):
		return true, "the registry's certificate could not be verified: check its chain, or pass --plain-http if the registry speaks plain HTTP"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return true, "the registry speaks plain HTTP: pass --plain-http"
	case errors.As(err, &alert):
		return true, "the TLS handshake was refused: check the registry's TLS set-up, or pass --plain-http if it speaks plain HTTP"
	case errors.As(err, &dns) && dns.IsNotFound:
		return true, "the registry host name does not resolve: check its spelling"
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return true, authAdvice(http.StatusUnauthorized)
	case strings.Contains(err.Error(), "missing username or password"):
		return true, authAdvice(http.StatusUnauthorized)
	case errors.As(err, &resp):
		// The token service (or a registry answer oras-go parsed).
		if healingStatus(resp.StatusCode) {
			return false, ""
		}
		return true, authAdvice(resp.StatusCode)
	}
	var re *registryError
	if errors.As(err, &re) && !healingStatus(re.StatusCode) {
		return true, authAdvice(re.StatusCode)
	}
	return false, ""
}

// healingStatus reports whether an answer with HTTP status code may be
// different on another try (408, 429, 5xx but 501 and 505).
func healingStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500
}

// authAdvice is what to do about a 401, 403 or 413 ("" for other codes).
func authAdvice(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "log in to the registry (docker login HOST, or oras login HOST) or check the credentials for it in the docker config"
	case http.StatusForbidden:
		return "the credentials are valid but not allowed to do this: ask for push or pull rights on the repository, or log in as another user"
	case http.StatusRequestEntityTooLarge:
		return "the registry or a proxy in front of it refuses request bodies this large: push with a smaller --chunk-size (or MODELREG_CHUNK_SIZE), e.g. 64MiB"
	}
	return ""
}

// adviceError is a permanent failure with what the user can do about it.
type adviceError struct {
	err    error
	advice string
}

func (e *adviceError) Error() string { return fmt.Sprintf("%v — %s", e.err, e.advice) }
func (e *adviceError) Unwrap() error { return e.err }

// withAdvice adds to a permanent failure what the user can do about it,
// once.
func withAdvice(err error) error {
	var ae *adviceError
	if errors.As(err, &ae) {
		return err
	}
	if ok, advice := permanent(err); ok && advice != "" {
		return &adviceError{err: err, advice: advice}
	}
	return err
}

// minChunkSize is the smallest PATCH body a 413 makes the upload try
// (1 MiB): below it the limit is not a size a model can be sent in.
const minChunkSize = 1 << 20

// chunkSize is the PATCH body size: TransferOptions.ChunkSize, or less once
// the registry refused a larger body.
func (t *transferClient) chunkSize() int64 {
	c := t.opts.chunkSize()
	if m := t.maxBody.Load(); m > 0 && m < c {
		return m
	}
	return c
}

// shrinkChunk notes that a body of n bytes was refused as too large and
// returns the chunk size to try next (half, at least minChunkSize), for
// this file and the ones after it; false when n was already that small.
func (t *transferClient) shrinkChunk(n int64) (int64, bool) {
	if n <= minChunkSize {
		return 0, false
	}
	next := max(n/2, minChunkSize)
	for {
		cur := t.maxBody.Load()
		if cur > 0 && cur <= next {
			return cur, true
		}
		if t.maxBody.CompareAndSwap(cur, next) {
			return next, true
		}
	}
}

// isTooLarge reports whether err is a 413 answer.
func isTooLarge(err error) bool {
	var re *registryError
	return err != nil && errors.As(err, &re) && re.StatusCode == http.StatusRequestEntityTooLarge
}

// ExplainManifestRefusal adds to err, the failure of a manifest PUT, what
// would help when the registry refused the manifest for its media types
// (the ModelPack config type mediatypes.ModelConfig, the artifactType, the
// layer types): GitLab checks them against a fixed list and answers 400
// MANIFEST_INVALID "unknown media type"; Quay answers MANIFEST_INVALID or
// 415 unless its config allows the type. Other errors come back as they
// are.
func ExplainManifestRefusal(err error) error {
	var resp *errcode.ErrorResponse
	if err == nil || !errors.As(err, &resp) {
		return err
	}
	refused := resp.StatusCode == http.StatusUnsupportedMediaType
	for _, e := range resp.Errors {
		if e.Code == "MANIFEST_INVALID" || e.Code == "UNSUPPORTED" || strings.Contains(strings.ToLower(e.Message+fmt.Sprint(e.Detail)), "media type") {
			refused = true
		}
	}
	if !refused || resp.StatusCode >= 500 {
		return err
	}
	return &adviceError{err: err, advice: fmt.Sprintf("the registry refuses this manifest, most likely for its media types (config %s, artifactType %s): "+
		"on Quay, set FEATURE_GENERAL_OCI_SUPPORT: true and list %s with the layer types under ALLOWED_OCI_ARTIFACT_TYPES in config.yaml; "+
		"GitLab's registry accepts only the media types on its own list, so use a registry that takes OCI artifacts (distribution, Harbor, Zot, ECR, GHCR)",
		mediatypes.ModelConfig, mediatypes.ArtifactTypeModel, mediatypes.ModelConfig)}
}
