package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v2"
)

// errNoFile is a configuration file that is not there.
type errNoFile struct{ path string }

func (e errNoFile) Error() string {
	return e.path + ": no such configuration file: give its path with -config PATH (see teleport -h)"
}

func (e errNoFile) Unwrap() error { return fs.ErrNotExist }

// Load reads the YAML file at path and parses it with Parse. Every error it
// returns starts with path; when the file is missing the error wraps
// fs.ErrNotExist.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, errNoFile{path}
	}
	if err != nil {
		return Config{}, fmt.Errorf("%s: read config file: %w", path, unwrapPath(err))
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, prefixEach(path, err)
	}
	return c, nil
}

// Parse decodes a YAML configuration over Default, expands ${VAR} in every
// string, reads the secret files and validates the result. It reports every
// problem it finds at once, one per line, each naming its YAML key and, for
// problems in the YAML itself, its line.
func Parse(b []byte) (Config, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Config{}, errEmpty
	}
	// Generic decodes first: they catch syntax errors, tell an empty
	// document from one that is not a mapping, and let us name the key path
	// of the errors the strict decode reports only by line.
	var top any
	if err := yaml.Unmarshal(b, &top); err != nil {
		return Config{}, yamlError(err, nil)
	}
	switch v := top.(type) {
	case nil:
		return Config{}, errEmpty
	case map[any]any:
	case []any:
		return Config{}, errors.New("the file must be a mapping of keys to values, such as batch_size: 10000, not a list")
	default:
		return Config{}, fmt.Errorf("the file must be a mapping of keys to values, such as batch_size: 10000, not the single value %q", fmt.Sprint(v))
	}
	var raw yaml.MapSlice
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return Config{}, yamlError(err, nil)
	}
	if len(raw) == 0 {
		return Config{}, errEmpty
	}
	var w walker
	w.walk(reflect.TypeOf(Config{}), raw, "")

	c := Default()
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return Config{}, yamlError(err, w.found)
	}
	if len(w.errs) > 0 {
		return Config{}, errors.Join(w.errs...)
	}
	// yaml.v2 sets a key written with no value to its zero value; treat it
	// as omitted instead, so "port:" keeps 5432 rather than becoming 0.
	restoreNulls(raw, reflect.ValueOf(&c).Elem(), reflect.ValueOf(Default()))

	errs := c.resolve()
	failed := make(map[string]bool)
	for _, err := range errs {
		var p problem
		if errors.As(err, &p) {
			failed[p.key] = true
		}
	}
	// A key whose variable or file could not be resolved holds a value the
	// user never meant; validating it would only repeat the same problem.
	for _, p := range c.problems() {
		if !failed[p.key] {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

var errEmpty = errors.New("config file is empty: set at least database.name")

// prefixEach prefixes every error joined in err with prefix, so each line of
// a multi-line message says which file it is about.
func prefixEach(prefix string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	errs := j.Unwrap()
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", prefix, e)
	}
	return errors.Join(out...)
}

// unwrapPath drops the operation and path an *fs.PathError repeats, for
// callers that name the path themselves.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// issueKind is the kind of a problem yaml.v2's strict decoding reports.
type issueKind int

const (
	unknownKey issueKind = iota
	duplicateKey
	duplicateTarget
	wrongType
)

// issue is a problem the walker found in the generic decode, which the
// strict decode also reports, with a line number but without the key path.
type issue struct {
	kind issueKind
	typ  string // Go type decoded into, as yaml.v2 prints it
	key  string // the offending key, for unknownKey, duplicateKey, duplicateTarget
	path string // YAML key path of the value, "" for the top level
	used bool
}

// walker goes through the generic decode along the Go types the strict
// decode uses, in document order, as the strict decoder does.
type walker struct {
	found []*issue
	errs  []error // problems yaml.v2 accepts silently
}

func (w *walker) walk(t reflect.Type, v any, path string) {
	if v == nil {
		return
	}
	ms, isMap := v.(yaml.MapSlice)
	_, isList := v.([]any)
	switch t.Kind() {
	case reflect.Struct:
		if !isMap {
			w.add(&issue{kind: wrongType, typ: t.String(), path: path})
			return
		}
		seen := make(map[string]bool)
		for _, it := range ms {
			key := fmt.Sprint(it.Key)
			i, ok := fieldIndex(t, key)
			switch {
			case !ok:
				w.add(&issue{kind: unknownKey, typ: t.String(), key: key, path: path})
			case seen[key]:
				w.add(&issue{kind: duplicateKey, typ: t.String(), key: key, path: path})
			default:
				seen[key] = true
				w.walk(t.Field(i).Type, it.Value, joinKey(path, key))
			}
		}
	case reflect.Map:
		if !isMap {
			w.add(&issue{kind: wrongType, typ: t.String(), path: path})
			return
		}
		seen := make(map[string]bool)
		for _, it := range ms {
			key := fmt.Sprint(it.Key)
			w.walk(t.Elem(), it.Value, joinKey(path, key))
			if seen[key] {
				w.add(&issue{kind: duplicateTarget, key: key, path: path})
			}
			seen[key] = true
		}
	case reflect.String:
		if isMap || isList {
			w.add(&issue{kind: wrongType, typ: t.String(), path: path})
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.add(&issue{kind: wrongType, typ: t.String(), path: path})
		}
	case reflect.Int:
		switch n := v.(type) {
		case int, int64:
		case uint64:
			if n > math.MaxInt64 {
				w.add(&issue{kind: wrongType, typ: t.String(), path: path})
			}
		case float64:
			switch {
			case n > math.MaxInt64 || n < math.MinInt64:
				w.add(&issue{kind: wrongType, typ: t.String(), path: path})
			case n != math.Trunc(n):
				// yaml.v2 would silently truncate it.
				w.errs = append(w.errs, problem{path, fmt.Sprintf("want a whole number, got %v", n)})
			}
		default:
			w.add(&issue{kind: wrongType, typ: t.String(), path: path})
		}
	}
}

func (w *walker) add(i *issue) { w.found = append(w.found, i) }

// claim returns the key path of the first unclaimed issue like want, or ""
// and false when the walker saw none.
func claim(found []*issue, want issue) (string, bool) {
	for _, i := range found {
		if !i.used && i.kind == want.kind && i.typ == want.typ && i.key == want.key {
			i.used = true
			return i.path, true
		}
	}
	return "", false
}

// tabMessage is how yaml.v2 reports a tab used for indentation.
const tabMessage = "found character that cannot start any token"

var (
	reYAMLLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	reField      = regexp.MustCompile(`^line (\d+): field (.*) (not found|already set) in type (\S+)$`)
	reMapKey     = regexp.MustCompile(`^line (\d+): key (".*") already set in map$`)
	reWrongType  = regexp.MustCompile("^line (\\d+): cannot unmarshal (\\S+)(?: `(.*)`)? into (\\S+)$")
	configTypes  = []reflect.Type{reflect.TypeOf(Config{}), reflect.TypeOf(Intervals{}), reflect.TypeOf(Database{}), reflect.TypeOf(Server{}), reflect.TypeOf(Target{}), reflect.TypeOf(Endpoint{})}
	typeSections = map[string]string{ // where a type sits, when the walker cannot tell
		"config.Config":    "",
		"config.Intervals": "processing_intervals",
		"config.Database":  "database",
		"config.Server":    "server",
		"config.Target":    "targets.<name>",
		"config.Endpoint":  "targets.<name>.endpoint",
	}
)

// yamlError rewrites an error of yaml.v2 into one error per problem, each
// with its line, key path and what is allowed there.
func yamlError(err error, found []*issue) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := reYAMLLine.FindStringSubmatch(err.Error()); m != nil {
			line := m[1]
			// yaml.v2 numbers the lines of its parser's errors from 0 (its
			// scanner's from 1): "did not find expected ..." is about the
			// line after the one it names.
			if n, err := strconv.Atoi(line); err == nil && strings.HasPrefix(m[2], "did not find expected") {
				line = strconv.Itoa(n + 1)
			}
			msg = "line " + line + ": invalid YAML: " + m[2]
		} else {
			msg = "invalid YAML: " + msg
		}
		if strings.Contains(msg, tabMessage) {
			msg += " (indent with spaces; YAML does not allow tabs there)"
		}
		return errors.New(msg)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, s := range te.Errors {
		errs = append(errs, errors.New(rewrite(s, found)))
	}
	return errors.Join(errs...)
}

