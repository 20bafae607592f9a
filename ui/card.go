package ui

import (
	"bytes"
	"context"
	"html/template"
	"sync"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/mediatypes"
)

// CardMaxBytes is the largest README.md the version page renders (1 MiB):
// the layer is fetched whole and rendered in memory.
const CardMaxBytes = modelreg.DefaultModelCardMaxBytes

// Card is the model card of the version page: README.md rendered as HTML.
type Card struct {
	*modelreg.ModelCard
	// FrontMatter is the YAML block a Hugging Face card starts with
	// (between --- lines), shown as it is, not rendered.
	FrontMatter string `json:"frontMatter,omitempty"`
	// HTML is the rendered Markdown; raw HTML in the file is dropped
	// (goldmark without WithUnsafe writes "<!-- raw HTML omitted -->")
	// and javascript:, vbscript:, file: and data: links are emptied, so
	// a hostile README cannot put script or active content on the page.
	HTML template.HTML `json:"-"`
}

// markdown renders CommonMark with the GitHub extensions (tables, task
// lists, strikethrough, autolinks), never raw HTML.
var markdown = sync.OnceValue(func() goldmark.Markdown { return goldmark.New(goldmark.WithExtensions(extension.GFM)) })

// card reads and renders the model card of repo@dg; nil when the version
// has no README.md. Content addressed, so cached like a digest's detail.
func (s *Server) card(ctx context.Context, repo, dg string) (*Card, error) {
	v, err := s.cached(ctx, "card "+repo+"@"+dg, func(ctx context.Context) (any, error) {
		mc, err := s.cl.ModelCard(ctx, repo+"@"+dg, CardMaxBytes)
		if err != nil || mc == nil {
			return (*Card)(nil), err
		}
		return renderCard(mc)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Card), nil
}

func renderCard(mc *modelreg.ModelCard) (*Card, error) {
	c := &Card{ModelCard: mc}
	if mc.TooLarge {
		return c, nil
	}
	body := mc.Markdown
	if fm, rest, ok := frontMatter(body); ok {
		c.FrontMatter, body = string(fm), rest
	}
	var out bytes.Buffer
	if err := markdown().Convert(body, &out); err != nil {
		return nil, err
	}
	c.HTML = template.HTML(out.String()) // goldmark escaped text and dropped raw HTML
	return c, nil
}

// frontMatter splits a leading "---" YAML block off b.
func frontMatter(b []byte) (fm, rest []byte, ok bool) {
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	nl := []byte("\n")
	if !bytes.HasPrefix(b, []byte("---\n")) && !bytes.HasPrefix(b, []byte("---\r\n")) {
		return nil, b, false
	}
	_, after, _ := bytes.Cut(b, nl)
	for i := 0; i < len(after); {
		j := bytes.IndexByte(after[i:], '\n')
		line := after[i:]
		if j >= 0 {
			line = after[i : i+j]
		}
		if string(bytes.TrimRight(line, "\r")) == "---" {
			if j < 0 {
				return after[:i], nil, true
			}
			return after[:i], after[i+j+1:], true
		}
		if j < 0 {
			break
		}
		i += j + 1
	}
	return nil, b, false
}

// content adds the model card and the approvals to a version page.
func (s *Server) content(ctx context.Context, d *VersionDetail) error {
	c, err := s.card(ctx, d.Repository, d.Digest)
	if err != nil {
		return err
	}
	d.Card = c
	v, err := s.cached(ctx, "approvals "+d.Repository+"@"+d.Digest, func(ctx context.Context) (any, error) {
		return s.cl.Approvals(ctx, d.Repository+"@"+d.Digest, modelreg.InspectOptions{Keys: s.opts.Keys})
	})
	if err != nil {
		return err
	}
	d.Approvals = v.([]modelreg.Approval)
	return nil
}

// created is when a version was made: the manifest's
// org.opencontainers.image.created, else the ModelPack config's
// descriptor.createdAt; "" when neither says.
func created(in *modelreg.Inspection) string {
	if c := in.Annotations[mediatypes.AnnotationCreated]; c != "" {
		return c
	}
	if d, ok := in.Config["descriptor"].(map[string]any); ok {
		if c, ok := d["createdAt"].(string); ok {
			return c
		}
	}
	return ""
}
