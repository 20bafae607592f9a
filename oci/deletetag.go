package oci

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelreg/modelreg/errdef"
)

func deleteTagRequest(ctx context.Context, repo *remote.Repository, tag string) error {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	ctx = auth.AppendRepositoryScope(ctx, repo.Reference, auth.ActionDelete)
	url := scheme + "://" + repo.Reference.Host() + "/v2/" + repo.Reference.Repository + "/manifests/" + tag
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	resp, err := repo.Client.Do(req)
	if err != nil {
		return fmt.Errorf("deleting tag %s: %w", tag, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("tag %s: %w", tag, errdef.ErrNotFound)
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "DIGEST_INVALID"),
		resp.StatusCode == http.StatusMethodNotAllowed,
		resp.StatusCode == http.StatusUnsupportedMediaType:
		return fmt.Errorf("%w: the registry %s does not support deleting tags (distribution 2.8 and registries with delete disabled); point the alias at another version with `alias set` instead", errdef.ErrUnsupported, repo.Reference.Registry)
	default:
		return fmt.Errorf("deleting tag %s: %s: %s", tag, resp.Status, strings.TrimSpace(string(body)))
	}
}
