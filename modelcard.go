package modelreg

import (
	"context"
	"fmt"
	"strings"

	"oras.land/oras-go/v2/content"

	"github.com/modelreg/modelreg/internal/size"
)

// DefaultModelCardMaxBytes is the largest README.md ModelCard reads when
// no cap is given: model cards are a few KiB to a few hundred; a larger
// file is more likely a mistake than a card, and a reader renders it in
// memory.
const DefaultModelCardMaxBytes = 1 << 20

// ModelCard is a version's README.md, the model card of Hugging Face and
// of Harbor's ModelPack view.
type ModelCard struct {
	// Path is the file's path in the version, e.g. README.md.
	Path   string `json:"path"`
	Digest string `json:"digest"`
	// Size is the layer's size in bytes.
	Size int64 `json:"size"`
	// Markdown is the file's bytes, checked against Digest; empty when
	// TooLarge.
	Markdown []byte `json:"-"`
	// TooLarge is true when Size is over the cap: nothing was read.
	TooLarge bool `json:"tooLarge,omitempty"`
}

// ModelCard reads the README.md at the top of the version refStr names
// (the first file whose path is README.md in any case), fetching that
// layer only and checking it against its digest. maxBytes caps what is
// read (≤ 0 means DefaultModelCardMaxBytes): a larger file comes back
// with TooLarge and no content. A version without a README.md returns
// nil and no error.
func (c *Client) ModelCard(ctx context.Context, refStr string, maxBytes int64) (*ModelCard, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultModelCardMaxBytes
	}
	_, pinned, repo, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, err
	}
	for _, f := range mv.Files {
		if !strings.EqualFold(f.Path, "README.md") {
			continue
		}
		mc := &ModelCard{Path: f.Path, Digest: f.Descriptor.Digest.String(), Size: f.Descriptor.Size}
		if f.Descriptor.Size > maxBytes {
			mc.TooLarge = true
			return mc, nil
		}
		b, err := content.FetchAll(ctx, repo.Blobs(), f.Descriptor) // verifies size and digest
		if err != nil {
			return nil, fmt.Errorf("reading %s of %s (%s): %w", f.Path, pinned, size.Format(f.Descriptor.Size), err)
		}
		mc.Markdown = b
		return mc, nil
	}
	return nil, nil
}
