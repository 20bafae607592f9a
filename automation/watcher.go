package automation

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
)

// observeConcurrency is how many repositories one poll cycle reads at once:
// the root package's own limit for parallel tag resolution, so one cycle
// over a catalog stays a few connections wide.
const observeConcurrency = 8

// wakeDelay gathers the notifications of one push (config blob, layers,
// manifest, tags) into one read of the repository.
const wakeDelay = 50 * time.Millisecond

// retryWake is the wait before a woken repository whose reading failed is
// read again.
const retryWake = time.Second

// trailingWake is when a woken repository is read once more. distribution
// posts a manifest push before it links the tag the manifest was pushed
// by (the handler's tag link follows the manifest store's Put, which
// notifies), so a read right after the notification can miss a tag move;
// the second read finds it. Nothing is fired twice: events are diffed
// against the saved observation.
const trailingWake = time.Second

// Options configure a Watcher.
type Options struct {
	// Config is the loaded automations file. Required.
	Config *Config
	// Client reads the registry. Required.
	Client *modelreg.Client
	// StateDir holds the state (state.json), deliveries.jsonl and
	// dead-letter.jsonl. Required.
	StateDir string
	// Logger receives one record per observation error, event and delivery
	// attempt; never a secret or a chat webhook URL. If nil, slog.Default().
	Logger *slog.Logger
	// HTTPClient delivers webhooks and chat messages. If nil, a client with
	// the default transport is used.
	HTTPClient *http.Client
}

// Watcher observes the sources of an automations file and delivers the
// events to the automations' targets.
type Watcher struct {
	cfg     *Config
	client  *modelreg.Client
	log     *slog.Logger
	store   *store
	fresh   bool
	targets []*target

	repoMu sync.Mutex
	locks  map[string]*sync.Mutex

	signals map[string]chan struct{} // per queue: new work

	wakeMu sync.Mutex
	// woken are the repositories to read on the next wake; true for a
	// notification (which gets a trailing read), false for a trailing read.
	woken   map[string]bool
	wakeSig chan struct{}

	scanMu   sync.Mutex
	lastScan map[string]time.Time // per source: the last listing of every version's referrers
}

// refScan says which versions' referrers one observation lists.
type refScan int

const (
	// refsNew lists the referrers of new versions only.
	refsNew refScan = iota
	// refsAll lists the referrers of every version.
	refsAll
	// refsWoken lists those of every version when no tag changed (a
	// notification that is not a version or an alias is most likely a
	// signature or attestation), else of new versions only.
	refsWoken
)

// New opens the state folder and prepares the targets. It fails when the
// state cannot be read.
func New(opts Options) (*Watcher, error) {
	if opts.Config == nil || opts.Client == nil || opts.StateDir == "" {
		return nil, errors.New("automation.New: Config, Client and StateDir are required")
	}
	st, fresh, err := openStore(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if err := lockState(opts.StateDir); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	w := &Watcher{cfg: opts.Config, client: opts.Client, log: log, store: st, fresh: fresh,
		locks: map[string]*sync.Mutex{}, signals: map[string]chan struct{}{},
		woken: map[string]bool{}, wakeSig: make(chan struct{}, 1), lastScan: map[string]time.Time{}}
	for i := range opts.Config.Automations {
		for _, t := range targets(&opts.Config.Automations[i], hc) {
			w.targets = append(w.targets, t)
			w.signals[t.queue()] = make(chan struct{}, 1)
		}
	}
	return w, nil
}

// Run observes every source once (the first run ever takes what it finds
// as the baseline and fires nothing), then polls each source at its
// interval and reads woken repositories, while one worker per target
// delivers its queue in order. It returns when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range w.targets {
		wg.Add(1)
		go func() { defer wg.Done(); w.deliverLoop(ctx, t) }()
	}
	for _, src := range w.cfg.Sources {
		w.cycle(ctx, src)
	}
	w.log.Info("watching", "sources", len(w.cfg.Sources), "automations", len(w.cfg.Automations), "baseline", w.fresh)
	for _, src := range w.cfg.Sources {
		if src.Poll <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(src.Poll)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					w.cycle(ctx, src)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.wakeLoop(ctx) }()
	<-ctx.Done()
	wg.Wait()
	return nil
}

// Wake asks for repository (HOST/REPO) to be read again soon: what a
// registry notification or the embedded registry says. It never blocks,
// and says nothing about what changed: that is read from the registry.
func (w *Watcher) Wake(repository string) {
	w.wakeMu.Lock()
	w.woken[repository] = true
	w.wakeMu.Unlock()
	select {
	case w.wakeSig <- struct{}{}:
	default:
	}
}

// wakeAgain is the trailing read of repository (see trailingWake).
func (w *Watcher) wakeAgain(repository string) {
	w.wakeMu.Lock()
	if _, ok := w.woken[repository]; !ok {
		w.woken[repository] = false
	}
	w.wakeMu.Unlock()
	select {
	case w.wakeSig <- struct{}{}:
	default:
	}
}

