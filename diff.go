package modelreg

import (
	"context"
	"fmt"
	"sort"

	"github.com/modelreg/modelreg/oci"
)

// DiffOptions add to Diff.
type DiffOptions struct {
	// Keys are public key files that verify the evaluations whose metrics
	// are compared; with none, metrics are not compared (Diff.Metrics is
	// empty), since an unverified number is not a result.
	Keys []string
}

// FileChange is a path present in both versions with different content.
type FileChange struct {
	Path string   `json:"path"`
	From FileInfo `json:"from"`
	To   FileInfo `json:"to"`
}

// ValueChange is a key whose value differs; From or To is "" when the key
// is absent on that side.
type ValueChange struct {
	Key  string `json:"key"`
	From string `json:"from"`
	To   string `json:"to"`
}

// MetricChange is an evaluation metric whose value differs; From or To is
// nil when that version has no verified value for it.
type MetricChange struct {
	Name string   `json:"name"`
	From *float64 `json:"from"`
	To   *float64 `json:"to"`
}

// Diff is the answer of Diff: what changed from one version to another.
// Files are matched by path; a path is changed when its layer digest
// differs. Every list is sorted by path, key or name and holds only
// differences.
type Diff struct {
	From       string `json:"from"`
	FromDigest string `json:"fromDigest"`
	To         string `json:"to"`
	ToDigest   string `json:"toDigest"`
	// Same is true when both references name one digest.
	Same    bool         `json:"same"`
	Added   []FileInfo   `json:"added"`
	Removed []FileInfo   `json:"removed"`
	Changed []FileChange `json:"changed"`
	// Unchanged counts the files identical in both.
	Unchanged   int           `json:"unchanged"`
	Annotations []ValueChange `json:"annotations"`
	// Config lists the ModelPack config.config fields (format, paramSize,
	// precision, …) that differ, rendered as text.
	Config  []ValueChange  `json:"config"`
	Metrics []MetricChange `json:"metrics"`
}

// Diff compares the versions fromRef and toRef name (tags or digests, in
// the same or different repositories): files added, removed and changed,
// manifest annotations, ModelPack config fields and, with opts.Keys,
// verified evaluation metrics (the last evaluation of a version wins for
// each metric). Errors are those of Inspect and Evaluations.
func (c *Client) Diff(ctx context.Context, fromRef, toRef string, opts DiffOptions) (*Diff, error) {
	a, err := c.Inspect(ctx, fromRef)
	if err != nil {
		return nil, err
	}
	b, err := c.Inspect(ctx, toRef)
	if err != nil {
		return nil, err
	}
	d := &Diff{From: a.Reference, FromDigest: a.Digest, To: b.Reference, ToDigest: b.Digest, Same: a.Digest == b.Digest,
		Added: []FileInfo{}, Removed: []FileInfo{}, Changed: []FileChange{}, Annotations: []ValueChange{}, Config: []ValueChange{}, Metrics: []MetricChange{}}
	fa := map[string]FileInfo{}
	for _, f := range a.Files {
		fa[f.Path] = f
	}
	fb := map[string]bool{}
	for _, f := range b.Files {
		fb[f.Path] = true
		old, ok := fa[f.Path]
		switch {
		case !ok:
			d.Added = append(d.Added, f)
		case old.Digest != f.Digest:
			d.Changed = append(d.Changed, FileChange{Path: f.Path, From: old, To: f})
		default:
			d.Unchanged++
		}
	}
	for _, f := range a.Files {
		if !fb[f.Path] {
			d.Removed = append(d.Removed, f)
		}
	}
	sort.Slice(d.Added, func(i, j int) bool { return d.Added[i].Path < d.Added[j].Path })
	sort.Slice(d.Removed, func(i, j int) bool { return d.Removed[i].Path < d.Removed[j].Path })
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Path < d.Changed[j].Path })
	d.Annotations = changedValues(a.Annotations, b.Annotations)
	d.Config = changedValues(configFields(a.Config), configFields(b.Config))
	if len(opts.Keys) > 0 {
		ma, err := c.metrics(ctx, fromRef, a.Digest, opts)
		if err != nil {
			return nil, err
		}
		mb, err := c.metrics(ctx, toRef, b.Digest, opts)
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for k := range ma {
			names[k] = true
		}
		for k := range mb {
			names[k] = true
		}
		for k := range names {
			x, okx := ma[k]
			y, oky := mb[k]
			if okx && oky && x == y {
				continue
			}
			mc := MetricChange{Name: k}
			if okx {
				mc.From = &x
			}
			if oky {
				mc.To = &y
			}
			d.Metrics = append(d.Metrics, mc)
		}
		sort.Slice(d.Metrics, func(i, j int) bool { return d.Metrics[i].Name < d.Metrics[j].Name })
	}
	return d, nil
}

// metrics are the verified metrics of the digest refStr resolved to, so
// a tag moved between the two reads cannot mix versions.
func (c *Client) metrics(ctx context.Context, refStr, dgst string, opts DiffOptions) (map[string]float64, error) {
	ref, err := oci.ParseReference(refStr)
	if err != nil {
		return nil, err
	}
	evs, err := c.Evaluations(ctx, ref.Name()+"@"+dgst, InspectOptions{Keys: opts.Keys})
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, e := range evs {
		for k, v := range e.Metrics {
			m[k] = v
		}
	}
	return m, nil
}

func configFields(cfg map[string]any) map[string]string {
	out := map[string]string{}
	inner, _ := cfg["config"].(map[string]any)
	for k, v := range inner {
		if v != nil {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func changedValues(a, b map[string]string) []ValueChange {
	out := []ValueChange{}
	for k, x := range a {
		if y, ok := b[k]; !ok || x != y {
			out = append(out, ValueChange{Key: k, From: x, To: b[k]})
		}
	}
	for k, y := range b {
		if _, ok := a[k]; !ok {
			out = append(out, ValueChange{Key: k, To: y})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
