package automation

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/modelreg/modelreg/errdef"
)

// Defaults of the automations file.
const (
	// DefaultPoll is the poll interval of a source that gives none: the
	// field's common 30 s, a few requests per repository per cycle.
	DefaultPoll = 30 * time.Second
	// DefaultMaxAttempts bounds the deliveries of one event to one target;
	// with the default backoff the last try is about 20 minutes after the
	// first, long enough for a receiver's redeploy.
	DefaultMaxAttempts = 12
	// DefaultBackoff is the wait after the first failed attempt; it doubles
	// after each failure up to DefaultMaxBackoff.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultReferrerScans is how many poll intervals pass between two
	// listings of every version's referrers: those cost a few requests per
	// version, tags cost one per repository, so a full scan every tenth
	// cycle keeps a cycle's cost near that of tags alone.
	DefaultReferrerScans = 10
)

// Config is a loaded automations file (apiVersion modelreg.dev/v1, kind
// Automations). See the README section "Automations" for its shape.
type Config struct {
	// File is the path the config was loaded from.
	File        string
	Sources     []Source
	Automations []Automation
}

// Source is one entry of sources: the repositories to watch.
type Source struct {
	// Repository is HOST/REPO or HOST/GLOB (path.Match; * does not cross /).
	Repository string
	// Poll is the poll interval; 0 means notifications only.
	Poll time.Duration
	// Referrers is how often a polling source lists the signatures and
	// attestations of every version again (file field referrers; default
	// DefaultReferrerScans × Poll; 0: never). Between those scans a poll
	// lists them only for new versions, and a notification with no tag
	// change lists them for every version of its repository: a signature
	// added to an old version without a notification is seen within this
	// interval.
	Referrers time.Duration
	// Policy is the promotion policy file (resolved against the automations
	// file's folder) naming the protected aliases and their promoters; ""
	// for none.
	Policy string
	// Line is where the source starts in the file.
	Line int
}

// Matches reports whether repository (HOST/REPO) belongs to the source.
func (s Source) Matches(repository string) bool {
	ok, _ := path.Match(s.Repository, repository)
	return ok
}

// Automation is one entry of automations: a filter and where to deliver.
type Automation struct {
	Name string
	On   Filter
	// Webhook, Slack, Teams and Command are the targets; at least one is
	// set. Each target has its own queue, so one slow receiver does not
	// hold up another.
	Webhook *Webhook
	Slack   *Chat
	Teams   *Chat
	Command []string
	Retry   Retry
	Line    int
}

// Filter says which events an automation takes.
type Filter struct {
	// Event is one of EventTypes.
	Event string
	// Alias, when set, must match the event's alias (Go regexp syntax,
	// unanchored as in W&B's alias regex: anchor it with ^…$).
	Alias *regexp.Regexp
	// Repository, when set, is a glob the event's HOST/REPO must match.
	Repository string
}

// Match reports whether the automation takes e.
func (f Filter) Match(e Event) bool {
	if e.Type != f.Event {
		return false
	}
	if f.Alias != nil && !f.Alias.MatchString(e.Alias) {
		return false
	}
	if f.Repository != "" {
		if ok, _ := path.Match(f.Repository, e.Repository); !ok {
			return false
		}
	}
	return true
}

// Webhook is a signed HTTP POST target.
type Webhook struct {
	URL string
	// SecretEnv names the environment variable holding the HMAC key;
	// Secret is its value (never logged).
	SecretEnv string
	Secret    []byte
}

// Chat is a Slack incoming webhook or a Teams workflow webhook; the URL is
// itself the secret, so it comes from the environment.
type Chat struct {
	WebhookEnv string
	URL        string
}

