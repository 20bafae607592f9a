package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/modelreg/modelreg/errdef"
)

// LoginResult says where Login stored the credentials.
type LoginResult struct {
	// Registry is HOST[:PORT] as given.
	Registry string `json:"registry"`
	// Config is the docker config file.
	Config string `json:"config"`
	// Helper is the credential helper (docker-credential-NAME) that holds
	// the secret, "" when the config file holds it (base64, as docker
	// writes it without a helper).
	Helper string `json:"helper,omitempty"`
}

// loginStore opens the docker config as docker login writes it: the
// credential helper named for the host (credHelpers), else credsStore,
// else the platform's default helper when its binary is installed, else
// the file itself.
func (c *Client) loginStore() (*credentials.DynamicStore, error) {
	so := credentials.StoreOptions{AllowPlaintextPut: true, DetectDefaultNativeStore: true}
	var (
		s   *credentials.DynamicStore
		err error
	)
	if c.opts.DockerConfig != "" {
		s, err = credentials.NewStore(c.opts.DockerConfig, so)
	} else {
		s, err = credentials.NewStoreFromDocker(so)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the docker config: %w", err)
	}
	return s, nil
}

// Login checks cred against the registry at host (HOST[:PORT]) — a GET
// /v2/ with the credentials, through the token service if the registry
// names one — and only when the registry accepts them stores them in the
// docker config, as `docker login` does (see loginStore). Refused
// credentials are an error that says so, after one try; nothing is
// stored then.
func (c *Client) Login(ctx context.Context, host string, cred auth.Credential) (*LoginResult, error) {
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return nil, fmt.Errorf("%w: registry %q: want HOST[:PORT], without a repository or scheme", errdef.ErrInvalidInput, host)
	}
	if cred.Username == "" || cred.Password == "" {
		return nil, fmt.Errorf("%w: login %s needs a user name and a password (or token)", errdef.ErrInvalidInput, host)
	}
	store, err := c.loginStore()
	if err != nil {
		return nil, err
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", errdef.ErrInvalidInput, host, err)
	}
	// The credentials are checked before they are stored, so the
	// transport must not stop at the challenge for having none stored.
	la := *c.auth
	if c.opts.HTTPClient == nil {
		la.Client = &http.Client{Transport: retry.NewTransport(credentialsRefused{next: c.transport})}
	}
	reg.Client = &la
	reg.PlainHTTP = c.PlainHTTP(host)
	if err := credentials.Login(ctx, store, reg, cred); err != nil {
		var re *registryError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("login %s: %w", host, re)
		}
		return nil, fmt.Errorf("login %s: %w", host, err)
	}
	return &LoginResult{Registry: host, Config: store.ConfigPath(), Helper: helperFor(store.ConfigPath(), credentials.ServerAddressFromRegistry(host))}, nil
}

// Logout removes the credentials of host from the docker config (or its
// credential helper). Removing credentials that are not there is no error,
// as with docker logout.
func (c *Client) Logout(ctx context.Context, host string) (*LoginResult, error) {
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return nil, fmt.Errorf("%w: registry %q: want HOST[:PORT], without a repository or scheme", errdef.ErrInvalidInput, host)
	}
	store, err := c.loginStore()
	if err != nil {
		return nil, err
	}
	if err := credentials.Logout(ctx, store, host); err != nil {
		return nil, fmt.Errorf("logout %s: %w", host, err)
	}
	return &LoginResult{Registry: host, Config: store.ConfigPath(), Helper: helperFor(store.ConfigPath(), credentials.ServerAddressFromRegistry(host))}, nil
}

// helperFor names the credential helper the docker config at path uses
// for server, "" for none.
func helperFor(path, server string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var cfg struct {
		CredsStore  string            `json:"credsStore"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	if h := cfg.CredHelpers[server]; h != "" {
		return h
	}
	return cfg.CredsStore
}
