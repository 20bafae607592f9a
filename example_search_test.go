package modelreg_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/oci"
)

// Search over the repositories of a registry without a catalog (the
// embedded olareg lists its own), then read the hit's model card.
func ExampleClient_Search() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "modelreg-example-")
	defer os.RemoveAll(tmp)
	reg, err := oci.NewEmbeddedRegistry("127.0.0.1:0", filepath.Join(tmp, "registry"))
	if err != nil {
		panic(err)
	}
	go reg.Serve(ctx)
	defer reg.Close()

	c, err := modelreg.New(modelreg.Options{NoDigestCache: true})
	if err != nil {
		panic(err)
	}
	for name, desc := range map[string]string{"team/sentiment": "Mood of product reviews", "team/ner": "Names in news"} {
		dir := filepath.Join(tmp, name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "README.md"), []byte("# "+name+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "model.onnx"), []byte(name), 0o644)
		if _, err := c.Push(ctx, reg.Addr+"/"+name, dir, modelreg.PushOptions{
			Annotations: map[string]string{"org.opencontainers.image.description": desc}}); err != nil {
			panic(err)
		}
	}
	repos, err := reg.Repositories(ctx)
	if err != nil {
		panic(err)
	}
	res, err := c.Search(ctx, "REVIEWS", modelreg.SearchOptions{Repositories: repos})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Source, res.Searched, "models searched")
	for _, h := range res.Hits {
		card, err := c.ModelCard(ctx, h.Repository+":"+h.Version, 0)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %s matched %s; card: %q\n", h.Repository[len(reg.Addr)+1:], h.Version, h.Matches[0].Field, card.Markdown)
	}
	// Output:
	// repositories 2 models searched
	// team/sentiment v1 matched org.opencontainers.image.description; card: "# team/sentiment\n"
}