func (w *Watcher) wakeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wakeSig:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wakeDelay):
		}
		w.wakeMu.Lock()
		repos := w.woken
		w.woken = map[string]bool{}
		w.wakeMu.Unlock()
		for repo, notified := range repos {
			if notified {
				time.AfterFunc(trailingWake, func() { w.wakeAgain(repo) })
			}
			for _, src := range w.cfg.Sources {
				if src.Matches(repo) {
					if !w.observe(ctx, src, repo, w.baselined(src), refsWoken) && ctx.Err() == nil {
						// A notification is the only cue of a source
						// that does not poll: try again rather than
						// wait for the next change.
						time.AfterFunc(retryWake, func() { w.Wake(repo) })
					}
					break
				}
			}
		}
	}
}

func (w *Watcher) baselined(src Source) bool {
	done := false
	w.store.view(func(st *state) { done = st.Baselined[src.Repository] })
	return done
}

// cycle reads every repository of src once.
func (w *Watcher) cycle(ctx context.Context, src Source) {
	repos, err := w.client.Repositories(ctx, src.Repository)
	if errors.Is(err, errdef.ErrUnsupported) && !w.baselined(src) {
		// Without a catalog only woken repositories are known (serve
		// --automations): each one a wake names is new, so diff it.
		w.log.Warn("the registry has no catalog: only repositories named by a notification are watched", "source", src.Repository)
		if err := w.store.update(func(st *state) {
			if st.Baselined == nil {
				st.Baselined = map[string]bool{}
			}
			st.Baselined[src.Repository] = true
		}); err != nil {
			w.log.Error("saving state", "error", err.Error())
		}
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("listing repositories", "source", src.Repository, "error", err.Error())
		}
		return
	}
	diff := w.baselined(src)
	// The first cycle of a run lists every version's referrers (what
	// happened while the watcher was down), later ones every src.Referrers.
	scan := refsNew
	w.scanMu.Lock()
	last, started := w.lastScan[src.Repository]
	w.scanMu.Unlock()
	if !started || (src.Referrers > 0 && time.Since(last) >= src.Referrers-src.Poll/2) {
		scan = refsAll
	}
	sem := make(chan struct{}, observeConcurrency)
	var wg sync.WaitGroup
	ok := true
	var okMu sync.Mutex
	for _, repo := range repos {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !w.observe(ctx, src, repo, diff, scan) {
				okMu.Lock()
				ok = false
				okMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if scan == refsAll && ok {
		w.scanMu.Lock()
		w.lastScan[src.Repository] = time.Now()
		w.scanMu.Unlock()
	}
	if !diff && ok {
		// Later starts and repositories created from now on are diffed.
		if err := w.store.update(func(st *state) {
			if st.Baselined == nil {
				st.Baselined = map[string]bool{}
			}
			st.Baselined[src.Repository] = true
		}); err != nil {
			w.log.Error("saving state", "error", err.Error())
		}
	}
}

func (w *Watcher) repoLock(repo string) *sync.Mutex {
	w.repoMu.Lock()
	defer w.repoMu.Unlock()
	m, ok := w.locks[repo]
	if !ok {
		m = &sync.Mutex{}
		w.locks[repo] = m
	}
	return m
}

// observe reads repo, and (when diff) queues the events since the last
// observation in the same atomic state write that records it.
func (w *Watcher) observe(ctx context.Context, src Source, repo string, diff bool, scan refScan) bool {
	l := w.repoLock(repo)
	l.Lock()
	defer l.Unlock()
	var prev *modelreg.Observation
	w.store.view(func(st *state) { prev = st.Repositories[repo] })
	opts := modelreg.ObserveOptions{Policy: src.Policy}
	if prev != nil {
		opts.KnownVersions = prev.Versions
	}
	cur, err := w.client.Observe(ctx, repo, opts)
	if err == nil && (prev == nil || tagsChanged(prev, cur)) {
		// Promotion records are only read when tags moved: a promotion
		// writes its record before it moves the tag, so the move brings it.
		opts.Records = true
		opts.KnownVersions = cur.Versions
		cur, err = w.client.Observe(ctx, repo, opts)
		if err == nil && cur.Records == nil {
			cur.Records = []modelreg.PromotionRecord{}
		}
	} else if err == nil {
		cur.Records = prev.Records
	}
	if err == nil {
		err = w.observeReferrers(ctx, src, repo, prev, cur, scan)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("reading repository", "repository", repo, "error", err.Error())
		}
		return false
	}
	var events []Event
	if diff {
		events = Diff(prev, cur, time.Now())
	}
	type queued struct {
		t *target
		e Event
	}
	var adds []queued
	for _, e := range events {
		for _, t := range w.targets {
			if t.auto.On.Match(e) {
				adds = append(adds, queued{t, e})
			}
		}
	}
	if prev != nil && len(events) == 0 && !tagsChanged(prev, cur) && sameReferrers(prev.Referrers, cur.Referrers) {
		return true // nothing to write
	}
	err = w.store.update(func(st *state) {
		st.Repositories[repo] = cur
		for _, a := range adds {
			q := a.t.queue()
			dup := false
			for _, p := range st.Queues[q] {
				dup = dup || p.Event.ID == a.e.ID
			}
			if !dup {
				st.Queues[q] = append(st.Queues[q], &pending{Event: a.e})
			}
		}
	})
	if err != nil {
		w.log.Error("saving state", "repository", repo, "error", err.Error())
		return false
	}
	for _, e := range events {
		w.log.Info("event", "id", e.ID, "type", e.Type, "repository", e.Repository, "alias", e.Alias, "digest", e.Digest, "version", e.Version)
	}
	for _, a := range adds {
		select {
		case w.signals[a.t.queue()] <- struct{}{}:
		default:
		}
	}
	return true
}

