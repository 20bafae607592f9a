package modelreg

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// acceptedRecords is this machine's memory of the highest promotion record
// sequence deploy-time verification accepted per repository and alias, as
// TUF clients remember versions: a record older than one already accepted
// here is refused, even if its tag was made to look newest again. It lives
// in MODELREG_STATE_DIR, else $XDG_STATE_HOME/modelreg or
// ~/.local/state/modelreg (promotions.json). A missing or unreadable file
// means no memory; an ephemeral init container has none, which is why
// policies can also bound record age (promoters.maxAge).
type acceptedRecords struct {
	path string
}

var stateMu sync.Mutex

func defaultAcceptedRecords() acceptedRecords {
	dir := os.Getenv("MODELREG_STATE_DIR")
	if dir == "" {
		if x := os.Getenv("XDG_STATE_HOME"); x != "" {
			dir = filepath.Join(x, "modelreg")
		} else if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".local", "state", "modelreg")
		}
	}
	if dir == "" {
		return acceptedRecords{}
	}
	return acceptedRecords{path: filepath.Join(dir, "promotions.json")}
}

func (a acceptedRecords) load() map[string]int64 {
	m := map[string]int64{}
	if a.path == "" {
		return m
	}
	b, err := os.ReadFile(a.path)
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// highest returns the highest sequence accepted for key ("HOST/REPO alias").
func (a acceptedRecords) highest(key string) int64 {
	stateMu.Lock()
	defer stateMu.Unlock()
	return a.load()[key]
}

// accept remembers seq for key if it is higher than what is known. Errors
// are ignored: the memory is a defence in depth, not a requirement.
func (a acceptedRecords) accept(key string, seq int64) {
	if a.path == "" {
		return
	}
	stateMu.Lock()
	defer stateMu.Unlock()
	m := a.load()
	if m[key] >= seq {
		return
	}
	m[key] = seq
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.path), ".promotions-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), a.path) != nil {
		os.Remove(tmp.Name())
	}
}
