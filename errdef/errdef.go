// Package errdef holds the sentinel errors that callers of modelreg branch
// on. Errors are wrapped with %w and context at each level; test them with
// errors.Is.
package errdef

import "errors"

var (
	// ErrDenied means a signature, attestation or policy check failed, or a
	// promotion was refused. The CLI exits with code 3.
	ErrDenied = errors.New("denied")
	// ErrNotFound means a repository, tag, manifest or blob does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidInput means a reference, flag, file or folder given by the
	// user is malformed or unusable. The message says which and what to do.
	ErrInvalidInput = errors.New("invalid input")
	// ErrIntegrity means content from the registry does not match its
	// descriptor (digest or size), or would be written outside the target.
	ErrIntegrity = errors.New("integrity check failed")
)

// ErrUnsupported means the registry lacks a feature the operation needs
// (for example tag deletion on distribution 2.8).
var ErrUnsupported = errors.New("unsupported by the registry")