// Retry bounds the deliveries of one event to one target.
type Retry struct {
	// MaxAttempts ≥ 1; Backoff doubles after each failure, capped at
	// MaxBackoff.
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// loadError is one problem in an automations file, located by line and
// field path, in the form policy.Load reports. It wraps
// errdef.ErrInvalidInput.
type loadError struct {
	file  string
	line  int
	field string
	msg   string
}

func (e *loadError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.line > 0 {
		b.WriteString(":" + strconv.Itoa(e.line))
	}
	b.WriteString(": ")
	if e.field != "" {
		b.WriteString(e.field + ": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

func (e *loadError) Unwrap() error { return errdef.ErrInvalidInput }

type loader struct {
	name, dir string
	getenv    func(string) (string, bool)
	errs      []error
}

func (l *loader) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &loadError{file: l.name, line: line, field: field, msg: fmt.Sprintf(format, args...)})
}

// Load reads an automations file. Every problem is reported, each as
// FILE:LINE: FIELD: what is wrong (errors joined, each wrapping
// errdef.ErrInvalidInput), including environment variables that are named
// but unset. Policy paths are resolved against the file's folder.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: automations file: %v", errdef.ErrInvalidInput, err)
	}
	return Parse(file, data, os.LookupEnv)
}

// Parse is Load over bytes already read; getenv looks up the environment
// variables the file names (os.LookupEnv in Load).
func Parse(file string, data []byte, getenv func(string) (string, bool)) (*Config, error) {
	l := &loader{name: file, dir: filepath.Dir(file), getenv: getenv}
	cfg := l.load(data)
	switch len(l.errs) {
	case 0:
		return cfg, nil
	case 1:
		return nil, l.errs[0]
	}
	return nil, errors.Join(l.errs...)
}

// yamlLine matches the location yaml.v3 puts in its syntax errors.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

