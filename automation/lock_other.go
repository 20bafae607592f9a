//go:build !unix

package automation

// lockState is a no-op where flock is missing: run one watcher per state.
func lockState(string) error { return nil }
