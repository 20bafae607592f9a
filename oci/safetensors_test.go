package oci

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/mediatypes"
)

// safetensorsFile builds a safetensors file: header length, header, data.
func safetensorsFile(header string, data int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, data))
	return b.Bytes()
}

// Headers as the safetensors README's "Format" section allows and refuses
// them; each refusal names what is wrong.
func TestParseSafetensors(t *testing.T) {
	ok := `{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},"__metadata__":{"format":"pt"}}`
	for _, tc := range []struct {
		name, header string
		data         int
		file         []byte // instead of header and data
		want         string // "" for valid; else a part of the error
		params       int64
	}{
		{name: "valid", header: ok, data: 20, params: 8},
		{name: "valid padded", header: ok + "    ", data: 20, params: 8},
		{name: "scalar and empty", header: `{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"F16","shape":[0,4],"data_offsets":[8,8]}}`, data: 8, params: 1},
		{name: "sub-byte dtype", header: `{"q":{"dtype":"F4","shape":[6],"data_offsets":[0,3]}}`, data: 3, params: 6},
		{name: "offsets past the end", header: `{"w":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}}`, data: 1, want: "past the 1 bytes of data"},
		{name: "size mismatch", header: `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}`, data: 8, want: "needs 16"},
		{name: "duplicate name", header: `{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, data: 4, want: `"w" is named twice`},
		{name: "overlap", header: `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, data: 6, want: "overlap"},
		{name: "hole", header: `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, data: 6, want: "hole"},
		{name: "trailing data", header: `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, data: 5, want: "cover 2 bytes but the file holds 5"},
		{name: "unknown dtype", header: `{"a":{"dtype":"F12","shape":[2],"data_offsets":[0,2]}}`, data: 2, want: "unknown dtype"},
		{name: "missing field", header: `{"a":{"dtype":"U8","data_offsets":[0,2]}}`, data: 2, want: "want dtype, shape and data_offsets"},
		{name: "reversed offsets", header: `{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}`, data: 2, want: "BEGIN ≤ END"},
		{name: "shape overflow", header: `{"a":{"dtype":"U8","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}`, want: "more elements"},
		{name: "negative dim", header: `{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, want: `tensor "a"`},
		{name: "not an object", header: `["a"]`, want: "does not start with '{'"},
		{name: "garbage after", header: `{}{}`, want: "more after the object"},
		{name: "bad metadata", header: `{"__metadata__":{"n":1}}`, want: "__metadata__"},
		{name: "header longer than file", file: append(binary.LittleEndian.AppendUint64(nil, 1000), "{}"...), want: "longer than the 2 bytes after it"},
		{name: "header over the cap", file: binary.LittleEndian.AppendUint64(nil, 1<<40), want: "over the format's limit"},
		{name: "short file", file: []byte{1, 2, 3}, want: "shorter than the 8-byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file
			if f == nil {
				f = safetensorsFile(tc.header, tc.data)
			}
			s, err := parseSafetensors(bytes.NewReader(f), int64(len(f)))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && s.params != tc.params:
				t.Errorf("%d parameters, want %d", s.params, tc.params)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error saying %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// A broken header becomes a warning naming the file, and no paramSize or
// precision from the weights is recorded; the format still is.
func TestInspectFilesWarnsOnBadSafetensors(t *testing.T) {
	dir := t.TempDir()
	good := safetensorsFile(`{"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}`, 8)
	bad := safetensorsFile(`{"w":{"dtype":"U8","shape":[1000000000],"data_offsets":[0,1000000000]}}`, 1)
	for name, b := range map[string][]byte{"a.safetensors": good, "b.safetensors": bad} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var files []File
	for _, n := range []string{"a.safetensors", "b.safetensors"} {
		files = append(files, File{Path: n, Abs: filepath.Join(dir, n), Role: mediatypes.RoleOf(n)})
	}
	info := InspectFiles(files)
	if info.ParamSize != "" || info.Precision != "" {
		t.Errorf("paramSize %q, precision %q recorded from an unreadable header", info.ParamSize, info.Precision)
	}
	if info.Format != "safetensors" {
		t.Errorf("format %q", info.Format)
	}
	if len(info.Warnings) != 1 || !strings.HasPrefix(info.Warnings[0], "b.safetensors: ") {
		t.Errorf("warnings %q, want one naming b.safetensors", info.Warnings)
	}
}
