// Command mkmodel writes a small Hugging Face style model folder for the
// demo and benchmarks: config.json, a real safetensors weights file (a tiny
// two-layer MLP with random float32 weights, or shards of a given size),
// tokenizer files and a README.md model card.
//
//	go run ./scripts/mkmodel DIR                 # demo model, ~100 KiB
//	go run ./scripts/mkmodel -shards 2 -shard-size 2GiB DIR
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/modelreg/modelreg/internal/size"
	"io"
	"os"
	"path/filepath"
)

func main() {
	shards := flag.Int("shards", 1, "number of safetensors shards")
	shardSize := flag.String("shard-size", "", "approximate size of each shard, e.g. 2GiB (default: a tiny MLP)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkmodel [-shards N] [-shard-size SIZE] DIR")
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *shards, *shardSize); err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}

func write(dir string, shards int, shardSize string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"config.json": `{
  "architectures": ["MLPForSequenceClassification"],
  "model_type": "mlp",
  "hidden_size": 64,
  "num_labels": 2,
  "torch_dtype": "float32",
  "transformers_version": "4.46.0"
}
`,
		"tokenizer_config.json": `{"model_max_length": 128, "tokenizer_class": "PreTrainedTokenizerFast"}` + "\n",
		"README.md": `---
license: apache-2.0
library_name: transformers
pipeline_tag: text-classification
---
# demo-sentiment

A tiny two-layer MLP sentiment classifier made by modelreg's demo. Its weights
are random: it exists to show packaging, signing, promotion and deployment.
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if shardSize == "" {
		return writeSafetensors(filepath.Join(dir, "model.safetensors"), []tensor{
			{"layer1.weight", []int64{64, 256}}, {"layer1.bias", []int64{64}},
			{"layer2.weight", []int64{2, 64}}, {"layer2.bias", []int64{2}},
		})
	}
	bytes, err := size.Parse(shardSize)
	if err != nil {
		return err
	}
	for i := 1; i <= shards; i++ {
		rows := bytes / 4 / 4096
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i, shards)
		if err := writeSafetensors(filepath.Join(dir, name), []tensor{{fmt.Sprintf("layers.%d.weight", i), []int64{rows, 4096}}}); err != nil {
			return err
		}
	}
	return nil
}

type tensor struct {
	name  string
	shape []int64
}

// writeSafetensors writes float32 tensors of random bytes in the
// safetensors format: 8-byte little-endian header length, JSON header, data.
func writeSafetensors(path string, ts []tensor) error {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, t := range ts {
		n := int64(4)
		for _, d := range t.shape {
			n *= d
		}
		header[t.name] = map[string]any{"dtype": "F32", "shape": t.shape, "data_offsets": []int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := binary.Write(w, binary.LittleEndian, uint64(len(hb))); err != nil {
		return err
	}
	if _, err := w.Write(hb); err != nil {
		return err
	}
	if _, err := io.CopyN(w, rand.Reader, off); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
