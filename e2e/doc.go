// Package e2e holds the end-to-end tests of modelreg: the built binary
// driven against real registries and real peer tools.
//
// The tests live in *_test.go files. TestMain builds ./cmd/modelreg once,
// starts a registry fleet on 127.0.0.1 (olareg v0.2.2 in-process, CNCF
// distribution v3.1.2 from .tools/bin/registry, Debian docker-registry 2.8.2
// from /usr/bin/docker-registry) and stops it when the tests end. Peer tools
// (oras v1.3.6, cosign v2.6.5) come from .tools/bin, built by `make tools`.
// Model inputs are the real files in ../shared/models (relative to the
// repository root); they are copied into temporary folders, never into the
// repository.
//
// Nothing is skipped: a missing tool, registry or model folder fails the
// tests that need it, with a message that says what to install.
//
// Run with `make test`, or `go test -count=1 ./e2e/` after `make tools`.
package e2e