func (l *loader) load(data []byte) *Config {
	cfg := &Config{File: l.name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(nil, "", "the file is empty: want apiVersion: modelreg.dev/v1, kind: Automations, sources and automations")
			return cfg
		}
		msg, line := err.Error(), 0
		if m := yamlLine().FindStringSubmatch(strings.TrimPrefix(msg, "yaml: ")); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		l.errs = append(l.errs, &loadError{file: l.name, line: line, msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
		return cfg
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	f, ok := l.fields(root, "", "apiVersion", "kind", "sources", "automations")
	if !ok {
		return cfg
	}
	if v, ok := l.required(root, f, "", "apiVersion"); ok && v != "modelreg.dev/v1" {
		l.errorf(f["apiVersion"], "apiVersion", "is %q: want modelreg.dev/v1", v)
	}
	if v, ok := l.required(root, f, "", "kind"); ok && v != "Automations" {
		l.errorf(f["kind"], "kind", "is %q: want Automations", v)
	}
	srcs, ok := f["sources"]
	if !ok || srcs.Kind != yaml.SequenceNode || len(srcs.Content) == 0 {
		l.errorf(orNode(srcs, root), "sources", "want a list of at least one {repository: HOST/REPO-or-GLOB, poll: 30s, policy: FILE}")
	} else {
		for i, n := range srcs.Content {
			if s, ok := l.source(n, fmt.Sprintf("sources[%d]", i)); ok {
				cfg.Sources = append(cfg.Sources, s)
			}
		}
	}
	autos, ok := f["automations"]
	if !ok || autos.Kind != yaml.SequenceNode || len(autos.Content) == 0 {
		l.errorf(orNode(autos, root), "automations", "want a list of at least one {name, on: {event: TYPE}, webhook|slack|teams|command}")
		return cfg
	}
	names := map[string]int{}
	for i, n := range autos.Content {
		field := fmt.Sprintf("automations[%d]", i)
		a, ok := l.automation(n, field)
		if !ok {
			continue
		}
		if prev, dup := names[a.Name]; dup {
			l.errorf(n, field+".name", "%q is used twice (first on line %d): names key the delivery queues, so each must be unique", a.Name, prev)
			continue
		}
		names[a.Name] = a.Line
		cfg.Automations = append(cfg.Automations, a)
	}
	return cfg
}

func orNode(n, parent *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return parent
}

func (l *loader) source(n *yaml.Node, field string) (Source, bool) {
	s := Source{Poll: DefaultPoll, Line: n.Line}
	f, ok := l.fields(n, field, "repository", "poll", "policy", "referrers")
	if !ok {
		return s, false
	}
	before := len(l.errs)
	if v, ok := l.required(n, f, field, "repository"); ok {
		host, glob, cut := strings.Cut(v, "/")
		if _, err := path.Match(glob, ""); !cut || host == "" || glob == "" || strings.ContainsAny(host, "*?[") || err != nil {
			l.errorf(f["repository"], field+".repository", "%q: want HOST/REPO or HOST/GLOB, e.g. registry.example.com/team/*", v)
		}
		s.Repository = v
	}
	if d, ok := l.duration(f, field, "poll"); ok {
		s.Poll = d
	}
	s.Referrers = DefaultReferrerScans * s.Poll
	if d, ok := l.duration(f, field, "referrers"); ok {
		s.Referrers = d
	}
	if v, ok := l.scalar(f, field, "policy"); ok && v != "" {
		p := v
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			l.errorf(f["policy"], field+".policy", "%s: %v", v, err)
		}
		s.Policy = p
	}
	return s, len(l.errs) == before
}

func (l *loader) automation(n *yaml.Node, field string) (Automation, bool) {
	a := Automation{Line: n.Line, Retry: Retry{MaxAttempts: DefaultMaxAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff}}
	f, ok := l.fields(n, field, "name", "on", "webhook", "slack", "teams", "command", "retry")
	if !ok {
		return a, false
	}
	before := len(l.errs)
	if v, ok := l.required(n, f, field, "name"); ok {
		if !nameRE().MatchString(v) {
			l.errorf(f["name"], field+".name", "%q: use letters, digits, '.', '_' and '-' (it names the delivery queue)", v)
		}
		a.Name = v
	}
	if on, ok := f["on"]; !ok {
		l.errorf(n, field+".on", "missing: want on: {event: TYPE} with TYPE one of %s", strings.Join(EventTypes, ", "))
	} else if of, ok := l.fields(on, field+".on", "event", "alias", "repository"); ok {
		if v, ok := l.required(on, of, field+".on", "event"); ok {
			if !isEventType(v) {
				l.errorf(of["event"], field+".on.event", "unknown event %q: want one of %s", v, strings.Join(EventTypes, ", "))
			}
			a.On.Event = v
		}
		if v, ok := l.scalar(of, field+".on", "alias"); ok {
			re, err := regexp.Compile(v)
			if err != nil {
				l.errorf(of["alias"], field+".on.alias", "not a regular expression: %v", err)
			}
			a.On.Alias = re
		}
		if v, ok := l.scalar(of, field+".on", "repository"); ok {
			if _, err := path.Match(v, ""); err != nil {
				l.errorf(of["repository"], field+".on.repository", "not a glob: %v", err)
			}
			a.On.Repository = v
		}
	}
	if w, ok := f["webhook"]; ok {
		if wf, ok := l.fields(w, field+".webhook", "url", "secretEnv"); ok {
			a.Webhook = &Webhook{}
			if v, ok := l.required(w, wf, field+".webhook", "url"); ok {
				if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
					l.errorf(wf["url"], field+".webhook.url", "%q: want an http:// or https:// URL", v)
				}
				a.Webhook.URL = v
			}
			if v, ok := l.scalar(wf, field+".webhook", "secretEnv"); ok {
				a.Webhook.SecretEnv = v
				if s, set := l.getenv(v); !set || s == "" {
					l.errorf(wf["secretEnv"], field+".webhook.secretEnv", "the environment variable %s is not set: set it to the webhook's shared secret", v)
				} else {
					a.Webhook.Secret = []byte(s)
				}
			} else {
				l.errorf(w, field+".webhook.secretEnv", "missing: receivers must be able to check where a delivery comes from; name the environment variable holding the shared secret")
			}
		}
	}
	a.Slack = l.chat(f, field, "slack")
	a.Teams = l.chat(f, field, "teams")
	if c, ok := f["command"]; ok {
		if c.Kind != yaml.SequenceNode || len(c.Content) == 0 {
			l.errorf(c, field+".command", "want a list: [PROGRAM, ARG...] (the event JSON comes on stdin)")
		} else {
			for _, item := range c.Content {
				if item.Kind != yaml.ScalarNode {
					l.errorf(item, field+".command", "want strings")
					continue
				}
				a.Command = append(a.Command, item.Value)
			}
		}
	}
	if a.Webhook == nil && a.Slack == nil && a.Teams == nil && a.Command == nil && len(l.errs) == before {
		l.errorf(n, field, "no target: give webhook, slack, teams or command")
	}
	if r, ok := f["retry"]; ok {
		if rf, ok := l.fields(r, field+".retry", "maxAttempts", "backoff", "maxBackoff"); ok {
			if v, ok := l.scalar(rf, field+".retry", "maxAttempts"); ok {
				if n, err := strconv.Atoi(v); err != nil || n < 1 {
					l.errorf(rf["maxAttempts"], field+".retry.maxAttempts", "%q: want a whole number ≥ 1", v)
				} else {
					a.Retry.MaxAttempts = n
				}
			}
			if d, ok := l.duration(rf, field+".retry", "backoff"); ok {
				a.Retry.Backoff = d
			}
			if d, ok := l.duration(rf, field+".retry", "maxBackoff"); ok {
				a.Retry.MaxBackoff = d
			}
			if a.Retry.Backoff <= 0 || a.Retry.MaxBackoff < a.Retry.Backoff {
				l.errorf(r, field+".retry", "want 0 < backoff ≤ maxBackoff (got %s and %s)", a.Retry.Backoff, a.Retry.MaxBackoff)
			}
		}
	}
	return a, len(l.errs) == before
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })

