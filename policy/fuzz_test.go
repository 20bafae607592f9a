package policy

import (
	"errors"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

// FuzzParse feeds policy files to Parse: each is a policy or an
// ErrInvalidInput, never a panic (`make fuzz` runs it for FUZZTIME).
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullPolicy))
	f.Add([]byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    requireAlias: staging\n    condition: \"size(files) > 0\"\n    maxAge: 720h\n"))
	f.Add([]byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases: &a {x: *a}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("\tkind: x\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "policy.yaml", dir)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without an error")
		}
	})
}
