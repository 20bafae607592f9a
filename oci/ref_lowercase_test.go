package oci

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

// TestUppercaseRepository: a repository with uppercase letters is refused
// with a message that names the lowercase rule and the name to use; the
// host and the tag may have any case.
func TestUppercaseRepository(t *testing.T) {
	const d = "@sha256:0000000000000000000000000000000000000000000000000000000000000001"
	for _, tc := range []struct {
		in, suggest string
		repoOnly    bool
	}{
		{"localhost:5000/Team/model", "localhost:5000/team/model", true},
		{"localhost:5000/team/Model:v1", "localhost:5000/team/model", false},
		{"localhost:5000/MODEL" + d, "localhost:5000/model", false},
	} {
		parsers := map[string]func(string) (Reference, error){"ParseReference": ParseReference}
		if tc.repoOnly {
			parsers["ParseRepository"] = ParseRepository
		}
		for name, parse := range parsers {
			_, err := parse(tc.in)
			if !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), "must be lowercase") || !strings.Contains(err.Error(), "use "+tc.suggest) {
				t.Errorf("%s(%q) = %v, want ErrInvalidInput saying names must be lowercase, suggesting %s", name, tc.in, err, tc.suggest)
			}
		}
	}
	for _, ok := range []string{"LocalHost:5000/team/model", "localhost:5000/team/model:V1", "Registry.Example.com/a/b"} {
		if _, err := ParseReference(ok); err != nil {
			t.Errorf("ParseReference(%q): %v", ok, err)
		}
	}
}