func (l *loader) chat(f map[string]*yaml.Node, field, key string) *Chat {
	n, ok := f[key]
	if !ok {
		return nil
	}
	cf, ok := l.fields(n, field+"."+key, "webhookEnv")
	if !ok {
		return nil
	}
	v, ok := l.required(n, cf, field+"."+key, "webhookEnv")
	if !ok {
		return nil
	}
	u, set := l.getenv(v)
	if !set || u == "" {
		l.errorf(cf["webhookEnv"], field+"."+key+".webhookEnv", "the environment variable %s is not set: set it to the %s webhook URL", v, key)
		return nil
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		l.errorf(cf["webhookEnv"], field+"."+key+".webhookEnv", "the environment variable %s does not hold an http(s) URL", v)
		return nil
	}
	return &Chat{WebhookEnv: v, URL: u}
}

// fields checks that n is a mapping with only known keys, each once.
func (l *loader) fields(n *yaml.Node, field string, known ...string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, field, "want a mapping with the fields %s", strings.Join(known, ", "))
		return nil, false
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if field != "" {
			name = field + "." + k.Value
		}
		switch {
		case !slices.Contains(known, k.Value):
			l.errorf(k, name, "unknown field: want one of %s", strings.Join(known, ", "))
		case out[k.Value] != nil:
			l.errorf(k, name, "given twice")
		default:
			out[k.Value] = v
		}
	}
	return out, true
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// scalar returns the string value of an optional field.
func (l *loader) scalar(f map[string]*yaml.Node, field, key string) (string, bool) {
	n, ok := f[key]
	if !ok {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.errorf(n, join(field, key), "want a string")
		return "", false
	}
	return n.Value, true
}

func (l *loader) required(parent *yaml.Node, f map[string]*yaml.Node, field, key string) (string, bool) {
	if _, ok := f[key]; !ok {
		l.errorf(parent, join(field, key), "missing")
		return "", false
	}
	v, ok := l.scalar(f, field, key)
	if ok && v == "" {
		l.errorf(f[key], join(field, key), "is empty")
		return "", false
	}
	return v, ok
}

func (l *loader) duration(f map[string]*yaml.Node, field, key string) (time.Duration, bool) {
	v, ok := l.scalar(f, field, key)
	if !ok {
		return 0, false
	}
	if v == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		l.errorf(f[key], join(field, key), "%q: want a duration such as 30s, 5m or 0", v)
		return 0, false
	}
	return d, true
}
