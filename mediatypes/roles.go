package mediatypes

import (
	"path"
	"strings"
)

// Role is the kind of a file in a model, as ModelPack names it.
type Role string

// File roles, each with its raw layer media type (see [Role.MediaType]).
const (
	RoleWeight       Role = "weight"
	RoleWeightConfig Role = "weight.config"
	RoleDoc          Role = "doc"
	RoleCode         Role = "code"
	RoleDataset      Role = "dataset"
)

// MediaType returns the raw ModelPack layer media type of the role.
func (r Role) MediaType() string {
	switch r {
	case RoleWeight:
		return WeightRaw
	case RoleWeightConfig:
		return WeightConfigRaw
	case RoleDoc:
		return DocRaw
	case RoleCode:
		return CodeRaw
	case RoleDataset:
		return DatasetRaw
	}
	return WeightRaw
}

// RoleOfMediaType returns the role of a ModelPack layer media type of any
// encoding and either naming family (cncf or cnai), and false for others.
func RoleOfMediaType(mt string) (Role, bool) {
	for _, prefix := range []string{"application/vnd.cncf.model.", "application/vnd.cnai.model."} {
		rest, ok := strings.CutPrefix(mt, prefix)
		if !ok {
			continue
		}
		kind, _, ok := strings.Cut(rest, ".v1.")
		if !ok {
			return "", false
		}
		switch r := Role(kind); r {
		case RoleWeight, RoleWeightConfig, RoleDoc, RoleCode, RoleDataset:
			return r, true
		}
	}
	return "", false
}

// Weight file extensions and the ModelPack config "format" they imply.
var weightFormats = map[string]string{
	".safetensors": "safetensors",
	".gguf":        "gguf",
	".onnx":        "onnx",
	".pt":          "pt",
	".pth":         "pt",
	".bin":         "bin",
	".ckpt":        "ckpt",
	".h5":          "h5",
	".keras":       "keras",
	".pb":          "pb",
	".tflite":      "tflite",
	".msgpack":     "msgpack",
	".npz":         "npz",
	".pkl":         "pickle",
	".joblib":      "joblib",
	".mlmodel":     "mlmodel",
	".engine":      "tensorrt",
	".plan":        "tensorrt",
	".nemo":        "nemo",
	".llamafile":   "llamafile",
}

var codeExts = map[string]bool{
	".py": true, ".ipynb": true, ".sh": true, ".js": true, ".ts": true,
	".go": true, ".rs": true, ".c": true, ".cc": true, ".cpp": true, ".h": true,
	".java": true, ".scala": true, ".r": true, ".jl": true, ".lua": true, ".cu": true,
}

var datasetExts = map[string]bool{
	".csv": true, ".tsv": true, ".parquet": true, ".arrow": true, ".jsonl": true,
	".tfrecord": true, ".avro": true,
}

// Files that are documentation whatever their extension.
var docNames = map[string]bool{
	"readme": true, "license": true, "licence": true, "notice": true,
	"copying": true, "authors": true, "model_card": true, "modelcard": true,
}

// RoleOf classifies a file of a model folder by its relative path (forward
// slashes). The rules, first match wins:
//   - weights: known weight extensions (.safetensors, .gguf, .onnx, .pt,
//     .bin, ...), and TensorFlow.js weight shards (group1-shard1of2);
//   - weight config: .json, .yaml, .yml, .toml, .jinja, .model (SentencePiece),
//     vocab and merges files;
//   - doc: README, LICENSE, NOTICE and friends, .md, .txt, .pdf, images;
//   - code: source files (.py, .ipynb, .sh, ...);
//   - dataset: files under a data/ or dataset(s)/ folder and tabular
//     formats (.csv, .parquet, .jsonl, ...);
//   - anything else is a doc, so it is kept but never mistaken for weights.
func RoleOf(relPath string) Role {
	base := path.Base(relPath)
	lower := strings.ToLower(base)
	ext := path.Ext(lower)
	stem := strings.TrimSuffix(lower, ext)
	dir := strings.ToLower(path.Dir(relPath))
	for _, d := range strings.Split(dir, "/") {
		if d == "data" || d == "dataset" || d == "datasets" {
			return RoleDataset
		}
	}
	if docNames[stem] || docNames[lower] {
		return RoleDoc
	}
	if _, ok := weightFormats[ext]; ok {
		return RoleWeight
	}
	if strings.Contains(lower, "-shard") && strings.HasPrefix(lower, "group") {
		return RoleWeight
	}
	switch ext {
	case ".json", ".yaml", ".yml", ".toml", ".jinja", ".model", ".tiktoken":
		return RoleWeightConfig
	}
	if lower == "merges.txt" || strings.HasPrefix(lower, "vocab") {
		return RoleWeightConfig
	}
	if codeExts[ext] {
		return RoleCode
	}
	if datasetExts[ext] {
		return RoleDataset
	}
	return RoleDoc
}

// WeightFormat returns the ModelPack config format implied by a weight file
// name (e.g. "safetensors", "onnx"), or "" when the extension says nothing.
func WeightFormat(relPath string) string {
	return weightFormats[strings.ToLower(path.Ext(relPath))]
}
