package modelreg_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/internal/faultproxy"
)

// proxiedOlareg starts olareg in memory behind faultproxy; both stop
// when the test ends.
func proxiedOlareg(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: reg}
	go srv.Serve(ln)
	p, err := faultproxy.New("http://"+ln.Addr().String(), faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); srv.Close(); reg.Close() })
	return p
}

func testClient(t *testing.T) *modelreg.Client {
	t.Helper()
	c, err := modelreg.New(modelreg.Options{NoDigestCache: true, DockerConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PushOptions.ChunkSize (--chunk-size, MODELREG_CHUNK_SIZE) bounds every
// PATCH body.
func TestPushChunkSize(t *testing.T) {
	p := proxiedOlareg(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), make([]byte, 5<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := testClient(t).Push(context.Background(), p.Addr()+"/m/chunks", dir, modelreg.PushOptions{ChunkSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range p.Requests() {
		if r.Method == http.MethodPatch {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d PATCH requests for 5 MiB + 1 B in chunks of 1 MiB, want 6", n)
	}
}

// A registry that refuses the ModelPack media types (GitLab's answer,
// replayed by faultproxy in front of olareg) fails the push with an error
// that says so and names the settings that would help.
func TestPushManifestMediaTypeRefused(t *testing.T) {
	p := proxiedOlareg(t)
	p.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusBadRequest, Method: "PUT", PathContains: "/manifests/",
		Body: `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unknown media type: application/vnd.cncf.model.config.v1+json"}]}`})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"bert"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := testClient(t).Push(context.Background(), p.Addr()+"/m/gitlab", dir, modelreg.PushOptions{})
	if err == nil {
		t.Fatal("a push to a registry refusing the manifest succeeded")
	}
	for _, want := range []string{"manifest invalid", "application/vnd.cncf.model.config.v1+json", "ALLOWED_OCI_ARTIFACT_TYPES", "GitLab"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A safetensors file whose header breaks the format is pushed as it is,
// and the result warns, naming it.
func TestPushWarnsOnBadSafetensors(t *testing.T) {
	p := proxiedOlareg(t)
	dir := t.TempDir()
	header := `{"w":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}}`
	f := append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), append(f, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := testClient(t).Push(context.Background(), p.Addr()+"/m/badheader", dir, modelreg.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "model.safetensors") {
		t.Errorf("warnings %q, want one naming model.safetensors", res.Warnings)
	}
	if len(res.Files) != 1 {
		t.Errorf("%d files pushed, want 1", len(res.Files))
	}
}
