package mediatypes

import "testing"

func TestRoleOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Role
	}{
		{"model.safetensors", RoleWeight},
		{"model-00001-of-00002.safetensors", RoleWeight},
		{"silero_vad.onnx", RoleWeight},
		{"tiny_face_detector_model.bin", RoleWeight},
		{"weights/group1-shard1of2", RoleWeight},
		{"model.Q4_K_M.gguf", RoleWeight},
		{"config.json", RoleWeightConfig},
		{"tiny_face_detector_model-weights_manifest.json", RoleWeightConfig},
		{"tokenizer.model", RoleWeightConfig},
		{"merges.txt", RoleWeightConfig},
		{"vocab.txt", RoleWeightConfig},
		{"chat_template.jinja", RoleWeightConfig},
		{"README.md", RoleDoc},
		{"LICENSE", RoleDoc},
		{"docs/LICENSE.txt", RoleDoc},
		{"notes.txt", RoleDoc},
		{"unknown.xyz", RoleDoc},
		{"train.py", RoleCode},
		{"src/infer.sh", RoleCode},
		{"eval.csv", RoleDataset},
		{"data/train.jsonl", RoleDataset},
		{"datasets/x/config.json", RoleDataset},
	} {
		if got := RoleOf(tc.path); got != tc.want {
			t.Errorf("RoleOf(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
}

func TestRoleOfMediaType(t *testing.T) {
	for _, tc := range []struct {
		mt   string
		want Role
		ok   bool
	}{
		{WeightRaw, RoleWeight, true},
		{"application/vnd.cncf.model.weight.config.v1.tar+gzip", RoleWeightConfig, true},
		{"application/vnd.cnai.model.doc.v1.tar", RoleDoc, true},
		{"application/vnd.cncf.model.unknown.v1.raw", "", false},
		{"application/vnd.oci.image.layer.v1.tar", "", false},
	} {
		got, ok := RoleOfMediaType(tc.mt)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RoleOfMediaType(%q) = %q, %v; want %q, %v", tc.mt, got, ok, tc.want, tc.ok)
		}
	}
	for _, r := range []Role{RoleWeight, RoleWeightConfig, RoleDoc, RoleCode, RoleDataset} {
		if got, ok := RoleOfMediaType(r.MediaType()); !ok || got != r {
			t.Errorf("round trip of %s gave %s", r, got)
		}
	}
}
