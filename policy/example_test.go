package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/modelreg/modelreg/policy"
)

// Load a policy, then judge the evidence gathered for a model version
// before promoting it to production.
func Example() {
	dir, err := os.MkdirTemp("", "policy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A release key and an evaluation key, as `modelreg keygen` writes them.
	ids := map[string]string{}
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o755); err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"release", "eval"} {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			log.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			log.Fatal(err)
		}
		sum := sha256.Sum256(der)
		ids[name] = "sha256:" + hex.EncodeToString(sum[:])
		pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, "keys", name+".pub"), pub, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	err = os.WriteFile(policyFile, []byte(`apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    files: ["README.md", "*.safetensors"]
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
        condition: "predicate.metrics.accuracy >= 0.9"
    condition: "has(annotations['org.opencontainers.image.revision'])"
`), 0o644)
	if err != nil {
		log.Fatal(err)
	}

	p, err := policy.Load(policyFile)
	if err != nil {
		log.Fatal(err)
	}
	// The caller verifies signatures and attestations against p.Keys()
	// and hands over only what verified.
	ev := policy.Evidence{
		Repository:  "registry.example.com/team/sentiment",
		Digest:      "sha256:4d3c0ffee0000000000000000000000000000000000000000000000000000000",
		Annotations: map[string]string{"org.opencontainers.image.revision": "0123abc"},
		Files:       []policy.File{{Path: "model.safetensors", Size: 4096}},
		Attestations: []policy.Attestation{{
			KeyID:         ids["eval"],
			PredicateType: "https://modelreg.dev/evaluation/v1",
			Predicate:     map[string]any{"metrics": map[string]any{"accuracy": 0.81}},
		}},
	}
	d, err := p.Evaluate("production", ev)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range d.Rules {
		fmt.Printf("%-5v %s: %s\n", r.Passed, r.Rule, r.Reason)
	}
	fmt.Println(d.Error())
	// Output:
	// false signatures: 0 of 1 required signers verified (no valid signature by keys/release.pub)
	// false files: no file matches "README.md"
	// false attestations[0] (https://modelreg.dev/evaluation/v1): predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.81)
	// true  condition: has(annotations['org.opencontainers.image.revision']) is true
	// promotion to "production" refused: signatures: 0 of 1 required signers verified (no valid signature by keys/release.pub); files: no file matches "README.md"; attestation https://modelreg.dev/evaluation/v1: predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.81)
}
