package automation

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/modelreg/modelreg"
)

// Files under the state folder.
const (
	stateFile      = "state.json"
	deliveriesFile = "deliveries.jsonl"
	deadLetterFile = "dead-letter.jsonl"
)

// state is what survives a restart, written as one JSON document: the last
// observation of each repository and the events not yet delivered, per
// queue. Both change in one atomic write, so an event is queued exactly
// when the observation that produced it is recorded (write-ahead: it is
// pending before any delivery starts).
type state struct {
	Repositories map[string]*modelreg.Observation `json:"repositories"`
	// Queues are keyed by automation name and target ("tell-the-team/slack").
	Queues map[string][]*pending `json:"queues"`
	// Baselined are the sources (by repository pattern) whose first full
	// cycle is done: repositories they find later are new.
	Baselined map[string]bool `json:"baselined,omitempty"`
}

// pending is an event waiting for delivery to one target.
type pending struct {
	Event    Event `json:"event"`
	Attempts int   `json:"attempts"`
}

// store keeps the state in memory and on disk under dir.
type store struct {
	dir string
	mu  sync.Mutex
	st  state
}

// openStore reads dir/state.json; fresh is true when there was none (the
// first start, which takes the registry as its baseline).
func openStore(dir string) (s *store, fresh bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("state folder %s: %w", dir, err)
	}
	s = &store{dir: dir, st: state{Repositories: map[string]*modelreg.Observation{}, Queues: map[string][]*pending{}}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(data, &s.st); err != nil {
		return nil, false, fmt.Errorf("state file %s is damaged (%v): move it away to start from a new baseline", filepath.Join(dir, stateFile), err)
	}
	if s.st.Repositories == nil {
		s.st.Repositories = map[string]*modelreg.Observation{}
	}
	if s.st.Queues == nil {
		s.st.Queues = map[string][]*pending{}
	}
	return s, false, nil
}

// update changes the state under the lock and writes it before returning;
// on a write error the change stays in memory and the error is returned.
func (s *store) update(fn func(st *state)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
	return s.saveLocked()
}

func (s *store) view(fn func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
}

// saveLocked writes state.json through a temporary file, fsync and
// rename, so a kill at any moment leaves the old or the new state whole.
func (s *store) saveLocked() error {
	data, err := json.Marshal(&s.st)
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, stateFile)
	tmp, err := os.CreateTemp(s.dir, stateFile+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the watch state %s: %w", path, err)
	}
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Delivery is one attempt's outcome, a line of deliveries.jsonl (and,
// with the event, of dead-letter.jsonl).
type Delivery struct {
	// Time is when the attempt ended, RFC 3339 UTC with milliseconds.
	Time       string `json:"time"`
	Automation string `json:"automation"`
	// Target is webhook, slack, teams or command.
	Target     string `json:"target"`
	ID         string `json:"id"`
	Type       string `json:"type"`
	Repository string `json:"repository"`
	Attempt    int    `json:"attempt"`
	// Outcome is delivered, retrying (a later attempt follows) or dead (given
	// up: the event is in dead-letter.jsonl).
	Outcome string `json:"outcome"`
	// Status is the HTTP status or the command's exit code; 0 when there
	// was no answer.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Event  *Event `json:"event,omitempty"`
}

// appendLine appends one JSON line to a file of the state folder, synced.
func (s *store) appendLine(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Deliveries returns the last n delivery attempts recorded under the state
// folder dir, oldest first (all when n ≤ 0). A folder without deliveries
// gives an empty list; a torn last line (a kill mid-write) is skipped.
func Deliveries(dir string, n int) ([]Delivery, error) {
	f, err := os.Open(filepath.Join(dir, deliveriesFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("state folder %s: %w", dir, serr)
		}
		return []Delivery{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []Delivery{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var d Delivery
		if json.Unmarshal(sc.Bytes(), &d) != nil {
			continue
		}
		out = append(out, d)
		if n > 0 && len(out) > 2*n {
			out = append([]Delivery(nil), out[len(out)-n:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}
