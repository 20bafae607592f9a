package policy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"gopkg.in/yaml.v3"

	"github.com/modelreg/modelreg/errdef"
)

// Field names of an alias section, in the order the documentation gives them.
var aliasFields = []string{"signatures", "annotations", "files", "attestations", "approvals", "requireAlias", "condition", "promoters"}

// aliasName is the OCI distribution-spec tag grammar: an alias is a tag.
var aliasName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`) })

// loadError is one problem in a policy file, located by line and field
// path. It wraps errdef.ErrInvalidInput.
type loadError struct {
	file  string
	line  int    // 1-based; 0 when unknown
	field string // e.g. "aliases.production.signatures.keys[0]"; "" for the file as a whole
	msg   string
}

func (e *loadError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.line))
	}
	b.WriteString(": ")
	if e.field != "" {
		b.WriteString(e.field)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

func (e *loadError) Unwrap() error { return errdef.ErrInvalidInput }

// loader walks the YAML node tree of one policy file, collecting every
// problem rather than stopping at the first.
type loader struct {
	name    string
	baseDir string
	errs    []error

	files  map[string]keyFile // key files read so far, by resolved path
	keys   []Key              // every key named, deduplicated by ID, in file order
	keyIDs map[string]bool
}

// keyFile is the outcome of reading one key file.
type keyFile struct {
	id  string
	pem []byte
	err string // why the file is unusable; "" when it is fine
}

func (l *loader) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &loadError{file: l.name, line: line, field: field, msg: fmt.Sprintf(format, args...)})
}

func (l *loader) err() error {
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	}
	return errors.Join(l.errs...)
}

// yamlLine matches the location yaml.v3 puts in its syntax errors.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

// yamlError reports a YAML syntax error with the file's name and line.
//
// yaml.v3 locates parser errors by a 0-based "context" line (one line early,
// or no line at all on the first line; see its decode.go parser.fail), so
// the file is parsed again with goccy/go-yaml, whose errors carry the exact
// line and column of the offending token. yaml.v3's own message is kept
// when goccy accepts the file.
func (l *loader) yamlError(data []byte, err error) {
	if _, gerr := goccyparser.ParseBytes(data, 0); gerr != nil {
		var ge goccy.Error
		if errors.As(gerr, &ge) && ge.GetToken() != nil && ge.GetToken().Position != nil {
			pos := ge.GetToken().Position
			l.errs = append(l.errs, &loadError{file: l.name, line: pos.Line,
				msg: fmt.Sprintf("invalid YAML: %s (column %d)", ge.GetMessage(), pos.Column)})
			return
		}
	}
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		line := 0
		if m := yamlLine().FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		l.errs = append(l.errs, &loadError{file: l.name, line: line, msg: "invalid YAML: " + msg})
	}
}

func (l *loader) load(data []byte) *Policy {
	p := &Policy{Aliases: map[string]*AliasRules{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(nil, "", "the file is empty; want apiVersion %s, kind %s and aliases", APIVersion, Kind)
		} else {
			l.yamlError(data, err)
		}
		return p
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errorf(&extra, "", "a second YAML document; a policy file holds exactly one")
	} else if !errors.Is(err, io.EOF) {
		l.yamlError(data, err)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = deref(doc.Content[0])
	}
	f, ok := l.fields(root, "", "apiVersion", "kind", "aliases")
	if !ok {
		return p
	}
	l.header(root, f, "apiVersion", APIVersion)
	l.header(root, f, "kind", Kind)

	e, ok := f["aliases"]
	if !ok || isNull(e.val) {
		l.errorf(root, "aliases", "required: one section of rules per protected alias")
		return p
	}
	sections, ok := l.fields(e.val, "aliases")
	if !ok {
		return p
	}
	if len(sections) == 0 {
		l.errorf(e.val, "aliases", "no alias sections; a policy must protect at least one alias")
	}
	for _, name := range names(e.val) {
		sec, ok := sections[name]
		if !ok {
			continue
		}
		field := "aliases." + name
		if !aliasName().MatchString(name) {
			l.errorf(sec.key, field, "%q is not a valid alias name (a tag: letters, digits, '_', '.', '-'; at most 128 characters; not starting with '.' or '-')", name)
		}
		p.Aliases[name] = l.aliasRules(sec.val, field, name)
	}
	p.keys = l.keys
	return p
}

// header checks a required top-level scalar such as apiVersion.
func (l *loader) header(root *yaml.Node, f map[string]entry, name, want string) {
	e, ok := f[name]
	if !ok {
		l.errorf(root, name, "required: %q", want)
		return
	}
	if got, ok := l.scalar(e.val, name); ok && got != want {
		l.errorf(e.val, name, "got %q, want %q", got, want)
	}
}

func (l *loader) aliasRules(n *yaml.Node, field, alias string) *AliasRules {
	r := &AliasRules{}
	f, ok := l.fields(n, field, aliasFields...)
	if !ok {
		return r
	}
	for _, name := range names(n) { // in file order, so Keys() follows the file
		e, ok := f[name]
		if !ok {
			continue
		}
		field := field + "." + name
		switch name {
		case "signatures":
			if keys, need, ok := l.threshold(e.val, field, "minSigners"); ok {
				r.Signatures = &SignatureRule{Keys: keys, MinSigners: need}
			}
		case "annotations":
			r.Annotations = l.strings(e.val, field, false)
		case "files":
			r.Files = l.strings(e.val, field, false)
			for i, p := range r.Files {
				if _, err := path.Match(p, ""); err != nil {
					l.errorf(deref(e.val).Content[i], fmt.Sprintf("%s[%d]", field, i), "%q is not a valid glob pattern (path.Match syntax)", p)
				}
			}
		case "attestations":
			r.Attestations = l.attestations(e.val, field)
		case "approvals":
			if keys, need, ok := l.threshold(e.val, field, "min"); ok {
				r.Approvals = &ApprovalRule{Keys: keys, Min: need}
			}
		case "promoters":
			if f, ok := l.fields(e.val, field, "keys", "maxAge", "minSequence"); ok && !isNull(e.val) {
				r.Promoters, _, _ = l.keyList(e.val, f, field)
				if m, ok := f["maxAge"]; ok {
					r.PromotionMaxAge = l.duration(m.val, field+".maxAge")
				}
				if m, ok := f["minSequence"]; ok {
					r.PromotionMinSequence = l.sequence(m.val, field+".minSequence")
				}
			}
		case "requireAlias":
			r.RequireAlias = l.requireAlias(e.val, field, alias)
		case "condition":
			if !isNull(e.val) {
				r.Condition, r.cond = l.condition(e.val, field, evidenceEnv)
			}
		}
	}
	return r
}

// threshold reads {keys: [...], <minName>: N}, the shape shared by
// signatures and approvals.
func (l *loader) threshold(n *yaml.Node, field, minName string) ([]Key, int, bool) {
	f, ok := l.fields(n, field, "keys", minName)
	if !ok || isNull(n) {
		return nil, 0, false
	}
	keys, listed, ok := l.keyList(n, f, field)
	if !ok {
		return nil, 0, false
	}
	need := 1
	if e, ok := f[minName]; ok {
		minField := field + "." + minName
		if e.val.Kind != yaml.ScalarNode || e.val.ShortTag() != "!!int" || e.val.Decode(&need) != nil {
			l.errorf(e.val, minField, "must be a whole number, got %s", describe(e.val))
			return nil, 0, false
		}
		if need < 1 {
			l.errorf(e.val, minField, "must be at least 1, got %d", need)
		} else if need > listed {
			l.errorf(e.val, minField, "%d is more than the %s listed, so the rule could never pass", need, count(listed, "distinct key"))
		}
	}
	return keys, need, true
}

// keyList reads the required "keys" field of a rule and loads every key.
// listed is the number of distinct keys named (by ID once loaded, by path
// for files that failed to load).
func (l *loader) keyList(parent *yaml.Node, f map[string]entry, field string) (keys []Key, listed int, ok bool) {
	e, found := f["keys"]
	if !found || isNull(e.val) {
		l.errorf(parent, field+".keys", "required: at least one public key file")
		return nil, 0, false
	}
	list := deref(e.val)
	if list.Kind == yaml.SequenceNode && len(list.Content) == 0 {
		l.errorf(list, field+".keys", "required: at least one public key file")
		return nil, 0, false
	}
	paths := l.strings(list, field+".keys", false)
	if paths == nil {
		return nil, 0, false
	}
	distinct := map[string]bool{}
	for i, p := range paths {
		if p == "" { // already reported
			continue
		}
		item := deref(list.Content[i])
		k, ok := l.key(item, fmt.Sprintf("%s.keys[%d]", field, i))
		if ok {
			keys = append(keys, k)
			distinct[k.ID] = true
		} else {
			distinct["path:"+item.Value] = true
		}
	}
	return keys, len(distinct), true
}

// key loads the public key file named by the scalar n.
func (l *loader) key(n *yaml.Node, field string) (Key, bool) {
	p := n.Value
	resolved := p
	if !filepath.IsAbs(p) {
		resolved = filepath.Join(l.baseDir, filepath.FromSlash(p))
	}
	if l.files == nil {
		l.files = map[string]keyFile{}
		l.keyIDs = map[string]bool{}
	}
	kf, seen := l.files[resolved]
	if !seen {
		kf = readKeyFile(resolved)
		l.files[resolved] = kf
	}
	if kf.err != "" {
		l.errorf(n, field, "key file %s: %s", p, kf.err)
		return Key{}, false
	}
	k := Key{Path: p, ID: kf.id, PEM: kf.pem}
	if !l.keyIDs[k.ID] {
		l.keyIDs[k.ID] = true
		l.keys = append(l.keys, k)
	}
	return k, true
}

// readKeyFile reads and parses one PEM public key file.
func readKeyFile(name string) keyFile {
	data, err := os.ReadFile(name)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg = "no such file"
		case errors.As(err, &pe):
			msg = pe.Err.Error()
		}
		if abs, aerr := filepath.Abs(name); aerr == nil {
			msg += " (looked at " + abs + ")"
		}
		return keyFile{err: msg}
	}
	id, pemBytes, err := parsePublicKey(data)
	if err != nil {
		return keyFile{err: err.Error()}
	}
	return keyFile{id: id, pem: pemBytes}
}

// parsePublicKey returns the key ID and canonical PEM of the first PEM
// block of data, which must be a PKIX "PUBLIC KEY".
func parsePublicKey(data []byte) (id string, pemBytes []byte, err error) {
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return "", nil, errors.New(`not a PEM file; want a "PUBLIC KEY" block such as cosign.pub`)
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return "", nil, fmt.Errorf("holds a private key (PEM %q); name the public key file (.pub) instead", block.Type)
	case block.Type != "PUBLIC KEY":
		return "", nil, fmt.Errorf(`PEM block %q is not a "PUBLIC KEY"`, block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("not a valid public key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", nil, fmt.Errorf("unsupported public key: %v", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func (l *loader) attestations(n *yaml.Node, field string) []AttestationRule {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, field, "must be a list of {predicateType, keys, condition}, got %s", describe(n))
		return nil
	}
	var rules []AttestationRule
	for i, item := range n.Content {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		item = deref(item)
		f, ok := l.fields(item, itemField, "predicateType", "keys", "condition")
		if !ok {
			continue
		}
		var r AttestationRule
		if e, ok := f["predicateType"]; !ok || isNull(e.val) {
			l.errorf(item, itemField+".predicateType", "required: the in-toto predicate type URI, e.g. https://modelreg.dev/evaluation/v1")
		} else if pt, ok := l.scalar(e.val, itemField+".predicateType"); ok {
			r.PredicateType = pt
		}
		r.Keys, _, _ = l.keyList(item, f, itemField)
		if e, ok := f["condition"]; ok && !isNull(e.val) {
			r.Condition, r.cond = l.condition(e.val, itemField+".condition", attestationEnv)
		}
		rules = append(rules, r)
	}
	return rules
}

func (l *loader) requireAlias(n *yaml.Node, field, self string) []string {
	n = deref(n)
	var names []string
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		names = []string{n.Value}
	default:
		names = l.strings(n, field, true)
	}
	var out []string
	seen := map[string]bool{}
	for i, name := range names {
		at, itemField := n, field
		if n.Kind == yaml.SequenceNode {
			at, itemField = n.Content[i], fmt.Sprintf("%s[%d]", field, i)
		}
		switch {
		case !aliasName().MatchString(name):
			l.errorf(at, itemField, "%q is not a valid alias name", name)
		case name == self:
			l.errorf(at, itemField, "an alias cannot require itself")
		case !seen[name]:
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// condition compiles the CEL expression in the scalar n.
func (l *loader) condition(n *yaml.Node, field string, env func() (*celEnv, error)) (string, *condition) {
	src, ok := l.scalar(n, field)
	if !ok {
		return "", nil
	}
	if strings.TrimSpace(src) == "" {
		l.errorf(n, field, "empty CEL expression")
		return src, nil
	}
	e, err := env()
	if err != nil { // a bug in this package, not in the policy
		l.errorf(n, field, "CEL environment: %v", err)
		return src, nil
	}
	c, issues, err := e.compile(src)
	for _, is := range issues {
		line := n.Line
		switch {
		case n.Style&yaml.LiteralStyle != 0: // the block starts on the next line and keeps its newlines
			line += is.line
		case n.Style&yaml.FoldedStyle != 0: // the block starts on the next line; its newlines are folded
			line++
		}
		l.errorf(&yaml.Node{Line: line}, field, "does not compile: %s (column %d of %q)", is.msg, is.column, src)
	}
	if err != nil {
		l.errorf(n, field, "%v", err)
	}
	return src, c
}

// entry is one key: value pair of a YAML mapping.
type entry struct{ key, val *yaml.Node }

// fields checks that n is a mapping with distinct scalar keys, all among
// known (any key when known is empty), and returns its valid entries by
// key; the others are reported. A null node reads as an empty mapping. ok
// is false only when n is not a mapping.
func (l *loader) fields(n *yaml.Node, field string, known ...string) (map[string]entry, bool) {
	n = deref(n)
	f := map[string]entry{}
	if isNull(n) {
		return f, true
	}
	if n.Kind != yaml.MappingNode {
		what := "must be a mapping"
		if len(known) > 0 {
			what += " with fields " + strings.Join(known, ", ")
		}
		if field == "" {
			l.errorf(n, "", "the file %s, got %s", what, describe(n))
		} else {
			l.errorf(n, field, "%s, got %s", what, describe(n))
		}
		return nil, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		switch prev, dup := f[k.Value]; {
		case k.Kind != yaml.ScalarNode:
			l.errorf(k, field, "a key must be a plain name, got %s", describe(k))
		case len(known) > 0 && !contains(known, k.Value):
			l.errorf(k, field, "unknown field %q%s", k.Value, suggest(k.Value, known))
		case dup:
			l.errorf(k, join(field, k.Value), "given twice (first on line %d)", prev.key.Line)
		default:
			f[k.Value] = entry{key: k, val: v}
		}
	}
	return f, true
}

// scalar returns the text of a non-null scalar.
func (l *loader) scalar(n *yaml.Node, field string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		l.errorf(n, field, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// strings reads a list of non-empty scalars. Items that are not scalars are
// reported and skipped, except that the result keeps one entry per item
// (the empty string for a bad one) so callers can index n.Content with it.
func (l *loader) strings(n *yaml.Node, field string, allowEmptyList bool) []string {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, field, "must be a list of strings, got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 && !allowEmptyList {
		return nil
	}
	out := make([]string, len(n.Content))
	for i, item := range n.Content {
		item = deref(item)
		itemField := fmt.Sprintf("%s[%d]", field, i)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			l.errorf(item, itemField, "must be a string, got %s", describe(item))
			continue
		}
		if strings.TrimSpace(item.Value) == "" {
			l.errorf(item, itemField, "must not be empty")
			continue
		}
		out[i] = item.Value
	}
	return out
}

// names returns the keys of a mapping node in file order, each once.
func names(n *yaml.Node) []string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Kind == yaml.ScalarNode && !seen[k.Value] {
			seen[k.Value] = true
			out = append(out, k.Value)
		}
	}
	return out
}

// deref follows YAML aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names the kind of a node for messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil || isNull(n):
		return "nothing (null)"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "a YAML document"
}

func join(field, name string) string {
	if field == "" {
		return name
	}
	return field + "." + name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the known field closest to a misspelt one, or lists them.
func suggest(got string, known []string) string {
	best, bestDist := "", 3 // more than two edits is not a typo
	for _, k := range known {
		d := editDistance(strings.ToLower(got), strings.ToLower(k))
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// duration reads a positive duration such as "720h", "90m" or "30d" (days,
// which time.ParseDuration lacks).
func (l *loader) duration(n *yaml.Node, field string) time.Duration {
	v, ok := l.scalar(n, field)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if days, found := strings.CutSuffix(v, "d"); found && err != nil {
		var nd int
		if _, serr := fmt.Sscanf(days, "%d", &nd); serr == nil && fmt.Sprint(nd) == days {
			d, err = time.Duration(nd)*24*time.Hour, nil
		}
	}
	if err != nil || d <= 0 {
		l.errorf(n, field, "%q is not a positive duration (e.g. 720h or 30d)", v)
		return 0
	}
	return d
}

// sequence reads a promotion record sequence number: an integer ≥ 1.
func (l *loader) sequence(n *yaml.Node, field string) int64 {
	v, ok := l.scalar(n, field)
	if !ok {
		return 0
	}
	seq, err := strconv.ParseInt(v, 10, 64)
	if err != nil || seq < 1 {
		l.errorf(n, field, "%q is not a sequence number (an integer of at least 1, e.g. the sequence `modelreg history` shows for the promotion to deploy)", v)
		return 0
	}
	return seq
}
