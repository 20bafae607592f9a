package modelreg

import (
	"context"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelreg/modelreg/oci"
)

// Login checks the user name and password (or token) against the registry
// at host (HOST[:PORT]) and, when the registry accepts them, stores them
// in the docker config or the credential helper it names for host, as
// `docker login` does (see oci.Client.Login). Credentials the registry
// refuses are an error after one try, and nothing is stored.
func (c *Client) Login(ctx context.Context, host, username, password string) (*oci.LoginResult, error) {
	return c.oci.Login(ctx, host, auth.Credential{Username: username, Password: password})
}

// Logout removes the credentials of host from the docker config or its
// credential helper; credentials that are not there are no error.
func (c *Client) Logout(ctx context.Context, host string) (*oci.LoginResult, error) {
	return c.oci.Logout(ctx, host)
}