// rewrite turns one of yaml.v2's strict decoding messages into ours, or
// returns it unchanged when it has a form we do not know.
func rewrite(s string, found []*issue) string {
	if m := reField.FindStringSubmatch(s); m != nil {
		line, key, typ := m[1], m[2], m[4]
		kind := unknownKey
		if m[3] == "already set" {
			kind = duplicateKey
		}
		section, ok := claim(found, issue{kind: kind, typ: typ, key: key})
		if !ok {
			section = typeSections[typ]
		}
		where := "at the top level"
		if section != "" {
			where = "in " + section
		}
		if kind == duplicateKey {
			return fmt.Sprintf("line %s: %s: key set twice %s; keep one", line, joinKey(section, key), where)
		}
		msg := fmt.Sprintf("line %s: %s: unknown key", line, joinKey(section, key))
		allowed := allowedKeys(typ)
		if len(allowed) == 0 {
			return msg
		}
		if guess := closest(key, allowed); guess != "" {
			msg += fmt.Sprintf(", did you mean %q?", guess)
		}
		return fmt.Sprintf("%s (allowed %s: %s)", msg, where, strings.Join(allowed, ", "))
	}
	if m := reMapKey.FindStringSubmatch(s); m != nil {
		name, err := strconv.Unquote(m[2])
		if err != nil {
			name = m[2]
		}
		section, ok := claim(found, issue{kind: duplicateTarget, key: name})
		if !ok {
			section = "targets"
		}
		return fmt.Sprintf("line %s: %s: target %q is defined twice", m[1], section, name)
	}
	if m := reWrongType.FindStringSubmatch(s); m != nil {
		line, tag, value, typ := m[1], m[2], m[3], m[4]
		path, ok := claim(found, issue{kind: wrongType, typ: typ})
		if !ok {
			path = typeSections[typ]
		}
		if path == "" {
			path = "top level"
		}
		return fmt.Sprintf("line %s: %s: want %s, got %s", line, path, describeType(typ), describeValue(tag, value))
	}
	return s
}

