package modelreg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/oci"
)

// Push a model folder, list the versions, and pull the version back by its
// alias, against the embedded registry.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "modelreg-example-")
	defer os.RemoveAll(tmp)

	reg, err := oci.NewEmbeddedRegistry("127.0.0.1:0", filepath.Join(tmp, "registry"))
	if err != nil {
		panic(err)
	}
	go reg.Serve(ctx)
	defer reg.Close()

	model := filepath.Join(tmp, "model")
	os.MkdirAll(model, 0o755)
	os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"model_type":"mlp"}`), 0o644)
	os.WriteFile(filepath.Join(model, "model.onnx"), []byte("weights"), 0o644)

	c, err := modelreg.New(modelreg.Options{NoDigestCache: true})
	if err != nil {
		panic(err)
	}
	repo := reg.Addr + "/team/classifier"
	pushed, err := c.Push(ctx, repo, model, modelreg.PushOptions{Aliases: []string{"candidate"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("pushed", pushed.Version, "tags", pushed.Tags)

	again, _ := c.Push(ctx, repo, model, modelreg.PushOptions{})
	fmt.Println("same files again: created", again.Created, "version", again.Version)

	list, _ := c.Versions(ctx, repo)
	for _, v := range list.Versions {
		fmt.Println(v.Version, v.Aliases)
	}

	pulled, err := c.Pull(ctx, repo+":candidate", filepath.Join(tmp, "out"), modelreg.PullOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("pulled", len(pulled.Files), "files,", pulled.BytesDownloaded, "bytes")
	// Output:
	// pushed v1 tags [v1 latest candidate]
	// same files again: created false version v1
	// v1 [candidate latest]
	// pulled 2 files, 27 bytes
}
