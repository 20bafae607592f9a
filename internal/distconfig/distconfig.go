// Package distconfig writes the configuration the tests and the benchmark
// run CNCF distribution with (v3.1.2 and Debian's 2.8.2 accept it).
package distconfig

import "fmt"

// YAML returns a configuration (version 0.1) for a registry listening on
// addr (HOST:PORT) with its data under the folder root: filesystem
// storage, tag and manifest deletion on, no redirects, no upload purging
// (which would race long transfers), errors-only logging, no access log.
// The HTTP secret only signs upload state; it guards nothing here.
func YAML(addr, root string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: modelreg-not-a-secret
`, root, addr)
}