// describeType says in words what a value decoded into the Go type typ
// must look like in YAML.
func describeType(typ string) string {
	switch typ {
	case "int":
		return "a whole number"
	case "config.Millis":
		return "a whole number of milliseconds"
	case "bool":
		return "true or false"
	case "string":
		return "a single value"
	case "map[string]config.Target":
		return "a mapping of target names to their settings"
	}
	return "a mapping of keys to values"
}

// describeValue says in words what yaml.v2 found, given the tag and the
// (possibly shortened) text of a value.
func describeValue(tag, value string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!str":
		return "text " + strconv.Quote(value)
	case "!!int", "!!float":
		return "the number " + value
	case "!!bool":
		return "the boolean " + value
	}
	return strings.TrimSpace(tag + " " + value)
}

// allowedKeys lists the YAML keys of the config type named typ, in
// declaration order.
func allowedKeys(typ string) []string {
	for _, t := range configTypes {
		if t.String() != typ {
			continue
		}
		keys := make([]string, t.NumField())
		for i := range keys {
			keys[i] = yamlKey(t.Field(i))
		}
		return keys
	}
	return nil
}

// closest returns the allowed key a misspelt key most likely meant, or "".
func closest(key string, allowed []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3 // more than two edits is a different word
	for _, a := range allowed {
		if norm(a) == norm(key) {
			return a
		}
		if d := editDistance(key, a); d < bestDist && d <= len(a)/2 {
			best, bestDist = a, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
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

// restoreNulls sets every struct field the YAML gave an empty value back
// to its default from def.
func restoreNulls(raw yaml.MapSlice, cfg, def reflect.Value) {
	for _, it := range raw {
		key, ok := it.Key.(string)
		if !ok {
			continue
		}
		i, ok := fieldIndex(cfg.Type(), key)
		if !ok {
			continue
		}
		switch v := it.Value.(type) {
		case nil:
			cfg.Field(i).Set(def.Field(i))
		case yaml.MapSlice:
			if cfg.Field(i).Kind() == reflect.Struct {
				restoreNulls(v, cfg.Field(i), def.Field(i))
			}
		}
	}
}

// fieldIndex returns the index of the field of struct type t whose YAML key
// is key.
func fieldIndex(t reflect.Type, key string) (int, bool) {
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == key {
			return i, true
		}
	}
	return 0, false
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// joinKey appends key to the YAML key path path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
