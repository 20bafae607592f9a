// Package olareg is used for running a minimal OCI conformant container registry.
package olareg
