// Command modelapp stands in for an inference server in the deploy test:
// it prints "sha256:<hex> <size> <path>" for every file under the folder
// given as its argument (the volume the init container filled), then
// "modelapp: ready", and waits to be stopped, as a server would.
//
// Installed as /pause it is the pod's infra container instead: it only
// waits (podman otherwise builds its pause image around catatonit, which
// the test machines lack).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if filepath.Base(os.Args[0]) == "pause" {
		wait()
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: modelapp DIR")
		os.Exit(2)
	}
	root := os.Args[1]
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Printf("sha256:%s %d %s\n", hex.EncodeToString(h.Sum(nil)), n, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelapp:", err)
		os.Exit(1)
	}
	fmt.Println("modelapp: ready")
	wait()
}

// wait returns on SIGTERM or SIGINT, as podman stops containers.
func wait() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
}
