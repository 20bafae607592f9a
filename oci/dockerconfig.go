package oci

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Names a docker config folder may hold the config under: docker's own
// file, and the key of a kubernetes.io/dockerconfigjson Secret, which a
// Secret volume mounted at $DOCKER_CONFIG shows as a file of that name
// (same JSON: {"auths": {HOST: {"auth": base64(user:password)}}}).
const (
	dockerConfigFile = "config.json"
	secretConfigFile = ".dockerconfigjson"
)

// dockerStore opens the docker config as docker, oras and cosign find it:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json. A folder that has
// no config.json but a .dockerconfigjson (a mounted pull Secret) is read
// from that file. With neither DOCKER_CONFIG nor a home folder (a
// container running as a uid with no passwd home) registries are reached
// anonymously instead of failing, as docker does.
func dockerStore() (credentials.Store, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return credentials.NewMemoryStore(), nil
		}
		dir = filepath.Join(home, ".docker")
	}
	path := filepath.Join(dir, dockerConfigFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, secretConfigFile)); err == nil {
			path = filepath.Join(dir, secretConfigFile)
		}
	}
	return credentials.NewStore(path, credentials.StoreOptions{})
}

// Credential returns the credential for a registry host[:port] from the
// client's docker config (empty for anonymous access), so other registry
// clients (cosign's, in package signing) use the same credentials.
func (c *Client) Credential(ctx context.Context, hostport string) (auth.Credential, error) {
	return c.auth.Credential(ctx, hostport)
}
