package oci

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A kubernetes.io/dockerconfigjson Secret mounted at $DOCKER_CONFIG is a
// folder holding .dockerconfigjson, not config.json; without a home
// folder and DOCKER_CONFIG, registries are reached anonymously.
func TestDockerConfigFromMountedSecret(t *testing.T) {
	dir := t.TempDir()
	// user "deployer", password "s3cret"
	if err := os.WriteFile(filepath.Join(dir, ".dockerconfigjson"), []byte(`{"auths": {"127.0.0.1:5000": {"auth": "ZGVwbG95ZXI6czNjcmV0"}}}`+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	c, err := NewClient(ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := c.Credential(context.Background(), "127.0.0.1:5000")
	if err != nil || cred.Username != "deployer" || cred.Password != "s3cret" {
		t.Fatalf("Credential = %+v, %v; want deployer/s3cret from %s/.dockerconfigjson", cred, err, dir)
	}

	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", "")
	if _, err := NewClient(ClientOptions{}); err != nil {
		t.Fatalf("NewClient with no home folder and no DOCKER_CONFIG: %v; want anonymous access", err)
	}
}
