package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/content"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
)

// Error codes of the JSON error document. They are part of the CLI's
// interface (README "Errors and exit codes"): add codes, never rename one.
const (
	codeUsage        = "usage"         // exit 2: wrong arguments or flags
	codeDenied       = "denied"        // exit 3: verification or policy refused
	codeNotFound     = "not_found"     // repository, tag, manifest or blob missing
	codeUnauthorized = "unauthorized"  // the registry refused the credentials (HTTP 401 or 403)
	codeInvalidInput = "invalid_input" // a reference, file, folder or flag value is unusable
	codeIntegrity    = "integrity"     // content does not match its digest or size
	codeUnavailable  = "unavailable"   // the registry could not be reached, or answered 429 or 5xx
	codeUnsupported  = "unsupported"   // the registry lacks a feature (e.g. tag deletion)
	codeUnknown      = "unknown"       // anything else; the message says what
)

// errorDocument is what a failed command prints on stdout with
// --output json: one JSON document whose "error" member is always present
// on failure (and never on success), beside the fields of the command's
// partial result when it has one (a refused promote, pull or policy check
// says what was checked).
//
//	{"error": {"code": "denied", "exitCode": 3, "message": "…",
//	           "rules": [{"rule": "signatures", "passed": false, "reason": "…"}]}}
type errorDocument struct {
	// Code is one of the code* constants.
	Code string `json:"code"`
	// ExitCode is the process's exit code: 1, 2 or 3.
	ExitCode int `json:"exitCode"`
	// Message is the text printed on stderr, without the "modelreg: "
	// prefix.
	Message string `json:"message"`
	// Rules are the failing rules of a denial (code "denied"), each with
	// its reason; absent for other codes. Never empty for a denial.
	Rules []modelreg.RuleResult `json:"rules,omitempty"`
}

// jsonFailure is a command's error in --output json mode, with what the
// command has to say about it: its partial result and, for a denial, the
// failing rules.
type jsonFailure struct {
	err error
	// result is encoded as a JSON object whose members join "error" at the
	// top level; nil for none.
	result any
	// rules are the failing rules of a denial.
	rules []modelreg.RuleResult
}

func (f jsonFailure) Error() string { return f.err.Error() }
func (f jsonFailure) Unwrap() error { return f.err }

// classify maps an error to its code and exit code, from modelreg's errdef
// sentinels and the registry errors oras-go wraps (errcode.ErrorResponse
// with the HTTP status, its own errdef and content sentinels, net and TLS
// errors). Order matters: our sentinels first, since they carry intent
// (a 404 inside a denial is still a denial).
func classify(err error) (code string, exit int) {
	var ue usageError
	var de deniedReport
	status, hasStatus := oci.HTTPStatus(err)
	var netErr net.Error
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	switch {
	case errors.As(err, &ue):
		return codeUsage, exitUsage
	case errors.As(err, &de), errors.Is(err, errdef.ErrDenied):
		return codeDenied, exitDenied
	case errors.Is(err, errdef.ErrIntegrity), errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData):
		return codeIntegrity, exitError
	case errors.Is(err, errdef.ErrInvalidInput):
		return codeInvalidInput, exitError
	case errors.Is(err, errdef.ErrNotFound), errors.Is(err, orasErrdef.ErrNotFound):
		return codeNotFound, exitError
	case errors.Is(err, errdef.ErrUnsupported), errors.Is(err, orasErrdef.ErrUnsupported):
		return codeUnsupported, exitError
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		// The registry asked for a password the docker config does not hold.
		return codeUnauthorized, exitError
	case hasStatus:
		switch s := status; {
		case s == http.StatusUnauthorized, s == http.StatusForbidden:
			return codeUnauthorized, exitError
		case s == http.StatusNotFound:
			return codeNotFound, exitError
		case s == http.StatusTooManyRequests, s >= 500:
			return codeUnavailable, exitError
		}
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr):
		return codeUnavailable, exitError
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF):
		return codeUnavailable, exitError
	}
	return codeUnknown, exitError
}

// wantsJSON reports whether the command line asks for --output json. It
// reads the arguments rather than the parsed flags, so that errors found
// before a command's flags are parsed (an unknown flag, a missing
// argument) get the JSON document too.
func wantsJSON(args []string) bool {
	for i, a := range args {
		if a == "--" {
			break
		}
		switch {
		case a == "-o" || a == "--output" || a == "-output":
			if i+1 < len(args) && args[i+1] == "json" {
				return true
			}
		case a == "-o=json" || a == "--output=json" || a == "-output=json":
			return true
		}
	}
	return false
}

// printError writes the JSON error document of err to w.
func printError(w io.Writer, err error, code string, exit int) error {
	body := errorDocument{Code: code, ExitCode: exit, Message: err.Error()}
	top := map[string]json.RawMessage{}
	var f jsonFailure
	if errors.As(err, &f) {
		if f.result != nil {
			raw, merr := json.Marshal(f.result)
			if merr != nil {
				return merr
			}
			// A result that is not an object (never the case today) is
			// left out rather than breaking the document.
			_ = json.Unmarshal(raw, &top)
		}
		if code == codeDenied {
			body.Rules = f.rules
		}
	}
	if code == codeDenied && len(body.Rules) == 0 {
		// A denial without a decision (e.g. no valid signature): the
		// message is the one reason there is.
		body.Rules = []modelreg.RuleResult{{Rule: "verification", Reason: strings.TrimPrefix(body.Message, "denied: ")}}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	top["error"] = raw
	return printJSON(w, top)
}

// signatureRules is the one failing rule of a denial by --key: no key had a
// valid signature for the digest.
func signatureRules(reason string) []modelreg.RuleResult {
	return []modelreg.RuleResult{{Rule: "signatures", Passed: false, Reason: reason}}
}
