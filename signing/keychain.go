package signing

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"
)

// CredentialFunc returns the credential for a registry host[:port]: a
// username and password, or an identity (refresh) token; all empty means
// anonymous. oras-go's auth.CredentialFunc has this shape.
type CredentialFunc func(ctx context.Context, hostport string) (username, password, identityToken string, err error)

// Keychain adapts f to go-containerregistry's authn.Keychain, so the
// signature client authenticates with exactly the credentials the rest
// of modelreg found (including a mounted pull Secret), not with its own
// reading of the docker config.
func Keychain(f CredentialFunc) authn.Keychain { return funcKeychain(f) }

type funcKeychain CredentialFunc

// Resolve implements authn.Keychain.
func (f funcKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return f.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (f funcKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	if host == "index.docker.io" {
		host = "registry-1.docker.io" // where docker keeps Docker Hub's entry
	}
	user, pass, token, err := f(ctx, host)
	if err != nil {
		return nil, err
	}
	if user == "" && pass == "" && token == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass, IdentityToken: token}), nil
}