// observeReferrers sets cur.Referrers: those of the versions scan names
// listed now, the others as prev saw them.
func (w *Watcher) observeReferrers(ctx context.Context, src Source, repo string, prev, cur *modelreg.Observation, scan refScan) error {
	if prev == nil {
		prev = &modelreg.Observation{}
	}
	all := scan == refsAll || (scan == refsWoken && !tagsChanged(prev, cur))
	var list []string
	listed := map[string]bool{}
	for v, d := range cur.Versions {
		_, known := prev.Versions[v]
		if listed[d] || (known && !all) {
			continue
		}
		listed[d] = true
		list = append(list, d)
	}
	sort.Strings(list)
	got := map[string][]modelreg.ObservedReferrer{}
	if len(list) > 0 {
		var err error
		if got, err = w.client.ObserveReferrers(ctx, repo, src.Policy, list); err != nil {
			return err
		}
	}
	cur.Referrers = map[string][]modelreg.ObservedReferrer{}
	for _, d := range cur.Versions {
		if rs, ok := got[d]; ok {
			cur.Referrers[d] = rs
		} else if rs, ok := prev.Referrers[d]; ok {
			cur.Referrers[d] = rs
		}
	}
	return nil
}

func sameReferrers(a, b map[string][]modelreg.ObservedReferrer) bool {
	if len(a) != len(b) {
		return false
	}
	for d, ra := range a {
		rb, ok := b[d]
		if !ok || len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			if ra[i] != rb[i] {
				return false
			}
		}
	}
	return true
}

// tagsChanged reports whether the version or alias tags differ.
func tagsChanged(a, b *modelreg.Observation) bool {
	return !sameMap(a.Versions, b.Versions) || !sameMap(a.Aliases, b.Aliases)
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// deliverLoop delivers the queue of t head first: an event waits until the
// one before it was delivered or given up, so receivers see one
// automation's events in the order they happened.
func (w *Watcher) deliverLoop(ctx context.Context, t *target) {
	q := t.queue()
	for {
		var head *pending
		w.store.view(func(st *state) {
			if len(st.Queues[q]) > 0 {
				head = st.Queues[q][0]
			}
		})
		if head == nil {
			select {
			case <-ctx.Done():
				return
			case <-w.signals[q]:
				continue
			}
		}
		e := head.Event
		res := t.send(ctx, e)
		if ctx.Err() != nil {
			return // cut by shutdown: delivered again, with the same id, on the next start
		}
		var attempts int
		w.store.view(func(st *state) { attempts = head.Attempts + 1 })
		d := Delivery{Time: time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), Automation: t.auto.Name, Target: t.kind,
			ID: e.ID, Type: e.Type, Repository: e.Repository, Attempt: attempts, Status: res.status}
		r := t.auto.Retry
		switch {
		case res.err == nil:
			d.Outcome = "delivered"
		case res.retry && attempts < r.MaxAttempts:
			d.Outcome, d.Error = "retrying", res.err.Error()
		default:
			d.Outcome, d.Error = "dead", res.err.Error()
		}
		if d.Outcome == "dead" {
			dl := d
			dl.Event = &e
			if err := w.store.appendLine(deadLetterFile, dl); err != nil {
				w.log.Error("writing the dead-letter log", "error", err.Error())
			}
		}
		if err := w.store.update(func(st *state) {
			if d.Outcome == "retrying" {
				head.Attempts = attempts
				return
			}
			qs := st.Queues[q]
			if len(qs) > 0 && qs[0] == head {
				st.Queues[q] = qs[1:]
			}
			if len(st.Queues[q]) == 0 {
				delete(st.Queues, q)
			}
		}); err != nil {
			w.log.Error("saving state", "error", err.Error())
		}
		if err := w.store.appendLine(deliveriesFile, d); err != nil {
			w.log.Error("writing the delivery log", "error", err.Error())
		}
		attrs := []any{"automation", d.Automation, "target", d.Target, "id", d.ID, "type", d.Type, "attempt", d.Attempt, "outcome", d.Outcome}
		if d.Status != 0 {
			attrs = append(attrs, "status", d.Status)
		}
		if d.Error != "" {
			attrs = append(attrs, "error", d.Error)
			w.log.Warn("delivery", attrs...)
		} else {
			w.log.Info("delivery", attrs...)
		}
		if d.Outcome == "retrying" {
			wait := backoff(r, attempts)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// backoff is the wait after the n-th failed attempt (n ≥ 1).
func backoff(r Retry, n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}
