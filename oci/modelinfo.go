package oci

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/modelreg/modelreg/mediatypes"
)

// ModelInfo is what a model's files say about it, for the ModelPack config
// (model-spec v0.0.7 config.md). Empty fields are unknown.
type ModelInfo struct {
	Format       string   // weight format: safetensors, onnx, gguf, ...
	Architecture string   // e.g. "transformer"
	Family       string   // e.g. "llama" (config.json model_type)
	ParamSize    string   // e.g. "6.7B", from safetensors headers
	Precision    string   // e.g. "bfloat16", dominant dtype by bytes
	Quantization string   // e.g. "gptq" (config.json quantization_config)
	Licenses     []string // from the README.md model card's front matter
	// Warnings name files that could not be read as their format says,
	// and what was left unrecorded for it; they are not part of the
	// config.
	Warnings []string
}

// maxSafetensorsHeader is the reference implementation's cap on the JSON
// header of a .safetensors file (100,000,000 bytes).
const maxSafetensorsHeader = 100_000_000

// maxSmallFile caps how much of config.json or README.md is read.
const maxSmallFile = 4 << 20

// InspectFiles reads what it can from the model's files: the headers of
// .safetensors weights (parameter count and dtype), config.json
// (model_type, torch_dtype/dtype, quantization_config) and the README.md
// front matter (license). It reads only headers and small files, never whole
// weights. Unreadable or malformed files leave fields empty: a model is
// pushed as it is. A .safetensors file whose header breaks the format
// (parseSafetensors) adds a warning naming it, and no paramSize or
// precision is taken from the weights.
func InspectFiles(files []File) ModelInfo {
	var info ModelInfo
	formats := map[string]bool{}
	var params int64
	dtypeBytes := map[string]int64{}
	var badHeaders []string
	for _, f := range files {
		if f.Role != mediatypes.RoleWeight {
			continue
		}
		if fm := mediatypes.WeightFormat(f.Path); fm != "" {
			formats[fm] = true
		}
		if strings.HasSuffix(strings.ToLower(f.Path), ".safetensors") {
			n, dt, err := readSafetensorsHeader(f.Abs)
			if err != nil {
				badHeaders = append(badHeaders, fmt.Sprintf("%s: not a valid safetensors file: %v", f.Path, err))
				continue
			}
			params += n
			for k, v := range dt {
				dtypeBytes[k] += v
			}
		}
	}
	info.Format = joinSorted(formats)
	if len(badHeaders) > 0 {
		// A sum over the readable files would be a wrong count, not a
		// partial one: record none.
		for _, w := range badHeaders {
			info.Warnings = append(info.Warnings, w+"; paramSize and precision are not recorded")
		}
		params, dtypeBytes = 0, nil
	}
	if params > 0 {
		info.ParamSize = FormatParamSize(params)
	}
	info.Precision = dominantPrecision(dtypeBytes)
	for _, f := range files {
		switch strings.ToLower(f.Path) {
		case "config.json":
			readHFConfig(f.Abs, &info)
		case "readme.md":
			info.Licenses = readModelCardLicense(f.Abs)
		}
	}
	return info
}

func joinSorted(set map[string]bool) string {
	var s []string
	for k := range set {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

var safetensorsPrecision = map[string]string{
	"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
	"F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2",
	"I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
	"U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
}

func dominantPrecision(bytesBy map[string]int64) string {
	best, bestN := "", int64(-1)
	for dt, n := range bytesBy {
		if n > bestN || (n == bestN && dt < best) {
			best, bestN = dt, n
		}
	}
	if best == "" {
		return ""
	}
	if p, ok := safetensorsPrecision[best]; ok {
		return p
	}
	return strings.ToLower(best)
}

// FormatParamSize formats a parameter count as ModelPack's paramSize:
// <count><scale> with scale K, M, B or T and at most one decimal, e.g.
// 6738415616 → "6.7B", 512 → "512".
func FormatParamSize(n int64) string {
	scales := []struct {
		v int64
		s string
	}{{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}}
	for _, sc := range scales {
		if n >= sc.v {
			s := strconv.FormatFloat(float64(n)/float64(sc.v), 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + sc.s
		}
	}
	return strconv.FormatInt(n, 10)
}

func readHFConfig(p string, info *ModelInfo) {
	b, err := readSmall(p)
	if err != nil {
		return
	}
	var c struct {
		ModelType          string `json:"model_type"`
		TorchDtype         string `json:"torch_dtype"`
		Dtype              string `json:"dtype"`
		TransformersVer    string `json:"transformers_version"`
		QuantizationConfig *struct {
			QuantMethod string `json:"quant_method"`
		} `json:"quantization_config"`
	}
	if json.Unmarshal(b, &c) != nil {
		return
	}
	if info.Family == "" {
		info.Family = c.ModelType
	}
	if info.Architecture == "" && c.TransformersVer != "" {
		info.Architecture = "transformer"
	}
	if info.Precision == "" {
		if c.Dtype != "" {
			info.Precision = c.Dtype
		} else {
			info.Precision = c.TorchDtype
		}
	}
	if c.QuantizationConfig != nil && info.Quantization == "" {
		info.Quantization = c.QuantizationConfig.QuantMethod
	}
}

// readModelCardLicense reads `license: X` from a Hugging Face model card's
// YAML front matter (between the first two "---" lines).
func readModelCardLicense(p string) []string {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxSmallFile))
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "---" {
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "---" {
			return nil
		}
		if v, ok := strings.CutPrefix(line, "license:"); ok {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if v != "" && v != "other" {
				return []string{v}
			}
			return nil
		}
	}
	return nil
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSmallFile))
}
