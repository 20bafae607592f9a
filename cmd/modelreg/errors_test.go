package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"oras.land/oras-go/v2/content"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
)

func TestClassify(t *testing.T) {
	status := func(code int) error {
		return fmt.Errorf("listing tags of x: %w", &errcode.ErrorResponse{Method: "GET", StatusCode: code})
	}
	for _, tc := range []struct {
		name string
		err  error
		code string
		exit int
	}{
		{"usage", usageError{errors.New("push takes 2 arguments")}, codeUsage, exitUsage},
		{"denied", fmt.Errorf("x: %w: no signature", errdef.ErrDenied), codeDenied, exitDenied},
		{"denied report", deniedReport{errors.New("promotion refused")}, codeDenied, exitDenied},
		{"denied in a JSON failure", jsonFailure{err: deniedReport{errors.New("refused")}}, codeDenied, exitDenied},
		{"not found", fmt.Errorf("repo: %w", errdef.ErrNotFound), codeNotFound, exitError},
		{"oras not found", fmt.Errorf("x: %w", orasErrdef.ErrNotFound), codeNotFound, exitError},
		{"404", status(http.StatusNotFound), codeNotFound, exitError},
		{"401", status(http.StatusUnauthorized), codeUnauthorized, exitError},
		{"no credential", fmt.Errorf("list: %w", auth.ErrBasicCredentialNotFound), codeUnauthorized, exitError},
		{"403", status(http.StatusForbidden), codeUnauthorized, exitError},
		{"429", status(http.StatusTooManyRequests), codeUnavailable, exitError},
		{"503", status(http.StatusServiceUnavailable), codeUnavailable, exitError},
		{"400", status(http.StatusBadRequest), codeUnknown, exitError},
		{"invalid input", fmt.Errorf("%w: reference", errdef.ErrInvalidInput), codeInvalidInput, exitError},
		{"integrity", fmt.Errorf("blob: %w", errdef.ErrIntegrity), codeIntegrity, exitError},
		{"oras digest mismatch", fmt.Errorf("blob: %w", content.ErrMismatchedDigest), codeIntegrity, exitError},
		{"unsupported", fmt.Errorf("tag delete: %w", errdef.ErrUnsupported), codeUnsupported, exitError},
		{"connection refused", fmt.Errorf("ping: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), codeUnavailable, exitError},
		{"deadline", fmt.Errorf("ping: %w", context.DeadlineExceeded), codeUnavailable, exitError},
		{"other", errors.New("something else"), codeUnknown, exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, exit := classify(tc.err)
			if code != tc.code || exit != tc.exit {
				t.Errorf("classify(%v) = %s, %d; want %s, %d", tc.err, code, exit, tc.code, tc.exit)
			}
		})
	}
}

func TestWantsJSON(t *testing.T) {
	for args, want := range map[string]bool{
		"modelreg pull -o json R D":            true,
		"modelreg pull --output json R D":      true,
		"modelreg pull --output=json R D":      true,
		"modelreg pull -o=json R D":            true,
		"modelreg pull R D":                    false,
		"modelreg pull --output text R D":      false,
		"modelreg pull --output yaml R D":      false,
		"modelreg pull --include x -- -o json": false, // positional after --
	} {
		if got := wantsJSON(strings.Fields(args)); got != want {
			t.Errorf("wantsJSON(%s) = %v, want %v", args, got, want)
		}
	}
}

// TestPrintErrorDenied: a denial's document keeps the command's partial
// result beside "error", and lists every failing rule.
func TestPrintErrorDenied(t *testing.T) {
	rules := []modelreg.RuleResult{{Rule: "signatures", Reason: "0 of 1"}, {Rule: "promotion record", Reason: "moved by hand"}}
	err := jsonFailure{err: fmt.Errorf("%w: not trusted", errdef.ErrDenied), result: map[string]any{"digest": "sha256:x", "denied": true}, rules: rules}
	var buf bytes.Buffer
	code, exit := classify(err)
	if perr := printError(&buf, err, code, exit); perr != nil {
		t.Fatal(perr)
	}
	var doc struct {
		Digest string        `json:"digest"`
		Denied bool          `json:"denied"`
		Error  errorDocument `json:"error"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if doc.Digest != "sha256:x" || !doc.Denied || doc.Error.Code != codeDenied || doc.Error.ExitCode != exitDenied ||
		doc.Error.Message != "denied: not trusted" || len(doc.Error.Rules) != 2 || doc.Error.Rules[1].Reason != "moved by hand" {
		t.Errorf("document:\n%s", buf.String())
	}
}

// TestPrintErrorPlain: an error without a result is a document with only
// "error", and no rules unless it is a denial.
func TestPrintErrorPlain(t *testing.T) {
	for _, tc := range []struct {
		err       error
		wantRules bool
	}{
		{fmt.Errorf("repository x: %w", errdef.ErrNotFound), false},
		{fmt.Errorf("%w: no valid signature", errdef.ErrDenied), true},
	} {
		var buf bytes.Buffer
		code, exit := classify(tc.err)
		if err := printError(&buf, tc.err, code, exit); err != nil {
			t.Fatal(err)
		}
		var top map[string]map[string]any
		if err := json.Unmarshal(buf.Bytes(), &top); err != nil || len(top) != 1 || top["error"] == nil {
			t.Fatalf("want one member \"error\": %v\n%s", err, buf.String())
		}
		if _, has := top["error"]["rules"]; has != tc.wantRules {
			t.Errorf("%v: rules present %v, want %v\n%s", tc.err, has, tc.wantRules, buf.String())
		}
	}
}

// TestRunUsageErrorJSON: a usage error with -o json prints the document on
// stdout (exit 2) and keeps the text on stderr.
func TestRunUsageErrorJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"modelreg", "versions", "-o", "json"}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, stderr.String())
	}
	var doc struct{ Error errorDocument }
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || doc.Error.Code != codeUsage || doc.Error.ExitCode != exitUsage {
		t.Errorf("stdout %q: %v", stdout.String(), err)
	}
	if !strings.Contains(stderr.String(), "modelreg: ") {
		t.Errorf("stderr lost its text: %q", stderr.String())
	}
}
